"""The PD term structure (违约概率期限结构) estimated from the book's vintages, saved as a new draft version of
`underwriting.PDTermStructure` (read by `underwriting.pd`, which the loan book's provision uses).

The method (docs/analytics.md, "PD term structure"):

1. **The book.** Every disbursed loan: its grade at origination (the champion's score of its application), its
   disbursement date and how long it has been observed (to the data date, or to its closing if repaid). A loan
   *defaults* on the first day an installment is `default_dpd` (90) days past due, read from the installments'
   due and settled dates (restructured-away installments excluded).
2. **Monthly hazards by month on book**, pooled over all vintages: in each month on book, the loans that
   defaulted in it over the loans at risk at its start (not yet defaulted, observed for the whole month or
   defaulting in it). Months on book are pooled into bands (1-3, 4-6, 7-12, 13-24, 25-36, 37+), one hazard per
   band, so a single default does not make a spike.
3. **Smoothing towards the scorecard.** Each band's hazard is (defaults + k·h₀) / (loan-months + k): `h₀` is the
   monthly hazard of the grade's scorecard PD and `k` the prior's weight in loan-months (`pd_prior_months`,
   data). A band with no exposure takes `h₀`: the curve beyond what the book has seen follows the scorecard.
4. **Thin grades.** A grade with fewer than `pd_min_loans` loans or `pd_min_defaults` defaults is not estimated:
   its curve is the scorecard's (basis "scorecard").
5. **Order.** The cumulative curves are made non-decreasing from grade A to E, month by month.

The forward-looking factor is not baked in: `underwriting.pd` applies the one in force when it is read.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from postloan.models import Installment, Loan
from underwriting.models import GRADE_LETTERS, ModelRiskPolicy, PDTermStructure, Score
from underwriting.pd import hazards_from_cumulative, model_risk_policy, scorecard_curve, scorecard_grade_pds
from underwriting.services import pd_term_structure_create

from .selectors import _add_months

BANDS = [(1, 3), (4, 6), (7, 12), (13, 24), (25, 36), (37, None)]


@dataclass(frozen=True)
class LoanObservation:
    """One loan of the book as the estimator sees it."""

    grade: str
    disbursed_on: dt.date
    observed_until: dt.date  # the data date, or the day the loan closed
    default_on: dt.date | None = None


def months_between(start: dt.date, end: dt.date) -> int:
    """Whole months from `start` to `end` (the month on book `end` completes)."""
    if end < start:
        return 0
    months = (end.year - start.year) * 12 + end.month - start.month
    return months if _add_months(start, months) <= end else months - 1


def default_month(obs: LoanObservation) -> int | None:
    """The month on book (1-based) in which the loan defaulted."""
    if obs.default_on is None or obs.default_on > obs.observed_until:
        return None
    return months_between(obs.disbursed_on, obs.default_on - dt.timedelta(days=1)) + 1


def first_default_days(loan_ids_qs, *, dpd: int, today: dt.date) -> dict[int, dt.date]:
    """The day each loan first reached `dpd` days past due (an installment unpaid `dpd` days after its due date).
    1 query."""
    first: dict[int, dt.date] = {}
    rows = (Installment.objects.filter(loan_id__in=loan_ids_qs, superseded=False, due_date__lte=today - dt.timedelta(days=dpd))
            .filter(Q(settled_on__isnull=True) | Q(settled_on__gt=F("due_date")))
            .values_list("loan_id", "due_date", "settled_on"))
    for loan_id, due, settled in rows:
        day = due + dt.timedelta(days=dpd)
        if (settled is None or settled >= day) and (loan_id not in first or day < first[loan_id]):
            first[loan_id] = day
    return first


def loan_grade_subquery():
    """The grade the champion gave the loan's application (its latest non-shadow score)."""
    return Subquery(Score.objects.filter(application_id=OuterRef("application_id"), is_shadow=False)
                    .order_by("-created_at", "-id").values("grade")[:1])


def book_observations(*, as_of: dt.date, dpd: int = 90, loans=None) -> list[LoanObservation]:
    """The book's loans disbursed up to `as_of`, as observations. 2 queries."""
    loans = (loans if loans is not None else Loan.objects.all()).filter(disbursed_on__lte=as_of)
    rows = list(loans.annotate(grade=loan_grade_subquery()).values_list("id", "grade", "disbursed_on", "closed_on"))
    defaults = first_default_days(loans.values("id"), dpd=dpd, today=as_of)
    out = []
    for loan_id, grade, disbursed, closed in rows:
        until = min(as_of, closed) if closed else as_of
        default_on = defaults.get(loan_id)
        out.append(LoanObservation(grade=grade or GRADE_LETTERS[-1], disbursed_on=disbursed, observed_until=until,
                                   default_on=default_on if default_on and default_on <= until else None))
    return out


