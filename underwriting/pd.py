"""Probability of default (违约概率) per grade, for expected credit loss (postloan.provisions).

FALLBACK ONLY (issue #17): this minimal version reads each grade's PD from the champion scorecard's grade
calibration (`spec["grades"]`, the PD the scorecard assigns a grade; the expert table on a fresh database) and
takes it as the 12-month PD; lifetime PD over `months` is 1 - (1 - p)^(months / 12) (a constant hazard). The
model-risk work replaces this module with a per-grade term structure observed on the book, keeping the two
signatures below (`pd_12m`, `pd_lifetime`) and falling back to this calibration when the book is thin.

An unknown grade (a loan without a score) takes the worst grade's PD: the prudent side.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from .expert_scorecard import expert_spec
from .models import ScorecardModel

ONE = Decimal("1")
PLACES = Decimal("0.00000001")


def _calibration() -> dict[str, Decimal]:
    """grade → 12-month PD from the champion scorecard's grade table (best grade first)."""
    model = ScorecardModel.objects.filter(is_active=True).order_by("-version").first()
    grades = (model.spec if model is not None else expert_spec()).get("grades") or expert_spec()["grades"]
    return {str(g["grade"]): Decimal(str(g["pd"])) for g in grades}


def _clamp(p: Decimal) -> Decimal:
    return min(max(p, Decimal("0")), ONE)


def pd_12m(grade: str, *, on: dt.date) -> Decimal:
    """The 12-month PD of `grade` on `on` (a fraction 0..1). `on` is for the term structure; the fallback
    calibration does not change with the date."""
    table = _calibration()
    p = table.get(grade)
    if p is None:
        p = max(table.values())
    return _clamp(p)


def pd_lifetime(grade: str, *, months: int, on: dt.date) -> Decimal:
    """The PD over `months` from `on` (a fraction 0..1): 1 - (1 - PD12)^(months / 12)."""
    if months <= 0:
        return Decimal("0")
    p12 = pd_12m(grade, on=on)
    if p12 >= ONE:
        return ONE
    survival = Decimal(str(float(ONE - p12) ** (months / 12)))
    return _clamp((ONE - survival).quantize(PLACES))
