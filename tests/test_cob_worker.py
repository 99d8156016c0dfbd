"""Close of business over two real worker processes, one of them killed (SIGKILL) in the middle of its partition:
every loan is closed exactly once for each date (one accrual per stretch, one auto-debit, one repayment, the
sub-ledger equal to the GL) and the run completes once the killed worker's partition is delivered again.

The workers are made to stop inside their partitions' transactions by a lock on the journal table held from a second
connection (the first write of a partition is a journal entry), so the kill lands mid-partition, not between two."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import pytest

from tests.conftest import using_postgres
from tests.factories import ApplicantFactory, FastTrackLoanFactory
from tests.faults import pg_side_connection, waiting_on_lock
from tests.worker import wait_for

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not (os.environ.get("REDIS_URL") and using_postgres()), reason="needs REDIS_URL and Postgres (CI sets both)"),
]


def test_cob_over_two_workers_one_killed_mid_partition_closes_every_loan_once(products, org, settings):
    from config.celery import app as celery_app
    from ledger.models import JournalEntry
    from ledger.selectors import account_balance
    from loanservice.business_date import business_date
    from postloan.cob import cob_partition_task, cob_start
    from postloan.models import AutoDebitAttempt, CobReconciliation, Loan, Repayment
    from postloan.services import interest_receivable
    from tests.worker import celery_worker

    settings.ALLOW_SIMULATED_BUSINESS_DATE = True
    settings.COB_PARTITION_SIZE = 2
    loans = [FastTrackLoanFactory(owner=ApplicantFactory(username=f"cobw{k}"), seed=140 + k, amount="120000.00")
             for k in range(4)]
    first_due = max(x.installments.order_by("n").first().due_date for x in loans)
    until = first_due + dt.timedelta(days=3)  # through the first due date: accrual, the due-date adjustment, auto-debit
    celery_app.conf.task_always_eager = False

    side = pg_side_connection()  # holds the journal table against writes while the workers start their partitions
    monitor = pg_side_connection()
    monitor.autocommit = True
    env = {"CORE_BANKING_SANDBOX_FUNDS": "full", "ALLOW_SIMULATED_BUSINESS_DATE": "1"}
    try:
        with celery_worker(concurrency=1, name="cob-a", extra_env=env) as worker_a, \
                celery_worker(concurrency=1, name="cob-b", extra_env=env, purge=False):
            with side.cursor() as cur:
                cur.execute(f"LOCK TABLE {JournalEntry._meta.db_table} IN EXCLUSIVE MODE")
            run = cob_start(until=until, by=None)  # two partitions, one task each, sent on commit
            assert run.partitions.count() == 2
            blocked = wait_for(lambda: len(waiting_on_lock(monitor, exclude_pid=side.get_backend_pid())) >= 2, timeout=120)
            assert blocked, "the two workers never both reached the locked journal"
            worker_a.kill()  # SIGKILL: no clean-up, no ack; its partition's transaction dies with it
            worker_a.wait(timeout=10)
            side.rollback()  # the other worker goes on; the killed worker's backend fails and rolls back
            run.refresh_from_db()
            assert wait_for(lambda: run.partitions.filter(finished_at__isnull=False).count() == 1, timeout=120)
            stuck = run.partitions.get(finished_at__isnull=True)
            assert stuck.done == 0  # nothing of the killed run committed
            run.refresh_from_db()
            assert run.status == "running" and business_date() <= until
            # What the broker does once the visibility timeout passes: the unacknowledged task is delivered again.
            cob_partition_task.delay(stuck.pk)
            assert wait_for(lambda: type(run).objects.get(pk=run.pk).status == "done", timeout=180)
    finally:
        side.rollback()
        side.close()
        monitor.close()

    run.refresh_from_db()
    assert run.partitions.filter(finished_at__isnull=True).count() == 0
    assert business_date() == until + dt.timedelta(days=1)
    for loan in Loan.objects.filter(pk__in=[x.pk for x in loans]):
        assert loan.accrued_through == until
        ref = f"loan:{loan.pk}"
        first, second = list(loan.installments.order_by("n")[:2])
        assert first.settled_on == first.due_date <= until  # debited once, in full, on its due date
        assert AutoDebitAttempt.objects.filter(loan=loan).count() == 1
        repayment = Repayment.objects.get(loan=loan, channel="auto_debit")
        assert JournalEntry.objects.filter(key=f"repayment:{repayment.pk}").count() == 1
        # interest earned once: the first period's scheduled interest, then the second's to the day (actual/360)
        expected = loan.outstanding_principal * loan.annual_rate * (until - first.nominal).days / 360
        assert abs(second.interest_accrued - expected) <= Decimal("0.01")
        earned = sum((account_balance(account=a, on=until, reference=ref) for a in ("6011", "2221")), Decimal(0))
        assert earned == first.interest + second.interest_accrued
        assert account_balance(account="1132", on=until, reference=ref) == interest_receivable(loan.installments.all())
    recon = CobReconciliation.objects.get(run=run)
    assert recon.balanced, recon.differences
