"""gunicorn's processes and threads and the worker's concurrency, chosen by measurement (issue #20): for each
size, the same stack as `make bench` (config/gunicorn.conf.py, a real Celery worker, Postgres, Redis) takes the
whole-stack submission series of bench/bench_load.py at the offered rates given (BENCH_LOAD_RATES; a step passes
at server p95 < 200 ms, no failure, none lost), then optionally the web tier alone (`--web-only`). Prints one
line per size and saves var/bench/sweep_stack.json.

    BENCH_LOAD_RATES=20,25,30,35 .venv/bin/python bench/sweep_stack.py --sizes 3x2x2,2x4x2,4x1x2,3x2x1 [--web-only]

A size is WEB_WORKERS x WEB_THREADS x WORKER_CONCURRENCY. Run it on a quiet machine: every size shares the cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import fresh_database, save, stack, use_stack_env  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="3x2x2,2x4x2,4x1x2,3x2x1")
    ap.add_argument("--web-only", action="store_true", help="also the web tier alone (the worker paused in each step)")
    args = ap.parse_args()
    fresh_database()
    use_stack_env()
    from bench import bench_load
    from bench.run_all import seed_reference

    seed_reference()
    results = []
    for i, size in enumerate(args.sizes.split(",")):
        workers, threads, concurrency = (int(x) for x in size.split("x"))
        print(f"== gunicorn {workers} x {threads}, worker -c {concurrency}", flush=True)
        work = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
        with stack(web_workers=workers, threads=threads, worker_concurrency=concurrency) as base:
            shared = bench_load._series(base, web_only=False, work=work, offset=20_000_000 + i * 1_000_000)
            web = (bench_load._series(base, web_only=True, work=work, offset=20_500_000 + i * 1_000_000)
                   if args.web_only else None)
        row = {"size": size, "whole_stack": shared["best_rate"], "whole_stack_p95": shared["best_p95_ms"],
               "web_only": web and web["best_rate"], "web_only_p95": web and web["best_p95_ms"],
               "lost": shared["lost"] + (web["lost"] if web else 0), "steps": shared["steps"] + (web["steps"] if web else [])}
        results.append(row)
        print(f"   {size}: whole stack {row['whole_stack']}/s (p95 {row['whole_stack_p95']} ms)"
              + (f", web tier {row['web_only']}/s (p95 {row['web_only_p95']} ms)" if web else "")
              + f", lost {row['lost']}", flush=True)
    save("sweep_stack", {"rates": bench_load.RATES, "seconds_per_step": bench_load.SECONDS, "sizes": results})
    for row in results:
        print(f"{row['size']:>8}: whole stack {row['whole_stack']}/s p95 {row['whole_stack_p95']} ms"
              + (f"; web tier {row['web_only']}/s p95 {row['web_only_p95']} ms" if args.web_only else ""))


if __name__ == "__main__":
    main()
