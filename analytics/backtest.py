"""Back-testing the grades' PDs against what the loans then did, and the live model's discrimination.

* **Outcome.** A loan *defaults within 12 months* when it first reaches the policy's default days past due
  (90) within 12 months of its disbursement. Only loans whose 12-month window has closed by the data date count
  (the younger ones are listed as "not yet 12 months on book"), so the observed rate is never flattered by
  loans that have not had time to default.
* **Calibration per grade and vintage** (disbursement quarter, and all vintages together): loans, defaults,
  observed default rate and the PD the loans were given (the mean PD of their champion score at origination).
  **Binomial test**: the probability of seeing fewer defaults than observed if the PD were right,
  P(X < d) for X ~ Binomial(n, PD). **Traffic light** (Basel's back-testing zones): green below
  `backtest_yellow` (95 %), yellow from it, red from `backtest_red` (99.99 %). A cell with fewer loans than
  `backtest_min_loans` is "not enough data".
* **Discrimination**: the AUC and Gini (2·AUC − 1) of the champion's points on the same outcomes, once there
  are `auc_min_defaults` defaults; and champion against challenger on the loans both scored.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import OuterRef, Subquery
from django.utils.translation import gettext_lazy

from postloan.models import Loan
from underwriting.models import GRADE_LETTERS, Score

from .pd_estimation import first_default_days
from .selectors import _add_months

GREEN, YELLOW, RED, INSUFFICIENT = "green", "yellow", "red", "insufficient"
LIGHT_LABELS = {GREEN: gettext_lazy("绿灯 green"), YELLOW: gettext_lazy("黄灯 yellow"), RED: gettext_lazy("红灯 red"),
                INSUFFICIENT: gettext_lazy("数据不足 not enough data")}
HORIZON_MONTHS = 12


@dataclass(frozen=True)
class Outcome:
    grade: str
    pd: float  # the PD the loan was given at origination
    disbursed_on: dt.date
    defaulted: bool  # within 12 months
    points: int | None = None  # the champion's points
    challenger_points: int | None = None  # the challenger's, when it scored the case in shadow


def _score_field(field: str, *, shadow: bool):
    return Subquery(Score.objects.filter(application_id=OuterRef("application_id"), is_shadow=shadow)
                    .order_by("-created_at", "-id").values(field)[:1])


def book_outcomes(*, as_of: dt.date, dpd: int = 90, loans=None) -> tuple[list[Outcome], int]:
    """The loans whose 12-month window closed by `as_of`, with their outcome; and how many younger loans there
    are. 2 queries."""
    loans = loans if loans is not None else Loan.objects.all()
    cutoff = _add_months(as_of, -HORIZON_MONTHS)
    younger = loans.filter(disbursed_on__gt=cutoff, disbursed_on__lte=as_of)
    mature = loans.filter(disbursed_on__lte=cutoff)
    rows = list(mature.annotate(grade=_score_field("grade", shadow=False), pd=_score_field("pd", shadow=False),
                                points=_score_field("points", shadow=False),
                                challenger_points=_score_field("points", shadow=True))
                .values_list("id", "grade", "pd", "points", "challenger_points", "disbursed_on"))
    defaults = first_default_days(mature.values("id"), dpd=dpd, today=as_of)
    out = []
    for loan_id, grade, pd, points, challenger_points, disbursed in rows:
        if grade is None:
            continue
        default_on = defaults.get(loan_id)
        out.append(Outcome(grade=grade, pd=float(pd or 0), disbursed_on=disbursed, points=points,
                           challenger_points=challenger_points,
                           defaulted=default_on is not None and default_on <= _add_months(disbursed, HORIZON_MONTHS)))
    return out, younger.count()


def binomial_confidence(defaults: int, n: int, pd: float) -> float:
    """P(X < defaults) for X ~ Binomial(n, pd): how sure one can be that the PD is too low."""
    from scipy.stats import binom

    if defaults <= 0:
        return 0.0
    return float(binom.cdf(defaults - 1, n, min(max(pd, 0.0), 1.0)))


def traffic_light(defaults: int, n: int, pd: float, *, policy) -> tuple[str, float | None]:
    if n < policy.backtest_min_loans:
        return INSUFFICIENT, None
    confidence = binomial_confidence(defaults, n, pd)
    if confidence >= float(policy.backtest_red):
        return RED, confidence
    if confidence >= float(policy.backtest_yellow):
        return YELLOW, confidence
    return GREEN, confidence


def _quarter(day: dt.date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def calibration(outcomes: list[Outcome], *, policy) -> list[dict]:
    """Per grade (A..E) and vintage, then per grade over all vintages: observed vs given PD, binomial
    confidence and traffic light."""
    cells: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for o in outcomes:
        cells[(o.grade, _quarter(o.disbursed_on))].append(o)
        cells[(o.grade, "")].append(o)
    rows = []
    for grade in GRADE_LETTERS:
        vintages = sorted(v for (g, v) in cells if g == grade and v)
        for vintage in [*vintages, ""]:
            group = cells.get((grade, vintage), [])
            n, d = len(group), sum(o.defaulted for o in group)
            pd = sum(o.pd for o in group) / n if n else None
            light, confidence = traffic_light(d, n, pd or 0.0, policy=policy) if n else (INSUFFICIENT, None)
            rows.append({"grade": grade, "vintage": vintage or "all", "loans": n, "defaults": d,
                         "observed_rate": round(d / n, 4) if n else None, "pd": round(pd, 4) if pd is not None else None,
                         "expected_defaults": round(pd * n, 2) if pd is not None else None,
                         "confidence": round(confidence, 5) if confidence is not None else None,
                         "light": light, "light_label": str(LIGHT_LABELS[light])})
    return rows


def auc_of(points: list[int], defaulted: list[bool]) -> float | None:
    """AUC of the points as a ranking of good over bad (ties count half); None without both outcomes."""
    goods = sorted(p for p, bad in zip(points, defaulted, strict=True) if not bad)
    bads = [p for p, bad in zip(points, defaulted, strict=True) if bad]
    if not goods or not bads:
        return None
    wins = 0.0
    for p in bads:  # a good loan scoring above a bad one is a correct ranking
        wins += len(goods) - bisect.bisect_right(goods, p) + 0.5 * (bisect.bisect_right(goods, p) - bisect.bisect_left(goods, p))
    return wins / (len(goods) * len(bads))


def discrimination(outcomes: list[Outcome], *, policy) -> dict:
    """Gini/AUC of the champion on its own outcomes, and champion vs challenger on the loans both scored."""
    scored = [o for o in outcomes if o.points is not None]
    defaults = sum(o.defaulted for o in scored)
    enough = defaults >= policy.auc_min_defaults and defaults < len(scored)
    auc = auc_of([o.points for o in scored], [o.defaulted for o in scored]) if enough else None
    both = [o for o in scored if o.challenger_points is not None]
    both_defaults = sum(o.defaulted for o in both)
    both_enough = both_defaults >= policy.auc_min_defaults and both_defaults < len(both)
    champ = auc_of([o.points for o in both], [o.defaulted for o in both]) if both_enough else None
    chall = auc_of([o.challenger_points for o in both], [o.defaulted for o in both]) if both_enough else None
    return {
        "loans": len(scored), "defaults": defaults, "min_defaults": policy.auc_min_defaults, "enough": enough,
        "auc": round(auc, 4) if auc is not None else None, "gini": round(2 * auc - 1, 4) if auc is not None else None,
        "champion_challenger": {
            "loans": len(both), "defaults": both_defaults, "enough": both_enough,
            "champion_auc": round(champ, 4) if champ is not None else None,
            "challenger_auc": round(chall, 4) if chall is not None else None,
            "winner": None if champ is None or chall is None else ("challenger" if chall > champ else "champion"),
        },
    }


def backtest(*, as_of: dt.date, policy, loans=None) -> dict:
    outcomes, younger = book_outcomes(as_of=as_of, dpd=policy.default_dpd, loans=loans)
    return {"as_of": as_of.isoformat(), "horizon_months": HORIZON_MONTHS, "mature_loans": len(outcomes),
            "younger_loans": younger, "calibration": calibration(outcomes, policy=policy),
            "discrimination": discrimination(outcomes, policy=policy),
            "levels": {"yellow": str(Decimal(policy.backtest_yellow)), "red": str(Decimal(policy.backtest_red)),
                       "min_loans": policy.backtest_min_loans}}
