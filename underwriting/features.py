"""Scorecard features derived from the (cleaned) source payloads.

Pure Python.  Floats are used on purpose: features feed a model, not the ledger.
A feature is ``None`` when a source it needs is missing (``None`` or absent
from ``payloads``), when a field is missing/unparseable, or when a denominator
is zero.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "FEATURES",
    "NUMERIC_FEATURES",
    "CATEGORICAL_FEATURES",
    "FEATURE_SOURCES",
    "PROFILE_FIELDS",
    "derive_features",
]

NUMERIC_FEATURES: tuple[str, ...] = (
    "years_in_business",
    "revenue_12m",
    "revenue_growth",
    "tax_burden",
    "months_filed",
    "settlement_inflow_trend",
    "headcount",
    "headcount_trend",
    "leverage",
    "overdue_count_24m",
    "max_dpd_24m",
    "inquiries_3m",
    "enforcement_cases",
    "litigation_cases_12m",
    "deposit_to_revenue",
)
CATEGORICAL_FEATURES: tuple[str, ...] = ("tax_grade",)
FEATURES: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES

# Which sources each feature depends on (for "missing because ..." explanations).
FEATURE_SOURCES: dict[str, tuple[str, ...]] = {
    "years_in_business": ("registry",),
    "revenue_12m": ("tax",),
    "revenue_growth": ("tax",),
    "tax_burden": ("tax",),
    "months_filed": ("tax",),
    "settlement_inflow_trend": ("internal",),
    "headcount": ("social_security",),
    "headcount_trend": ("social_security",),
    "leverage": ("credit_bureau", "tax"),
    "overdue_count_24m": ("credit_bureau",),
    "max_dpd_24m": ("credit_bureau",),
    "inquiries_3m": ("credit_bureau",),
    "enforcement_cases": ("judicial",),
    "litigation_cases_12m": ("judicial",),
    "deposit_to_revenue": ("internal", "tax"),
    "tax_grade": ("tax",),
}

# (feature, label_zh, label_en, unit) in display order; unit is one of
# "years", "cny", "ratio", "count", "grade".
PROFILE_FIELDS: list[tuple[str, str, str, str]] = [
    ("years_in_business", "经营年限", "Years in business", "years"),
    ("tax_grade", "纳税信用等级", "Tax credit grade", "grade"),
    ("months_filed", "连续申报月数", "Months of tax filings", "count"),
    ("revenue_12m", "近12个月收入", "Revenue (12 months)", "cny"),
    ("revenue_growth", "收入增长率", "Revenue growth", "ratio"),
    ("tax_burden", "税负率", "Tax burden", "ratio"),
    ("settlement_inflow_trend", "结算流入变化", "Settlement inflow trend", "ratio"),
    ("deposit_to_revenue", "存款收入比", "Deposits to revenue", "ratio"),
    ("headcount", "社保缴纳人数", "Insured headcount", "count"),
    ("headcount_trend", "用工人数变化", "Headcount trend", "ratio"),
    ("leverage", "负债收入比", "Debt to revenue", "ratio"),
    ("overdue_count_24m", "近24个月逾期次数", "Overdue count (24 months)", "count"),
    ("max_dpd_24m", "近24个月最长逾期天数", "Max days past due (24 months)", "count"),
    ("inquiries_3m", "近3个月征信查询次数", "Credit inquiries (3 months)", "count"),
    ("enforcement_cases", "被执行案件数", "Enforcement cases", "count"),
    ("litigation_cases_12m", "近12个月涉诉案件数", "Litigation cases (12 months)", "count"),
]
assert sorted(f for f, *_ in PROFILE_FIELDS) == sorted(FEATURES)


def _num(payload: dict | None, field: str) -> float | None:
    if not payload:
        return None
    value = payload.get(field)
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def _change(current: float | None, previous: float | None) -> float | None:
    ratio = _ratio(current, previous)
    return None if ratio is None else ratio - 1.0


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def derive_features(payloads: dict[str, dict | None], *, as_of: date) -> dict[str, float | str | None]:
    """Map source payloads to exactly the keys in ``FEATURES``."""
    tax = payloads.get("tax")
    registry = payloads.get("registry")
    social = payloads.get("social_security")
    bureau = payloads.get("credit_bureau")
    judicial = payloads.get("judicial")
    internal = payloads.get("internal")

    years = None
    founded_on = _date(registry.get("founded_on")) if registry else None
    if founded_on is not None:
        years = max(0.0, (as_of - founded_on).days / 365.25)

    revenue = _num(tax, "revenue_12m")
    grade = tax.get("tax_grade") if tax else None

    features: dict[str, float | str | None] = {
        "years_in_business": years,
        "revenue_12m": revenue,
        "revenue_growth": _change(revenue, _num(tax, "revenue_prev_12m")),
        "tax_burden": _ratio(_num(tax, "tax_paid_12m"), revenue),
        "months_filed": _num(tax, "months_filed"),
        "settlement_inflow_trend": _change(
            _num(internal, "settlement_inflow_12m"), _num(internal, "settlement_inflow_prev_12m")
        ),
        "headcount": _num(social, "headcount"),
        "headcount_trend": _change(_num(social, "headcount"), _num(social, "headcount_12m_ago")),
        "leverage": _ratio(_num(bureau, "outstanding_debt"), revenue),
        "overdue_count_24m": _num(bureau, "overdue_count_24m"),
        "max_dpd_24m": _num(bureau, "max_dpd_24m"),
        "inquiries_3m": _num(bureau, "inquiries_3m"),
        "enforcement_cases": _num(judicial, "enforcement_cases"),
        "litigation_cases_12m": _num(judicial, "litigation_cases_12m"),
        "deposit_to_revenue": _ratio(_num(internal, "avg_deposit_balance_6m"), revenue),
        "tax_grade": str(grade) if grade else None,
    }
    assert tuple(features) == FEATURES
    return features
