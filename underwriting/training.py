"""Train a points scorecard (the same spec format as the expert card) from data.

Pipeline, per fold and once more on all data for the final model:

1. optimal binning per candidate variable (``optbinning.OptimalBinning``;
   numeric → monotonic ascending/descending interval bins, categorical →
   groups of categories; missing values are kept out of the binning and get
   their own WoE),
2. WoE per bin computed on the training rows (bins, "other" for unseen
   categories and "missing"; an empty bin gets WoE 0 = average risk),
3. variables with IV < ``min_iv`` are dropped,
4. logistic regression on the WoE columns; variables whose coefficient has
   the wrong sign are dropped one at a time and the model refitted,
5. scaling to points, PDO style: ``score = offset + factor * ln(odds good)``
   with ``factor = pdo / ln 2`` and ``offset = base_score - factor * ln(base_odds)``
   (defaults 600 points at 50:1, PDO 20); each bin scores
   ``round(-factor * coef * woe)`` and the intercept goes into ``base_points``.

Cross-validation (stratified K-fold) refits the whole pipeline — binning
included — on each training part and evaluates the *integer points* of the
resulting spec (through :func:`underwriting.scorecard.score_batch`) on the
held-out part, so the reported AUC/KS/Gini are those of the deployable
scorecard; ``auc_lr`` gives the AUC of the unrounded LR probabilities.

Grades of the final model are cut on quantiles of its points over the
training data (``grade_shares``, best first) and each grade's PD is its
observed bad rate ((bad + 0.5) / (n + 1)), made monotone by pooling adjacent
violators.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .expert_scorecard import expert_spec
from .scorecard import DIMENSIONS, _cat_key, feature_bin_codes, score_batch, validate_spec

__all__ = ["TrainingResult", "train_scorecard", "auc_ks"]

GRADE_LETTERS = ("A", "B", "C", "D", "E")


@dataclass
class TrainingResult:
    spec: dict[str, Any]
    metrics: dict[str, Any]
    iv: dict[str, float] = field(default_factory=dict)  # final fit, every candidate
    dropped: dict[str, str] = field(default_factory=dict)  # final fit: feature -> why left out


# --------------------------------------------------------------------------- metrics


def auc_ks(y_bad: np.ndarray, risk: np.ndarray) -> tuple[float, float]:
    """AUC and KS of a risk score (higher = more likely bad)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.asarray(y_bad).astype(int)
    r = np.asarray(risk, dtype=float)
    auc = float(roc_auc_score(y, r))
    fpr, tpr, _ = roc_curve(y, r)
    return auc, float(np.max(tpr - fpr))


# --------------------------------------------------------------------------- helpers


def _reason_code(name: str) -> str:
    code = re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")
    return "F_" + (code or "FEATURE")


