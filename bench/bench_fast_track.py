"""Fast track (信秒贷) through the API on the real stack: gunicorn, Postgres, Redis and a real Celery worker.

For each of N applications (sequential, after a few warm-ups): the draft is prepared through the API (not
timed), then the clock starts at the submit request; `approved` is observed in the database (polled every
2 ms on a side connection, so the observer adds no load to the web server); the script accepts the offer
and signs at once; `disbursed` is observed the same way. Server-side times from the audit trail
(application.submit → application.approve / application.mark_disbursed) are reported too.

    .venv/bin/python bench/bench_fast_track.py [--n 60]      (needs the stack: run through bench/run_all.py)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SHORT, save, summary  # noqa: E402


def prepare(base: str, n: int) -> list[dict]:
    """Applicants with tokens and drafts ready to submit (through the API; not timed)."""
    import requests
    from rest_framework.authtoken.models import Token

    from applications.models import Enterprise
    from casework.demo import _demo_uscc
    from casework.demo.cases import verify_representative
    from loanservice.api import applicant_register
    from underwriting.providers import make_resident_id

    drafts = []
    for i in range(n):
        user = applicant_register(username=f"bench_ft_{i}_{int(time.time())}", password="Bench-pass-2024",
                                  phone="13800000000", email=f"ft{i}@bench.example")
        token = Token.objects.create(user=user).key
        s = requests.Session()
        s.headers["Authorization"] = f"Token {token}"
        uscc = _demo_uscc(5000 + i, "prime", "AB")
        r = s.post(f"{base}/api/v1/enterprises/", json={
            "name": f"基准测试企业{i}", "uscc": uscc, "legal_rep_name": "张三", "legal_rep_id_number": make_resident_id(5000 + i, birth_year=1980),
            "industry_code": "C3399", "founded_on": "2018-03-01", "employees": 40, "annual_revenue": "8000000.00"})
        r.raise_for_status()
        # The legal representative verified as the demo seed does it (the sandbox check; no SMS to read here).
        verify_representative(user, Enterprise.objects.get(pk=r.json()["id"]))
        r = s.post(f"{base}/api/v1/applications/", json={"enterprise": r.json()["id"], "product": "xinmiaodai", "amount": "300000.00",
                                                         "term_months": 12, "repayment_method": "equal_installment", "purpose": "采购原材料"})
        r.raise_for_status()
        pk = r.json()["id"]
        s.post(f"{base}/api/v1/applications/{pk}/consent/", json={"scopes": ["tax", "registry", "social_security", "customs",
                                                                              "credit_bureau", "judicial", "internal"]}).raise_for_status()
        drafts.append({"session": s, "pk": pk, "user": user})
    return drafts


def _status_reader():
    import psycopg2
    from django.db import connection

    s = connection.settings_dict
    conn = psycopg2.connect(dbname=s["NAME"], user=s["USER"] or "postgres", host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432)
    conn.autocommit = True
    cur = conn.cursor()

    def status(pk: int) -> str:
        cur.execute("SELECT status, route FROM applications_loanapplication WHERE id = %s", [pk])
        value, route = cur.fetchone()
        return "referred" if value == "under_review" and route else value

    return status


def _wait(status, pk: int, done: set[str], timeout: float = 30.0) -> str:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        value = status(pk)
        if value in done:
            return value
        time.sleep(0.002)
    return status(pk)


def run(base: str, n: int, warmup: int = 5) -> dict:
    from contracts.models import Contract
    from contracts.services import signing_code_send
    from loanservice.models import AuditEvent

    drafts = prepare(base, n + warmup)
    status = _status_reader()
    approved, disbursed, submit_http, accept_http, sign_http, outcomes = [], [], [], [], [], {}
    for i, d in enumerate(drafts):
        s, pk = d["session"], d["pk"]
        t0 = time.perf_counter()
        r = s.post(f"{base}/api/v1/applications/{pk}/submit/")
        t_submit = time.perf_counter()
        r.raise_for_status()
        result = _wait(status, pk, {"approved", "declined", "prescreen_declined", "referred"})
        t_approved = time.perf_counter()
        outcomes[result] = outcomes.get(result, 0) + 1
        if result != "approved":
            continue
        r = s.post(f"{base}/api/v1/applications/{pk}/accept-offer/")
        r.raise_for_status()
        t_accept = time.perf_counter()
        contract = r.json()["contract"]
        # The signing code as the server would text it (same cache): sent here, in process, to read it.
        _verification, code = signing_code_send(application=Contract.objects.get(pk=contract).application,
                                                user=d["user"])
        r = s.post(f"{base}/api/v1/contracts/{contract}/sign/", json={"agree": True, "sms_code": code})
        r.raise_for_status()
        t_sign = time.perf_counter()
        final = _wait(status, pk, {"disbursed"})
        t_disbursed = time.perf_counter()
        if i < warmup or final != "disbursed":
            continue
        approved.append(t_approved - t0)
        disbursed.append(t_disbursed - t0)
        submit_http.append(t_submit - t0)
        accept_http.append(t_accept - t_approved)
        sign_http.append(t_sign - t_accept)
    pks = [d["pk"] for d in drafts[warmup:]]
    server_approve, server_disburse = [], []
    events = AuditEvent.objects.filter(object_type="applications.loanapplication", object_id__in=[str(p) for p in pks],
                                       action__in=["application.submit", "application.approve", "application.mark_disbursed"])
    times: dict[str, dict[str, object]] = {}
    for e in events:
        times.setdefault(e.object_id, {})[e.action] = e.at
    for t in times.values():
        if "application.submit" in t and "application.approve" in t:
            server_approve.append((t["application.approve"] - t["application.submit"]).total_seconds())
        if "application.submit" in t and "application.mark_disbursed" in t:
            server_disburse.append((t["application.mark_disbursed"] - t["application.submit"]).total_seconds())
    return {"applications": len(pks), "outcomes": outcomes,
            "submit_to_approved": summary(approved), "submit_to_disbursed": summary(disbursed),
            "submit_request": summary(submit_http), "accept_offer_request": summary(accept_http), "sign_request": summary(sign_http),
            "server_submit_to_approve": summary(server_approve), "server_submit_to_disbursed": summary(server_disburse)}


def main() -> None:
    from bench.common import stack, use_stack_env

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20 if SHORT else 60)
    args = ap.parse_args()
    use_stack_env()
    with stack() as base:
        result = run(base, args.n)
    save("fast_track", result)
    print(result)


if __name__ == "__main__":
    main()
