"""Close of business (日终) at portfolio scale: seeds N active loans (bench_nightly's book, COPY, with each loan's
disbursement in the GL so the reconciliation balances, its own settlement account, and auto-debit off for the ~8 %
in arrears so they stay overdue) into the Postgres database of DATABASE_URL, then, for each
worker count asked, copies that database (createdb -T) and closes two days on the copy with W worker processes
working the partitions in parallel: the first day (every loan accrues, ~8 % are overdue and accrue penalty, the loans
due are auto-debited, and every loan's expected credit loss is measured, none having been yet) and the next day (the
same, ECL only for the loans whose stage moved). Each copy starts from the same book, so the figures of 1 and 2
workers compare. Prints, per day: seconds, loans/s, queries a loan and CPU a loan (the worker processes and their
Postgres backends, from /proc: this box runs both) and the load average, which says how noisy the wall clock was.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> .venv/bin/python bench/bench_cob.py --loans 100000 --workers 1,2

The seed stays in <db> (pass --reseed to seed again); the copies are <db>_w1, <db>_w2, dropped afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.dummy.EmailBackend")  # the alarm mails are not measured
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.bench_nightly import PREFIX, seed  # noqa: E402 - sets up Django


def _backend_cpu() -> float:
    """CPU seconds of the Postgres backend serving this process's connection (same machine: /proc)."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _work(partition_ids: list[int]) -> tuple[int, float, float]:
    """One worker process: its partitions one after the other, as a Celery worker would. Returns its queries, its
    CPU seconds and its Postgres backend's CPU seconds."""
    from postloan.cob import cob_partition_run

    connections.close_all()
    queries = 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    cpu, db_cpu = time.process_time(), _backend_cpu()
    with connection.execute_wrapper(count):
        for pk in partition_ids:
            cob_partition_run(partition_id=pk)
    cpu, db_cpu = time.process_time() - cpu, _backend_cpu() - db_cpu
    connections.close_all()
    return queries, cpu, db_cpu


def close_day(until: dt.date, workers: int) -> dict:
    from postloan import cob

    cob.dispatch_on_commit = lambda *a, **k: None  # the pool below plays the Celery workers
    run = cob.cob_start(until=until, by=None)
    parts = list(run.partitions.values_list("pk", flat=True))
    connections.close_all()
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        # each worker takes the next partition as it finishes one (imap_unordered, one at a time), like Celery's
        # prefetch of 1; the run's last partition closes the run (reconciliation included) in the worker
        done = list(pool.imap_unordered(_work, [[pk] for pk in parts], chunksize=1))
    elapsed = time.perf_counter() - started
    run.refresh_from_db()
    assert run.status == "done", run.status
    return {"seconds": elapsed, "loans": run.total, "queries": sum(x[0] for x in done), "cpu": sum(x[1] for x in done),
            "db_cpu": sum(x[2] for x in done)}


def _opening_entries() -> None:
    """The seeded loans' disbursements in the GL (what loan_open posts), so the sub-ledger reconciles to it."""
    from ledger.models import JournalEntry
    from ledger.selectors import posting_batch
    from ledger.services import entries_post
    from postloan.models import Loan
    from postloan.services import _entry

    if JournalEntry.objects.filter(kind="disbursement").exists():
        return
    loans = list(Loan.objects.filter(status="active").only("pk", "branch_id", "product_code", "principal", "disbursed_on",
                                                           "outstanding_principal"))
    first = timezone.localdate() - dt.timedelta(days=2)  # the book is closed through here (a loan disbursed since too)
    with posting_batch():  # the account mapping and the period read once
        entries = [_entry(x, kind="disbursement", on=min(x.disbursed_on, first), key=f"loan:{x.pk}:disbursement",
                          loan_principal=("Dr", x.outstanding_principal), settlement=("Cr", x.outstanding_principal))
                   for x in loans]  # the seed leaves paid principal out of the book: the outstanding is what is owed
        for k in range(0, len(entries), 5000):
            entries_post(entries[k:k + 5000])
    print(f"  opening entries: {len(entries):,}", flush=True)


