"""Scorecard engine: spec validation, scoring semantics, batch == single, expert card, PSI."""

import copy
import json
import math
from decimal import Decimal

import numpy as np
import pytest

from underwriting.expert_scorecard import expert_spec
from underwriting.scorecard import (
    DIMENSIONS,
    Reason,
    ScoreResult,
    compile_spec,
    feature_bin_codes,
    grade_batch,
    psi,
    psi_report,
    score_batch,
    score_one,
    validate_spec,
)


def small_spec():
    return {
        "format": 1,
        "name": "small",
        "base_points": 100,
        "features": [
            {
                "name": "years",
                "type": "numeric",
                "dimension": "operating",
                "label": {"zh": "经营年限", "en": "Years in business"},
                "reason_code": "SHORT_HISTORY",
                "reason": {"zh": "经营年限较短", "en": "Short operating history"},
                "bins": [{"upper": 2.0, "points": -10}, {"upper": 5.0, "points": 10}, {"upper": None, "points": 30}],
                "missing_points": -10,
            },
            {
                "name": "tax_grade",
                "type": "categorical",
                "dimension": "willingness",
                "label": {"zh": "纳税信用等级", "en": "Tax credit rating"},
                "reason_code": "LOW_TAX_GRADE",
                "reason": {"zh": "纳税信用等级较低", "en": "Low tax credit rating"},
                "bins": [{"values": ["A"], "points": 40}, {"values": ["B", "M"], "points": 25}, {"values": ["C", "D"], "points": 0}],
                "other_points": -20,
                "missing_points": -5,
            },
            {
                "name": "overdue",
                "type": "numeric",
                "dimension": "credit_standing",
                "label": {"zh": "逾期次数", "en": "Overdue count"},
                "reason_code": "OVERDUE",
                "reason": {"zh": "存在逾期", "en": "Late payments"},
                "missing_reason_code": "NO_CREDIT_REPORT",
                "missing_reason": {"zh": "未获取征信报告", "en": "No credit report available"},
                "bins": [{"upper": 1, "points": 20}, {"upper": None, "points": -20}],
                "missing_points": 0,
            },
        ],
        "grades": [
            {"grade": "A", "min_points": 180, "pd": "0.004"},
            {"grade": "B", "min_points": 150, "pd": "0.02"},
            {"grade": "C", "min_points": None, "pd": "0.2"},
        ],
    }


# --------------------------------------------------------------------------- validation


def test_valid_specs_pass():
    validate_spec(small_spec())
    validate_spec(expert_spec())
    validate_spec(json.loads(json.dumps(expert_spec())))  # JSON round trip


def _mut(path_fn):
    s = small_spec()
    path_fn(s)
    return s


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: s.update(format=2), "format"),
        (lambda s: s.update(name=""), "name"),
        (lambda s: s.update(base_points=1.5), "base_points"),
        (lambda s: s.update(features=[]), "features"),
        (lambda s: s["features"][1].update(name="years"), "duplicate"),
        (lambda s: s["features"][0].update(type="ordinal"), "type"),
        (lambda s: s["features"][0].update(dimension="size"), "dimension"),
        (lambda s: s["features"][0]["label"].pop("en"), "label.en"),
        (lambda s: s["features"][0].update(reason_code="short history"), "reason_code"),
        (lambda s: s["features"][0]["reason"].update(zh=""), "reason.zh"),
        (lambda s: s["features"][0].pop("missing_points"), "missing_points"),
        (lambda s: s["features"][0]["bins"][0].update(points=1.5), "points"),
        (lambda s: s["features"][0]["bins"][1].update(upper=1.0), "greater than the previous"),
        (lambda s: s["features"][0]["bins"][2].update(upper=9.0), "last bin"),
        (lambda s: s["features"][0]["bins"][0].update(upper=None), "not the last bin"),
        (lambda s: s["features"][0]["bins"][0].update(upper=float("nan")), "finite"),
        (lambda s: s["features"][1].pop("other_points"), "other_points"),
        (lambda s: s["features"][1]["bins"][1]["values"].append("A"), "more than one bin"),
        (lambda s: s["features"][1]["bins"][0].update(values=[]), "values"),
        (lambda s: s["grades"][1].update(min_points=190), "lower than the previous"),
        (lambda s: s["grades"][2].update(min_points=100), "last grade"),
        (lambda s: s["grades"][1].update(min_points=None), "min_points"),
        (lambda s: s["grades"][1].update(grade="A"), "duplicate grade"),
        (lambda s: s["grades"][1].update(pd="abc"), "pd"),
        (lambda s: s["grades"][1].update(pd="1.5"), "within"),
        (lambda s: s["grades"][1].update(pd="0.001"), "better grade"),
    ],
)
def test_invalid_specs_name_the_problem(mutate, message):
    with pytest.raises(ValueError, match=message):
        validate_spec(_mut(mutate))


