"""A long-lived process settles once its code is loaded (issue #20): gunicorn's workers (config/gunicorn.conf.py,
`post_worker_init`) and Celery's worker processes (config/celery.py, `worker_process_init`).

Python's cyclic garbage collector scans the young generation every 700 allocations and, now and then, the whole heap.
A Django process holds a few hundred thousand objects that live as long as it does (modules, URL patterns, models,
WeasyPrint and its fonts); a full collection walks all of them: measured on the contract render (the fast track's
longest step), 12 renders saw 346 collections taking 0.35-0.60 s in all, the longest a single 131-176 ms pause, a
tail on whatever request it hit. `gc.freeze()` moves what is alive at that point out of the collector's sight (a
full collection then took at most 38-43 ms), and a young generation of GC_GEN0_THRESHOLD allocations makes the young
collections rarer: 15 collections, 86 ms in all, none over 13 ms (docs/benchmarks.md, "Garbage collection").
Garbage in reference cycles lives a little longer; nothing else changes. GC_GEN0_THRESHOLD=0 leaves Python's
collector as it is.
"""

from __future__ import annotations

import gc
import os


def settle() -> None:
    """Load what the first requests would load, then freeze the heap and widen the young generation."""
    threshold = int(os.environ.get("GC_GEN0_THRESHOLD", "10000"))
    if threshold <= 0:
        return
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - every view module imported now, not under the first request
    gc.collect()
    gc.freeze()
    _gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(threshold, gen1, gen2)
