"""Population and characteristic stability that can be trusted at the sample sizes a bank really has.

A PSI on a dozen applications says more about chance than about the population: an empty bin alone gives
values of 1 to 5. So, for each comparison of a recent sample with the development sample (bin counts):

* **minimum sample** — fewer recent rows than the policy's `drift_min_sample` give the state *insufficient*
  ("not enough data") instead of a number to be believed; the monitoring pools months (a trailing window) until
  the minimum is reached;
* **smoothing** — half a row is added to every bin of both samples (bins empty in both are left out), so an
  empty bin gives a finite, modest contribution instead of ln(0.0001);
* **what chance gives** — 2 × `drift_bootstrap` resamples: both samples drawn from the development
  distribution at their own sizes give the PSI of pure chance (its mean is the PSI's bias at these sizes, its
  95th percentile the noise level); both samples resampled from themselves give a bootstrap band;
* **state** — the *excess* PSI (PSI minus the chance mean) is compared with the policy's thresholds, and only
  when the PSI is beyond the noise level: *shift* (excess ≥ `drift_shift`, default 0.25), *watch*
  (≥ `drift_watch`, 0.10), else *stable*.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from django.utils.translation import gettext_lazy

STABLE, WATCH, SHIFT, INSUFFICIENT = "stable", "watch", "shift", "insufficient"
STATES = (STABLE, WATCH, SHIFT, INSUFFICIENT)
STATE_LABELS = {STABLE: gettext_lazy("稳定 stable"), WATCH: gettext_lazy("关注 watch"), SHIFT: gettext_lazy("偏移 shift"),
                INSUFFICIENT: gettext_lazy("数据不足 not enough data")}
SMOOTHING = 0.5


@dataclass(frozen=True)
class Stability:
    n: int
    n_dev: int
    state: str
    psi: float | None = None  # smoothed PSI of the samples as they are
    excess: float | None = None  # PSI minus what chance gives at these sizes
    band_low: float | None = None  # bootstrap 90 % band of the excess
    band_high: float | None = None
    noise: float | None = None  # 95th percentile of the PSI under no shift

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def psi_smoothed(expected, actual, *, alpha: float = SMOOTHING) -> np.ndarray | float:
    """PSI of bin counts with `alpha` added to every bin; works on one pair or on rows of resamples."""
    e = np.asarray(expected, dtype=np.float64) + alpha
    a = np.asarray(actual, dtype=np.float64) + alpha
    e = e / e.sum(axis=-1, keepdims=True)
    a = a / a.sum(axis=-1, keepdims=True)
    return np.sum((a - e) * np.log(a / e), axis=-1)


def stability(dev_counts, recent_counts, *, min_sample: int, watch: float, shift: float, resamples: int = 200,
              seed: int = 0) -> Stability:
    """The state of a recent sample against the development sample, from their bin counts."""
    dev = np.asarray(dev_counts, dtype=np.int64)
    rec = np.asarray(recent_counts, dtype=np.int64)
    if dev.shape != rec.shape:
        raise ValueError("the two samples need the same bins")
    keep = (dev + rec) > 0
    dev, rec = dev[keep], rec[keep]
    n, n_dev = int(rec.sum()), int(dev.sum())
    if n == 0 or n_dev == 0:
        return Stability(n=n, n_dev=n_dev, state=INSUFFICIENT)
    value = float(psi_smoothed(dev, rec))
    if n < min_sample or len(dev) < 2:
        return Stability(n=n, n_dev=n_dev, state=INSUFFICIENT, psi=value)
    rng = np.random.default_rng(seed)
    p_dev = dev / n_dev
    null = psi_smoothed(rng.multinomial(n_dev, p_dev, size=resamples), rng.multinomial(n, p_dev, size=resamples))
    boot = psi_smoothed(rng.multinomial(n_dev, p_dev, size=resamples), rng.multinomial(n, rec / n, size=resamples))
    bias, noise = float(null.mean()), float(np.quantile(null, 0.95))
    excess = max(0.0, value - bias)
    low, high = (max(0.0, float(q) - bias) for q in np.quantile(boot, [0.05, 0.95]))
    if value <= noise:
        state = STABLE
    else:
        state = SHIFT if excess >= shift else (WATCH if excess >= watch else STABLE)
    return Stability(n=n, n_dev=n_dev, state=state, psi=value, excess=excess, band_low=low, band_high=high, noise=noise)


def trailing_windows(months: list[str], sizes: dict[str, int], *, min_sample: int) -> list[tuple[str, list[str]]]:
    """For each month (sorted), the months pooled with it: itself and the ones before, back until the window
    holds `min_sample` rows (or every earlier month, when even that is too few)."""
    months = sorted(months)
    out = []
    for i, month in enumerate(months):
        window, total = [], 0
        for j in range(i, -1, -1):
            window.insert(0, months[j])
            total += sizes.get(months[j], 0)
            if total >= min_sample:
                break
        out.append((month, window))
    return out


def worst_state(states) -> str:
    """The most alarming of several states (shift > watch > stable > insufficient)."""
    order = {SHIFT: 3, WATCH: 2, STABLE: 1, INSUFFICIENT: 0}
    return max(states, key=lambda s: order[s], default=INSUFFICIENT)
