"""Scoring benchmark: batch rows/s, µs per single score, German-credit CV AUC.

    .venv/bin/python bench/bench_scoring.py [--rows 1000000] [--repeat 3] [--no-train]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from underwriting.expert_scorecard import expert_spec  # noqa: E402
from underwriting.scorecard import compile_spec, grade_batch, score_batch, score_one  # noqa: E402


def synthetic_columns(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Plausible SME feature values with ~5 % missing per numeric feature."""
    rng = np.random.default_rng(seed)
    cols = {
        "years_in_business": rng.gamma(2.0, 3.0, n),
        "revenue_12m": rng.lognormal(np.log(3e6), 1.2, n),
        "revenue_growth": rng.normal(0.05, 0.3, n),
        "tax_burden": rng.gamma(2.0, 0.01, n),
        "months_filed": rng.integers(0, 60, n).astype(float),
        "settlement_inflow_trend": rng.normal(0.0, 0.25, n),
        "headcount": rng.poisson(15, n).astype(float),
        "headcount_trend": rng.normal(0.0, 0.2, n),
        "leverage": rng.gamma(1.5, 0.3, n),
        "overdue_count_24m": rng.poisson(0.4, n).astype(float),
        "max_dpd_24m": rng.choice([0, 0, 0, 0, 5, 15, 45, 75, 120], n).astype(float),
        "inquiries_3m": rng.poisson(1.5, n).astype(float),
        "enforcement_cases": rng.choice([0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2], n).astype(float),
        "litigation_cases_12m": rng.poisson(0.3, n).astype(float),
        "deposit_to_revenue": rng.gamma(2.0, 0.04, n),
    }
    for x in cols.values():
        x[rng.random(n) < 0.05] = np.nan
    grades = np.array(["A", "B", "B", "M", "C", "D", None], dtype=object)
    cols["tax_grade"] = grades[rng.integers(0, len(grades), n)]
    return cols


def bench_batch(spec, n: int, repeat: int) -> None:
    cols = synthetic_columns(n)
    compile_spec(spec)
    variants = {
        "tax_grade as object array": cols,
        "tax_grade as str array": dict(cols, tax_grade=np.array(["" if v is None else v for v in cols["tax_grade"]])),
    }
    for label, c in variants.items():
        best = min(_timed(lambda c=c: score_batch(spec, c)) for _ in range(repeat))
        print(f"score_batch  {n:>9,} rows, {len(cols)} features ({label}): {best:.3f} s = {n / best:>12,.0f} rows/s")
    pts = score_batch(spec, cols)
    best = min(_timed(lambda: grade_batch(spec, pts)) for _ in range(repeat))
    print(f"grade_batch  {n:>9,} rows: {best:.3f} s = {n / best:>12,.0f} rows/s")
    grades, counts = np.unique(grade_batch(spec, pts), return_counts=True)
    print("grade mix (synthetic, independent features) " + "  ".join(f"{g}:{c / n:.1%}" for g, c in zip(grades, counts, strict=True)))


def bench_single(spec, m: int = 20_000) -> None:
    cols = synthetic_columns(m, seed=1)
    rows = [{k: (None if (isinstance(v[i], float) and v[i] != v[i]) else v[i]) for k, v in cols.items()} for i in range(m)]
    rows = [{k: (float(x) if isinstance(x, np.floating) else x) for k, x in r.items()} for r in rows]
    compiled = compile_spec(spec)
    for label, s in (("compiled spec", compiled), ("spec dict (cached)", spec)):
        best = min(_timed(lambda s=s: [score_one(s, r) for r in rows]) for _ in range(5))
        print(f"score_one    {label:<20}: {best / m * 1e6:6.2f} µs per call (with reasons)")
    fresh = [expert_spec() for _ in range(200)]
    t = _timed(lambda: [score_one(s, rows[0]) for s in fresh])
    print(f"score_one    fresh dict each call : {t / len(fresh) * 1e6:6.1f} µs per call (compile + score)")


def bench_training() -> None:
    import pandas as pd

    from underwriting.training import train_scorecard

    base = os.environ.get("LOANSERVICE_SHARED_DATA")
    path = Path(base) if base else ROOT.parent / "shared" / "data"
    if path.suffix != ".csv":
        path = path / "german_credit.csv"
    if not path.exists():
        print(f"german credit data not found at {path}; skipping training")
        return
    df = pd.read_csv(path)
    t0 = time.perf_counter()
    r = train_scorecard(df, target="creditability", bad_value="bad", folds=5, seed=0, name="german-credit")
    dt = time.perf_counter() - t0
    m = r.metrics
    print(f"german credit 5-fold CV: AUC {m['auc']:.4f} (±{m['auc_std']:.4f}), KS {m['ks']:.4f}, "
          f"Gini {m['gini']:.4f}; LR-probability AUC {m['auc_lr']:.4f}; trained in {dt:.1f} s")  # fmt: skip
    print("  folds AUC: " + ", ".join(f"{f['auc']:.4f}" for f in m["folds"]))


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-train", action="store_true")
    args = ap.parse_args()
    spec = expert_spec()
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs")
    bench_batch(spec, args.rows, args.repeat)
    bench_single(spec)
    if not args.no_train:
        bench_training()


if __name__ == "__main__":
    main()