def test_non_dict_spec():
    with pytest.raises(ValueError):
        validate_spec([1, 2])


# --------------------------------------------------------------------------- semantics


@pytest.mark.parametrize(
    "value, points",
    [
        (-1e300, -10), (0, -10), (1.999999, -10), (2, 10), (2.0, 10), (Decimal("2"), 10), ("2.0", 10),
        (4.999, 10), (5, 30), (5.0000001, 30), (1e12, 30), (math.inf, 30), (-math.inf, -10),
        (np.float32(2.0), 10), (np.int64(7), 30), (True, -10),
    ],
)  # fmt: skip
def test_numeric_bin_boundaries_value_below_upper(value, points):
    r = score_one(small_spec(), {"years": value, "tax_grade": "A", "overdue": 0})
    assert r.contributions["years"] == points
    pts = score_batch(small_spec(), {"years": np.array([value], dtype=object), "tax_grade": np.array(["A"]),
                                     "overdue": np.array([0.0])})  # fmt: skip
    assert pts[0] == r.points


@pytest.mark.parametrize("missing", [None, float("nan"), np.nan, np.float32("nan"), "", "  "])
def test_numeric_missing(missing):
    r = score_one(small_spec(), {"years": missing, "tax_grade": "A", "overdue": 0})
    assert r.contributions["years"] == -10  # missing_points


def test_numeric_garbage_raises():
    with pytest.raises(ValueError):
        score_one(small_spec(), {"years": "ten"})


def test_categorical_match_other_missing():
    s = small_spec()
    c = {v: score_one(s, {"tax_grade": v}).contributions["tax_grade"] for v in ["A", "B", "M", "C", "D"]}
    assert c == {"A": 40, "B": 25, "M": 25, "C": 0, "D": 0}
    assert score_one(s, {"tax_grade": "Z"}).contributions["tax_grade"] == -20  # other
    assert score_one(s, {"tax_grade": "a"}).contributions["tax_grade"] == -20  # exact match only
    for missing in (None, float("nan"), ""):
        assert score_one(s, {"tax_grade": missing}).contributions["tax_grade"] == -5
    assert score_one(s, {}).contributions["tax_grade"] == -5  # absent key = missing


def test_pandas_na_is_missing():
    pd = pytest.importorskip("pandas")
    r = score_one(small_spec(), {"years": pd.NA, "tax_grade": pd.NA})
    assert r.contributions == {"years": -10, "tax_grade": -5, "overdue": 0}


def test_result_totals_dimensions_grade():
    s = small_spec()
    r = score_one(s, {"years": 10, "tax_grade": "A", "overdue": 0})
    assert isinstance(r, ScoreResult)
    assert r.points == 100 + 30 + 40 + 20 == 190
    assert r.grade == "A" and r.pd == Decimal("0.004")
    assert r.dimensions == {"operating": 30, "willingness": 40, "credit_standing": 20}
    assert set(r.dimensions) == set(DIMENSIONS)
    assert r.reasons == []
    assert score_one(s, {"years": 10, "tax_grade": "B", "overdue": 0}).grade == "B"  # 175
    assert score_one(s, {"years": 3, "tax_grade": "C", "overdue": 0}).grade == "C"  # 130
    # boundary: exactly min_points gets the grade
    assert score_one(s, {"years": 10, "tax_grade": "A", "overdue": 0.5}).points == 190
    edge = copy.deepcopy(s)
    edge["grades"][0]["min_points"] = 190
    assert score_one(edge, {"years": 10, "tax_grade": "A", "overdue": 0}).grade == "A"
    edge = copy.deepcopy(edge)  # compiled specs are cached by identity: mutate a copy ...
    edge["grades"][0]["min_points"] = 191
    assert score_one(edge, {"years": 10, "tax_grade": "A", "overdue": 0}).grade == "B"
    edge["grades"][0]["min_points"] = 190  # ... or refresh the cache after mutating
    compile_spec(edge, refresh=True)
    assert score_one(edge, {"years": 10, "tax_grade": "A", "overdue": 0}).grade == "A"
    json.dumps(r.to_dict())


