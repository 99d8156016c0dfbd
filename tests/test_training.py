"""Scorecard training on the German credit data (5-fold CV, binning inside each fold)."""

import json
from decimal import Decimal

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("optbinning")
pytest.importorskip("sklearn")

from underwriting.scorecard import grade_batch, score_batch, score_one, validate_spec  # noqa: E402
from underwriting.training import auc_ks, train_scorecard  # noqa: E402


@pytest.fixture(scope="module")
def german(german_credit_csv):
    return pd.read_csv(german_credit_csv)


@pytest.fixture(scope="module")
def trained(german):
    return train_scorecard(german, target="creditability", bad_value="bad", folds=5, seed=0, name="german-credit")


def test_cv_metrics_in_expected_range(trained):
    m = trained.metrics
    # a realistic WoE/LR scorecard on this data; >= 0.83 would suggest leakage
    assert 0.77 <= m["auc"] < 0.83
    assert len(m["folds"]) == 5
    assert m["n"] == 1000 and m["bad_rate"] == pytest.approx(0.3)
    for f in m["folds"]:
        assert set(f) >= {"auc", "ks", "gini"}
        assert f["gini"] == pytest.approx(2 * f["auc"] - 1)
        assert 0.6 < f["auc"] < 0.9 and 0.2 < f["ks"] < 0.8
        assert f["n_train"] == 800 and f["n_test"] == 200
    assert m["auc"] == pytest.approx(np.mean([f["auc"] for f in m["folds"]]))
    assert m["gini"] == pytest.approx(2 * m["auc"] - 1)
    assert 0.35 < m["ks"] < 0.65
    # the integer points reproduce the logistic regression's ranking
    assert abs(m["auc"] - m["auc_lr"]) < 0.01
    assert abs(m["final"]["auc_in_sample"] - m["final"]["auc_lr_in_sample"]) < 0.005
    json.dumps(m)


def test_spec_is_valid_and_usable(trained, german):
    spec = trained.spec
    validate_spec(spec)
    spec = json.loads(json.dumps(spec))  # storable as JSON
    assert spec["name"] == "german-credit"
    names = [f["name"] for f in spec["features"]]
    assert "status_of_existing_checking_account" in names and "duration_in_month" in names
    assert set(names) == set(trained.metrics["final"]["features"])
    assert set(trained.dropped).isdisjoint(names)
    for f in spec["features"]:
        assert f["reason_code"].startswith("F_")
        assert all(isinstance(b["points"], int) for b in f["bins"])
        assert f["type"] == ("numeric" if pd.api.types.is_numeric_dtype(german[f["name"]]) else "categorical")
    # grades: A-E, cut on quantiles, PD = observed bad rate, monotone
    assert [g["grade"] for g in spec["grades"]] == ["A", "B", "C", "D", "E"]
    pds = [Decimal(g["pd"]) for g in spec["grades"]]
    assert pds == sorted(pds) and pds[0] < Decimal("0.1") and pds[-1] > Decimal("0.5")
    cols = {c: german[c].to_numpy() for c in names}
    pts = score_batch(spec, cols)
    grades = grade_batch(spec, pts)
    y = (german["creditability"] == "bad").to_numpy()
    share = {g: float(np.mean(grades == g)) for g in "ABCDE"}
    assert 0.10 <= share["A"] <= 0.22 and 0.05 <= share["E"] <= 0.15
    rate_a, rate_e = y[grades == "A"].mean(), y[grades == "E"].mean()
    assert rate_a < 0.1 < 0.5 < rate_e
    # single scoring of raw rows agrees with the batch
    for i in range(0, 1000, 37):
        row = german.iloc[i].to_dict()
        r = score_one(spec, row)
        assert r.points == pts[i] and r.grade == grades[i]
    auc, _ = auc_ks(y, -pts)
    assert auc == pytest.approx(trained.metrics["final"]["auc_in_sample"])


def test_string_bad_value_on_int_target(german):
    df = german.assign(target=(german["creditability"] == "bad").astype(int)).drop(columns="creditability")
    small = df.iloc[:400]
    r = train_scorecard(small, target="target", bad_value="1", folds=2, seed=1, name="t",
                        features=["status_of_existing_checking_account", "duration_in_month", "credit_history"])  # fmt: skip
    assert r.metrics["bad_rate"] == pytest.approx(small["target"].mean())
    assert 0.6 < r.metrics["auc"] < 0.85


def test_shuffled_target_has_no_signal(german):
    """Leakage guard: with a permuted target the out-of-fold AUC must be near 0.5."""
    rng = np.random.default_rng(0)
    df = german.assign(creditability=rng.permutation(german["creditability"].to_numpy()))
    r = train_scorecard(df, target="creditability", bad_value="bad", folds=5, seed=0, name="noise", min_iv=0.0)
    assert r.metrics["auc"] < 0.6


def test_missing_values_are_handled(german):
    df = german.copy()
    rng = np.random.default_rng(5)
    for c in ("duration_in_month", "credit_amount", "savings_account_and_bonds", "status_of_existing_checking_account"):
        df.loc[rng.random(len(df)) < 0.15, c] = np.nan
    r = train_scorecard(df, target="creditability", bad_value="bad", folds=3, seed=0, name="with-missing")
    assert 0.72 < r.metrics["auc"] < 0.83
    spec = r.spec
    pts = score_batch(spec, {f["name"]: df[f["name"]].to_numpy() for f in spec["features"]})
    for i in range(0, 1000, 53):
        assert score_one(spec, df.iloc[i].to_dict()).points == pts[i]


def test_bad_inputs(german):
    with pytest.raises(ValueError, match="target"):
        train_scorecard(german, target="nope", bad_value="bad", name="x")
    with pytest.raises(ValueError, match="both"):
        train_scorecard(german, target="creditability", bad_value="ugly", name="x")
    with pytest.raises(ValueError, match="folds"):
        train_scorecard(german, target="creditability", bad_value="bad", folds=1, name="x")