def prepare(loans: int, reseed: bool) -> None:
    """The seed database: N bench loans, each closed through the day before yesterday."""
    from django.db.models import CharField, Value
    from django.db.models.functions import Cast, Concat

    from contracts.models import DisbursementOrder
    from loanservice.business_date import business_date_set
    from postloan.models import Installment, Loan

    call_command("migrate", verbosity=0)
    if reseed:
        call_command("flush", interactive=False, verbosity=0)
    existing = Loan.objects.filter(enterprise__name__startswith=PREFIX).count()
    if existing != loans:
        if existing:
            sys.exit(f"{existing:,} bench loans exist; run with --reseed to start over with {loans:,}.")
        seed(loans)
    _opening_entries()
    today = timezone.localdate()
    # Each borrower its own settlement account (the sandbox's funds are dice on the account and the date: about 70 %
    # of the loans due are debited in full, 15 % in part, 15 % not), and the ~8 % in arrears keep no money there: their
    # auto-debit is off, so they stay overdue and accrue penalty every day, as the day the goal names has them.
    DisbursementOrder.objects.filter(application__enterprise__name__startswith=PREFIX).exclude(account__startswith="bench-") \
        .update(account=Concat(Value("bench-"), Cast("pk", CharField())))
    arrears = Installment.objects.filter(settled_on__isnull=True, superseded=False, due_date__lt=today - dt.timedelta(days=2))
    Loan.objects.filter(pk__in=arrears.values("loan_id")).update(auto_debit=False)
    Loan.objects.filter(status="active").update(accrued_through=today - dt.timedelta(days=2))
    business_date_set(today - dt.timedelta(days=1))
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")


def run_days(workers: int) -> None:
    """Close yesterday and today (simulated) on this database with `workers` processes; print the figures."""
    from ledger.models import JournalEntry
    from postloan.models import CobReconciliation, LoanProvision

    settings.ALLOW_SIMULATED_BUSINESS_DATE = True  # the second day is today: the bench simulates its end
    today = timezone.localdate()
    for label, until in (("first day", today - dt.timedelta(days=1)), ("next day", today)):
        entries, provisions = JournalEntry.objects.count(), LoanProvision.objects.count()
        load = os.getloadavg()[0]
        f = close_day(until, workers)
        recon = CobReconciliation.objects.order_by("-id").first()
        n = f["loans"]
        print(f"{workers} worker(s), {label} {until}: {f['seconds']:.2f} s for {n:,} loans ({n / f['seconds']:,.0f} loans/s); "
              f"{f['queries'] / n:.2f} queries a loan; CPU a loan {f['cpu'] * 1000 / n:.2f} ms workers + "
              f"{f['db_cpu'] * 1000 / n:.2f} ms their Postgres backends; {JournalEntry.objects.count() - entries:,} entries, "
              f"{LoanProvision.objects.count() - provisions:,} ECL measurements; reconciliation "
              f"{'balanced' if recon and recon.balanced else f'{recon.difference_count} differences' if recon else '—'}; "
              f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loans", type=int, default=10_000)
    parser.add_argument("--workers", default="2", help="worker counts to compare, e.g. 1,2 (each on its own copy of the seed)")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the copies (<db>_w<W>) for a look afterwards")
    parser.add_argument("--run", action="store_true", help=argparse.SUPPRESS)  # the child: close the days on this database
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a Postgres database.")
    if args.run:
        run_days(int(args.workers))
        return
    prepare(args.loans, args.reseed)
    s = connection.settings_dict
    name, pg = s["NAME"], ["-h", s["HOST"] or "127.0.0.1", "-p", str(s["PORT"] or 5432), "-U", s["USER"] or "postgres"]
    connections.close_all()  # createdb -T needs the seed database without connections
    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    for workers in [int(x) for x in args.workers.split(",")]:
        copy = f"{name}_w{workers}"
        subprocess.run(["dropdb", *pg, "--if-exists", "--force", copy], check=True)
        started = time.perf_counter()
        subprocess.run(["createdb", *pg, "-T", name, copy], check=True)
        print(f"copy {copy} of the seeded book: {time.perf_counter() - started:.1f} s", flush=True)
        try:
            subprocess.run([sys.executable, __file__, "--run", "--workers", str(workers)], check=True,
                           env={**os.environ, "DATABASE_URL": f"{base}/{copy}"})
        finally:
            if not args.keep:
                subprocess.run(["dropdb", *pg, "--if-exists", "--force", copy], check=True)


if __name__ == "__main__":
    main()
