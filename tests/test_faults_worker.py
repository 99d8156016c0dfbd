"""A worker killed (SIGKILL) in the middle of scoring and in the middle of a fast-track disbursement: the
task runs again and its effect happens exactly once. The worker is made to stop mid-task by a table lock
held from a second connection, so the kill lands inside the task's transaction, not before or after it."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.utils import timezone

from tests.conftest import borrower_sign_via_api, client_for, draft_via_api, using_postgres
from tests.factories import ApplicantFactory, uscc_for
from tests.faults import pg_side_connection, waiting_on_lock
from tests.worker import wait_for

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not (os.environ.get("REDIS_URL") and using_postgres()), reason="needs REDIS_URL and Postgres (CI sets both)"),
]


def _events(pk, action):
    from loanservice.models import AuditEvent

    return AuditEvent.objects.filter(object_type="applications.loanapplication", object_id=str(pk), action=action).count()


def _alive(monitor, pids) -> list[int]:
    with monitor.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", [list(pids)])
        return [r[0] for r in cur.fetchall()]


def _kill_mid_task(table: str, trigger):
    """Start a worker, lock `table` against writes, `trigger()` the task, wait until the worker blocks on the
    lock inside the task, SIGKILL it, release the lock."""
    from tests.worker import celery_worker

    side = pg_side_connection()  # holds the lock in its transaction
    monitor = pg_side_connection()  # watches in autocommit (pg_stat_activity is a snapshot within a transaction)
    monitor.autocommit = True
    try:
        with celery_worker(concurrency=1) as worker:
            with side.cursor() as cur:
                cur.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")  # reads go on; the task's write waits
            trigger()
            blocked = wait_for(lambda: waiting_on_lock(monitor, exclude_pid=side.get_backend_pid()), timeout=120)
            if not blocked:
                worker.kill()
                raise AssertionError("the worker never reached the locked write:\n"
                                     + worker.stdout.read().decode(errors="replace")[-3000:])
            worker.kill()  # SIGKILL: no clean-up, no ack
            worker.wait(timeout=10)
        # Postgres notices the dead client once its backend stops waiting: release the lock, and the orphaned
        # backend fails to answer and ends, its transaction rolled back (nothing of the killed run commits).
        side.rollback()
        assert wait_for(lambda: not _alive(monitor, blocked), timeout=30), "the killed worker's backend lingers"
    finally:
        side.rollback()
        side.close()
        monitor.close()


def test_worker_killed_mid_scoring_rescored_exactly_once(products, org):
    from applications.models import LoanApplication
    from casework import lifecycle
    from casework.sweeper import sweep
    from config.celery import app as celery_app
    from tests.worker import celery_worker
    from underwriting.models import Score

    celery_app.conf.task_always_eager = False
    client = client_for(ApplicantFactory(username="owner1"))
    pk = draft_via_api(client, uscc=uscc_for("AB", seed=23), seed=23)

    def submit():
        r = client.post(f"/api/v1/applications/{pk}/submit/")
        assert r.status_code == 200 and r.json()["status"] == "under_review", r.content

    _kill_mid_task(Score._meta.db_table, submit)
    application = LoanApplication.objects.get(pk=pk)
    assert application.status == "under_review" and application.route == ""  # nothing of the killed run remains
    assert Score.objects.filter(application_id=pk).count() == 0

    with celery_worker():
        assert sweep(now=timezone.now() + dt.timedelta(minutes=5))["rescored"] == 1
        assert wait_for(lambda: LoanApplication.objects.get(pk=pk).route) == "auto"
    # The original message, redelivered after the broker's visibility timeout, finds the work done.
    assert lifecycle.score_and_route(pk) == "approved"
    assert Score.objects.filter(application_id=pk, is_shadow=False).count() == 1
    assert _events(pk, "application.approve") == 1


def test_worker_killed_mid_disbursement_releases_exactly_once(products, org):
    from applications.models import LoanApplication
    from casework import lifecycle
    from casework.sweeper import sweep
    from config.celery import app as celery_app
    from contracts.models import Contract, DisbursementOrder
    from postloan.models import Loan
    from tests.worker import celery_worker

    owner = ApplicantFactory(username="owner1")
    client = client_for(owner)
    pk = draft_via_api(client, uscc=uscc_for("AB", seed=24), seed=24)
    assert client.post(f"/api/v1/applications/{pk}/submit/").status_code == 200
    assert LoanApplication.objects.get(pk=pk).status == "approved"  # scored eagerly: this test is about the release
    contract = client.post(f"/api/v1/applications/{pk}/accept-offer/").json()["contract"]
    celery_app.conf.task_always_eager = False

    def sign():
        r = borrower_sign_via_api(client, contract)
        assert r.status_code == 200 and r.json()["status"] == "borrower_signed", r.content

    _kill_mid_task(Loan._meta.db_table, sign)
    assert not Loan.objects.filter(application_id=pk).exists()
    assert LoanApplication.objects.get(pk=pk).status in ("contracting", "signed")

    with celery_worker():
        swept = sweep(now=timezone.now() + dt.timedelta(minutes=5))
        assert swept["resealed"] + swept["released"] == 1, swept
        assert wait_for(lambda: LoanApplication.objects.get(pk=pk).status == "disbursed")
    assert lifecycle.fast_track_complete(contract) == "disbursed"  # the redelivered original: nothing doubled
    assert Loan.objects.filter(application_id=pk).count() == 1
    assert DisbursementOrder.objects.filter(application_id=pk, status=DisbursementOrder.Status.RELEASED).count() == 1
    assert Contract.objects.get(pk=contract).signatures.filter(party="bank").count() == 1
    assert _events(pk, "application.mark_disbursed") == 1
