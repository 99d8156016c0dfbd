"""Pre-screen (预审): admission criteria (准入) and the negative list (负面清单) as data-driven rules.

Each AdmissionCriterion names a rule here and carries its parameters and the message the applicant
sees. A rule looks at the form and at the data snapshots and answers passed / failed / unknown, with
the value it saw. Unknown (the data is missing) never passes silently: the case is referred to a person.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .identifiers import resident_age

PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"


@dataclass
class RuleContext:
    enterprise: Any  # Enterprise or a plain object with the same fields (pre-qualification)
    payloads: dict[str, dict | None]
    today: dt.date
    amount: Decimal | None = None
    manual_hits: list[str] | None = None  # reasons of manual negative-list entries found; None: not consulted


def _src(ctx: RuleContext, source: str) -> dict | None:
    return ctx.payloads.get(source)


def _years_between(start: dt.date, end: dt.date) -> float:
    return (end - start).days / 365.25


def _founded_on(ctx: RuleContext) -> dt.date | None:
    reg = _src(ctx, "registry")
    if reg and reg.get("founded_on"):
        return dt.date.fromisoformat(str(reg["founded_on"]))
    return getattr(ctx.enterprise, "founded_on", None)


def rule_min_years_in_business(params, ctx):
    founded = _founded_on(ctx)
    if founded is None:
        return UNKNOWN, None
    years = round(_years_between(founded, ctx.today), 1)
    return (PASS if years >= params.get("years", 2) else FAIL), years


def rule_legal_rep_age(params, ctx):
    reg = _src(ctx, "registry")
    id_number = (reg or {}).get("legal_rep_id_number") or getattr(ctx.enterprise, "legal_rep_id_number", None)
    if not id_number:
        return UNKNOWN, None
    try:
        age = resident_age(id_number, on=ctx.today)
    except ValueError:  # stdnum's ValidationError is a ValueError: an unreadable birth date
        return UNKNOWN, None
    return (PASS if params.get("min", 18) <= age <= params.get("max", 65) else FAIL), age


def rule_tax_grade_in(params, ctx):
    tax = _src(ctx, "tax")
    if not tax:
        return UNKNOWN, None
    grade = tax["tax_grade"]
    return (PASS if grade in params.get("grades", ["A", "B", "M"]) else FAIL), grade


def rule_min_months_filed(params, ctx):
    tax = _src(ctx, "tax")
    if not tax:
        return UNKNOWN, None
    months = int(tax["months_filed"])
    return (PASS if months >= params.get("months", 24) else FAIL), months


def rule_no_current_overdue(params, ctx):
    bureau = _src(ctx, "credit_bureau")
    if not bureau:
        return UNKNOWN, None
    amount = Decimal(bureau["current_overdue_amount"])
    return (PASS if amount <= Decimal(str(params.get("tolerance", "0"))) else FAIL), str(amount)


def rule_max_inquiries_3m(params, ctx):
    bureau = _src(ctx, "credit_bureau")
    if not bureau:
        return UNKNOWN, None
    n = int(bureau["inquiries_3m"])
    return (PASS if n <= params.get("max", 6) else FAIL), n


# The official SME size classification (工信部联企业〔2011〕300号《中小企业划型标准规定》), per sector by
# GB/T 4754 code prefix: [medium headcount floor, medium revenue floor (CNY), micro headcount ceiling, micro
# revenue ceiling]. An enterprise is medium (or large) when it reaches every medium floor given; micro when it
# is below any micro ceiling given; small otherwise. None: the standard does not use that measure for the
# sector, or uses total assets, which the bank's data does not carry (construction, real estate development,
# leasing and business services): the remaining measure decides. The longest matching prefix wins; "*" is
# the standard's "other sectors not listed" (headcount only). Editable through the criterion's params.
SIZE_THRESHOLDS = {
    "A": [None, 5_000_000, None, 500_000],          # 农、林、牧、渔业
    "B": [300, 20_000_000, 20, 3_000_000],          # 工业：采矿业
    "C": [300, 20_000_000, 20, 3_000_000],          # 工业：制造业
    "D": [300, 20_000_000, 20, 3_000_000],          # 工业：电力、热力、燃气及水
    "E": [None, 60_000_000, None, 3_000_000],       # 建筑业（另有资产总额标准）
    "F51": [20, 50_000_000, 5, 10_000_000],         # 批发业
    "F52": [50, 5_000_000, 10, 1_000_000],          # 零售业
    "G": [300, 30_000_000, 20, 2_000_000],          # 交通运输业
    "G59": [100, 10_000_000, 20, 1_000_000],        # 仓储业
    "G60": [300, 20_000_000, 20, 1_000_000],        # 邮政业
    "H": [100, 20_000_000, 10, 1_000_000],          # 住宿业、餐饮业
    "I63": [100, 10_000_000, 10, 1_000_000],        # 信息传输业
    "I64": [100, 10_000_000, 10, 1_000_000],        # 信息传输业（互联网）
    "I65": [100, 10_000_000, 10, 500_000],          # 软件和信息技术服务业
    "K701": [None, 10_000_000, None, 1_000_000],    # 房地产开发经营（另有资产总额标准）
    "K702": [300, 10_000_000, 100, 5_000_000],      # 物业管理
    "L": [100, None, 10, None],                     # 租赁和商务服务业（另有资产总额标准）
    "*": [100, None, 10, None],                     # 其他未列明行业
}


def size_row(industry_code: str, table: dict | None = None) -> list:
    table = table or SIZE_THRESHOLDS
    code = (industry_code or "").upper()
    for length in range(len(code), 0, -1):
        if code[:length] in table:
            return table[code[:length]]
    return table["*"]


def size_class(industry_code: str, headcount: int, revenue: Decimal, table: dict | None = None) -> str:
    """small, micro or medium_or_large by the official standard for the industry."""
    mid_h, mid_r, micro_h, micro_r = size_row(industry_code, table)
    reaches_medium = (mid_h is None or headcount >= mid_h) and (mid_r is None or revenue >= mid_r)
    if reaches_medium:
        return "medium_or_large"
    if (micro_h is not None and headcount < micro_h) or (micro_r is not None and revenue < micro_r):
        return "micro"
    return "small"


def rule_size_class_in(params, ctx):
    ss = _src(ctx, "social_security")
    tax = _src(ctx, "tax")
    headcount = int(ss["headcount"]) if ss else getattr(ctx.enterprise, "employees", None)
    revenue = Decimal(tax["revenue_12m"]) if tax else getattr(ctx.enterprise, "annual_revenue", None)
    industry = _industry(ctx)
    if headcount is None or revenue is None or not industry:
        return UNKNOWN, None
    cls = size_class(industry, int(headcount), Decimal(revenue), params.get("thresholds"))
    return (PASS if cls in params.get("allowed", ["small", "micro"]) else FAIL), cls


def _industry(ctx) -> str:
    reg = _src(ctx, "registry")
    return ((reg or {}).get("industry_code") or getattr(ctx.enterprise, "industry_code", "") or "").upper()


def rule_industry_not_restricted(params, ctx):
    """Restricted industries by GB/T 4754 code prefix (a section letter, a division, a group or a class)."""
    code = _industry(ctx)
    if not code:
        return UNKNOWN, None
    hit = any(code.startswith(str(prefix).upper()) for prefix in params.get("prefixes", []))
    return (FAIL if hit else PASS), code


def _flag_rule(source: str, key: str):
    def rule(params, ctx):
        payload = _src(ctx, source)
        if not payload:
            return UNKNOWN, None
        value = payload[key]
        return (FAIL if value else PASS), bool(value)

    return rule


def rule_registry_status_active(params, ctx):
    reg = _src(ctx, "registry")
    if not reg:
        return UNKNOWN, None
    return (PASS if reg["status"] == "active" else FAIL), reg["status"]


def rule_dishonest_debtor(params, ctx):
    jud = _src(ctx, "judicial")
    if not jud:
        return UNKNOWN, None
    who = [w for w, key in (("enterprise", "dishonest_debtor"), ("legal_rep", "legal_rep_dishonest_debtor")) if jud.get(key)]
    return (FAIL if who else PASS), "+".join(who) if who else False


def rule_manual_negative_list(params, ctx):
    if ctx.manual_hits is None:  # not consulted (a public-only pre-qualification)
        return UNKNOWN, None
    hits = ctx.manual_hits
    return (FAIL if hits else PASS), "; ".join(hits) if hits else False


RULES: dict[str, Callable] = {
    "min_years_in_business": rule_min_years_in_business,
    "legal_rep_age": rule_legal_rep_age,
    "tax_grade_in": rule_tax_grade_in,
    "min_months_filed": rule_min_months_filed,
    "no_current_overdue": rule_no_current_overdue,
    "max_inquiries_3m": rule_max_inquiries_3m,
    "size_class_in": rule_size_class_in,
    "industry_not_restricted": rule_industry_not_restricted,
    "registry_status_active": rule_registry_status_active,
    "dishonest_debtor": rule_dishonest_debtor,
    "abnormal_operations": _flag_rule("registry", "abnormal_operations"),
    "major_tax_violation": _flag_rule("tax", "major_violation"),
    "npl_5y": _flag_rule("internal", "npl_5y"),
    "manual_negative_list": rule_manual_negative_list,
}


@dataclass
class RuleOutcome:
    code: str
    kind: str
    outcome: str
    value: Any
    message: str
    message_en: str

    def as_dict(self) -> dict:
        return {
            "code": self.code, "kind": self.kind, "outcome": self.outcome,
            "value": self.value if isinstance(self.value, (str, int, float, bool, type(None))) else str(self.value),
            "message": self.message, "message_en": self.message_en,
        }


def evaluate(criteria, ctx: RuleContext) -> list[RuleOutcome]:
    outcomes = []
    for criterion in criteria:
        rule = RULES.get(criterion.rule)
        if rule is None:
            raise ValueError(f"Unknown admission rule {criterion.rule!r} in criterion {criterion.code}")
        try:
            outcome, value = rule(criterion.params or {}, ctx)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            # A payload without the field the rule reads is a gap (refer to a person), not a crash.
            outcome, value = UNKNOWN, f"unreadable: {exc.__class__.__name__}"
        outcomes.append(RuleOutcome(criterion.code, criterion.kind, outcome, value,
                                    criterion.message, criterion.message_en or criterion.message))
    return outcomes


def summarise(outcomes: list[RuleOutcome]) -> dict:
    failed = [o for o in outcomes if o.outcome == FAIL]
    unknown = [o for o in outcomes if o.outcome == UNKNOWN]
    return {
        "passed": not failed,
        "reasons": [{"code": o.code, "message": o.message, "message_en": o.message_en} for o in failed],
        "gaps": [{"code": o.code, "message": o.message, "message_en": o.message_en} for o in unknown],
        "rules": [o.as_dict() for o in outcomes],
    }
