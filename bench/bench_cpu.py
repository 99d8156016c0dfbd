"""CPU and queries per request, in one process (issue #20's honest figures on a shared machine): a fast-track
submission through the API (`POST /api/v1/applications/{id}/submit/`, token auth, the whole middleware stack), the
worker's scoring and routing (`casework.lifecycle.score_and_route`), a credit-line drawdown through the API, and the
floor (`POST /api/v1/bench/floor/`: one row, one audit event, one no-op task; bench/bench_floor.py) —
each timed with `time.process_time()` (this process's CPU: Python, Django, DRF, the driver; not Postgres's) and its
statements counted. `--profile` writes pyinstrument HTML reports to var/bench/.

    BENCH_DB=<yourdb> BENCH_REDIS_URL=redis://127.0.0.1:6379/<n> .venv/bin/python bench/bench_cpu.py [--n 60] [--profile]

Uses (and recreates) the benchmark database; needs no gunicorn or worker (Celery eager where no broker answers is
not relied on: the script calls the worker's step itself).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, CpuMeter, fresh_database, save, use_stack_env  # noqa: E402


def _measure(label: str, calls, profile: bool) -> dict:
    meter = CpuMeter(pyinstrument=profile)
    for call in calls:
        meter.call(label, call)
    if profile:
        meter.pyinstrument_write(label, RESULTS / f"profile-{label.replace('+', '_')}")
    summary = meter.summary(label)
    out = {k: summary[k] for k in ("n", "cpu_ms_median", "cpu_ms_mean", "queries_median", "queries_max")}
    print(f"{label:>12}: CPU {out['cpu_ms_median']:.1f} ms median ({out['cpu_ms_mean']:.1f} mean), "
          f"{out['queries_median']:.0f} statements median (max {out['queries_max']}), n={out['n']}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--only", default="floor,submit,score_route,drawdown",
                    help="comma-separated: floor, submit, score_route, drawdown (submit and score_route go together)")
    args = ap.parse_args()
    fresh_database()
    use_stack_env()
    from django.conf import settings
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's request signals; DEBUG stays off
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    from config.celery import app as celery_app

    celery_app.conf.task_always_eager = False  # on_commit dispatches go to the broker (nobody consumes them here)
    from bench.bench_drawdown import BODY, make_lines
    from bench.bench_load import prepare_pool
    from bench.run_all import seed_reference
    from casework import lifecycle
    from loanservice import refcache

    def score_and_route(pk):
        with refcache.pinned():  # as the worker runs it: the policy generation read once per task (task_prerun)
            lifecycle.score_and_route(pk)

    seed_reference()
    pool = prepare_pool(args.n + 10, start=5_000_000)
    client = Client()
    warm, timed = pool[:10], pool[10:]

    def submit(token, pk):
        r = client.post(f"/api/v1/applications/{pk}/submit/", HTTP_AUTHORIZATION=f"Token {token}")
        assert r.status_code == 200, r.content[:300]

    for token, pk in warm:
        submit(token, pk)
        score_and_route(pk)
    from bench.bench_floor import prepare_tokens

    floor_token = prepare_tokens(1, start=9_000)[0]

    def floor():
        r = client.post("/api/v1/bench/floor/", HTTP_AUTHORIZATION=f"Token {floor_token}")
        assert r.status_code == 201, r.content[:300]

    results = {}
    only = set(args.only.split(","))
    if "floor" in only and settings.ROOT_URLCONF == "config.urls_bench":  # the floor exists (not on code before it)
        for _ in range(5):
            floor()
        results["floor"] = _measure("floor", [floor] * args.n, args.profile)
    if only & {"submit", "score_route"}:
        results["submit"] = _measure("submit", [lambda t=t, p=p: submit(t, p) for t, p in timed], args.profile)
        results["score_route"] = _measure("score+route", [lambda p=p: score_and_route(p) for _t, p in timed],
                                          args.profile)
    if "drawdown" not in only:
        save("cpu", results)
        return
    line = make_lines(1)[0]
    url = f"/api/v1/credit-lines/{line['line']}/drawdowns/"

    def draw():
        r = client.post(url, BODY, content_type="application/json", HTTP_AUTHORIZATION=f"Token {line['token']}",
                        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex)
        assert r.status_code == 201, r.content[:300]

    for _ in range(5):
        draw()
    results["drawdown"] = _measure("drawdown", [draw] * args.n, args.profile)
    save("cpu", results)


if __name__ == "__main__":
    main()
