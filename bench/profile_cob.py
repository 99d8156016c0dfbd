"""Where close of business spends its time per loan: one partition of the seeded bench book (bench_cob's) closed for
one day in this process, inside a transaction that is rolled back afterwards (so it can be run again on the same
book), with the queries counted per step and per chunk, the CPU time of this process per loan, and optionally a
pyinstrument profile.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> .venv/bin/python bench/profile_cob.py [--loans 500] [--html out.html]

Run bench_cob.py once first (it seeds the book and closes two days); this closes the next day again and again.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from django.db import connection, transaction  # noqa: E402

from bench.bench_nightly import PREFIX  # noqa: E402, F401 - sets up Django


class Rollback(Exception):
    pass


_pid: list[int] = []


def backend_cpu() -> float:
    """CPU seconds the Postgres backend serving this connection has used (it runs on this machine: /proc)."""
    if not _pid:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            _pid.append(cur.fetchone()[0])
    pid = _pid[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _table(sql: str) -> str:
    verb = sql.split(None, 1)[0].upper()
    m = re.search(r'(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', sql, re.I)
    return f"{verb} {m.group(1) if m else '?'}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loans", type=int, default=500, help="loans in the partition closed (the default partition size)")
    parser.add_argument("--html", help="write a pyinstrument profile to this file")
    parser.add_argument("--chunk", type=int, help="loans closed in one transaction (postloan.cob.CHUNK)")
    parser.add_argument("--cprofile", type=int, default=0, help="print this many functions by CPU time (cProfile)")
    parser.add_argument("--pg-by-statement", action="store_true",
                        help="the Postgres backend's CPU by statement kind (read from /proc around each statement: in clock "
                             "ticks, so only sums over many statements mean anything; adds a query per statement)")
    parser.add_argument("--overdue-only", action="store_true", help="only loans with an unpaid installment due (the ~8 %%)")
    args = parser.parse_args()
    from loanservice.business_date import business_date
    from postloan import cob
    from postloan.models import CobPartition, CobRun, Installment, Loan

    if args.chunk:
        cob.CHUNK = args.chunk
    on = business_date()  # the next day to close
    ids = Loan.objects.filter(status="active", accrued_through__lt=on).order_by("pk")
    if args.overdue_only:
        ids = ids.filter(pk__in=Installment.objects.filter(settled_on__isnull=True, superseded=False, due_date__lte=on)
                         .values("loan_id"))
    ids = list(ids.values_list("pk", flat=True)[:args.loans])
    if not ids:
        sys.exit("No loan to close: run bench/bench_cob.py first.")
    counts: collections.Counter = collections.Counter()
    pg_cpu: collections.Counter = collections.Counter()  # statement kind → its backend's CPU seconds (--pg-by-statement)

    def count(execute, sql, params, many, context):
        counts[_table(sql)] += 1
        if not args.pg_by_statement:
            return execute(sql, params, many, context)
        before = backend_cpu()
        try:
            return execute(sql, params, many, context)
        finally:
            pg_cpu[_table(sql)] += backend_cpu() - before

    profiler = cpu_profile = None
    if args.cprofile:
        import cProfile

        cpu_profile = cProfile.Profile(time.process_time)
    if args.html:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
    try:
        with transaction.atomic():
            CobRun.objects.filter(status="running").update(status="done")
            run = CobRun.objects.create(from_date=on, until=on, total=len(ids))
            part = CobPartition.objects.create(run=run, lo=ids[0], hi=ids[-1], total=len(ids))
            CobPartition.objects.create(run=run, lo=ids[-1] + 1, hi=ids[-1] + 1, total=0)  # so this one does not finish the run
            cpu, wall, db_cpu = time.process_time(), time.perf_counter(), backend_cpu()
            if profiler:
                profiler.start()
            if cpu_profile:
                cpu_profile.enable()
            with connection.execute_wrapper(count):
                cob.cob_partition_run(partition_id=part.pk)
            if cpu_profile:
                cpu_profile.disable()
            if profiler:
                profiler.stop()
            cpu, wall, db_cpu = time.process_time() - cpu, time.perf_counter() - wall, backend_cpu() - db_cpu
            # what the commit would add: the deferred balance trigger on every journal line inserted (run now)
            trigger_cpu = backend_cpu()
            with connection.cursor() as cur:
                cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            trigger_cpu = backend_cpu() - trigger_cpu
            raise Rollback
    except Rollback:
        pass
    n, queries = len(ids), sum(counts.values())
    print(f"the deferred balance checks a commit would run: {trigger_cpu * 1000 / n:.2f} ms Postgres a loan (not in the figures below)")
    print(f"closed {n} loans for {on}: {queries} queries ({queries / n:.2f} a loan, {queries / -(-n // cob.CHUNK):.0f} a chunk "
          f"of {cob.CHUNK}); CPU a loan: {cpu * 1000 / n:.2f} ms here + {db_cpu * 1000 / n:.2f} ms Postgres; "
          f"{wall * 1000 / n:.2f} ms wall a loan")
    for key, k in counts.most_common(25):
        print(f"  {k:6d}  {key}" + (f"  {pg_cpu[key] * 1000 / n:.3f} ms Postgres a loan" if args.pg_by_statement else ""))
    if cpu_profile:
        import pstats

        stats = pstats.Stats(cpu_profile).sort_stats(os.environ.get("PROFILE_SORT", "cumulative"))
        stats.print_stats(args.cprofile)
        if os.environ.get("PROFILE_CALLEES"):
            stats.print_callees(os.environ["PROFILE_CALLEES"])
    if profiler:
        Path(args.html).write_text(profiler.output_html())
        print(profiler.output_text(unicode=True, show_all=bool(os.environ.get("PROFILE_ALL")))[:int(os.environ.get("PROFILE_CHARS", "6000"))])


if __name__ == "__main__":
    main()
