"""Probabilities of default (违约概率) by grade for the loan book: 12-month and lifetime, read from the PD term
structure in force, with the forward-looking factor of the model-risk policy applied.

* The version in force on a day is the approved `PDTermStructure` with the latest `effective_from` not after
  that day. Its curves hold, per grade, the cumulative PD by month on book (through the cycle).
* **Fallback** — no approved version yet, or a grade the book was too thin to estimate (the version then
  stores the scorecard's curve for it, `basis = "scorecard"`): the champion scorecard's grade PD is read as a
  12-month PD `p` with a constant monthly hazard `h = 1 − (1 − p)^(1/12)` (so 12 months give `p` and `m`
  months give `1 − (1 − p)^(m/12)`). Without a champion in the database the expert table's PDs are used.
* The **forward-looking factor** `f` (`ModelRiskPolicy`, data) multiplies each monthly hazard:
  cumulative PD over `m` months = `1 − Π (1 − min(1, f·h_t))`. `f = 1` leaves the curve as estimated.
* Beyond the version's horizon the last month's hazard carries on.
* A grade outside A–E (a loan without a score) gets the worst grade's PD: a provision errs on the safe side.

The curve starts at month on book 1: a loan's 12-month PD is that of a new loan of its grade. Both functions
return fractions (0..1) as `Decimal` with 6 decimal places. The estimator of the term structure lives in
`analytics.pd_estimation` (it reads the book; underwriting does not).
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from .expert_scorecard import expert_spec
from .models import GRADE_LETTERS, ModelRiskPolicy, PDTermStructure, ScorecardModel

__all__ = ["pd_12m", "pd_lifetime", "pd_curve", "model_risk_policy", "pd_term_structure_in_force",
           "scorecard_grade_pds", "scorecard_curve", "hazards_from_cumulative"]

PLACES = Decimal("0.000001")


def model_risk_policy(on: datetime.date) -> ModelRiskPolicy:
    """The policy in force on `on`; the model's defaults when none is stored."""
    return (ModelRiskPolicy.objects.filter(effective_from__lte=on).order_by("-effective_from").first()
            or ModelRiskPolicy(effective_from=on))


def pd_term_structure_in_force(on: datetime.date) -> PDTermStructure | None:
    return (PDTermStructure.objects.filter(approved_at__isnull=False, effective_from__lte=on)
            .order_by("-effective_from", "-version").first())


def scorecard_grade_pds() -> dict[str, float]:
    """The champion scorecard's PD per grade (its calibration, a 12-month PD); the expert table's without one."""
    model = ScorecardModel.objects.filter(is_active=True).order_by("-version").only("spec").first()
    spec = model.spec if model is not None else expert_spec()
    pds = {g["grade"]: float(g["pd"]) for g in spec.get("grades", [])}
    return {g: pds.get(g, max(pds.values(), default=1.0)) for g in GRADE_LETTERS}


def scorecard_curve(pd_12m_value: float, months: int) -> list[float]:
    """Cumulative PD by month 1..months for a constant monthly hazard that gives `pd_12m_value` over 12 months."""
    p = min(max(float(pd_12m_value), 0.0), 1.0)
    if p >= 1.0:
        return [1.0] * months
    return [1.0 - (1.0 - p) ** (m / 12.0) for m in range(1, months + 1)]


def hazards_from_cumulative(cumulative: list[float]) -> list[float]:
    """Monthly (conditional) hazards h_t = 1 − (1 − C_t) / (1 − C_{t−1})."""
    out, prev = [], 0.0
    for c in cumulative:
        c = min(max(float(c), prev), 1.0)
        out.append(1.0 if prev >= 1.0 else 1.0 - (1.0 - c) / (1.0 - prev))
        prev = c
    return out


def _grade(grade: str) -> str:
    grade = (grade or "").strip().upper()
    return grade if grade in GRADE_LETTERS else GRADE_LETTERS[-1]


def _hazards(grade: str, on: datetime.date) -> tuple[list[float], float]:
    structure = pd_term_structure_in_force(on)
    curve = None
    if structure is not None:
        curve = (structure.curves or {}).get(grade)
    if not curve:
        curve = scorecard_curve(scorecard_grade_pds()[grade], 12)
    factor = float(model_risk_policy(on).forward_looking_factor)
    return hazards_from_cumulative([float(c) for c in curve]), factor


def pd_curve(grade: str, *, months: int, on: datetime.date) -> list[Decimal]:
    """Cumulative PD by month 1..months (forward-looking factor applied)."""
    if months < 0:
        raise ValueError("months must be >= 0")
    hazards, factor = _hazards(_grade(grade), on)
    out, survival = [], 1.0
    for m in range(months):
        h = hazards[m] if m < len(hazards) else hazards[-1]
        survival *= 1.0 - min(1.0, h * factor)
        out.append(Decimal(repr(1.0 - survival)).quantize(PLACES))
    return out


def pd_12m(grade: str, *, on: datetime.date) -> Decimal:
    """The probability that a loan of this grade defaults (90+ days past due) within 12 months, as in force on
    `on`, forward-looking factor applied."""
    return pd_curve(grade, months=12, on=on)[-1]


def pd_lifetime(grade: str, *, months: int, on: datetime.date) -> Decimal:
    """The probability of default over the next `months` months (the loan's remaining life), as in force on
    `on`, forward-looking factor applied. 0 months: 0."""
    if months < 0:
        raise ValueError("months must be >= 0")
    if months == 0:
        return Decimal("0").quantize(PLACES)
    return pd_curve(grade, months=months, on=on)[-1]
