"""Credit-line drawdowns (用信) through the API on the real stack (gunicorn, Postgres, Redis, a Celery worker).

Lines are made first through the conductor (fast track: apply, auto-approve, accept, sign, system seal; not timed).
Then: (1) latency — N sequential `POST /api/v1/credit-lines/{id}/drawdowns/`, each a new Idempotency-Key, timed from
the request to the 201 that names the funded loan (the loan, its schedule, its ledger entry and the core-banking
record are committed before the answer); (2) sustained — C client threads sharing L lines (each client takes its
lines in turn, so a line is drawn by one client at a time and the lines' row locks do not serialise the load; the
concurrency test in tests/ covers one line drawn at once), posting drawdowns for S seconds, every 10th request
repeated with the same key (it must name the same loan); afterwards the database is counted:
drawdowns = 201s of first requests (none lost), one loan per (line, key) (none doubled), each line's used amount =
its drawdowns' outstanding principal.

    .venv/bin/python bench/bench_drawdown.py      (needs the stack: run through bench/run_all.py --only drawdown)
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SHORT, save, summary  # noqa: E402

LIMIT = "1000000.00"
AMOUNT = "1000.00"
BODY = {"amount": AMOUNT, "term_months": 6, "repayment_method": "equal_installment"}


def make_lines(n: int) -> list[dict]:
    """n fast-track credit lines, each of its own applicant (token) and enterprise (not timed)."""
    from rest_framework.authtoken.models import Token

    from applications.models import LoanApplication, LoanProduct
    from applications.services import application_create, consent_grant
    from casework import lifecycle
    from casework.demo.cases import _enterprise, sign_as_borrower, verify_representative
    from loanservice.api import applicant_register

    product = LoanProduct.objects.get(code="xinyidai-line")
    lines = []
    stamp = int(time.time())
    for i in range(n):
        user = applicant_register(username=f"bench_dd_{i}_{stamp}", password="Bench-pass-2024", phone="13800000000",
                                  email=f"dd{i}@bench.example")
        enterprise = _enterprise(user, 7000 + i, "prime", f"基准用信企业{i}有限公司", grades="AB", revenue="9000000", employees=40)
        application = application_create(applicant=user, enterprise=enterprise, product=product, amount=Decimal(LIMIT),
                                         term_months=12, repayment_method="equal_installment", purpose="经营周转")
        verify_representative(user, enterprise)
        consent_grant(application=application, user=user, scopes=["tax", "registry", "social_security", "customs",
                                                                  "credit_bureau", "judicial", "internal"])
        lifecycle.application_submit(application_id=application.pk, user=user)
        lifecycle.score_and_route(application.pk)
        application.refresh_from_db()
        if application.status != LoanApplication.Status.APPROVED:
            continue
        lifecycle.offer_accept(application_id=application.pk, user=user)
        contract = application.contracts.get()
        sign_as_borrower(contract, user)
        lifecycle.fast_track_complete(contract.pk)
        application.refresh_from_db()
        lines.append({"line": application.credit_line.pk, "token": Token.objects.create(user=user).key})
    return lines


def _session(token: str):
    import requests

    s = requests.Session()
    s.headers["Authorization"] = f"Token {token}"
    return s


def latency(base: str, line: dict, n: int, warmup: int = 5) -> dict:
    s = _session(line["token"])
    times = []
    for i in range(n + warmup):
        t0 = time.perf_counter()
        r = s.post(f"{base}/api/v1/credit-lines/{line['line']}/drawdowns/", json=BODY, headers={"Idempotency-Key": uuid.uuid4().hex})
        elapsed = time.perf_counter() - t0
        assert r.status_code == 201 and r.json()["loan"], r.text
        if i >= warmup:
            times.append(elapsed)
    return summary(times)


def sustained(base: str, lines: list[dict], seconds: float, clients: int) -> dict:
    stop = time.monotonic() + seconds
    counts = [{"ok": 0, "replays": 0, "replay_mismatch": 0, "errors": 0, "keys": []} for _ in lines]
    latencies: list[list[float]] = [[] for _ in range(clients)]

    def work(c: int) -> None:
        mine = list(range(c, len(lines), clients))
        sessions = {k: _session(lines[k]["token"]) for k in mine}
        i = 0
        while time.monotonic() < stop:
            k = mine[i % len(mine)]
            s, line, n = sessions[k], lines[k], counts[k]
            url = f"{base}/api/v1/credit-lines/{line['line']}/drawdowns/"
            key = uuid.uuid4().hex
            t0 = time.perf_counter()
            r = s.post(url, json=BODY, headers={"Idempotency-Key": key})
            latencies[c].append(time.perf_counter() - t0)
            i += 1
            if r.status_code != 201:
                n["errors"] += 1
                continue
            n["ok"] += 1
            n["keys"].append(key)
            if i % 10 == 0:
                again = s.post(url, json=BODY, headers={"Idempotency-Key": key})
                n["replays"] += 1
                if again.status_code != 201 or again.json()["loan"] != r.json()["loan"]:
                    n["replay_mismatch"] += 1

    from bench.common import access_log_size, pct, server_times

    since = access_log_size()
    threads = [threading.Thread(target=work, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    server = server_times(since, "/drawdowns/")
    flat = [x for per in latencies for x in per]
    return {"wall": wall, "counts": counts, "client": summary(flat),
            "server_p50_ms": round(pct(server, 50), 1) if server else None,
            "server_p95_ms": round(pct(server, 95), 1) if server else None}


def verify(lines: list[dict], result: dict) -> dict:
    from django.db.models import Count

    from creditlines.models import CreditLine, Drawdown
    from creditlines.selectors import drawdown_loans, line_usage

    lost = doubled = unreconciled = 0
    for line, c in zip(lines, result["counts"], strict=True):
        keys = set(c["keys"])
        stored = Drawdown.objects.filter(line_id=line["line"], idempotency_key__in=keys)
        lost += len(keys) - stored.count()
        doubled += stored.values("idempotency_key").annotate(n=Count("id")).filter(n__gt=1).count()
        obj = CreditLine.objects.get(pk=line["line"])
        if line_usage(obj)["used"] != sum(loan.outstanding_principal for loan in drawdown_loans(obj)):
            unreconciled += 1
    return {"lost": lost, "doubled": doubled, "unreconciled_lines": unreconciled}


def run(base: str) -> dict:
    n_lines = int(os.environ.get("BENCH_DRAWDOWN_LINES") or (8 if SHORT else 24))
    clients = int(os.environ.get("BENCH_DRAWDOWN_CLIENTS") or (4 if SHORT else 8))
    lines = make_lines(n_lines + 1)
    lat = latency(base, lines[0], 20 if SHORT else 100)
    sus = sustained(base, lines[1:], 10 if SHORT else 30, clients)
    ok = sum(c["ok"] for c in sus["counts"])
    checks = verify(lines[1:], sus)
    return {"request_to_funded": lat, "sustained": {
        "threads": clients, "lines": len(lines) - 1, "client": sus["client"], "server_p50_ms": sus["server_p50_ms"],
        "server_p95_ms": sus["server_p95_ms"],
        "seconds": round(sus["wall"], 1), "drawdowns": ok, "per_s": round(ok / sus["wall"], 1),
        "errors": sum(c["errors"] for c in sus["counts"]), "replays": sum(c["replays"] for c in sus["counts"]),
        "replay_mismatch": sum(c["replay_mismatch"] for c in sus["counts"]), **checks}}


if __name__ == "__main__":
    from bench.common import stack, use_stack_env

    use_stack_env()
    with stack() as base:
        out = run(base)
    save("drawdown", out)
    print(out)
