"""The floor (issue #20): the same stack (gunicorn, Postgres, Redis, a Celery worker) answering the least an
authenticated write costs — `POST /api/v1/bench/floor/`: one row, one audit event, one no-op task dispatched on
commit (loanservice.bench_floor, mounted only with BENCH_FLOOR=1, which the bench stack sets). Locust offers a rising
rate; a step passes on the server's p95 < 200 ms (gunicorn's access log), no failure and none lost (every 201 is a
row in the database). The best passing rate is the floor; `run_all` prints submissions/s and drawdowns/s as a share
of it.

    .venv/bin/python bench/run_all.py --only floor --no-doc
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from bench.common import ROOT, SHORT

RATES = [int(x) for x in os.environ.get("BENCH_FLOOR_RATES", "").split(",") if x] or (
    [20, 40, 60] if SHORT else [25, 50, 75, 100, 125, 150, 200, 250])
SECONDS = 10 if SHORT else 20


def prepare_tokens(n: int, *, start: int) -> list[str]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    User = get_user_model()
    group = Group.objects.get(name="applicant")
    with transaction.atomic():
        users = User.objects.bulk_create([User(username=f"bench_floor_{start}_{i}", password="!") for i in range(n)])
        User.groups.through.objects.bulk_create([User.groups.through(user_id=u.pk, group_id=group.pk) for u in users])
        tokens = Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in users])
    return [t.key for t in tokens]


def run(base: str) -> dict:
    from bench.bench_load import _locust
    from loanservice.models import Notification

    work = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    steps, best, best_p95 = [], None, None
    for i, rate in enumerate(RATES):
        pool_file, done_file = work / f"pool-{rate}.json", work / f"done-{rate}.txt"
        pool_file.write_text(json.dumps(prepare_tokens(rate, start=i * 1000)))
        done_file.write_text("")
        stats = _locust(base, rate, pool_file, done_file, work / f"rate-{rate}", locustfile=ROOT / "bench" / "locustfile_floor.py",
                        seconds=SECONDS, path_part="/bench/floor/")
        ok = [int(x) for x in done_file.read_text().split()]
        in_db = Notification.objects.filter(pk__in=ok, kind="bench_floor").count()
        lost = len(ok) - in_db
        steps.append({"rate": rate, **stats, "ok": len(ok), "in_db": in_db, "lost": lost})
        print(f"  floor {rate}/s offered: {stats['achieved']:.1f}/s, locust p50 {stats['p50']:.0f} / p95 {stats['p95']:.0f} ms, "
              f"server p50 {stats['server_p50']} / p95 {stats['server_p95']} ms, failures {stats['failures']}, ok {len(ok)}, "
              f"in DB {in_db}", flush=True)
        passed = (stats["server_p95"] or 1e9) < 200 and stats["failures"] == 0 and lost == 0 and stats["achieved"] >= rate * 0.9
        if not passed:
            break
        best, best_p95 = rate, stats["server_p95"]
    return {"best_rate": best, "best_p95_ms": best_p95, "seconds_per_step": SECONDS, "steps": steps}