def _is_numeric(series: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _column(series: Any, numeric: bool) -> np.ndarray:
    if numeric:
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    return series.to_numpy(dtype=object)


def _cat_keys(arr: np.ndarray) -> np.ndarray:
    return np.asarray([_cat_key(v) for v in arr.tolist()], dtype=object)


_DUMMY_GRADES = [{"grade": "X", "min_points": None, "pd": "0"}]


def _feature_template(name: str, numeric: bool, meta: Mapping[str, Any]) -> dict[str, Any]:
    feat = {
        "name": name,
        "type": "numeric" if numeric else "categorical",
        "dimension": meta["dimension"],
        "label": dict(meta["label"]),
        "reason_code": meta["reason_code"],
        "reason": dict(meta["reason"]),
    }
    for k in ("missing_reason_code", "missing_reason"):
        if k in meta:
            feat[k] = meta[k]
    return feat


def _metadata(
    names: Sequence[str],
    dimensions: Mapping[str, str] | None,
    labels: Mapping[str, Mapping[str, str]] | None,
    default_dimension: str,
) -> dict[str, dict[str, Any]]:
    """Per-feature dimension/label/reason: explicit arguments, else the expert card's
    definition for a feature of the same name, else generic texts."""

    expert = {f["name"]: f for f in expert_spec()["features"]}
    out = {}
    for n in names:
        e = expert.get(n)
        label = dict(labels[n]) if labels and n in labels else (dict(e["label"]) if e else None)
        if label is None:
            label = {"zh": n, "en": n.replace("_", " ")}
        dim = (dimensions or {}).get(n) or (e["dimension"] if e else default_dimension)
        if dim not in DIMENSIONS:
            raise ValueError(f"dimension for {n!r} must be one of {sorted(DIMENSIONS)}, got {dim!r}")
        if e and not (labels and n in labels):
            meta = {"dimension": dim, "label": label, "reason_code": e["reason_code"], "reason": e["reason"]}
        else:
            meta = {
                "dimension": dim,
                "label": label,
                "reason_code": _reason_code(n),
                "reason": {
                    "zh": f"“{label['zh']}”一项的情况对评分不利",
                    "en": f"The applicant's {label['en']} lowered the score",
                },
            }
        out[n] = meta
    return out


def _pav(values: list[float], weights: list[float]) -> list[float]:
    """Pool-adjacent-violators: non-decreasing fit of ``values``."""
    blocks: list[list[float]] = []  # [value, weight, count]
    for v, w in zip(values, weights, strict=True):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    out: list[float] = []
    for v, _w, c in blocks:
        out.extend([v] * c)
    return out


# --------------------------------------------------------------------------- one fit


@dataclass
class _Fit:
    spec: dict[str, Any]  # with placeholder grades
    selected: list[str]
    woe: dict[str, np.ndarray]  # per selected feature, indexed by bin code
    coef: np.ndarray
    intercept: float
    lr: Any
    iv: dict[str, float]
    dropped: dict[str, str]


def _fit(
    cols: Mapping[str, np.ndarray],
    numeric: Mapping[str, bool],
    y: np.ndarray,
    meta: Mapping[str, Mapping[str, Any]],
    *,
    name: str,
    min_iv: float,
    C: float,
    max_n_bins: int,
    min_bin_size: float,
    factor: float,
    offset: float,
) -> _Fit:
    from optbinning import OptimalBinning
    from sklearn.linear_model import LogisticRegression

    n_bad = int(y.sum())
    n_good = int(len(y) - n_bad)
    if n_bad == 0 or n_good == 0:
        raise ValueError("training data needs both good and bad rows")

    templates: dict[str, dict[str, Any]] = {}
    dropped: dict[str, str] = {}
    for fname, x in cols.items():
        is_num = numeric[fname]
        feat = _feature_template(fname, is_num, meta[fname])
        if is_num:
            present = ~np.isnan(x)
        else:
            keys = _cat_keys(x)
            present = np.asarray([k is not None for k in keys.tolist()], dtype=bool)
        xs, ys = (x if is_num else keys)[present], y[present]
        groups: list[Any] = []
        if len(xs) and len(np.unique(ys)) == 2 and len(np.unique(xs)) > 1:
            ob = OptimalBinning(
                name=fname,
                dtype="numerical" if is_num else "categorical",
                solver="cp",
                monotonic_trend="auto_asc_desc" if is_num else None,
                max_n_bins=max_n_bins,
                min_bin_size=min_bin_size,
            )
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ob.fit(xs, ys)
                if ob.status in ("OPTIMAL", "FEASIBLE"):
                    groups = list(ob.splits)
            except Exception as exc:  # binning failure: leave the variable out
                dropped[fname] = f"binning failed: {exc}"
                continue
        if is_num:
            uppers = sorted({float(s) for s in groups})
            feat["bins"] = [{"upper": u, "points": 0} for u in uppers] + [{"upper": None, "points": 0}]
        else:
            seen: set[str] = set()
            bins = []
            for g in groups:
                vals = [str(v) for v in np.atleast_1d(g).tolist() if str(v) not in seen]
                seen.update(vals)
                if vals:
                    bins.append({"values": vals, "points": 0})
            if not bins:  # no split found: a single group of everything observed
                vals = sorted({str(k) for k in xs.tolist()})
                if not vals:
                    dropped[fname] = "no observed values"
                    continue
                bins = [{"values": vals, "points": 0}]
            feat["bins"] = bins
            feat["other_points"] = 0
        feat["missing_points"] = 0
        templates[fname] = feat

    if not templates:
        raise ValueError("no usable feature")
    tmp_spec = {"format": 1, "name": name, "base_points": 0, "features": list(templates.values()),
                "grades": _DUMMY_GRADES}  # fmt: skip

    codes: dict[str, np.ndarray] = {}
    woe: dict[str, np.ndarray] = {}
    iv: dict[str, float] = {}
    for fname, feat in templates.items():
        c, labels = feature_bin_codes(tmp_spec, fname, cols[fname])
        m = len(labels)
        bad = np.bincount(c, weights=y, minlength=m)
        tot = np.bincount(c, minlength=m).astype(float)
        good = tot - bad
        w = np.where(
            tot > 0,
            np.log(((good + 0.5) / (n_good + 0.5 * m)) / ((bad + 0.5) / (n_bad + 0.5 * m))),
            0.0,
        )
        codes[fname], woe[fname] = c, w
        iv[fname] = float(np.sum((good / n_good - bad / n_bad) * w))
        if len(feat["bins"]) < 2 and np.count_nonzero(tot) < 2:
            dropped[fname] = "no split found"
        elif iv[fname] < min_iv:
            dropped[fname] = f"IV {iv[fname]:.4f} < {min_iv}"

    selected = [f for f in templates if f not in dropped]
    if not selected:
        raise ValueError("no feature passed the selection (IV)")
    while True:
        X = np.column_stack([woe[f][codes[f]] for f in selected])
        lr = LogisticRegression(C=C, max_iter=2000)
        lr.fit(X, y)
        coef = lr.coef_[0]
        # higher WoE = more goods, so every coefficient on P(bad) must be negative
        worst = int(np.argmax(coef))
        if coef[worst] < 0 or len(selected) == 1:
            break
        dropped[selected[worst]] = f"coefficient with the wrong sign ({coef[worst]:+.4f})"
        del selected[worst]

    intercept = float(lr.intercept_[0])
    features = []
    for f, b in zip(selected, coef, strict=True):
        pts = [int(round(-factor * float(b) * float(w))) for w in woe[f]]
        feat = templates[f]
        k = len(feat["bins"])
        for j, binj in enumerate(feat["bins"]):
            binj["points"] = pts[j]
        if feat["type"] == "numeric":
            feat["missing_points"] = pts[k]
        else:
            feat["other_points"] = pts[k]
            feat["missing_points"] = pts[k + 1]
        features.append(feat)
    spec = {
        "format": 1,
        "name": name,
        "base_points": int(round(offset - factor * intercept)),
        "features": features,
        "grades": _DUMMY_GRADES,
    }
    return _Fit(spec, selected, {f: woe[f] for f in selected}, coef, intercept, lr, iv, dropped)


def _lr_risk(fit: _Fit, cols: Mapping[str, np.ndarray]) -> np.ndarray:
    X = np.column_stack([fit.woe[f][feature_bin_codes(fit.spec, f, cols[f])[0]] for f in fit.selected])
    return fit.lr.predict_proba(X)[:, 1]


def _grades(points: np.ndarray, y: np.ndarray, shares: Sequence[float]) -> list[dict[str, Any]]:
    if len(shares) != len(GRADE_LETTERS):
        raise ValueError(f"grade_shares needs {len(GRADE_LETTERS)} values (best first)")
    if any(s <= 0 for s in shares):
        raise ValueError("grade_shares must be positive")
    total = float(sum(shares))
    desc = np.sort(points)[::-1]
    n = len(desc)
    mins: list[int] = []
    cum = 0.0
    for s in shares[:-1]:
        cum += s / total
        t = int(desc[min(n - 1, max(0, math.ceil(cum * n) - 1))])
        if mins and t >= mins[-1]:
            t = mins[-1] - 1
        mins.append(t)
    # observed bad rate per grade
    thresholds = np.asarray(mins[::-1], dtype=np.int64)
    idx = len(mins) - np.searchsorted(thresholds, points, side="right")  # 0 = best grade
    rates, weights = [], []
    for g in range(len(GRADE_LETTERS)):
        in_g = idx == g
        ng, bg = int(in_g.sum()), float(y[in_g].sum())
        rates.append((bg + 0.5) / (ng + 1.0))
        weights.append(ng + 1.0)
    pds = _pav(rates, weights)
    out = []
    for g, letter in enumerate(GRADE_LETTERS):
        out.append({
            "grade": letter,
            "min_points": mins[g] if g < len(mins) else None,
            "pd": f"{min(max(pds[g], 0.0001), 1.0):.4f}",
        })  # fmt: skip
    return out


# --------------------------------------------------------------------------- entry point


def bad_rows(df: Any, target: str, bad_value: Any) -> np.ndarray:
    """1 where ``df[target]`` equals ``bad_value`` (compared as stripped strings if no row matches exactly, so
    ``--bad 1`` works on an int column), else 0; both classes must occur. Shared by the scorecard and the challenger."""
    y_mask = (df[target] == bad_value).to_numpy(dtype=bool)
    if not y_mask.any():
        y_mask = (df[target].astype(str).str.strip() == str(bad_value).strip()).to_numpy(dtype=bool)
    if not y_mask.any() or y_mask.all():
        raise ValueError(f"target {target!r}: need both rows equal to {bad_value!r} and other rows")
    return y_mask.astype(np.int64)


def pdo_scaling(*, base_score: float, base_odds: float, pdo: float) -> tuple[float, float]:
    """Points = offset + factor × ln(good:bad odds): ``base_score`` at ``base_odds``, ``pdo`` points to double them."""
    factor = pdo / math.log(2.0)
    return factor, base_score - factor * math.log(base_odds)


def train_scorecard(
    df: Any,
    *,
    target: str,
    bad_value: Any,
    folds: int = 5,
    seed: int = 0,
    name: str,
    features: Sequence[str] | None = None,
    dimensions: Mapping[str, str] | None = None,
    labels: Mapping[str, Mapping[str, str]] | None = None,
    default_dimension: str = "credit_standing",
    min_iv: float = 0.02,
    C: float = 1.0,
    max_n_bins: int = 6,
    min_bin_size: float = 0.05,
    base_score: float = 600.0,
    base_odds: float = 50.0,
    pdo: float = 20.0,
    grade_shares: Sequence[float] = (0.15, 0.25, 0.30, 0.20, 0.10),
) -> TrainingResult:
    """Train a WoE/logistic scorecard on ``df`` and cross-validate it.

    ``target`` rows equal to ``bad_value`` are bad (compared as strings if no
    row matches exactly, so ``--bad 1`` works on an int column); rows with a
    missing target are ignored.  ``features`` defaults to every other column;
    numeric dtypes are binned as numbers, everything else as categories.
    Returns the final spec (fit on all rows) and the CV metrics.
    """
    import pandas as pd
    from sklearn.model_selection import StratifiedKFold

    if not isinstance(df, pd.DataFrame):
        raise TypeError("df must be a pandas DataFrame")
    if target not in df.columns:
        raise ValueError(f"target column {target!r} not in data")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name must be a non-empty string")
    if int(folds) < 2:
        raise ValueError("folds must be >= 2")
    df = df[df[target].notna()]
    y = bad_rows(df, target, bad_value)

    names = list(features) if features is not None else [c for c in df.columns if c != target]
    missing_cols = [c for c in names if c not in df.columns]
    if missing_cols:
        raise ValueError(f"feature columns not in data: {missing_cols}")
    if not names:
        raise ValueError("no feature columns")
    numeric = {c: _is_numeric(df[c]) for c in names}
    cols = {c: _column(df[c], numeric[c]) for c in names}
    meta = _metadata(names, dimensions, labels, default_dimension)

    factor, offset = pdo_scaling(base_score=base_score, base_odds=base_odds, pdo=pdo)
    kw = dict(name=name, min_iv=min_iv, C=C, max_n_bins=max_n_bins, min_bin_size=min_bin_size,
              factor=factor, offset=offset)  # fmt: skip

    fold_metrics = []
    skf = StratifiedKFold(n_splits=int(folds), shuffle=True, random_state=seed)
    for k, (tr, te) in enumerate(skf.split(np.zeros(len(y)), y), start=1):
        tr_cols = {c: v[tr] for c, v in cols.items()}
        te_cols = {c: v[te] for c, v in cols.items()}
        fit = _fit(tr_cols, numeric, y[tr], meta, **kw)
        pts = score_batch(fit.spec, te_cols)
        auc, ks = auc_ks(y[te], -pts)
        auc_lr, _ = auc_ks(y[te], _lr_risk(fit, te_cols))
        fold_metrics.append({
            "fold": k, "auc": auc, "ks": ks, "gini": 2 * auc - 1, "auc_lr": auc_lr,
            "n_train": int(len(tr)), "n_test": int(len(te)), "n_features": len(fit.selected),
        })  # fmt: skip

    final = _fit(cols, numeric, y, meta, **kw)
    pts_all = score_batch(final.spec, cols)
    # a new dict: compiled specs are cached by identity, and the one above carries the placeholder grades
    spec = {**final.spec, "grades": _grades(pts_all, y, grade_shares)}
    validate_spec(spec)
    auc_in, ks_in = auc_ks(y, -pts_all)
    auc_lr_in, _ = auc_ks(y, _lr_risk(final, cols))

    def mean(key: str) -> float:
        return float(np.mean([m[key] for m in fold_metrics]))

    metrics = {
        "auc": mean("auc"),
        "ks": mean("ks"),
        "gini": mean("gini"),
        "auc_std": float(np.std([m["auc"] for m in fold_metrics])),
        "auc_lr": mean("auc_lr"),
        "folds": fold_metrics,
        "n": int(len(y)),
        "n_bad": int(y.sum()),
        "bad_rate": float(y.mean()),
        "seed": int(seed),
        "scaling": {"base_score": base_score, "base_odds": base_odds, "pdo": pdo},
        "final": {
            "auc_in_sample": auc_in,
            "ks_in_sample": ks_in,
            "auc_lr_in_sample": auc_lr_in,
            "features": list(final.selected),
            "iv": {f: final.iv[f] for f in final.selected},
        },
    }
    return TrainingResult(spec=spec, metrics=metrics, iv=dict(final.iv), dropped=dict(final.dropped))
