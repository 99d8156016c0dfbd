"""Where the fast track's contract steps spend their CPU (issue #20): for each of N fast-track cases made through the
real services, the three steps after approval — accepting the offer (renders the contract PDFs), the borrower's
signature (the enterprise's PAdES signature), and the worker's fast_track_complete (the bank's seal, the release,
the Loan) — each timed with `time.process_time()` (this process's CPU, not Postgres's) with its statements
counted; `--cprofile N` prints the N costliest functions of each step, `--html` writes pyinstrument reports.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> .venv/bin/python bench/profile_fast_track.py \\
        [--n 10] [--cprofile 25] [--html var/bench/ft]

Migrates the given database and seeds the products if needed; every case is a new enterprise. Tasks dispatched on
commit are not sent anywhere (loanservice.dispatch._send is replaced by a no-op): the script runs the worker's
steps itself, so that each step is measured alone.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--cprofile", type=int, default=0)
    ap.add_argument("--html", default="")
    args = ap.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call_command("migrate", "--noinput", verbosity=0)
    from loanservice import dispatch

    dispatch._send = lambda task, args, kwargs: None  # the script runs the worker's steps itself
    from applications.models import LoanProduct
    from casework import lifecycle
    from casework.demo import _draft, _enterprise, seed_org, seed_products
    from casework.demo.cases import verify_representative
    from contracts.models import Contract
    from contracts.services import signing_code_send
    from loanservice.api import applicant_register

    if not LoanProduct.objects.filter(code="xinmiaodai").exists():
        seed_products()
        seed_org("demo-pass")

    stamp = int(time.time())
    steps: dict[str, list[tuple[float, int]]] = {"accept": [], "sign": [], "complete": []}
    profiles = {k: cProfile.Profile() for k in steps} if args.cprofile else {}
    pyinst = {}
    if args.html:
        from pyinstrument import Profiler

        pyinst = {k: Profiler(interval=0.0005) for k in steps}

    def timed(name: str, fn, record: bool):
        prof, pi = profiles.get(name), pyinst.get(name)
        with CaptureQueriesContext(connection) as ctx:
            if record and pi:
                pi.start()
            if record and prof:
                prof.enable()
            t0 = time.process_time()
            out = fn()
            cpu = time.process_time() - t0
            if record and prof:
                prof.disable()
            if record and pi:
                pi.stop()
        if record:
            steps[name].append((cpu, len(ctx)))
        return out

    warmup = 2
    for i in range(args.n + warmup):
        owner = applicant_register(username=f"prof_ft_{stamp}_{i}", password="Bench-pass-2024", phone="13800000000",
                                   email=f"pft{i}@bench.example")
        enterprise = _enterprise(owner, 6000 + (stamp % 1000) * 50 + i, "prime", f"剖析企业{stamp % 1000}{i}", grades="AB")
        verify_representative(owner, enterprise)
        application = _draft(owner, enterprise, "xinmiaodai", "300000", 12, "equal_installment")
        lifecycle.application_submit(application_id=application.pk, user=owner)
        lifecycle.score_and_route(application.pk)
        application.refresh_from_db()
        if application.status != "approved":
            print("not approved:", application.status)
            continue
        record = i >= warmup
        timed("accept", lambda a=application, u=owner: lifecycle.offer_accept(application_id=a.pk, user=u), record)
        contract = Contract.objects.filter(application=application, kind="loan").get()
        _verification, code = signing_code_send(application=application, user=owner)
        timed("sign", lambda c=contract, u=owner, code=code: lifecycle.contract_sign(
            contract_id=c.pk, user=u, party="borrower", sms_code=code), record)
        status = timed("complete", lambda c=contract: lifecycle.fast_track_complete(c.pk), record)
        if status != "disbursed":
            print("not disbursed:", status)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    for name, rows in steps.items():
        cpu = [c for c, _ in rows]
        if cpu:
            print(f"{name:9s} n={len(cpu)} CPU p50 {statistics.median(cpu) * 1000:.1f} ms, min {min(cpu) * 1000:.1f}, "
                  f"max {max(cpu) * 1000:.1f}; queries {statistics.median([q for _, q in rows]):.0f}")
    for name, prof in profiles.items():
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(args.cprofile)
        print(f"==== {name} (cumulative)\n{out.getvalue()}")
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.cprofile)
        print(f"==== {name} (own time)\n{out.getvalue()}")
    if pyinst:
        base = Path(args.html)
        base.parent.mkdir(parents=True, exist_ok=True)
        for name, pi in pyinst.items():
            Path(f"{base}-{name}.html").write_text(pi.output_html())
            Path(f"{base}-{name}.txt").write_text(pi.output_text(unicode=True, show_all=False))


if __name__ == "__main__":
    main()