def test_reasons_order_ties_and_top_n():
    s = small_spec()
    # years lost 40 (missing: -10 vs 30), tax_grade other lost 60, overdue lost 40 -> tie broken by order
    r = score_one(s, {"years": None, "tax_grade": "Z", "overdue": 3})
    assert [(x.feature, x.points_lost) for x in r.reasons] == [("tax_grade", 60), ("years", 40), ("overdue", 40)]
    assert r.reasons[0] == Reason("LOW_TAX_GRADE", "tax_grade", 60, "纳税信用等级较低", "Low tax credit rating")
    # missing value: generic missing reason built from the label
    assert r.reasons[1].code == "SHORT_HISTORY_MISSING"
    assert r.reasons[1].text_zh == "缺少经营年限信息"
    assert r.reasons[1].text_en == "No information on years in business"
    assert [x.feature for x in score_one(s, {"years": None, "tax_grade": "Z", "overdue": 3}, top_n=2).reasons] == [
        "tax_grade", "years"]  # fmt: skip
    assert score_one(s, {"years": None, "tax_grade": "Z", "overdue": 3}, top_n=0).reasons == []
    # explicit missing reason, and zero adverse contribution is never a reason
    r = score_one(s, {"years": 10, "tax_grade": "A"})
    assert [(x.code, x.points_lost, x.text_en) for x in r.reasons] == [
        ("NO_CREDIT_REPORT", 20, "No credit report available")]  # fmt: skip


def test_adverse_uses_best_attainable_points():
    s = small_spec()
    s["features"][2]["missing_points"] = 50  # missing better than every bin
    r = score_one(s, {"years": 10, "tax_grade": "A", "overdue": 0})
    assert [(x.feature, x.points_lost) for x in r.reasons] == [("overdue", 30)]


def test_compiled_and_cached_spec_agree():
    s = expert_spec()
    row = {"years_in_business": 3, "tax_grade": "B", "overdue_count_24m": 1}
    assert score_one(compile_spec(s), row) == score_one(s, row) == score_one(json.loads(json.dumps(s)), row)
    assert compile_spec(s) is compile_spec(s)
    # a spec re-read from storage is a new dict each time: a stable key reuses the compiled form
    c1 = compile_spec(json.loads(json.dumps(s)), key=("test-scorecard", 1))
    assert compile_spec(json.loads(json.dumps(s)), key=("test-scorecard", 1)) is c1
    assert score_one(c1, row) == score_one(s, row)


def test_score_batch_absent_column():
    s = small_spec()
    cols = {"years": np.array([1.0, 7.0]), "tax_grade": np.array(["A", "Q"])}
    with pytest.raises(KeyError):
        score_batch(s, cols)
    got = score_batch(s, cols, absent="missing")
    assert got.tolist() == [score_one(s, {"years": 1.0, "tax_grade": "A"}).points,
                            score_one(s, {"years": 7.0, "tax_grade": "Q"}).points]  # fmt: skip
    with pytest.raises(ValueError):
        score_batch(s, {"years": np.zeros(2), "tax_grade": np.array(["A"]), "overdue": np.zeros(2)})


# --------------------------------------------------------------------------- batch == single


def _random_columns(spec, n, rng):
    cols = {}
    for f in spec["features"]:
        if f["type"] == "numeric":
            uppers = [b["upper"] for b in f["bins"] if b["upper"] is not None]
            lo, hi = min(uppers), max(uppers)
            span = (hi - lo) or 1.0
            x = rng.uniform(lo - span, hi + span, n)
            exact = rng.random(n) < 0.25  # hit the boundaries exactly
            x[exact] = rng.choice(uppers, exact.sum())
            x[rng.random(n) < 0.1] = np.nan
            cols[f["name"]] = x
        else:
            cats = [v for b in f["bins"] for v in b["values"]] + ["ZZ", "", None]
            cols[f["name"]] = np.asarray(rng.choice(np.array(cats, dtype=object), n), dtype=object)
    return cols


def _rows(cols, n):
    rows = []
    for i in range(n):
        row = {}
        for k, v in cols.items():
            x = v[i]
            row[k] = x.item() if isinstance(x, np.generic) else x
        rows.append(row)
    return rows


@pytest.mark.parametrize("which", ["expert", "small"])
def test_score_one_equals_score_batch_10000_rows(which):
    spec = expert_spec() if which == "expert" else small_spec()
    rng = np.random.default_rng(42)
    n = 10_000
    cols = _random_columns(spec, n, rng)
    batch = score_batch(spec, cols)
    assert batch.dtype.kind == "i" and batch.shape == (n,)
    single = [score_one(spec, row) for row in _rows(cols, n)]
    assert batch.tolist() == [r.points for r in single]
    assert grade_batch(spec, batch).tolist() == [r.grade for r in single]
    # missing values really occurred
    assert any(r.reasons and r.reasons[0].code.endswith("_MISSING") for r in single) or which == "small"


