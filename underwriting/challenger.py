"""A stronger scorecard that stays a points table: the WoE/logistic scorecard (`training.py`, monotonic optimal
binning) blended with an explainable boosting machine (`interpret`'s EBM, main effects only), both on the raw
features plus a few named pairwise interaction features (a ratio or a product of two columns).

Both models are additive in the log-odds: the scorecard gives each feature's bin a number of points, the EBM
gives each feature's bin a log-odds contribution (its "shape function"), which the PDO scaling turns into points
the same way. Their weighted mean is therefore additive too: for each feature the two binnings are merged (the
union of the numeric cut points; for categories, the categories that get the same points form a bin) and each
merged bin scores `w·points_scorecard + (1 − w)·points_ebm`, rounded to an integer. The result is an ordinary
format-1 spec (`scorecard.py`): the same engine scores it, and the same reason codes explain every point.

An interaction feature is a new column computed from two others before the fit, named in the spec's
`interactions` list (`{"name", "a", "op", "b"}`, op `/` or `*`); `add_interactions` computes them for scoring.

Cross-validation refits everything (binning, LR, EBM, blend) on each training part and scores the held-out part
with the integer-points spec, as `train_scorecard` does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .scorecard import score_batch, validate_spec
from .training import (
    _DUMMY_GRADES,
    TrainingResult,
    _column,
    _fit,
    _grades,
    _is_numeric,
    _metadata,
    auc_ks,
    bad_rows,
    pdo_scaling,
)

__all__ = ["train_challenger", "add_interactions", "ebm_points_spec", "blend_specs", "parse_interaction"]

OPS = {"/": "per", "*": "times"}


def parse_interaction(text: str) -> dict[str, str]:
    """"credit_amount/duration_in_month" → {"name": "credit_amount_per_duration_in_month", "a", "op", "b"}."""
    for op, word in OPS.items():
        if op in text:
            a, b = (p.strip() for p in text.split(op, 1))
            if a and b:
                return {"name": f"{a}_{word}_{b}", "a": a, "op": op, "b": b}
    raise ValueError(f"an interaction is 'a/b' or 'a*b', got {text!r}")


def add_interactions(df: Any, interactions: Sequence[Mapping[str, str]]) -> Any:
    """A copy of the DataFrame with each interaction's column added (a ratio with a zero or missing
    denominator is missing)."""
    import pandas as pd

    out = df.copy()
    for it in interactions:
        a = pd.to_numeric(out[it["a"]], errors="coerce").astype(float)
        b = pd.to_numeric(out[it["b"]], errors="coerce").astype(float)
        out[it["name"]] = a / b.where(b != 0) if it["op"] == "/" else a * b
    return out


# --------------------------------------------------------------------------- EBM → points


def ebm_points_spec(ebm: Any, names: Sequence[str], numeric: Mapping[str, bool], meta: Mapping[str, Mapping[str, Any]],
                    *, factor: float, offset: float, name: str) -> dict[str, Any]:
    """A format-1 spec (placeholder grades) whose points are the EBM's main-effect log-odds scaled by PDO, not
    rounded (the blend rounds)."""
    scores_of = {ebm.term_features_[i][0]: i for i in range(len(ebm.term_features_)) if len(ebm.term_features_[i]) == 1}
    intercept = float(np.ravel(ebm.intercept_)[0])
    features = []
    for j, fname in enumerate(names):
        if j not in scores_of:
            continue
        term = scores_of[j]
        scores = np.asarray(ebm.term_scores_[term], dtype=float)
        bins = ebm.bins_[j][0]
        pts = [-factor * s for s in scores]
        m = meta[fname]
        feat: dict[str, Any] = {"name": fname, "dimension": m["dimension"], "label": dict(m["label"]),
                                "reason_code": m["reason_code"], "reason": dict(m["reason"]), "missing_points": pts[0]}
        if numeric[fname]:
            cuts = [float(c) for c in np.asarray(bins, dtype=float)]
            feat["type"] = "numeric"
            feat["bins"] = [{"upper": u, "points": pts[k + 1]} for k, u in enumerate([*cuts, None])]
        else:
            groups: dict[int, list[str]] = {}
            for cat, idx in bins.items():
                groups.setdefault(int(idx), []).append(str(cat))
            feat["type"] = "categorical"
            feat["bins"] = [{"values": vals, "points": pts[idx]} for idx, vals in sorted(groups.items())]
            feat["other_points"] = pts[-1]
        features.append(feat)
    return {"format": 1, "name": name, "base_points": offset - factor * intercept, "features": features,
            "grades": _DUMMY_GRADES}


def _numeric_lookup(feat: Mapping[str, Any] | None, value: float) -> float:
    if feat is None:
        return 0.0
    for b in feat["bins"]:
        if b["upper"] is None or value < b["upper"]:
            return float(b["points"])
    return float(feat["bins"][-1]["points"])


def _categorical_lookup(feat: Mapping[str, Any] | None, value: str | None) -> float:
    if feat is None:
        return 0.0
    if value is None:
        return float(feat.get("missing_points", 0))
    for b in feat["bins"]:
        if value in b["values"]:
            return float(b["points"])
    return float(feat.get("other_points", 0))


def blend_specs(a: Mapping[str, Any], b: Mapping[str, Any], *, weight: float, name: str) -> dict[str, Any]:
    """The additive blend `weight·a + (1 − weight)·b` of two format-1 specs, as one format-1 spec with integer
    points (placeholder grades)."""
    fa = {f["name"]: f for f in a["features"]}
    fb = {f["name"]: f for f in b["features"]}
    order = [*fa, *(n for n in fb if n not in fa)]
    w1, w2 = weight, 1.0 - weight
    features = []
    for fname in order:
        x, y = fa.get(fname), fb.get(fname)
        base = dict(x or y)
        kind = base["type"]
        feat = {k: base[k] for k in ("name", "type", "dimension", "label", "reason_code", "reason")}
        for k in ("missing_reason_code", "missing_reason"):
            if k in base:
                feat[k] = base[k]
        feat["missing_points"] = int(round(w1 * float((x or {}).get("missing_points", 0))
                                           + w2 * float((y or {}).get("missing_points", 0))))
        if kind == "numeric":
            uppers = sorted({float(bn["upper"]) for f in (x, y) if f for bn in f["bins"] if bn["upper"] is not None})
            bins, lower = [], -math.inf
            for u in [*uppers, None]:
                pts = int(round(w1 * _numeric_lookup(x, lower) + w2 * _numeric_lookup(y, lower)))
                if bins and bins[-1]["points"] == pts:  # equal neighbours are one bin
                    bins[-1]["upper"] = u
                else:
                    bins.append({"upper": u, "points": pts})
                lower = u if u is not None else lower
            feat["bins"] = bins
        else:
            values = [v for f in (x, y) if f for bn in f["bins"] for v in bn["values"]]
            groups: dict[int, list[str]] = {}
            for v in dict.fromkeys(values):
                pts = int(round(w1 * _categorical_lookup(x, v) + w2 * _categorical_lookup(y, v)))
                groups.setdefault(pts, []).append(v)
            feat["bins"] = [{"values": vals, "points": pts} for pts, vals in groups.items()]
            feat["other_points"] = int(round(w1 * float((x or {}).get("other_points", 0))
                                             + w2 * float((y or {}).get("other_points", 0))))
        features.append(feat)
    return {"format": 1, "name": name, "base_points": int(round(w1 * float(a["base_points"]) + w2 * float(b["base_points"]))),
            "features": features, "grades": _DUMMY_GRADES}


# --------------------------------------------------------------------------- training


def _ebm_fit(cols: Mapping[str, np.ndarray], numeric: Mapping[str, bool], y: np.ndarray, *, seed: int, params: Mapping[str, Any]):
    import pandas as pd
    from interpret.glassbox import ExplainableBoostingClassifier

    names = list(cols)
    frame = pd.DataFrame({n: (cols[n] if numeric[n] else pd.Series(cols[n], dtype=object).astype("string")) for n in names})
    ebm = ExplainableBoostingClassifier(
        interactions=0, random_state=seed, n_jobs=1,
        feature_types=["continuous" if numeric[n] else "nominal" for n in names], **params)
    ebm.fit(frame, y)
    return ebm, names


DEFAULT_EBM = {"outer_bags": 8, "max_bins": 32, "learning_rate": 0.015, "smoothing_rounds": 200}


def _one_fit(cols, numeric, y, meta, *, name, weight, seed, ebm_params, factor, offset, sc_kw) -> dict[str, Any]:
    sc = _fit(cols, numeric, y, meta, name=name, factor=factor, offset=offset, **sc_kw)
    ebm, names = _ebm_fit(cols, numeric, y, seed=seed, params=ebm_params)
    eb = ebm_points_spec(ebm, names, numeric, meta, factor=factor, offset=offset, name=name)
    return blend_specs(sc.spec, eb, weight=weight, name=name)


def train_challenger(
    df: Any,
    *,
    target: str,
    bad_value: Any,
    name: str,
    interactions: Sequence[str] = (),
    weight: float = 0.5,
    folds: int = 5,
    seed: int = 0,
    ebm_params: Mapping[str, Any] | None = None,
    min_iv: float = 0.02,
    C: float = 1.0,
    max_n_bins: int = 6,
    min_bin_size: float = 0.05,
    base_score: float = 600.0,
    base_odds: float = 50.0,
    pdo: float = 20.0,
    grade_shares: Sequence[float] = (0.15, 0.25, 0.30, 0.20, 0.10),
) -> TrainingResult:
    """Train the blended scorecard on `df` and cross-validate it (stratified K-fold with `seed`, the same split as
    `train_scorecard`). `interactions` are "a/b" or "a*b" texts. Returns the final spec (fit on all rows, grades
    cut as in `train_scorecard`) and metrics: mean `auc`, `ks`, `gini` over the folds, per-fold values, the
    out-of-fold calibration by quintile, and the training time."""
    import pandas as pd
    from sklearn.model_selection import StratifiedKFold

    if not isinstance(df, pd.DataFrame):
        raise TypeError("df must be a pandas DataFrame")
    if target not in df.columns:
        raise ValueError(f"target column {target!r} not in data")
    if not 0.0 <= weight <= 1.0:
        raise ValueError("weight must be within 0..1")
    started = time.monotonic()
    specs = [parse_interaction(t) for t in interactions]
    for it in specs:
        for col in (it["a"], it["b"]):
            if col not in df.columns:
                raise ValueError(f"interaction column {col!r} not in data")
    df = add_interactions(df[df[target].notna()], specs)
    y = bad_rows(df, target, bad_value)
    names = [c for c in df.columns if c != target]
    numeric = {c: _is_numeric(df[c]) for c in names}
    cols = {c: _column(df[c], numeric[c]) for c in names}
    labels = {it["name"]: {"zh": f"{it['a']} {'÷' if it['op'] == '/' else '×'} {it['b']}",
                           "en": f"{it['a']} {OPS[it['op']]} {it['b']}".replace("_", " ")} for it in specs}
    meta = _metadata(names, None, labels, "credit_standing")
    factor, offset = pdo_scaling(base_score=base_score, base_odds=base_odds, pdo=pdo)
    ebm_params = {**DEFAULT_EBM, **(ebm_params or {})}
    kw = {"name": name, "weight": weight, "seed": seed, "ebm_params": ebm_params, "factor": factor, "offset": offset,
          "sc_kw": {"min_iv": min_iv, "C": C, "max_n_bins": max_n_bins, "min_bin_size": min_bin_size}}

    fold_metrics = []
    oof = np.zeros(len(y))
    skf = StratifiedKFold(n_splits=int(folds), shuffle=True, random_state=seed)
    for k, (tr, te) in enumerate(skf.split(np.zeros(len(y)), y), start=1):
        spec = _one_fit({c: v[tr] for c, v in cols.items()}, numeric, y[tr], meta, **kw)
        pts = score_batch(spec, {c: v[te] for c, v in cols.items()})
        oof[te] = pts
        auc, ks = auc_ks(y[te], -pts)
        fold_metrics.append({"fold": k, "auc": auc, "ks": ks, "gini": 2 * auc - 1, "n_train": int(len(tr)),
                             "n_test": int(len(te))})

    final = _one_fit(cols, numeric, y, meta, **kw)
    pts_all = score_batch(final, cols)
    spec = {**final, "grades": _grades(pts_all, y, grade_shares), "interactions": specs,
            "method": {"kind": "woe_lr+ebm", "weight": weight, "ebm": ebm_params}}
    validate_spec(spec)

    # out-of-fold calibration: points → PD through the PDO scaling, by quintile of the points
    pd_hat = 1.0 / (1.0 + np.exp((oof - offset) / factor))
    quint = np.quantile(oof, [0.2, 0.4, 0.6, 0.8])
    idx = np.searchsorted(quint, oof, side="right")
    calibration = [{"quintile": q + 1, "n": int((idx == q).sum()), "observed": float(y[idx == q].mean()),
                    "predicted": float(pd_hat[idx == q].mean())} for q in range(5) if (idx == q).any()]

    def mean(key: str) -> float:
        return float(np.mean([m[key] for m in fold_metrics]))

    metrics = {
        "auc": mean("auc"), "ks": mean("ks"), "gini": mean("gini"),
        "auc_std": float(np.std([m["auc"] for m in fold_metrics])),
        "folds": fold_metrics, "n": int(len(y)), "n_bad": int(y.sum()), "bad_rate": float(y.mean()), "seed": int(seed),
        "method": "woe_lr+ebm", "weight": weight, "interactions": [it["name"] for it in specs],
        "calibration_oof": calibration, "brier_oof": float(np.mean((pd_hat - y) ** 2)),
        "scaling": {"base_score": base_score, "base_odds": base_odds, "pdo": pdo},
        "seconds": round(time.monotonic() - started, 1),
        "final": {"auc_in_sample": auc_ks(y, -pts_all)[0], "features": [f["name"] for f in final["features"]]},
    }
    return TrainingResult(spec=spec, metrics=metrics)
