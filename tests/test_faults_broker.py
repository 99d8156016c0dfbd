"""Redis down while an applicant submits: the submission succeeds, nothing is lost and nothing doubled:
the sweeper (tasks.outbox_sweep) dispatches the scoring once the broker is back, with nobody re-submitting."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.utils import timezone

from tests.conftest import client_for, draft_via_api, using_postgres
from tests.factories import ApplicantFactory, uscc_for
from tests.faults import broker_down

pytestmark = pytest.mark.django_db(transaction=True)


def _counts(pk):
    from loanservice.models import AuditEvent
    from underwriting.models import Score

    events = AuditEvent.objects.filter(object_type="applications.loanapplication", object_id=str(pk))
    return {"scores": Score.objects.filter(application_id=pk, is_shadow=False).count(),
            "approved": events.filter(action="application.approve").count(),
            "submitted": events.filter(action="application.submit").count()}


def _submit_while_broker_down(pk, client, caplog):
    from applications.models import LoanApplication

    with broker_down(), caplog.at_level("WARNING", logger="loanservice.dispatch"):
        r = client.post(f"/api/v1/applications/{pk}/submit/")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "under_review" and r.json()["prescreen"]["passed"] is True
    assert any("sweeper" in rec.getMessage() for rec in caplog.records)  # the failed dispatch is logged, not raised
    application = LoanApplication.objects.get(pk=pk)
    assert application.status == "under_review" and application.route == "" and application.scoring_requested_at
    assert _counts(pk) == {"scores": 0, "approved": 0, "submitted": 1}


def test_broker_down_at_submit_then_swept_once_it_is_back(products, org, caplog):
    from applications.models import LoanApplication
    from casework import tasks

    client = client_for(ApplicantFactory(username="owner1"))
    pk = draft_via_api(client, uscc=uscc_for("AB", seed=21), seed=21)
    _submit_while_broker_down(pk, client, caplog)

    # Within the grace period the sweeper leaves the case alone (its task may still be on its way).
    assert tasks.outbox_sweep()["rescored"] == 0
    assert LoanApplication.objects.get(pk=pk).route == ""

    # The broker is back (eager here: the task runs as the worker would); the sweep dispatches it once.
    from casework.sweeper import sweep

    assert sweep(now=timezone.now() + dt.timedelta(minutes=5))["rescored"] == 1
    assert LoanApplication.objects.get(pk=pk).status == "approved"
    assert sweep(now=timezone.now() + dt.timedelta(minutes=10))["rescored"] == 0  # nothing doubled
    assert _counts(pk) == {"scores": 1, "approved": 1, "submitted": 1}


@pytest.mark.worker
@pytest.mark.skipif(not (os.environ.get("REDIS_URL") and using_postgres()), reason="needs REDIS_URL and Postgres (CI sets both)")
def test_broker_down_at_submit_then_a_real_worker_scores_it_after_the_sweep(products, org, caplog):
    from applications.models import LoanApplication
    from casework.sweeper import sweep
    from config.celery import app as celery_app
    from tests.worker import celery_worker, wait_for

    client = client_for(ApplicantFactory(username="owner1"))
    pk = draft_via_api(client, uscc=uscc_for("AB", seed=22), seed=22)
    _submit_while_broker_down(pk, client, caplog)
    celery_app.conf.task_always_eager = False
    with celery_worker():
        assert sweep(now=timezone.now() + dt.timedelta(minutes=5))["rescored"] == 1
        status = wait_for(lambda: LoanApplication.objects.get(pk=pk).route and LoanApplication.objects.get(pk=pk).status)
        assert status == "approved"
        assert sweep(now=timezone.now() + dt.timedelta(minutes=10))["rescored"] == 0
    assert _counts(pk) == {"scores": 1, "approved": 1, "submitted": 1}