def test_batch_input_forms_agree():
    pd = pytest.importorskip("pandas")
    spec = expert_spec()
    rng = np.random.default_rng(7)
    n = 3000
    cols = _random_columns(spec, n, rng)
    ref = score_batch(spec, cols)
    tg = cols["tax_grade"]
    # numeric as object arrays with None, categorical as str arrays ("" = missing)
    obj = {k: (np.where(np.isnan(v), None, v).astype(object) if v.dtype.kind == "f" else v) for k, v in cols.items()}
    assert (score_batch(spec, obj) == ref).all()
    as_str = dict(cols, tax_grade=np.array(["" if v is None else v for v in tg], dtype=str))
    assert (score_batch(spec, as_str) == ref).all()
    # pandas: DataFrame with a category column, Categorical, and (codes, categories)
    df = pd.DataFrame(cols)
    df["tax_grade"] = df["tax_grade"].astype("category")
    assert (score_batch(spec, df) == ref).all()
    cat = pd.Categorical(tg)
    assert (score_batch(spec, dict(cols, tax_grade=cat)) == ref).all()
    assert (score_batch(spec, dict(cols, tax_grade=(cat.codes, list(cat.categories)))) == ref).all()
    # integer numeric columns
    ints = dict(cols, headcount=np.arange(n) % 80)
    assert score_batch(spec, ints).tolist() == [
        score_one(spec, row).points for row in _rows(ints, n)]  # fmt: skip


def test_feature_bin_codes_labels():
    codes, labels = feature_bin_codes(small_spec(), "years", np.array([1.0, 2.0, 9.0, np.nan]))
    assert codes.tolist() == [0, 1, 2, 3]
    assert labels[-1] == "missing" and len(labels) == 4
    codes, labels = feature_bin_codes(small_spec(), "tax_grade", np.array(["A", "M", "X", None], dtype=object))
    assert codes.tolist() == [0, 1, 3, 4] and labels[-2:] == ["other", "missing"]


# --------------------------------------------------------------------------- expert card

TYPICAL = dict(
    years_in_business=6, revenue_12m=4_000_000, revenue_growth=0.05, tax_burden=0.015, months_filed=24,
    settlement_inflow_trend=0.0, headcount=15, headcount_trend=0.0, deposit_to_revenue=0.06, leverage=0.4,
    overdue_count_24m=0, max_dpd_24m=0, inquiries_3m=2, enforcement_cases=0, litigation_cases_12m=0, tax_grade="B",
)  # fmt: skip
STRONG = dict(
    TYPICAL, years_in_business=12, revenue_12m=25_000_000, revenue_growth=0.25, tax_burden=0.03,
    settlement_inflow_trend=0.12, headcount=60, headcount_trend=0.05, deposit_to_revenue=0.25, leverage=0.05,
    inquiries_3m=0, tax_grade="A",
)  # fmt: skip


def test_expert_spec_shape():
    s = expert_spec()
    names = {f["name"] for f in s["features"]}
    assert names == {
        "years_in_business", "revenue_12m", "revenue_growth", "tax_burden", "months_filed",
        "settlement_inflow_trend", "headcount", "headcount_trend", "leverage", "overdue_count_24m",
        "max_dpd_24m", "inquiries_3m", "enforcement_cases", "litigation_cases_12m", "deposit_to_revenue", "tax_grade",
    }  # fmt: skip
    tg = next(f for f in s["features"] if f["name"] == "tax_grade")
    assert tg["type"] == "categorical"
    assert sorted(v for b in tg["bins"] for v in b["values"]) == ["A", "B", "C", "D", "M"]
    assert {f["dimension"] for f in s["features"]} == set(DIMENSIONS)
    assert [g["grade"] for g in s["grades"]] == ["A", "B", "C", "D", "E"]
    pds = [Decimal(g["pd"]) for g in s["grades"]]
    assert pds == sorted(pds) and Decimal("0.003") <= pds[0] <= Decimal("0.008") and pds[-1] >= Decimal("0.2")
    codes = [f["reason_code"] for f in s["features"]]
    assert len(set(codes)) == len(codes)
    assert expert_spec() is not expert_spec()  # fresh copies


