"""The model-risk page's figures: the drift states of the champion (analytics.drift through the monitoring), the
back-test of the grades' PDs (analytics.backtest) and the PD term structure in force (underwriting.pd).
Definitions in docs/analytics.md ("Model risk")."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from underwriting.models import GRADE_LETTERS, PDTermStructure
from underwriting.pd import model_risk_policy, pd_curve, pd_term_structure_in_force

from . import drift
from .backtest import backtest
from .selectors import Filters, loans_in_scope, model_monitoring

PD_CURVE_MONTHS = 60
LIFETIME_POINTS = (24, 36, 60)


def pd_term_structure_view(*, on: dt.date) -> dict:
    """Per grade: the 12-month PD and the lifetime PD at 24, 36 and 60 months (forward-looking factor applied;
    decimal fractions as strings), the basis, and the curve for the chart; which version is in force, if any."""
    structure = pd_term_structure_in_force(on)
    policy = model_risk_policy(on)
    basis_labels = dict(PDTermStructure.BASES)
    grades = []
    for grade in GRADE_LETTERS:
        curve = pd_curve(grade, months=PD_CURVE_MONTHS, on=on)
        basis = (structure.basis or {}).get(grade) if structure else None
        sample = ((structure.sample or {}).get("grades", {}).get(grade, {})) if structure else {}
        grades.append({"grade": grade, "pd_12m": str(curve[11]),
                       "lifetime": [{"months": m, "pd": str(curve[m - 1])} for m in LIFETIME_POINTS],
                       "basis": basis or PDTermStructure.SCORECARD,
                       "basis_label": str(basis_labels[basis or PDTermStructure.SCORECARD]),
                       "loans": sample.get("loans"), "defaults": sample.get("defaults"),
                       "curve": [float(c) for c in curve]})
    return {
        "on": on.isoformat(),
        "version": structure.version if structure else None,
        "name": structure.name if structure else "",
        "effective_from": structure.effective_from.isoformat() if structure else None,
        "as_of": structure.as_of.isoformat() if structure else None,
        "forward_looking_factor": str(policy.forward_looking_factor),
        "fallback": structure is None,
        "months": PD_CURVE_MONTHS,
        "lifetime_points": list(LIFETIME_POINTS),
        "grades": grades,
    }


def model_risk_summary(f: Filters, *, today: dt.date | None = None) -> dict:
    today = today or timezone.localdate()
    policy = model_risk_policy(today)
    monitoring = model_monitoring(f)
    rows = [r for r in monitoring["psi"] if r["month"] != "all"]
    latest = rows[-1] if rows else None
    whole = next((r for r in monitoring["psi"] if r["month"] == "all"), None)
    return {
        "filters": f.as_query(),
        "drift": {
            "rows": monitoring["psi"],
            "latest_state": latest["state"] if latest else drift.INSUFFICIENT,
            "latest_state_label": latest["state_label"] if latest else str(drift.STATE_LABELS[drift.INSUFFICIENT]),
            "latest_month": latest["month"] if latest else None,
            "period_state": whole["state"] if whole else drift.INSUFFICIENT,
            "min_sample": policy.drift_min_sample, "watch": str(policy.drift_watch), "shift": str(policy.drift_shift),
            "champion_challenger": monitoring["champion_challenger"],
        },
        "backtest": backtest(as_of=today, policy=policy, loans=loans_in_scope(f)),
        "pd": pd_term_structure_view(on=today),
    }
