"""Where the fast track's contract steps spend their CPU (issue #20): for each of N fast-track cases made through the
real services, the three steps after approval — accepting the offer (renders the contract PDFs), the borrower's
signature (the enterprise's PAdES signature), and the worker's fast_track_complete (the bank's seal, the release,
the Loan) — each timed with `time.process_time()` (this process's CPU, not Postgres's) with its statements
counted; `--cprofile N` prints the N costliest functions of each step, `--html` writes pyinstrument reports.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> .venv/bin/python bench/profile_fast_track.py \\
        [--n 10] [--cprofile 25 | --html var/bench/ft]

Migrates the given database and seeds the products if needed; every case is a new enterprise. Tasks dispatched on
commit are not sent anywhere (loanservice.dispatch._send is replaced by a no-op): the script runs the worker's
steps itself, so that each step is measured alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench.common import CpuMeter  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--cprofile", type=int, default=0)
    ap.add_argument("--html", default="")
    args = ap.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

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
    steps = ("accept", "sign", "complete")
    meter = CpuMeter(cprofile=bool(args.cprofile), pyinstrument=bool(args.html))

    def timed(name: str, fn, record: bool):
        return meter.call(name, fn, record=record)

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
    for name in steps:
        s = meter.summary(name)
        if s["n"]:
            print(f"{name:9s} n={s['n']} CPU p50 {s['cpu_ms_median']:.1f} ms, min {s['cpu_ms_min']:.1f}, "
                  f"max {s['cpu_ms_max']:.1f}; queries {s['queries_median']:.0f}")
    for name in meter.cprofiles:
        print(meter.cprofile_text(name, args.cprofile))
    for name in meter.pyinstruments:
        meter.pyinstrument_write(name, Path(f"{args.html}-{name}"))


if __name__ == "__main__":
    main()
