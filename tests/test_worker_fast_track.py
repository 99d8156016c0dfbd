"""A fast-track application scored and approved by a real Celery worker on Redis, not eagerly."""

from __future__ import annotations

import os

import pytest

from tests.conftest import client_for, draft_via_api, using_postgres
from tests.factories import ApplicantFactory, uscc_for

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not (os.environ.get("REDIS_URL") and using_postgres()), reason="needs REDIS_URL and Postgres (CI sets both)"),
]


def test_fast_track_scored_and_approved_by_the_worker(products, org):
    from applications.models import LoanApplication
    from config.celery import app as celery_app
    from loanservice.models import AuditEvent
    from tests.worker import celery_worker, wait_for

    celery_app.conf.task_always_eager = False
    client = client_for(ApplicantFactory(username="owner1"))
    pk = draft_via_api(client, uscc=uscc_for("AB", seed=21))
    with celery_worker():
        r = client.post(f"/api/v1/applications/{pk}/submit/")
        assert r.status_code == 200 and r.json()["status"] == "under_review"  # handed to the worker, not scored inline
        status = wait_for(lambda: LoanApplication.objects.get(pk=pk).status != "under_review" and LoanApplication.objects.get(pk=pk).status)
    application = LoanApplication.objects.get(pk=pk)
    assert status == "approved", status
    assert application.route == "auto" and application.scored_at is not None
    approve = AuditEvent.objects.get(object_type="applications.loanapplication", object_id=str(pk), action="application.approve")
    assert approve.actor_label == "system" and approve.data["matrix"] == 1