def test_expert_grades_for_typical_profiles():
    s = expert_spec()
    assert score_one(s, STRONG).grade == "A"
    typical = score_one(s, TYPICAL)
    assert typical.grade == "B"
    # overdue history, litigation and enforcement push a firm into D/E
    assert score_one(s, dict(TYPICAL, overdue_count_24m=2, max_dpd_24m=20)).grade in ("D", "E")
    overdue_lit = score_one(s, dict(TYPICAL, overdue_count_24m=3, max_dpd_24m=45, litigation_cases_12m=2))
    assert overdue_lit.grade in ("D", "E")
    assert [r.code for r in overdue_lit.reasons[:2]] == ["OVERDUE_HISTORY", "SEVERE_DELINQUENCY"]
    assert score_one(s, dict(TYPICAL, enforcement_cases=1, litigation_cases_12m=1)).grade in ("D", "E")
    assert score_one(s, dict(TYPICAL, overdue_count_24m=6, max_dpd_24m=120, tax_grade="D")).grade == "E"
    # an application with no data at all is not approvable
    empty = score_one(s, {})
    assert empty.grade == "E" and all(r.code.endswith("_MISSING") for r in empty.reasons)
    # every reason has readable texts in both languages
    for r in overdue_lit.reasons:
        assert r.text_zh and r.text_en and r.points_lost > 0


def test_expert_monotone_in_risk_drivers():
    s = expert_spec()
    for feat, values in {
        "overdue_count_24m": [0, 1, 2, 3, 5],
        "max_dpd_24m": [0, 10, 45, 75, 120],
        "enforcement_cases": [0, 1, 3],
        "litigation_cases_12m": [0, 1, 2, 5],
        "leverage": [0.0, 0.2, 0.4, 0.6, 1.0, 2.0],
        "inquiries_3m": [0, 3, 5, 9],
    }.items():
        pts = [score_one(s, dict(TYPICAL, **{feat: v})).points for v in values]
        assert pts == sorted(pts, reverse=True), feat
    for feat, values in {"years_in_business": [0.5, 1.5, 2.5, 4, 6, 10], "revenue_12m": [1e5, 8e5, 2e6, 5e6, 2e7, 5e7]}.items():
        pts = [score_one(s, dict(TYPICAL, **{feat: v})).points for v in values]
        assert pts == sorted(pts), feat


# --------------------------------------------------------------------------- PSI


def test_psi_identical_and_shifted():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, 50_000)
    b = rng.normal(0, 1, 50_000)
    assert psi(a, a) == pytest.approx(0.0, abs=1e-12)
    assert psi(a, b) < 0.01
    assert psi(a, rng.normal(1.0, 1, 50_000)) > 0.25
    assert 0.0 < psi(a, rng.normal(0.1, 1, 50_000)) < 0.1
    # explicit edges and NaN bin
    assert psi(a, a, bins=[-1.0, 0.0, 1.0]) == pytest.approx(0.0, abs=1e-12)
    b_nan = b.copy()
    b_nan[:10_000] = np.nan
    assert psi(a, b_nan, bins=[-1.0, 0.0, 1.0]) > 0.25
    # categorical arrays
    x = np.array(["A"] * 50 + ["B"] * 50, dtype=object)
    y = np.array(["A"] * 90 + ["B"] * 10, dtype=object)
    assert psi(x, x) == pytest.approx(0.0, abs=1e-12)
    assert psi(x, y) > 0.25
    with pytest.raises(ValueError):
        psi(a, b, bins=[1.0, 0.0])


def test_psi_report_expert():
    spec = expert_spec()
    rng = np.random.default_rng(3)
    dev = _random_columns(spec, 20_000, rng)
    same = _random_columns(spec, 20_000, rng)
    rep = psi_report(spec, dev, same)
    assert set(rep["features"]) == {f["name"] for f in spec["features"]}
    assert max(rep["features"].values()) < 0.01 and rep["score"] < 0.01 and rep["grade"] < 0.01
    assert set(rep["flags"].values()) == {"stable"}
    shifted = dict(same, overdue_count_24m=same["overdue_count_24m"] + 2.0, tax_grade=np.array(["D"] * 20_000, dtype=object))
    rep = psi_report(spec, dev, shifted)
    assert rep["features"]["overdue_count_24m"] > 0.25 and rep["features"]["tax_grade"] > 0.25
    assert rep["features"]["leverage"] < 0.01
    assert rep["score"] > 0.25 and rep["flags"]["score"] == "shift"
    assert rep["n_dev"] == rep["n_recent"] == 20_000
    json.dumps(rep)
