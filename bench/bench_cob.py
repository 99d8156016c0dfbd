"""Close of business (日终) at portfolio scale: seeds N active loans (bench_nightly's book, COPY) into the Postgres
database of DATABASE_URL, then closes one day with W worker processes working the partitions in parallel, and a
second day; prints loans/s. Each loan: row lock, accrual entry in the ledger, days past due and floors, and its
expected credit loss (every loan on the first day, when none was measured yet, and at a month end; afterwards only
the loans whose stage changed); the run ends with the sub-ledger ↔ GL reconciliation of the whole book.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/bench_cob.py [--loans 10000] [--workers 2] [--reseed]
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.bench_nightly import PREFIX, seed  # noqa: E402 - sets up Django


def _work(partition_ids: list[int]) -> int:
    from postloan.cob import cob_partition_run

    connections.close_all()
    for pk in partition_ids:
        cob_partition_run(partition_id=pk)
    connections.close_all()
    return len(partition_ids)


def close_day(until: dt.date, workers: int) -> tuple[float, int]:
    from postloan import cob

    cob.dispatch_on_commit = lambda *a, **k: None  # the pool below plays the Celery workers
    run = cob.cob_start(until=until, by=None)
    parts = list(run.partitions.values_list("pk", flat=True))
    connections.close_all()
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(_work, [parts[k::workers] for k in range(workers)])
    elapsed = time.perf_counter() - started
    run.refresh_from_db()
    assert run.status == "done", run.status
    return elapsed, run.total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loans", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a Postgres database.")
    from ledger.models import JournalEntry
    from loanservice.business_date import business_date_set
    from postloan.models import CobReconciliation, Loan, LoanProvision

    call_command("migrate", verbosity=0)
    if args.reseed:
        call_command("flush", interactive=False, verbosity=0)
    existing = Loan.objects.filter(enterprise__name__startswith=PREFIX).count()
    if existing != args.loans:
        if existing:
            sys.exit(f"{existing:,} bench loans exist; run with --reseed to start over with {args.loans:,}.")
        seed(args.loans)
    today = timezone.localdate()
    Loan.objects.filter(status="active").update(accrued_through=today - dt.timedelta(days=2))
    business_date_set(today - dt.timedelta(days=1))
    settings.ALLOW_SIMULATED_BUSINESS_DATE = True  # the second day is today: the bench simulates its end
    for label, until in (("close of business", today - dt.timedelta(days=1)), ("next day", today)):
        entries, provisions = JournalEntry.objects.count(), LoanProvision.objects.count()
        seconds, loans = close_day(until, args.workers)
        recon = CobReconciliation.objects.order_by("-id").first()
        print(f"{label} {until}: {seconds:.2f} s for {loans:,} loans with {args.workers} workers "
              f"({loans / seconds:,.0f} loans/s); {JournalEntry.objects.count() - entries:,} entries posted, "
              f"{LoanProvision.objects.count() - provisions:,} ECL measurements; reconciliation "
              f"{'balanced' if recon and recon.balanced else recon.difference_count if recon else '—'}", flush=True)
        started = time.perf_counter()
        from postloan.reconciliation import reconcile

        reconcile(on=until)
        print(f"  reconciliation of the whole book alone: {time.perf_counter() - started:.2f} s", flush=True)


if __name__ == "__main__":
    main()
