"""Reference data every installation starts with: the defaults of DESIGN.md as data, editable in admin.

Idempotent (get_or_create by natural key): run by a data migration and again by seed_demo. Admin edits
made afterwards are never overwritten.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from applications.faq import seed_faq
from applications.models import AdmissionCriterion
from applications.reference import seed_authorisation_text
from approvals.models import AuthorityMatrixVersion, AuthorityRule, ReasonCode
from approvals.reference import seed_approval_policy
from contracts.models import ContractTemplate
from contracts.reference import seed_conditions_precedent
from contracts.services import contract_template_check, contract_template_publish
from creditlines.reference import seed_line_freezing_rules
from ledger.reference import chart_seed, vat_seed
from loanservice import roles
from loanservice.bizcal import calendar_from_chinese_calendar
from loanservice.errors import ApplicationError
from loanservice.models import CalendarDay, CalendarYear, SlaTarget
from loanservice.sla import business_calendar_changed
from postloan.reference import seed_postloan_policy
from postloan.services import schedules_recompute_for_years
from underwriting.models import DataSourceConfig, PricingPolicy, QuestionnaireQuestion
from underwriting.reference import seed_lpr
from underwriting.selectors import scorecard_champion
from underwriting.sources import SOURCES

ADMISSION = [
    # code, rule, params, name, name_en, message, message_en
    ("years_in_business", "min_years_in_business", {"years": 2}, "经营满2年", "In business for at least 2 years",
     "企业成立不满2年", "The business has operated for less than 2 years"),
    ("legal_rep_age", "legal_rep_age", {"min": 18, "max": 65}, "法定代表人年龄18-65周岁", "Legal representative aged 18-65",
     "法定代表人年龄不在18-65周岁之间", "The legal representative is not aged 18-65"),
    ("tax_grade", "tax_grade_in", {"grades": ["A", "B", "M"]}, "纳税信用等级为A、B或M", "Tax credit grade A, B or M",
     "纳税信用等级不是A、B或M", "The tax credit grade is not A, B or M"),
    ("tax_months", "min_months_filed", {"months": 24}, "连续纳税申报满24个月", "At least 24 months of tax filings",
     "纳税申报不满24个月", "Fewer than 24 months of tax filings"),
    ("no_current_overdue", "no_current_overdue", {"tolerance": "0"}, "征信无当前逾期", "No current overdue at the credit bureau",
     "征信报告显示当前有逾期", "The credit report shows a current overdue"),
    ("bureau_inquiries", "max_inquiries_3m", {"max": 6}, "近3个月征信查询不超过6次", "At most 6 credit inquiries in 3 months",
     "近3个月征信查询次数过多", "Too many credit inquiries in the last 3 months"),
    ("size_class", "size_class_in", {"allowed": ["small", "micro"]}, "属于小型或微型企业", "A small or micro enterprise",
     "企业规模不属于小微企业", "The enterprise is not small or micro"),
    ("industry_allowed", "industry_not_restricted", {"prefixes": ["B06", "C25", "C31", "C32", "K70", "J67"]},
     "不属于限制类行业", "Not in a restricted industry", "所属行业属于本行限制类行业", "The industry is restricted by the bank"),
]
NEGATIVE = [
    ("dishonest_debtor", "dishonest_debtor", {}, "失信被执行人（企业或法定代表人）", "Dishonest judgment debtor (enterprise or legal representative)",
     "企业或法定代表人被列为失信被执行人", "The enterprise or its legal representative is a dishonest judgment debtor"),
    ("abnormal_operations", "abnormal_operations", {}, "经营异常名录", "Abnormal-operations list",
     "企业被列入经营异常名录", "The enterprise is on the abnormal-operations list"),
    ("major_tax_violation", "major_tax_violation", {}, "重大税收违法", "Major tax violation",
     "企业有重大税收违法记录", "The enterprise has a major tax violation"),
    ("registry_status", "registry_status_active", {}, "破产、清算、吊销或注销", "Bankruptcy, liquidation, revoked or cancelled",
     "企业登记状态异常（清算、吊销或注销）", "The enterprise is in liquidation, revoked or cancelled"),
    ("npl_5y", "npl_5y", {}, "5年内在本行有不良贷款", "A non-performing loan with the bank in 5 years",
     "5年内在本行有不良贷款记录", "A non-performing loan with the bank in the last 5 years"),
    ("manual_list", "manual_negative_list", {}, "本行负面清单（人工）", "The bank's manual negative list",
     "企业或法定代表人在本行负面清单中", "The enterprise or legal representative is on the bank's negative list"),
]
REASON_CODES = [
    ("INSUFFICIENT_CASHFLOW", "decline", "经营现金流不足以覆盖还款", "Operating cash flow does not cover repayments"),
    ("HIGH_LEVERAGE", "decline", "负债水平过高", "Debt is too high relative to revenue"),
    ("POOR_CREDIT_HISTORY", "decline", "信用记录不佳", "The credit history is poor"),
    ("UNVERIFIED_OPERATIONS", "decline", "经营真实性无法核实", "The business operations could not be verified"),
    ("PURPOSE_NOT_ELIGIBLE", "decline", "贷款用途不符合要求", "The loan purpose is not eligible"),
    ("INDUSTRY_RISK", "decline", "行业风险较高", "The industry risk is high"),
    ("LITIGATION", "decline", "存在重大诉讼或执行案件", "There are significant lawsuits or enforcement cases"),
    ("GRADE_E", "decline", "综合评分未达到准入标准", "The overall score is below the bank's threshold"),
    ("INCOMPLETE_DUE_DILIGENCE", "return", "尽职调查不完整，请补充", "Due diligence is incomplete"),
    ("RECHECK_FINANCIALS", "return", "请复核财务数据", "Please recheck the financial data"),
    ("VISIT_REQUIRED", "return", "请补充现场走访", "An on-site visit is required"),
    ("ADD_GUARANTOR", "condition", "追加保证人", "Add a guarantor"),
    ("REGISTERED_MORTGAGE", "condition", "办妥抵押登记", "Mortgage registered"),
    ("ACCOUNT_SUPERVISION", "condition", "开立监管账户，回款归集", "Open a supervised account for receipts"),
    ("ACCOUNT_OPENED", "condition", "开立结算账户", "Open a settlement account with the bank"),
    ("AUTO_APPROVE", "approve", "符合信秒贷自动审批条件", "Meets every fast-track condition"),
    ("GUARANTEE_INSUFFICIENT", "decline", "担保或抵押不足", "The guarantee or collateral is insufficient"),
    ("RELATED_PARTY_LIMIT", "decline", "关联交易不符合本行关联方授信规定", "Not allowed under the bank's related-party lending rules"),
    ("COMMITTEE_NO_QUORUM", "return", "贷审会未在期限内达到法定人数，请重新提交", "The committee did not reach a quorum in time; resubmit"),
    ("CLARIFY_PURPOSE", "return", "请核实贷款用途", "Please verify the loan purpose"),
    ("ENTRUSTED_PAYMENT", "condition", "采用受托支付", "Funds paid to the supplier directly (entrusted payment)"),
    ("LOWER_AMOUNT", "approve", "按调减后的金额批准", "Approved for a lower amount"),
]
# DESIGN.md's default matrix: first matching row by priority wins.
AUTHORITY_MATRIX = [
    (10, None, None, ["E"], None, "auto_decline", "grade E: automatic decline"),
    (20, None, None, [], True, "committee", "related party"),
    (30, None, None, ["D"], None, "committee", "grade D"),
    (40, Decimal("10000000"), None, [], None, "committee", "above head-office authority"),
    (50, None, Decimal("1000000"), ["A", "B"], None, "auto", "快速通道（其余条件由系统另行校验） / fast track (the other conditions are checked separately)"),
    (60, None, Decimal("3000000"), ["A", "B", "C"], None, "branch", "branch authority"),
    (70, None, Decimal("10000000"), ["A", "B", "C"], None, "head_office", "head office authority"),
]
SLA_DEFAULTS = {"due_diligence": "2", "branch_approval": "1", "head_office_approval": "2", "committee_approval": "5",
                "contracting": "2", "disbursement": "1"}
QUESTIONNAIRE = [
    ("premises_verified", "经营场所是否与登记一致？", "Do the premises match the registration?", "yes_no", True, []),
    ("operating_normally", "现场是否正常经营？", "Is the business operating normally?", "yes_no", True, []),
    ("main_customers", "主要客户集中度", "Concentration of main customers", "choice", True, ["低 low", "中 medium", "高 high"]),
    ("monthly_sales", "近3个月月均销售额（元）", "Average monthly sales, last 3 months (CNY)", "number", True, []),
    ("owner_experience", "实际控制人从业年限", "Years of industry experience of the owner", "number", False, []),
    ("observations", "其他发现", "Other observations", "text", False, []),
]


def seed_groups() -> None:
    for name in roles.ALL_ROLES:
        Group.objects.get_or_create(name=name)


def seed_criteria() -> None:
    for kind, rows in (("admission", ADMISSION), ("negative", NEGATIVE)):
        for order, (code, rule, params, name, name_en, msg, msg_en) in enumerate(rows):
            AdmissionCriterion.objects.get_or_create(code=code, defaults=dict(
                kind=kind, rule=rule, params=params, name=name, name_en=name_en, message=msg, message_en=msg_en, order=order))


def seed_reason_codes() -> None:
    for code, kind, text, text_en in REASON_CODES:
        ReasonCode.objects.get_or_create(code=code, defaults={"kind": kind, "text": text, "text_en": text_en})


def seed_authority_matrix() -> None:
    if AuthorityMatrixVersion.objects.exists():
        return

    # Built as a draft, then activated: an activated version is frozen.
    version = AuthorityMatrixVersion.objects.create(number=1, note="初始授权矩阵 / initial authority matrix")
    for priority, min_amount, max_amount, grades, related, route, note in AUTHORITY_MATRIX:
        AuthorityRule.objects.create(version=version, priority=priority, min_amount=min_amount, max_amount=max_amount,
                                     grades=grades, related_party=related, route=route, note=note)
    AuthorityMatrixVersion.objects.filter(pk=version.pk).update(is_active=True, activated_at=timezone.now())


def seed_sla_targets() -> None:
    for stage, days in SLA_DEFAULTS.items():
        SlaTarget.objects.get_or_create(stage=stage, product_code="", defaults={"business_days": Decimal(days)})


def seed_calendar(years=range(2020, 2031)) -> list[int]:
    """Load the official schedule for the years chinese-calendar knows; return the years it did not."""

    data = calendar_from_chinese_calendar(years)
    known = set(CalendarYear.objects.values_list("year", flat=True))
    new_years = set(data.known_years) - known
    CalendarDay.objects.bulk_create(
        [CalendarDay(date=d, kind=CalendarDay.HOLIDAY) for d in sorted(data.holidays) if d.year in new_years]
        + [CalendarDay(date=d, kind=CalendarDay.WORKDAY) for d in sorted(data.workdays) if d.year in new_years],
        ignore_conflicts=True,
    )
    CalendarYear.objects.bulk_create([CalendarYear(year=y) for y in sorted(new_years)], ignore_conflicts=True)
    business_calendar_changed()
    if new_years:
        schedules_recompute_for_years(years=new_years)  # their provisional due dates, by each contract's rule
    return sorted(set(years) - set(data.known_years))


def seed_underwriting() -> None:
    for source in SOURCES:
        DataSourceConfig.objects.get_or_create(source=source)
    seed_lpr()  # the published LPR history (underwriting.reference); operations add each month's in admin
    PricingPolicy.objects.get_or_create(effective_on=dt.date(2025, 5, 20), defaults=dict(
        lpr_1y=Decimal("0.030000"),
        spreads={"A": "0.0050", "B": "0.0100", "C": "0.0180", "D": "0.0300", "E": "0.0500"},
    ))
    for order, (code, q, q_en, qtype, required, choices) in enumerate(QUESTIONNAIRE):
        QuestionnaireQuestion.objects.get_or_create(product=None, code=code, defaults=dict(
            question=q, question_en=q_en, qtype=qtype, required=required, choices=choices, order=order))
    scorecard_champion()


def seed_contract_templates() -> None:
    for kind in ("loan", "guarantee", "mortgage", "credit_line"):
        html = Path(settings.BASE_DIR, "templates", "contracts", f"{kind}_contract.html").read_text(encoding="utf-8")
        ContractTemplate.objects.get_or_create(kind=kind, product=None, version=1, defaults={"html": html})
        # A seeded default that lacks a key term the contract now must state (e.g. the LPR rate basis) gives way to the
        # file's new version; a version an admin published is never replaced, and issued contracts keep theirs.
        active = ContractTemplate.objects.filter(kind=kind, product=None, is_active=True).order_by("-version").first()
        if active is not None and active.created_by_id is None and active.html != html:
            try:
                contract_template_check(kind=kind, html=active.html)
            except ApplicationError:
                contract_template_publish(kind=kind, html=html, by=None, note="按新的必备条款更新 / updated to the required terms")
    seed_conditions_precedent()


@transaction.atomic
def seed_reference_data() -> None:
    seed_groups()
    seed_criteria()
    seed_authorisation_text()

    seed_faq()
    seed_reason_codes()
    seed_authority_matrix()

    seed_approval_policy()
    seed_sla_targets()
    seed_calendar()
    seed_underwriting()
    seed_contract_templates()

    seed_postloan_policy()  # buckets, floors, policy, warning rules (a test flush would otherwise leave none)
    seed_line_freezing_rules()  # the red warnings freeze a borrower's credit lines
    chart_seed()  # the chart of accounts and the default account mapping
    vat_seed()  # 价税分离: the VAT rules of the income accounts
