"""The initial expert SME scorecard (专家评分卡), used until a trained model is promoted.

The table and its rationale are written down in ``docs/scorecard.md``; keep the
two in step.  Feature definitions (computed from the data sources elsewhere):

numeric
    years_in_business        years since registration (工商登记)
    revenue_12m              revenue over the last 12 months, CNY
    revenue_growth           revenue_12m / revenue of the previous 12 months - 1 (0.1 = +10 %)
    tax_burden               tax paid / revenue over the last 12 months
    months_filed             consecutive months of tax returns filed (连续申报月数)
    settlement_inflow_trend  settlement-account inflows, last 12 months / previous 12 months - 1
    headcount                employees with social insurance (社保缴纳人数)
    headcount_trend          headcount / headcount 12 months ago - 1
    leverage                 outstanding debt / revenue_12m
    overdue_count_24m        number of overdue events in the credit report, last 24 months
    max_dpd_24m              worst days past due, last 24 months
    inquiries_3m             hard credit inquiries (loan approvals) in the last 3 months
    enforcement_cases        court enforcement cases (被执行) on record, not closed
    litigation_cases_12m     lawsuits as defendant filed in the last 12 months
    deposit_to_revenue       average deposit balance (6 months) / revenue_12m
categorical
    tax_grade                纳税信用等级 A, B, M, C, D
"""

from __future__ import annotations

import copy
from typing import Any

from .scorecard import validate_spec

EXPERT_SPEC_NAME = "expert-sme-v1"


def _num(name, dimension, label_zh, label_en, code, reason_zh, reason_en, bins, missing):
    """bins: [(upper or None, points), ...] with value < upper."""
    return {
        "name": name,
        "type": "numeric",
        "dimension": dimension,
        "label": {"zh": label_zh, "en": label_en},
        "reason_code": code,
        "reason": {"zh": reason_zh, "en": reason_en},
        "bins": [{"upper": None if u is None else float(u), "points": int(p)} for u, p in bins],
        "missing_points": int(missing),
    }


