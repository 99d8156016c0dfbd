"""Points-based scorecard engine (no Django).

One model format (``spec``, a JSON-serialisable dict) serves both the expert
scorecard (:mod:`underwriting.expert_scorecard`) and trained models
(:mod:`underwriting.training`)::

    {"format": 1, "name": "...", "base_points": 300,
     "features": [
        {"name": "years_in_business", "type": "numeric", "dimension": "operating",
         "label": {"zh": "...", "en": "..."},
         "reason_code": "SHORT_OPERATING_HISTORY", "reason": {"zh": "...", "en": "..."},
         "bins": [{"upper": 2.0, "points": -10}, {"upper": null, "points": 30}],
         "missing_points": -10},
        {"name": "tax_grade", "type": "categorical", ...,
         "bins": [{"values": ["A"], "points": 40}, ...],
         "other_points": -20, "missing_points": -20}],
     "grades": [{"grade": "A", "min_points": 720, "pd": "0.004"}, ...,
                {"grade": "E", "min_points": null, "pd": "0.25"}]}

Semantics
---------
* numeric bins: the first bin whose ``upper`` is strictly greater than the
  value (``value < upper``); ``upper: null`` is +inf and must close the list.
* categorical bins: exact match of ``str(value)`` against ``values``; values
  not listed anywhere score ``other_points``.
* ``None``, NaN (any float type), ``pandas.NA`` and ``""`` are missing and
  score ``missing_points``; a feature absent from the input is missing too.
* total points = ``base_points`` + sum of feature points (all integers).
* grade = first grade (best first) with ``points >= min_points``; the last
  grade has ``min_points: null`` and catches the rest.
* adverse contribution of a feature = best attainable points of that feature
  (max over its bins, ``missing_points`` and ``other_points``) minus the points
  obtained.  Reasons = the ``top_n`` features with the largest adverse
  contribution > 0, ties broken by feature order.  When the value was missing
  the reason is ``missing_reason_code``/``missing_reason`` if the feature
  defines them (optional keys), otherwise ``<reason_code>_MISSING`` with a
  sentence built from the label ("缺少…信息" / "No information on …").

``score_one`` is pure Python (a few µs per call).  ``score_batch`` is the
vectorised numpy equivalent and returns exactly the same points.  Specs are
compiled once and cached by identity: treat a spec dict as immutable after it
has been scored (or call :func:`compile_spec` and pass the compiled object).
"""

from __future__ import annotations

import copy
import math
import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

__all__ = [
    "DIMENSIONS",
    "CompiledScorecard",
    "Reason",
    "ScoreResult",
    "compile_spec",
    "feature_bin_codes",
    "grade_batch",
    "grade_for_points",
    "psi",
    "psi_report",
    "development_summary",
    "psi_against_summary",
    "summary_counts",
    "spec_unseen_at_average",
    "score_batch",
    "score_one",
    "validate_spec",
]

SPEC_FORMAT = 1

#: The three scoring dimensions and their display names.
DIMENSIONS: dict[str, dict[str, str]] = {
    "credit_standing": {"zh": "信用状况", "en": "Credit standing"},
    "operating": {"zh": "经营能力", "en": "Operating capacity"},
    "willingness": {"zh": "还款意愿", "en": "Willingness to repay"},
}

_REASON_CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


# --------------------------------------------------------------------------- results