def _band_of(month: int) -> int:
    for i, (lo, hi) in enumerate(BANDS):
        if month >= lo and (hi is None or month <= hi):
            return i
    raise ValueError(month)


def estimate_term_structure(observations: list[LoanObservation], *, policy: ModelRiskPolicy,
                            prior_pd_12m: dict[str, float]) -> dict:
    """Curves, basis and sample per grade from the observations (the method in the module's docstring). Pure."""
    horizon = int(policy.pd_horizon_months)
    k = float(policy.pd_prior_months)
    by_grade: dict[str, list[LoanObservation]] = defaultdict(list)
    for obs in observations:
        by_grade[obs.grade if obs.grade in GRADE_LETTERS else GRADE_LETTERS[-1]].append(obs)
    curves: dict[str, list[float]] = {}
    basis: dict[str, str] = {}
    sample: dict[str, dict] = {}
    for grade in GRADE_LETTERS:
        rows = by_grade.get(grade, [])
        prior_curve = scorecard_curve(prior_pd_12m[grade], horizon)
        h0 = hazards_from_cumulative(prior_curve)[0]
        events = [0] * len(BANDS)
        exposure = [0] * len(BANDS)
        defaults = 0
        for obs in rows:
            d = default_month(obs)
            months = d if d is not None else months_between(obs.disbursed_on, obs.observed_until)
            for m in range(1, months + 1):
                exposure[_band_of(m)] += 1
            if d is not None:
                events[_band_of(d)] += 1
                defaults += 1
        thick = len(rows) >= policy.pd_min_loans and defaults >= policy.pd_min_defaults
        bands = []
        for i, (lo, hi) in enumerate(BANDS):
            h = (events[i] + k * h0) / (exposure[i] + k) if (exposure[i] + k) > 0 else h0
            bands.append({"from": lo, "to": hi, "defaults": events[i], "loan_months": exposure[i], "hazard": round(h, 8)})
        if thick:
            survival, curve = 1.0, []
            for m in range(1, horizon + 1):
                survival *= 1.0 - bands[_band_of(m)]["hazard"]
                curve.append(1.0 - survival)
            basis[grade] = PDTermStructure.BOOK
        else:
            curve = prior_curve
            basis[grade] = PDTermStructure.SCORECARD
        curves[grade] = curve
        sample[grade] = {"loans": len(rows), "defaults": defaults, "loan_months": sum(exposure),
                         "scorecard_pd_12m": round(prior_pd_12m[grade], 6), "bands": bands}
    # Worse grades never carry a lower cumulative PD than better ones.
    for i in range(1, len(GRADE_LETTERS)):
        better, worse = curves[GRADE_LETTERS[i - 1]], curves[GRADE_LETTERS[i]]
        curves[GRADE_LETTERS[i]] = [max(a, b) for a, b in zip(better, worse, strict=True)]
    return {
        "horizon": horizon,
        "curves": {g: [f"{min(max(c, 0.0), 1.0):.6f}" for c in curves[g]] for g in GRADE_LETTERS},
        "basis": basis,
        "sample": {"grades": sample, "loans": len(observations),
                   "settings": {"default_dpd": policy.default_dpd, "min_loans": policy.pd_min_loans,
                                "min_defaults": policy.pd_min_defaults, "prior_months": policy.pd_prior_months,
                                "bands": [[lo, hi] for lo, hi in BANDS]}},
    }


def pd_term_structure_estimate(*, as_of: dt.date | None = None, effective_from: dt.date | None = None, name: str = "",
                               by=None) -> PDTermStructure:
    """Estimate the term structure from the book as of `as_of` (default today) and save it as a new draft version,
    in force from `effective_from` (default the day after `as_of`) once approved."""
    as_of = as_of or timezone.localdate()
    policy = model_risk_policy(as_of)
    result = estimate_term_structure(book_observations(as_of=as_of, dpd=policy.default_dpd), policy=policy,
                                     prior_pd_12m=scorecard_grade_pds())
    return pd_term_structure_create(
        name=name or f"book {as_of:%Y-%m-%d}", effective_from=effective_from or as_of + dt.timedelta(days=1), as_of=as_of,
        curves=result["curves"], basis=result["basis"], sample=result["sample"], by=by)