_FEATURES: list[dict[str, Any]] = [
    # ---------------------------------------------------------------- operating (经营能力)
    _num("years_in_business", "operating", "经营年限", "Years in business",
         "SHORT_OPERATING_HISTORY", "企业经营年限较短", "The business has been operating for a short time",
         [(1, 0), (2, 8), (3, 15), (5, 25), (8, 32), (None, 40)], missing=0),
    _num("revenue_12m", "operating", "近12个月收入", "Revenue over the last 12 months",
         "LOW_REVENUE", "近12个月营业收入规模较小", "Revenue over the last 12 months is small",
         [(500_000, 0), (1_000_000, 8), (3_000_000, 15), (10_000_000, 22), (30_000_000, 28), (None, 30)],
         missing=0),
    _num("revenue_growth", "operating", "收入增长率", "Revenue growth",
         "WEAK_REVENUE_GROWTH", "营业收入增长偏弱或下降", "Revenue growth is weak or negative",
         [(-0.3, 0), (-0.1, 10), (0.0, 20), (0.2, 28), (None, 30)], missing=10),
    _num("tax_burden", "operating", "税负率", "Tax paid relative to revenue",
         "LOW_TAX_BURDEN", "纳税额占营业收入的比例偏低", "Tax paid is low relative to reported revenue",
         [(0.005, 0), (0.01, 8), (0.02, 15), (0.03, 20), (None, 25)], missing=0),
    _num("settlement_inflow_trend", "operating", "结算流入变化", "Trend of settlement account inflows",
         "DECLINING_CASH_INFLOW", "结算账户资金流入呈下降趋势", "Money coming into the business accounts is declining",
         [(-0.3, 0), (-0.1, 6), (0.1, 12), (None, 15)], missing=6),
    _num("headcount", "operating", "社保缴纳人数", "Number of insured employees",
         "SMALL_WORKFORCE", "参保员工人数较少", "The business has few insured employees",
         [(3, 0), (10, 5), (50, 10), (None, 12)], missing=3),
    _num("headcount_trend", "operating", "用工人数变化", "Change in headcount",
         "SHRINKING_WORKFORCE", "员工人数减少", "The number of employees has decreased",
         [(-0.2, 0), (0.0, 5), (None, 8)], missing=4),
    _num("deposit_to_revenue", "operating", "存款收入比", "Average deposits relative to revenue",
         "LOW_DEPOSIT_BALANCE", "账户存款余额相对营业收入偏低", "Bank deposit balances are low relative to revenue",
         [(0.02, 0), (0.05, 8), (0.1, 15), (0.2, 20), (None, 24)], missing=5),
    # ---------------------------------------------------------------- credit standing (信用状况)
    _num("leverage", "credit_standing", "负债收入比", "Debt relative to revenue",
         "HIGH_LEVERAGE", "现有负债相对营业收入偏高", "Existing debt is relatively high compared with revenue",
         [(0.1, 35), (0.3, 28), (0.5, 18), (0.8, 8), (1.2, 0), (None, -15)], missing=10),
    _num("overdue_count_24m", "credit_standing", "近24个月逾期次数", "Overdue payments in the last 24 months",
         "OVERDUE_HISTORY", "近24个月征信记录中存在逾期", "The credit report shows late payments in the last 24 months",
         [(1, 60), (2, 25), (4, 5), (None, -10)], missing=20),
    _num("max_dpd_24m", "credit_standing", "近24个月最长逾期天数", "Longest delay in payment in the last 24 months",
         "SEVERE_DELINQUENCY", "近24个月出现较长时间的逾期", "A payment was seriously late in the last 24 months",
         [(1, 50), (30, 25), (60, 5), (90, -10), (None, -40)], missing=20),
    _num("inquiries_3m", "credit_standing", "近3个月征信查询次数", "Credit inquiries in the last 3 months",
         "FREQUENT_CREDIT_INQUIRIES", "近3个月征信查询次数较多", "Many credit applications were made in the last 3 months",
         [(2, 20), (4, 14), (7, 6), (None, 0)], missing=10),
    # ---------------------------------------------------------------- willingness (还款意愿)
    _num("months_filed", "willingness", "连续申报月数", "Months of consecutive tax filings",
         "IRREGULAR_TAX_FILING", "纳税申报不连续", "Tax returns have not been filed regularly",
         [(6, 0), (12, 8), (24, 15), (36, 20), (None, 22)], missing=0),
    _num("enforcement_cases", "willingness", "被执行案件数", "Court enforcement cases",
         "COURT_ENFORCEMENT", "企业存在法院强制执行记录", "There are court enforcement orders against the business",
         [(1, 50), (2, -30), (None, -60)], missing=30),
    _num("litigation_cases_12m", "willingness", "近12个月涉诉案件数", "Lawsuits in the last 12 months",
         "LITIGATION", "近12个月企业作为被告涉及诉讼", "The business has been sued in the last 12 months",
         [(1, 25), (2, 5), (4, -15), (None, -40)], missing=15),
    {
        "name": "tax_grade",
        "type": "categorical",
        "dimension": "willingness",
        "label": {"zh": "纳税信用等级", "en": "Tax credit rating"},
        "reason_code": "LOW_TAX_CREDIT_RATING",
        "reason": {"zh": "纳税信用等级较低", "en": "The tax authority's credit rating of the business is low"},
        "bins": [
            {"values": ["A"], "points": 45},
            {"values": ["B"], "points": 35},
            {"values": ["M"], "points": 25},
            {"values": ["C"], "points": 5},
            {"values": ["D"], "points": -20},
        ],
        "other_points": 5,
        "missing_points": 10,
    },
]

_GRADES = [
    {"grade": "A", "min_points": 740, "pd": "0.005"},
    {"grade": "B", "min_points": 690, "pd": "0.015"},
    {"grade": "C", "min_points": 640, "pd": "0.04"},
    {"grade": "D", "min_points": 580, "pd": "0.10"},
    {"grade": "E", "min_points": None, "pd": "0.25"},
]

_SPEC: dict[str, Any] = {
    "format": 1,
    "name": EXPERT_SPEC_NAME,
    "base_points": 300,
    "features": _FEATURES,
    "grades": _GRADES,
}
validate_spec(_SPEC)


def expert_spec() -> dict[str, Any]:
    """A fresh (deep-copied) expert scorecard spec."""
    return copy.deepcopy(_SPEC)