@dataclass(slots=True)
class Reason:
    code: str
    feature: str
    points_lost: int
    text_zh: str
    text_en: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class ScoreResult:
    points: int
    grade: str
    pd: Decimal
    contributions: dict[str, int]
    dimensions: dict[str, int]
    reasons: list[Reason] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``pd`` as a string)."""
        return {
            "points": self.points,
            "grade": self.grade,
            "pd": str(self.pd),
            "contributions": dict(self.contributions),
            "dimensions": dict(self.dimensions),
            "reasons": [r.to_dict() for r in self.reasons],
        }


# --------------------------------------------------------------------------- validation


_INT_TYPES = (int, np.integer)
_NUM_TYPES = (int, float, np.integer, np.floating)
_BOOL_TYPES = (bool, np.bool_)


def _is_int(v: Any) -> bool:
    t = type(v)
    if t is int:
        return True
    return isinstance(v, _INT_TYPES) and not isinstance(v, _BOOL_TYPES)


def _is_number(v: Any) -> bool:
    t = type(v)
    if t is float or t is int:
        return True
    return isinstance(v, _NUM_TYPES) and not isinstance(v, _BOOL_TYPES)


def _check_text(obj: Any, where: str) -> None:
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where} must be an object with 'zh' and 'en' texts")
    for lang in ("zh", "en"):
        t = obj.get(lang)
        if not isinstance(t, str) or not t.strip():
            raise ValueError(f"{where}.{lang} must be a non-empty string")


def validate_spec(spec: Any) -> None:
    """Raise ``ValueError`` naming the first problem found in ``spec``."""
    if not isinstance(spec, Mapping):
        raise ValueError("spec must be an object (dict)")
    if spec.get("format") != SPEC_FORMAT:
        raise ValueError(f"spec.format must be {SPEC_FORMAT}, got {spec.get('format')!r}")
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("spec.name must be a non-empty string")
    bp = spec.get("base_points")
    if not (_is_int(bp) or (isinstance(bp, float) and math.isfinite(bp) and bp.is_integer())):
        raise ValueError(f"spec.base_points must be an integer, got {bp!r}")

    features = spec.get("features")
    if not isinstance(features, list) or not features:
        raise ValueError("spec.features must be a non-empty list")
    seen: set[str] = set()
    for i, f in enumerate(features):
        where = f"features[{i}]"
        if not isinstance(f, Mapping):
            raise ValueError(f"{where} must be an object")
        fname = f.get("name")
        if not isinstance(fname, str) or not fname.strip():
            raise ValueError(f"{where}.name must be a non-empty string")
        where = f"features[{i}] ({fname!r})"
        if fname in seen:
            raise ValueError(f"{where}: duplicate feature name")
        seen.add(fname)
        ftype = f.get("type")
        if ftype not in ("numeric", "categorical"):
            raise ValueError(f"{where}.type must be 'numeric' or 'categorical', got {ftype!r}")
        if f.get("dimension") not in DIMENSIONS:
            raise ValueError(
                f"{where}.dimension must be one of {sorted(DIMENSIONS)}, got {f.get('dimension')!r}"
            )
        _check_text(f.get("label"), f"{where}.label")
        code = f.get("reason_code")
        if not isinstance(code, str) or not _REASON_CODE_RE.match(code):
            raise ValueError(f"{where}.reason_code must match [A-Z][A-Z0-9_]*, got {code!r}")
        _check_text(f.get("reason"), f"{where}.reason")
        if "missing_reason_code" in f:
            mcode = f["missing_reason_code"]
            if not isinstance(mcode, str) or not _REASON_CODE_RE.match(mcode):
                raise ValueError(f"{where}.missing_reason_code must match [A-Z][A-Z0-9_]*, got {mcode!r}")
        if "missing_reason" in f:
            _check_text(f["missing_reason"], f"{where}.missing_reason")
        if not _is_int(f.get("missing_points")):
            raise ValueError(f"{where}.missing_points must be an integer, got {f.get('missing_points')!r}")
        bins = f.get("bins")
        if not isinstance(bins, list) or not bins:
            raise ValueError(f"{where}.bins must be a non-empty list")
        for j, b in enumerate(bins):
            if not isinstance(b, Mapping):
                raise ValueError(f"{where}.bins[{j}] must be an object")
            if not _is_int(b.get("points")):
                raise ValueError(f"{where}.bins[{j}].points must be an integer, got {b.get('points')!r}")
        if ftype == "numeric":
            prev = -math.inf
            for j, b in enumerate(bins):
                if "upper" not in b:
                    raise ValueError(f"{where}.bins[{j}].upper is required (null for +inf)")
                up = b["upper"]
                last = j == len(bins) - 1
                if up is None:
                    if not last:
                        raise ValueError(f"{where}.bins[{j}].upper is null but it is not the last bin")
                    continue
                if last:
                    raise ValueError(f"{where}: the last bin must have upper null (+inf)")
                if not _is_number(up) or not math.isfinite(float(up)):
                    raise ValueError(f"{where}.bins[{j}].upper must be a finite number or null, got {up!r}")
                if float(up) <= prev:
                    raise ValueError(f"{where}.bins[{j}].upper must be greater than the previous upper")
                prev = float(up)
        else:
            if not _is_int(f.get("other_points")):
                raise ValueError(f"{where}.other_points must be an integer, got {f.get('other_points')!r}")
            values_seen: set[str] = set()
            for j, b in enumerate(bins):
                vals = b.get("values")
                if not isinstance(vals, list) or not vals:
                    raise ValueError(f"{where}.bins[{j}].values must be a non-empty list")
                for v in vals:
                    if not isinstance(v, str) or v == "":
                        raise ValueError(f"{where}.bins[{j}].values must hold non-empty strings, got {v!r}")
                    if v in values_seen:
                        raise ValueError(f"{where}.bins[{j}]: category {v!r} appears in more than one bin")
                    values_seen.add(v)

    grades = spec.get("grades")
    if not isinstance(grades, list) or not grades:
        raise ValueError("spec.grades must be a non-empty list")
    letters: set[str] = set()
    prev_min = math.inf
    prev_pd = Decimal(-1)
    for k, g in enumerate(grades):
        where = f"grades[{k}]"
        if not isinstance(g, Mapping):
            raise ValueError(f"{where} must be an object")
        letter = g.get("grade")
        if not isinstance(letter, str) or not letter.strip():
            raise ValueError(f"{where}.grade must be a non-empty string")
        where = f"grades[{k}] ({letter!r})"
        if letter in letters:
            raise ValueError(f"{where}: duplicate grade")
        letters.add(letter)
        mp = g.get("min_points", "absent")
        last = k == len(grades) - 1
        if last:
            if mp is not None:
                raise ValueError(f"{where}: the last grade must have min_points null (it catches the rest)")
        else:
            if not _is_int(mp):
                raise ValueError(f"{where}.min_points must be an integer, got {mp!r}")
            if mp >= prev_min:
                raise ValueError(f"{where}.min_points must be lower than the previous grade's (best first)")
            prev_min = mp
        try:
            pd = _to_decimal(g.get("pd"))
        except (InvalidOperation, TypeError, ValueError):
            raise ValueError(f"{where}.pd must be a decimal string or number, got {g.get('pd')!r}") from None
        if not (Decimal(0) <= pd <= Decimal(1)):
            raise ValueError(f"{where}.pd must be within [0, 1], got {pd}")
        if pd < prev_pd:
            raise ValueError(f"{where}.pd must not be lower than the better grade's pd")
        prev_pd = pd


def _to_decimal(v: Any) -> Decimal:
    if isinstance(v, bool) or v is None:
        raise TypeError
    if isinstance(v, Decimal):
        return v
    if isinstance(v, str | int | float):
        d = Decimal(str(v))
        if not d.is_finite():
            raise ValueError
        return d
    raise TypeError


# --------------------------------------------------------------------------- compilation


class _Feature:
    __slots__ = (
        "name", "numeric", "dimension", "uppers", "bin_points", "missing_points", "other_points",
        "lookup", "best", "code", "text_zh", "text_en", "mcode", "mtext_zh", "mtext_en",
        "uppers_np", "points_np", "categories",
    )  # fmt: skip


class CompiledScorecard:
    """A validated spec turned into lookup structures.  Build with :func:`compile_spec`."""

    def __init__(self, spec: Mapping[str, Any]):
        validate_spec(spec)
        self.spec = spec
        self.name: str = spec["name"]
        self.base_points = int(spec["base_points"])
        feats: list[_Feature] = []
        for f in spec["features"]:
            c = _Feature()
            c.name = f["name"]
            c.numeric = f["type"] == "numeric"
            c.dimension = f["dimension"]
            c.missing_points = int(f["missing_points"])
            c.bin_points = [int(b["points"]) for b in f["bins"]]
            if c.numeric:
                c.uppers = [float(b["upper"]) for b in f["bins"][:-1]]
                c.other_points = None
                c.lookup = None
                c.categories = None
                c.best = max([*c.bin_points, c.missing_points])
                c.uppers_np = np.asarray(c.uppers, dtype=np.float64)
                # codes: 0..k-1 bins, k = missing
                c.points_np = np.asarray([*c.bin_points, c.missing_points], dtype=np.int64)
            else:
                c.uppers = None
                c.uppers_np = None
                c.other_points = int(f["other_points"])
                c.lookup = {v: int(b["points"]) for b in f["bins"] for v in b["values"]}
                c.categories = {v: j for j, b in enumerate(f["bins"]) for v in b["values"]}
                c.best = max([*c.bin_points, c.missing_points, c.other_points])
                # codes: 0..k-1 bins, k = other, k+1 = missing
                c.points_np = np.asarray([*c.bin_points, c.other_points, c.missing_points], dtype=np.int64)
            c.code = f["reason_code"]
            c.text_zh = f["reason"]["zh"]
            c.text_en = f["reason"]["en"]
            c.mcode = f.get("missing_reason_code") or f"{c.code}_MISSING"
            mr = f.get("missing_reason")
            if mr:
                c.mtext_zh, c.mtext_en = mr["zh"], mr["en"]
            else:
                c.mtext_zh = f"缺少{f['label']['zh']}信息"
                en = f["label"]["en"]
                c.mtext_en = f"No information on {en[:1].lower() + en[1:]}"
            feats.append(c)
        self.features = feats
        self.feature_names = [c.name for c in feats]
        self.dimension_keys = tuple(DIMENSIONS)
        self.fast = tuple(
            (i, f.name, f.numeric, f.uppers, f.bin_points, f.missing_points, f.lookup, f.other_points,
             f.best, f.dimension)
            for i, f in enumerate(feats)
        )  # fmt: skip
        self.max_points = self.base_points + sum(c.best for c in feats)
        self.min_points = self.base_points + sum(
            min([*c.bin_points, c.missing_points] + ([] if c.numeric else [c.other_points])) for c in feats
        )
        grades = spec["grades"]
        self.grades = [(g["grade"], g["min_points"], _to_decimal(g["pd"])) for g in grades]
        # ascending thresholds for vectorised grading
        self.grade_thresholds = np.asarray([g["min_points"] for g in reversed(grades[:-1])], dtype=np.int64)
        self.grade_letters_asc = np.asarray([g["grade"] for g in reversed(grades)])

    def __repr__(self) -> str:
        return f"<CompiledScorecard {self.name!r} features={len(self.features)}>"


_CACHE: dict[int, tuple[Mapping[str, Any], CompiledScorecard]] = {}
_CACHE_MAX = 64


_KEYED: dict[Any, CompiledScorecard] = {}


def _evict_oldest(cache: dict) -> None:
    try:  # tolerate a concurrent eviction from another thread
        cache.pop(next(iter(cache)), None)
    except (StopIteration, RuntimeError):
        pass


def compile_spec(
    spec: Mapping[str, Any] | CompiledScorecard, *, key: Any = None, refresh: bool = False
) -> CompiledScorecard:
    """Validate and compile ``spec`` (about half a millisecond for the expert card).

    Compiled specs are cached by object identity, so a dict must not be mutated
    after it has been scored; if it was, call ``compile_spec(spec, refresh=True)``
    (or score a fresh copy).  A spec re-read from the database is a new dict
    each time: pass a stable hashable ``key`` (e.g. ``("scorecard", version)``)
    to reuse its compiled form across reads — the caller guarantees that one key
    always means the same spec.
    """
    if isinstance(spec, CompiledScorecard):
        return spec
    if key is not None:
        hit_k = _KEYED.get(key)
        if hit_k is None or refresh:
            hit_k = CompiledScorecard(spec)
            if len(_KEYED) >= _CACHE_MAX:
                _evict_oldest(_KEYED)
            _KEYED[key] = hit_k
        return hit_k
    hit = _CACHE.get(id(spec))
    if hit is not None and hit[0] is spec and not refresh:
        return hit[1]
    _CACHE.pop(id(spec), None)
    compiled = CompiledScorecard(spec)
    if len(_CACHE) >= _CACHE_MAX:
        _evict_oldest(_CACHE)
    _CACHE[id(spec)] = (spec, compiled)  # the strong ref keeps id() from being reused
    return compiled


# --------------------------------------------------------------------------- single scoring



def _num_value(v: Any) -> float | None:
    """Numeric value as float, or None when missing.  Same rules as the batch path."""
    if v is None:
        return None
    if type(v) is float:
        return None if v != v else v
    if isinstance(v, bool | np.bool_):
        return float(v)
    if isinstance(v, str):
        s = v.strip()
        if not s:
            return None
        try:
            x = float(s)
        except ValueError:
            raise ValueError(f"not a number: {v!r}") from None
        return None if x != x else x
    try:
        x = float(v)
    except TypeError:
        if type(v).__name__ in ("NAType", "NaTType"):
            return None
        raise TypeError(f"not a number: {v!r}") from None
    return None if x != x else x


def _cat_key(v: Any) -> str | None:
    """Categorical value as the string matched against the spec, or None when missing."""
    if v is None:
        return None
    if isinstance(v, str):
        return v or None
    if isinstance(v, float | np.floating):
        if v != v:
            return None
    elif type(v).__name__ in ("NAType", "NaTType"):
        return None
    return str(v) or None


def grade_for_points(spec: Mapping[str, Any] | CompiledScorecard, points: int) -> tuple[str, Decimal]:
    c = compile_spec(spec)
    for letter, mp, pd in c.grades:
        if mp is None or points >= mp:
            return letter, pd
    raise AssertionError("unreachable: last grade catches all")  # pragma: no cover


def score_one(
    spec: Mapping[str, Any] | CompiledScorecard, features: Mapping[str, Any], *, top_n: int = 4
) -> ScoreResult:
    """Score one applicant.  ``features`` maps feature name → value (missing keys = missing)."""
    c = spec if type(spec) is CompiledScorecard else compile_spec(spec)
    total = c.base_points
    contributions: dict[str, int] = {}
    dims = dict.fromkeys(c.dimension_keys, 0)
    adverse: list[tuple[int, int, bool]] = []
    get = features.get
    for i, name, numeric, uppers, bin_points, missing_points, lookup, other_points, best, dim in c.fast:
        raw = get(name)
        missing = False
        if numeric:
            t = type(raw)
            if t is float:
                if raw != raw:
                    missing = True
                else:
                    pts = bin_points[bisect_right(uppers, raw)]
            elif t is int:
                pts = bin_points[bisect_right(uppers, float(raw))]
            else:
                x = _num_value(raw)
                if x is None:
                    missing = True
                else:
                    pts = bin_points[bisect_right(uppers, x)]
        else:
            key = raw if type(raw) is str else _cat_key(raw)
            if key:
                pts = lookup.get(key, other_points)
            else:
                missing = True
        if missing:
            pts = missing_points
        contributions[name] = pts
        dims[dim] += pts
        total += pts
        if pts < best:
            adverse.append((pts - best, i, missing))
    for letter, mp, pd in c.grades:  # noqa: B007
        if mp is None or total >= mp:
            break
    reasons: list[Reason] = []
    if adverse and top_n > 0:
        adverse.sort()
        feats = c.features
        for neg_lost, i, missing in adverse[:top_n]:
            f = feats[i]
            if missing:
                reasons.append(Reason(f.mcode, f.name, -neg_lost, f.mtext_zh, f.mtext_en))
            else:
                reasons.append(Reason(f.code, f.name, -neg_lost, f.text_zh, f.text_en))
    return ScoreResult(total, letter, pd, contributions, dims, reasons)


# --------------------------------------------------------------------------- batch scoring


def _col_len(col: Any) -> int:
    if isinstance(col, tuple) and len(col) == 2:  # pre-encoded (codes, categories)
        return len(col[0])
    return len(col)


def _n_rows(columns: Mapping[str, Any]) -> int:
    for name in columns:
        return _col_len(columns[name])
    raise ValueError("no columns given")


def _numeric_array(col: Any) -> np.ndarray:
    arr = np.asarray(col)
    kind = arr.dtype.kind
    if kind == "f":
        return arr.astype(np.float64, copy=False)
    if kind in "iub":
        return arr.astype(np.float64)
    # objects / strings: convert element by element with the score_one rules
    out = np.empty(arr.shape[0], dtype=np.float64)
    for i, v in enumerate(arr.tolist()):
        x = _num_value(v)
        out[i] = np.nan if x is None else x
    return out


def _categorical_codes(f: _Feature, col: Any) -> np.ndarray:
    """Codes 0..k-1 (bins), k (other), k+1 (missing) for a categorical feature."""
    k = len(f.bin_points)
    other, missing = k, k + 1
    # pre-encoded: pandas Categorical / category Series, or a (codes, categories) tuple
    codes = categories = None
    if isinstance(col, tuple) and len(col) == 2:
        codes, categories = col
    else:
        cat = getattr(col, "cat", None)  # pandas Series with category dtype
        target = cat if cat is not None and hasattr(cat, "codes") else col
        if hasattr(target, "codes") and hasattr(target, "categories"):
            codes, categories = target.codes, target.categories
    if codes is not None:
        codes = np.asarray(codes, dtype=np.int64)
        cat_codes = np.empty(len(categories) + 1, dtype=np.int64)
        for j, v in enumerate(list(categories)):
            key = _cat_key(v)
            cat_codes[j] = missing if key is None else f.categories.get(key, other)
        cat_codes[-1] = missing  # code -1 → missing
        return cat_codes[codes]

    arr = np.asarray(col)
    kind = arr.dtype.kind
    if kind in "US":
        if kind == "S":
            arr = arr.astype(str)
        out = np.full(arr.shape[0], other, dtype=np.int64)
        for v, j in f.categories.items():
            out[arr == v] = j
        out[arr == ""] = missing
        return out
    if kind == "O":
        table: dict[Any, int] = dict(f.categories)
        table[""] = missing
        tget = table.get

        def slow(v: Any) -> int:
            key = _cat_key(v)
            return missing if key is None else f.categories.get(key, other)

        lst = arr.tolist()
        res = [tget(v) if type(v) is str else None for v in lst]
        for i, r in enumerate(res):
            if r is None:
                v = lst[i]
                res[i] = other if type(v) is str else slow(v)
        return np.asarray(res, dtype=np.int64)
    # numbers used as categories: compare by their str() like score_one does
    if kind == "f":
        nan = np.isnan(arr)
        if nan.any():
            vals = arr.astype(object)
            vals[nan] = None
            return _categorical_codes(f, vals)
    uniq, inv = np.unique(arr, return_inverse=True)
    lut = np.asarray([f.categories.get(_cat_key(v.item()), other) for v in uniq], dtype=np.int64)
    return lut[inv.reshape(-1)]


def feature_bin_codes(
    spec: Mapping[str, Any] | CompiledScorecard, name: str, col: Any
) -> tuple[np.ndarray, list[str]]:
    """Bin index of every row for one feature, plus the bin labels.

    Numeric: 0..k-1 = bins, k = missing.  Categorical: 0..k-1 = bins, k = other,
    k+1 = missing.  Used by :func:`score_batch`, :func:`psi_report` and training.
    """
    c = compile_spec(spec)
    for f in c.features:
        if f.name == name:
            break
    else:
        raise KeyError(name)
    return _codes(f, col), _bin_labels(f)


def _codes(f: _Feature, col: Any) -> np.ndarray:
    if f.numeric:
        x = _numeric_array(col)
        uppers = f.uppers_np
        k = len(uppers)
        if 0 < k <= 32:
            # bin = number of uppers <= x (same as bisect_right); a few vectorised
            # comparisons accumulated in int8 beat a binary search per element
            idx8 = (x >= uppers[0]).view(np.int8).copy()
            for u in uppers[1:]:
                idx8 += (x >= u).view(np.int8)
            idx = idx8.astype(np.intp)
        else:
            idx = np.searchsorted(uppers, x, side="right")
        nan = np.isnan(x)
        if nan.any():
            idx[nan] = len(f.bin_points)
        return idx
    return _categorical_codes(f, col)


def _bin_labels(f: _Feature) -> list[str]:
    if f.numeric:
        edges = [-math.inf, *f.uppers, math.inf]
        return [f"[{edges[j]:g}, {edges[j + 1]:g})" for j in range(len(f.bin_points))] + ["missing"]
    groups: dict[int, list[str]] = {}
    for v, j in f.categories.items():
        groups.setdefault(j, []).append(v)
    return ["{" + ", ".join(groups[j]) + "}" for j in range(len(f.bin_points))] + ["other", "missing"]


def score_batch(
    spec: Mapping[str, Any] | CompiledScorecard,
    columns: Mapping[str, Any],
    *,
    absent: str = "raise",
) -> np.ndarray:
    """Vectorised points for many rows; identical to ``score_one(...).points`` row by row.

    ``columns`` maps feature name → 1-D array (a dict of numpy arrays or a pandas
    DataFrame).  Numeric columns: any numeric dtype (NaN = missing) or object
    arrays (None/NaN/"" = missing, numeric strings parsed).  Categorical columns:
    object or str arrays, pandas Categorical / category Series, or a pre-encoded
    ``(codes, categories)`` tuple (code -1 = missing).  A feature without a
    column raises ``KeyError`` unless ``absent="missing"`` (then every row is
    missing, as in ``score_one``).
    """
    c = compile_spec(spec)
    if absent not in ("raise", "missing"):
        raise ValueError("absent must be 'raise' or 'missing'")
    n = _n_rows(columns)
    total = np.full(n, c.base_points, dtype=np.int64)
    for f in c.features:
        if f.name in columns:
            col = columns[f.name]
            if _col_len(col) != n:
                raise ValueError(f"column {f.name!r} has {_col_len(col)} rows, expected {n}")
            total += f.points_np[_codes(f, col)]
        elif absent == "missing":
            total += f.missing_points
        else:
            raise KeyError(f"no column for feature {f.name!r}")
    return total


def grade_batch(spec: Mapping[str, Any] | CompiledScorecard, points: Any) -> np.ndarray:
    """Grade letters (numpy str array) for an array of points."""
    c = compile_spec(spec)
    p = np.asarray(points)
    idx = np.searchsorted(c.grade_thresholds, p, side="right")
    return c.grade_letters_asc[idx]


# --------------------------------------------------------------------------- stability (PSI)

_PSI_EPS = 1e-4


def _psi_from_counts(e_counts: np.ndarray, a_counts: np.ndarray) -> float:
    e_tot, a_tot = e_counts.sum(), a_counts.sum()
    if e_tot == 0 or a_tot == 0:
        return float("nan")
    e = np.maximum(e_counts / e_tot, _PSI_EPS)
    a = np.maximum(a_counts / a_tot, _PSI_EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(expected: Any, actual: Any, *, bins: int | Any = 10) -> float:
    """Population stability index of ``actual`` against ``expected``.

    Numeric arrays: ``bins`` is either a number of quantile bins cut on
    ``expected`` or an explicit increasing sequence of cut points (bin =
    ``value < cut``, first match, as in the spec).  NaNs form their own bin.
    Object / string arrays are compared category by category (None/NaN/"" =
    missing).  Empty proportions are floored at 1e-4.
    """
    e = np.asarray(expected)
    a = np.asarray(actual)
    if e.dtype.kind in "OUS" or a.dtype.kind in "OUS":
        ek = [_cat_key(v) for v in e.tolist()]
        ak = [_cat_key(v) for v in a.tolist()]
        cats = {k: i for i, k in enumerate(sorted({k for k in ek + ak if k is not None}))}
        m = len(cats)
        ec = np.bincount([m if k is None else cats[k] for k in ek], minlength=m + 1)
        ac = np.bincount([m if k is None else cats[k] for k in ak], minlength=m + 1)
        return _psi_from_counts(ec, ac)
    e = _numeric_array(e)
    a = _numeric_array(a)
    if isinstance(bins, int | np.integer):
        if bins < 1:
            raise ValueError("bins must be >= 1")
        finite = e[~np.isnan(e)]
        if finite.size == 0:
            edges = np.empty(0)
        else:
            edges = np.unique(np.quantile(finite, np.linspace(0, 1, int(bins) + 1)[1:-1]))
            # quantile cut points use "value < cut"; drop a cut equal to the minimum (empty bin)
            edges = edges[edges > finite.min()]
    else:
        edges = np.asarray(bins, dtype=np.float64)
        if edges.ndim != 1 or np.any(np.diff(edges) <= 0):
            raise ValueError("explicit bin edges must be a strictly increasing 1-D sequence")
    k = len(edges) + 1

    def counts(x: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(edges, x, side="right")
        idx[np.isnan(x)] = k
        return np.bincount(idx, minlength=k + 1)

    return _psi_from_counts(counts(e), counts(a))


def _psi_flag(v: float) -> str:
    if v != v:
        return "n/a"
    return "stable" if v < 0.1 else ("watch" if v < 0.25 else "shift")


def psi_report(
    spec: Mapping[str, Any] | CompiledScorecard,
    dev_columns: Mapping[str, Any],
    recent_columns: Mapping[str, Any],
    *,
    score_bins: int = 10,
) -> dict[str, Any]:
    """PSI of every feature over the spec's own bins (missing/other included),
    of the total points (``score_bins`` quantile bins of the development
    points) and of the grade mix.  Flags: < 0.1 stable, < 0.25 watch, else shift.
    Features without columns in either sample are reported as NaN / "n/a".
    """
    c = compile_spec(spec)
    feats: dict[str, float] = {}
    for f in c.features:
        if f.name not in dev_columns or f.name not in recent_columns:
            feats[f.name] = float("nan")
            continue
        m = len(f.points_np)
        ec = np.bincount(_codes(f, dev_columns[f.name]), minlength=m)
        ac = np.bincount(_codes(f, recent_columns[f.name]), minlength=m)
        feats[f.name] = _psi_from_counts(ec, ac)
    dev_pts = score_batch(c, dev_columns, absent="missing")
    rec_pts = score_batch(c, recent_columns, absent="missing")
    score_psi = psi(dev_pts, rec_pts, bins=score_bins)
    letters = [g[0] for g in c.grades]
    pos = {g: i for i, g in enumerate(letters)}
    dg = np.bincount([pos[g] for g in grade_batch(c, dev_pts).tolist()], minlength=len(letters))
    rg = np.bincount([pos[g] for g in grade_batch(c, rec_pts).tolist()], minlength=len(letters))
    grade_psi = _psi_from_counts(dg, rg)
    return {
        "features": feats,
        "score": score_psi,
        "grade": grade_psi,
        "flags": {**{k: _psi_flag(v) for k, v in feats.items()}, "score": _psi_flag(score_psi)},
        "grade_mix": {
            "dev": {g: float(x) for g, x in zip(letters, dg / max(dg.sum(), 1), strict=True)},
            "recent": {g: float(x) for g, x in zip(letters, rg / max(rg.sum(), 1), strict=True)},
        },
        "n_dev": int(len(dev_pts)),
        "n_recent": int(len(rec_pts)),
    }


# --------------------------------------------------------------------------- PSI against a stored summary


def development_summary(
    spec: Mapping[str, Any] | CompiledScorecard, columns: Mapping[str, Any], *, score_bins: int = 10
) -> dict[str, Any]:
    """What a PSI report needs of the development sample, small enough to store with the model:
    per feature the row count in each of the spec's bins (missing/other included), the score's
    quantile cut points with the count in each bin, and the grade mix.  JSON-serialisable."""
    c = compile_spec(spec)
    feats: dict[str, Any] = {}
    for f in c.features:
        if f.name not in columns:
            continue
        counts = np.bincount(_codes(f, columns[f.name]), minlength=len(f.points_np))
        feats[f.name] = {"labels": _bin_labels(f), "counts": [int(x) for x in counts]}
    points = score_batch(c, columns, absent="missing")
    finite = points.astype(np.float64)
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, int(score_bins) + 1)[1:-1])) if finite.size else np.empty(0)
    edges = edges[edges > finite.min()] if finite.size else edges
    idx = np.searchsorted(edges, finite, side="right")
    score_counts = np.bincount(idx, minlength=len(edges) + 1)
    letters = [g[0] for g in c.grades]
    graded = grade_batch(c, points).tolist()
    return {
        "format": 1,
        "n": int(len(points)),
        "features": feats,
        "score": {"edges": [float(e) for e in edges], "counts": [int(x) for x in score_counts],
                  "mean": float(finite.mean()) if finite.size else None},
        "grades": {g: int(graded.count(g)) for g in letters},
    }


def psi_against_summary(
    spec: Mapping[str, Any] | CompiledScorecard, summary: Mapping[str, Any], recent_columns: Mapping[str, Any]
) -> dict[str, Any]:
    """PSI of recent rows against a stored :func:`development_summary`: per feature (over the spec's own
    bins), for the score (over the development quantile bins) and for the grade mix.  Flags as in
    :func:`psi_report`: < 0.1 stable, < 0.25 watch, else shift."""
    c = compile_spec(spec)
    n_recent = _n_rows(recent_columns) if recent_columns else 0
    feats: dict[str, float] = {}
    for f in c.features:
        dev = summary.get("features", {}).get(f.name)
        if dev is None or f.name not in recent_columns or n_recent == 0:
            feats[f.name] = float("nan")
            continue
        ec = np.asarray(dev["counts"], dtype=np.int64)
        ac = np.bincount(_codes(f, recent_columns[f.name]), minlength=len(f.points_np))
        if len(ec) != len(ac):
            raise ValueError(f"the development summary of {f.name!r} does not match the spec's bins")
        feats[f.name] = _psi_from_counts(ec, ac)
    if n_recent:
        points = score_batch(c, recent_columns, absent="missing")
        edges = np.asarray(summary["score"]["edges"], dtype=np.float64)
        sc = np.bincount(np.searchsorted(edges, points.astype(np.float64), side="right"), minlength=len(edges) + 1)
        score_psi = _psi_from_counts(np.asarray(summary["score"]["counts"], dtype=np.int64), sc)
        letters = [g[0] for g in c.grades]
        graded = grade_batch(c, points).tolist()
        recent_grades = {g: graded.count(g) for g in letters}
        grade_psi = _psi_from_counts(np.asarray([summary["grades"].get(g, 0) for g in letters], dtype=np.int64),
                                     np.asarray([recent_grades[g] for g in letters], dtype=np.int64))
        mean = float(points.mean())
    else:
        score_psi = grade_psi = float("nan")
        recent_grades, mean = {}, None
    return {
        "features": feats,
        "score": score_psi,
        "grade": grade_psi,
        "flags": {**{k: _psi_flag(v) for k, v in feats.items()}, "score": _psi_flag(score_psi), "grade": _psi_flag(grade_psi)},
        "grade_mix": {"dev": dict(summary.get("grades", {})), "recent": recent_grades},
        "score_mean": {"dev": summary.get("score", {}).get("mean"), "recent": mean},
        "n_dev": int(summary.get("n", 0)),
        "n_recent": int(n_recent),
    }


def summary_counts(
    spec: Mapping[str, Any] | CompiledScorecard, summary: Mapping[str, Any], recent_columns: Mapping[str, Any]
) -> dict[str, Any]:
    """The bin counts a stability test compares: per feature of the stored summary, the development counts and
    the recent rows' counts over the spec's own bins; the same for the score (the development quantile bins)
    and the grade mix. ``{"features": {name: (dev, recent)}, "score": (dev, recent), "grade": (dev, recent),
    "n": recent rows}``, counts as int lists."""
    c = compile_spec(spec)
    n_recent = _n_rows(recent_columns) if recent_columns else 0
    out: dict[str, Any] = {"features": {}, "score": None, "grade": None, "n": int(n_recent)}
    if not n_recent:
        return out
    for f in c.features:
        dev = summary.get("features", {}).get(f.name)
        if dev is None or f.name not in recent_columns:
            continue
        ac = np.bincount(_codes(f, recent_columns[f.name]), minlength=len(f.points_np))
        if len(dev["counts"]) != len(ac):
            raise ValueError(f"the development summary of {f.name!r} does not match the spec's bins")
        out["features"][f.name] = ([int(x) for x in dev["counts"]], [int(x) for x in ac])
    points = score_batch(c, recent_columns, absent="missing")
    if summary.get("score"):
        edges = np.asarray(summary["score"]["edges"], dtype=np.float64)
        sc = np.bincount(np.searchsorted(edges, points.astype(np.float64), side="right"), minlength=len(edges) + 1)
        out["score"] = ([int(x) for x in summary["score"]["counts"]], [int(x) for x in sc])
    letters = [g[0] for g in c.grades]
    graded = grade_batch(c, points).tolist()
    out["grade"] = ([int(summary.get("grades", {}).get(g, 0)) for g in letters], [graded.count(g) for g in letters])
    return out


def spec_unseen_at_average(spec: Mapping[str, Any], development: Mapping[str, Any] | None,
                           unseen: Iterable[str]) -> dict[str, Any]:
    """A copy of ``spec`` in which each feature named in ``unseen`` scores, when missing, the points the development
    sample averaged on it (its bins' points weighted by their share; the median of its bins' points without a sample) instead of
    ``missing_points``. For scoring on data that cannot see those features at all (precision marketing may not read
    the bureau, tax or social security): not seeing a feature then says nothing about the firm, where
    ``missing_points`` says that an applicant did not provide it. The result is a new spec (specs are immutable)."""
    unseen = set(unseen)
    counts_of = ((development or {}).get("features") or {})
    out = copy.deepcopy(dict(spec))
    for feature in out["features"]:
        if feature["name"] not in unseen:
            continue
        points = [int(b["points"]) for b in feature["bins"]]
        if feature.get("type") == "categorical" and feature.get("other_points") is not None:
            points.append(int(feature["other_points"]))
        counts = list((counts_of.get(feature["name"]) or {}).get("counts") or [])[:len(points)]
        if len(counts) == len(points) and sum(counts) > 0:
            average = sum(c * p for c, p in zip(counts, points, strict=True)) / sum(counts)
        else:  # no sample (an expert card): the middle of its bins, so one extreme bin does not pull it
            ordered = sorted(points)
            middle = len(ordered) // 2
            average = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
        feature["missing_points"] = int(round(average))
    return out
