"""SLA breach escalation by the beat's `sla-check` task, executed by a real Celery worker on Redis."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from tests.approvals_support import fast_passwords  # noqa: F401
from tests.conftest import using_postgres

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_passwords"),
    pytest.mark.skipif(not (os.environ.get("REDIS_URL") and using_postgres()), reason="needs REDIS_URL and Postgres (CI sets both)"),
]


def test_beat_entry_breaches_and_escalates_on_a_real_worker(org, settings):
    from django.utils import timezone

    from config.celery import app as celery_app
    from loanservice.models import AuditEvent, Notification, SlaClock
    from loanservice.sla import sla_clock_start
    from tests.worker import celery_worker, wait_for

    entry = settings.CELERY_BEAT_SCHEDULE["sla-check"]
    assert entry["schedule"] <= 600  # "every few minutes"
    rm, supervisor = org["demo_rm"], org["demo_branch_approver"]
    clock = sla_clock_start(case_id=920001, stage="due_diligence", owner=rm, now=timezone.now() - dt.timedelta(days=20))
    celery_app.conf.task_always_eager = False
    with celery_worker():
        # What beat does on each tick: publish the entry's task by name for a worker to run.
        celery_app.send_task(entry["task"])
        breached = wait_for(lambda: SlaClock.objects.filter(pk=clock.pk, breached_at__isnull=False).exists())
    assert breached
    clock.refresh_from_db()
    assert clock.escalated_to == supervisor
    assert Notification.objects.filter(user=rm, kind="sla_breach").exists()
    assert Notification.objects.filter(user=supervisor, kind="sla_escalation").exists()
    assert AuditEvent.objects.get(action="sla.breach", object_id=str(clock.pk)).actor_label == "system"
