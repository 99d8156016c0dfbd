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
    manual_hits: list[str] | None = None  # reasons of manual negative-list entries found


def _src(ctx: RuleContext, source: str) -> dict | None:
    return ctx.payloads.get(source)


def _years_between(start: dt.date, end: dt.date) -> float:
    return (end - start).days / 365.25


def rule_min_years_in_business(params, ctx):
    reg = _src(ctx, "registry")
    founded = dt.date.fromisoformat(reg["founded_on"]) if reg else ctx.enterprise.founded_on
    years = round(_years_between(founded, ctx.today), 1)
    return (PASS if years >= params.get("years", 2) else FAIL), years


def rule_legal_rep_age(params, ctx):
    reg = _src(ctx, "registry")
    id_number = (reg or {}).get("legal_rep_id_number") or ctx.enterprise.legal_rep_id_number
    age = resident_age(id_number, on=ctx.today)
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


# The official SME classification (工信部联企业〔2011〕300号), simplified to headcount and revenue per
# sector: (medium headcount floor, medium revenue floor in CNY, micro headcount ceiling, micro revenue
# ceiling). Small or micro unless both floors are reached. Editable through the rule's params.
SIZE_THRESHOLDS = {
    "A": [None, 5_000_000, None, 500_000],
    "B": [300, 20_000_000, 20, 3_000_000], "C": [300, 20_000_000, 20, 3_000_000],
    "D": [300, 20_000_000, 20, 3_000_000],
    "E": [None, 60_000_000, None, 3_000_000],
    "F51": [20, 50_000_000, 5, 10_000_000], "F52": [50, 5_000_000, 10, 1_000_000],
    "G": [300, 30_000_000, 20, 2_000_000],
    "H": [100, 20_000_000, 10, 1_000_000],
    "I": [100, 10_000_000, 10, 500_000],
    "K": [None, 10_000_000, None, 1_000_000],
    "*": [100, 10_000_000, 10, 1_000_000],
}


def size_class(industry_code: str, headcount: int, revenue: Decimal, table: dict | None = None) -> str:
    table = table or SIZE_THRESHOLDS
    row = table.get(industry_code[:3]) or table.get(industry_code[:1]) or table["*"]
    mid_h, mid_r, micro_h, micro_r = row
    reaches_medium = (mid_h is None or headcount >= mid_h) and (mid_r is None or revenue >= mid_r)
    if reaches_medium:
        return "medium_or_large"
    if (micro_h is not None and headcount < micro_h) or (micro_r is not None and revenue < micro_r):
        return "micro"
    return "small"


def rule_size_class_in(params, ctx):
    ss = _src(ctx, "social_security")
    tax = _src(ctx, "tax")
    headcount = int(ss["headcount"]) if ss else ctx.enterprise.employees
    revenue = Decimal(tax["revenue_12m"]) if tax else Decimal(ctx.enterprise.annual_revenue)
    cls = size_class(ctx.enterprise.industry_code, headcount, revenue, params.get("thresholds"))
    return (PASS if cls in params.get("allowed", ["small", "micro"]) else FAIL), cls


def _industry(ctx) -> str:
    reg = _src(ctx, "registry")
    return (reg or {}).get("industry_code") or ctx.enterprise.industry_code


def rule_industry_not_restricted(params, ctx):
    code = _industry(ctx)
    hit = any(code.startswith(prefix) for prefix in params.get("prefixes", []))
    return (FAIL if hit else PASS), code


def _flag_rule(source: str, key: str):
    def rule(params, ctx):
        payload = _src(ctx, source)
        if not payload:
            return UNKNOWN, None
        value = payload[key]
        return (FAIL if value else PASS), value

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
    hit = jud["dishonest_debtor"] or jud["legal_rep_dishonest_debtor"]
    return (FAIL if hit else PASS), hit


def rule_manual_negative_list(params, ctx):
    hits = ctx.manual_hits or []
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
        outcome, value = rule(criterion.params or {}, ctx)
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
