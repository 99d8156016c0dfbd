"""Drift that can be trusted (analytics.drift): at the sizes the monitoring page uses (a development sample of
500, recent windows of at least the policy's 150 rows) a planted shift is found and an unshifted sample is not;
below the minimum the answer is "not enough data", where the raw PSI cried "shift"."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from analytics.drift import (
    INSUFFICIENT,
    SHIFT,
    STABLE,
    WATCH,
    psi_smoothed,
    stability,
    trailing_windows,
    worst_state,
)

N_DEV, N_RECENT, MIN_SAMPLE = 500, 150, 150
POLICY = {"min_sample": MIN_SAMPLE, "watch": 0.10, "shift": 0.25, "resamples": 200}


def _counts(values, edges):
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)


def _samples(seed, *, shift_sd=0.0, n_recent=N_RECENT):
    rng = np.random.default_rng(seed)
    dev = rng.normal(size=N_DEV)
    edges = np.quantile(dev, np.linspace(0, 1, 11)[1:-1])  # the score's deciles of the development sample
    recent = rng.normal(loc=shift_sd, size=n_recent)
    return _counts(dev, edges), _counts(recent, edges)


def test_an_unshifted_sample_is_not_called_a_shift():
    states = [stability(*_samples(seed), seed=seed, **POLICY).state for seed in range(60)]
    assert SHIFT not in states
    assert states.count(STABLE) >= 54, states  # about 5 % may be watched by chance, never more than 10 %


def test_a_planted_shift_is_found():
    strong = [stability(*_samples(seed, shift_sd=1.0), seed=seed, **POLICY) for seed in range(60)]
    assert all(s.state == SHIFT for s in strong), [s.state for s in strong if s.state != SHIFT]
    assert all(s.band_low > 0.25 for s in strong[:10])
    moderate = [stability(*_samples(seed, shift_sd=0.6), seed=seed, **POLICY).state for seed in range(60)]
    assert all(state in (WATCH, SHIFT) for state in moderate)


def test_a_small_sample_is_not_enough_data_where_the_raw_psi_said_shift():
    from underwriting.scorecard import _psi_from_counts

    raw, states = [], []
    for seed in range(30):
        dev, recent = _samples(seed, n_recent=12)  # a month of the demo: 4 to 18 applications
        raw.append(_psi_from_counts(dev, recent))
        states.append(stability(dev, recent, seed=seed, **POLICY).state)
    assert np.mean(np.asarray(raw) >= 0.25) > 0.5  # the old flag: "shift" most months
    assert set(states) == {INSUFFICIENT}


def test_smoothing_keeps_an_empty_bin_finite_and_modest():
    dev = np.array([50, 50, 50, 50, 50, 50, 50, 50, 50, 50])
    recent = np.array([20, 20, 20, 20, 20, 20, 20, 20, 20, 0])
    from underwriting.scorecard import _psi_from_counts

    few = np.array([3, 3, 3, 3, 3, 3, 3, 3, 3, 0])  # one empty bin in a small sample
    assert np.isfinite(psi_smoothed(dev, few)) and psi_smoothed(dev, few) < _psi_from_counts(dev, few) / 2
    assert psi_smoothed(dev, recent) < _psi_from_counts(dev, recent)
    assert psi_smoothed(dev, dev) == pytest.approx(0.0)
    both_empty = stability(np.array([100, 0, 100]), np.array([80, 0, 90]), **POLICY)
    assert both_empty.n == 170 and both_empty.state == STABLE


def test_windows_pool_months_until_the_minimum():
    sizes = {"2026-01": 60, "2026-02": 50, "2026-03": 70, "2026-04": 200, "2026-05": 10}
    windows = dict(trailing_windows(list(sizes), sizes, min_sample=150))
    assert windows["2026-01"] == ["2026-01"]  # never enough: everything so far, flagged as not enough data
    assert windows["2026-03"] == ["2026-01", "2026-02", "2026-03"]
    assert windows["2026-04"] == ["2026-04"]
    assert windows["2026-05"] == ["2026-04", "2026-05"]
    assert worst_state([STABLE, WATCH, INSUFFICIENT]) == WATCH and worst_state([]) == INSUFFICIENT


def test_the_result_is_reproducible_and_readable():
    a = stability(*_samples(3, shift_sd=0.5), seed=1, **POLICY).to_dict()
    b = stability(*_samples(3, shift_sd=0.5), seed=1, **POLICY).to_dict()
    assert a == b and set(a) >= {"n", "n_dev", "state", "psi", "excess", "band_low", "band_high", "noise"}


# ---------------------------------------------------------------- the monitoring rows (analytics.selectors.drift_rows)
def _firms(rng, n, *, distressed=0.0):
    """Rows of the expert card's features; `distressed` plants a shift: that share of firms with overdue history."""
    rows = []
    for _i in range(n):
        bad = rng.random() < distressed
        rows.append({"years_in_business": float(rng.uniform(0, 15)), "revenue_12m": float(rng.lognormal(15, 1)),
                     "revenue_growth": float(rng.normal(0.05, 0.2)), "tax_burden": float(rng.uniform(0, 0.05)),
                     "settlement_inflow_trend": float(rng.normal(0, 0.2)), "headcount": float(rng.integers(1, 80)),
                     "headcount_trend": float(rng.normal(0, 0.15)), "deposit_to_revenue": float(rng.uniform(0, 0.3)),
                     "leverage": float(rng.uniform(0, 1.5)), "overdue_count_24m": float(rng.integers(2, 6) if bad else 0),
                     "max_dpd_24m": float(rng.integers(30, 120) if bad else 0), "inquiries_3m": float(rng.integers(0, 5)),
                     "months_filed": float(rng.integers(6, 60)), "enforcement_cases": 0.0, "litigation_cases_12m": 0.0,
                     "tax_grade": str(rng.choice(["A", "B", "B", "M", "C"]))})
    return rows


