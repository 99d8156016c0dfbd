"""Two queues: the cases' own tasks on `celery`, the night's and the schedule's on `batch`, each with its own worker
in production, so a close-of-business chunk never waits in front of a fast-track case (config/settings.py)."""

from __future__ import annotations

import datetime as dt
import os
import time

import pytest

from tests.approvals_support import fast_passwords  # noqa: F401
from tests.conftest import using_postgres

CASE_TASKS = ["loanservice.tasks.score_and_route", "loanservice.tasks.fast_track_complete",
              "contracts.tasks.core_banking_send", "contracts.tasks.contract_signatures_prepare",
              "ledger.tasks.voucher_batch_send", "loanservice.tasks.outbox_sweep"]


def _queue_of(name: str) -> str:
    from config.celery import app

    return app.amqp.router.route({}, name)["queue"].name


def test_every_batch_name_is_a_task_and_the_schedule_runs_on_the_batch_queue(settings):
    from config.celery import app

    app.loader.import_default_modules()
    # A renamed task would silently fall back to the intake queue: every routed name must exist.
    assert set(settings.CELERY_BATCH_TASKS) <= set(app.tasks)
    for key, entry in settings.CELERY_BEAT_SCHEDULE.items():
        # The sweeper re-publishes cases' lost tasks: it stays beside them, on the intake queue.
        expected = "celery" if key == "outbox-sweep" else "batch"
        assert _queue_of(entry["task"]) == expected, key
    assert _queue_of("postloan.tasks.cob_partition") == "batch"  # close of business's chunks, dispatched by cob_nightly
    for name in CASE_TASKS:
        assert name in app.tasks and _queue_of(name) == "celery", name


def test_each_queue_has_its_own_routing_key():
    """Both queues sit on the default direct exchange; one binding key each, so a message lands in one list only
    (a queue declared without its key would be bound with the default one and receive the intake's messages too)."""
    from config.celery import app

    keys = {q.name: q.routing_key for q in app.amqp.queues.values()}
    assert keys == {"celery": "celery", "batch": "batch"}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_passwords")
@pytest.mark.skipif(not (os.environ.get("REDIS_URL") and using_postgres()), reason="needs REDIS_URL and Postgres (CI sets both)")
def test_the_intake_worker_leaves_batch_work_to_the_batch_worker(org, settings):
    from django.utils import timezone

    from config.celery import app as celery_app
    from loanservice.models import SlaClock
    from loanservice.sla import sla_clock_start
    from tests.worker import celery_worker, wait_for

    rm = org["demo_rm"]
    clock = sla_clock_start(case_id=920101, stage="due_diligence", owner=rm, now=timezone.now() - dt.timedelta(days=20))
    celery_app.conf.task_always_eager = False
    with celery_worker(queues=("celery",), name="intake"):
        celery_app.send_task(settings.CELERY_BEAT_SCHEDULE["sla-check"]["task"])  # what beat does on its tick
        with celery_app.connection_for_write() as conn:
            waiting = wait_for(lambda: conn.default_channel.client.llen("batch") == 1, timeout=5)
            assert waiting and conn.default_channel.client.llen("celery") == 0
        time.sleep(1.5)  # the intake worker is up and idle: it must not take the batch queue's message
        assert not SlaClock.objects.filter(pk=clock.pk, breached_at__isnull=False).exists()
    with celery_worker(queues=("batch",), name="batch", purge=False):
        assert wait_for(lambda: SlaClock.objects.filter(pk=clock.pk, breached_at__isnull=False).exists())
