"""Pull and score in the background: the task is idempotent (a second run changes nothing), acks late,
retries a transient source failure instead of referring, and records how long the decision took; the last
test runs a real Celery worker on Redis against Postgres."""

from __future__ import annotations

import os

import pytest

from tests.conftest import client_for, draft_via_api, using_postgres
from tests.factories import ApplicantFactory, uscc_for


def _counts(pk: int) -> dict:
    from applications.models import LoanApplication
    from loanservice.models import AuditEvent
    from underwriting.models import DataSnapshot, Score

    application = LoanApplication.objects.get(pk=pk)
    return {"snapshots": DataSnapshot.objects.filter(enterprise=application.enterprise).count(),
            "scores": list(Score.objects.filter(application=application).values_list("pk", "points", "decision_seconds")),
            "audit": AuditEvent.objects.count(), "status": application.status, "route": application.route,
            "updated_at": application.updated_at, "decided_at": application.decided_at}


@pytest.mark.django_db
def test_score_and_route_is_idempotent_and_times_the_decision(products, org, django_capture_on_commit_callbacks):
    from casework import lifecycle, tasks
    from loanservice.models import AuditEvent
    from underwriting.models import Score

    client = client_for(ApplicantFactory(username="bg1"))
    pk = draft_via_api(client, uscc=uscc_for("AB", seed=71), seed=71)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/v1/applications/{pk}/submit/")
    before = _counts(pk)
    assert before["status"] == "approved" and before["route"] == "auto"
    score = Score.objects.get(application_id=pk, is_shadow=False)
    timing = AuditEvent.objects.get(action="application.decision_time", object_id=str(pk))
    assert score.decision_seconds is not None and score.decision_seconds >= 0
    assert timing.data["route"] == "auto" and timing.data["seconds"] == f"{score.decision_seconds:.3f}"

    assert lifecycle.score_and_route(pk) == "approved"
    tasks.score_and_route.apply(args=[pk])  # a redelivered message
    assert _counts(pk) == before
    assert tasks.score_and_route.acks_late is True


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not (os.environ.get("REDIS_URL") and using_postgres()), reason="needs REDIS_URL and Postgres (CI sets both)")
def test_worker_retries_a_source_that_is_down_then_approves(products, org):
    from applications.models import LoanApplication
    from casework import lifecycle
    from config.celery import app as celery_app
    from loanservice.models import AuditEvent
    from tests.test_underwriting_sources import StubSources, use_http
    from tests.worker import celery_worker, wait_for
    from underwriting.models import Score

    celery_app.conf.task_always_eager = False
    with StubSources() as stub:
        use_http(stub, "tax", threshold=50)
        stub.behaviour["tax"] = "fail_first:2"  # down at submission and at the worker's first attempt
        client = client_for(ApplicantFactory(username="bg2"))
        pk = draft_via_api(client, uscc=uscc_for("AB", seed=72), seed=72)
        stub.register(LoanApplication.objects.get(pk=pk).enterprise)
        env = {"UNDERWRITING_SOURCE_RETRIES": "2", "UNDERWRITING_SOURCE_RETRY_SECONDS": "0.2"}
        with celery_worker(extra_env=env):
            r = client.post(f"/api/v1/applications/{pk}/submit/")
            assert r.status_code == 200 and r.json()["status"] == "under_review"
            status = wait_for(lambda: LoanApplication.objects.filter(pk=pk).exclude(status="under_review")
                              .values_list("status", flat=True).first(), timeout=60)
    assert status == "approved", status
    pulls = [e.data["code"] for e in AuditEvent.objects.filter(action="data.pull").order_by("id")
             if e.data["application"] == pk and e.data["source"] == "tax"]
    assert pulls == ["unavailable", "unavailable", ""]  # submission, first attempt, the retry
    score = Score.objects.get(application_id=pk, is_shadow=False)
    assert score.missing_sources == [] and score.decision_seconds is not None
    assert AuditEvent.objects.get(action="application.approve", object_id=str(pk)).actor_label == "system"
    before = _counts(pk)
    assert lifecycle.score_and_route(pk) == "approved" and _counts(pk) == before