@pytest.mark.django_db
def test_monitoring_pools_months_and_finds_the_planted_shift_only_where_it_is():
    from analytics.selectors import drift_rows
    from underwriting.expert_scorecard import expert_spec
    from underwriting.models import ModelRiskPolicy, ScorecardModel
    from underwriting.scorecard import development_summary

    rng = np.random.default_rng(5)
    spec = expert_spec()
    dev_rows = _firms(rng, 500)
    summary = development_summary(spec, {k: [r[k] for r in dev_rows] for k in dev_rows[0]})
    model = ScorecardModel.objects.create(name="expert", spec=spec, development=summary, is_active=True)
    months = [f"2026-{m:02d}" for m in range(1, 13)]
    # 40 cases a month; from September on 60 % of the applicants have an overdue history (planted shift)
    features_by = {(m, model.version): _firms(rng, 40, distressed=0.6 if m >= "2026-09" else 0.0) for m in months}
    rows = drift_rows(features_by, {model.version: model}, policy=ModelRiskPolicy(effective_from=dt.date(2026, 1, 1)))
    by_month = {r["month"]: r for r in rows}
    assert by_month["2026-01"]["state"] == INSUFFICIENT and by_month["2026-01"]["n"] == 40
    assert by_month["2026-04"]["window"] == "2026-01 – 2026-04" and by_month["2026-04"]["n"] == 160
    for m in ("2026-04", "2026-05", "2026-06", "2026-07", "2026-08"):
        assert by_month[m]["state"] in (STABLE, WATCH), (m, by_month[m])
        assert by_month[m]["state_label"] and "_" not in by_month[m]["state_label"]
    assert by_month["2026-12"]["state"] == SHIFT  # September to December: all shifted
    moved = [x["name"] for x in by_month["2026-12"]["features"]]
    assert {"overdue_count_24m", "max_dpd_24m"} <= set(moved[:3])
    assert "逾期" in by_month["2026-12"]["features"][0]["label"]  # shown by its label, not its code
    assert by_month["all"]["n"] == 480
