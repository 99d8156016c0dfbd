"""The database connection dropped in the middle of a request: a clear 503 (JSON for the API, a page for
people), nothing half-written, and the next request works. On Postgres the backend is really terminated
(pg_terminate_backend from a second connection) after the request has written part of its work; on any
database a patched step raises the driver's OperationalError at the same point."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client

from tests.conftest import client_for, draft_via_api, using_postgres
from tests.factories import ApplicantFactory, uscc_for
from tests.faults import pg_side_connection

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_connection_after():
    """The tests kill or fake-kill this thread's connection; whoever comes next starts on a new one."""
    yield
    from django.db import connection

    connection.close()


def _written(pk) -> dict:
    from applications.models import LoanApplication
    from loanservice.models import AuditEvent
    from underwriting.models import DataSnapshot, Score

    app = LoanApplication.objects.get(pk=pk)
    return {"status": app.status, "snapshots": DataSnapshot.objects.filter(enterprise_id=app.enterprise_id).count(),
            "scores": Score.objects.filter(application_id=pk).count(),
            "submit_events": AuditEvent.objects.filter(object_id=str(pk), action="application.submit").count()}


def _terminate_own_backend():
    from django.db import connection

    pid = connection.connection.info.backend_pid
    side = pg_side_connection()
    side.autocommit = True
    try:
        with side.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        side.close()


def _raise_operational():
    raise OperationalError("server closed the connection unexpectedly")


@pytest.fixture(params=["terminated", "raised"])
def drop(request):
    if request.param == "terminated" and not using_postgres():
        pytest.skip("pg_terminate_backend needs Postgres (CI sets DATABASE_URL)")
    return _terminate_own_backend if request.param == "terminated" else _raise_operational


def _after_data_pull(drop):
    """Patch the submission so that the drop happens after the data pull has written its snapshots."""
    from underwriting import services as underwriting

    original = underwriting.snapshots_ensure

    def pulled_then_dropped(**kwargs):
        result = original(**kwargs)
        drop()
        return result

    return mock.patch.object(underwriting, "snapshots_ensure", pulled_then_dropped)


def test_api_submit_with_the_connection_dropped_is_a_503_and_half_nothing(products, org, drop):
    client = client_for(ApplicantFactory(username="owner1"))
    pk = draft_via_api(client, uscc=uscc_for("AB", seed=25), seed=25)
    before = _written(pk)
    with _after_data_pull(drop):
        r = client.post(f"/api/v1/applications/{pk}/submit/")
    assert r.status_code == 503, r.content
    assert r["Content-Type"].startswith("application/json") and r["Retry-After"]
    assert r.json()["detail"] and r.json()["errors"] == {}
    assert _written(pk) == before  # the snapshots pulled in the dropped transaction are gone with it
    # The next request works, on a fresh connection.
    r = client.post(f"/api/v1/applications/{pk}/submit/")
    assert r.status_code == 200, r.content
    after = _written(pk)
    assert after["status"] in ("under_review", "approved") and after["submit_events"] == 1


def test_page_submit_with_the_connection_dropped_shows_the_503_page(products, org, drop):
    owner = ApplicantFactory(username="owner1")
    pk = draft_via_api(client_for(owner), uscc=uscc_for("AB", seed=26), seed=26)
    page = Client()
    page.force_login(owner)
    with _after_data_pull(drop):
        r = page.post(f"/portal/applications/{pk}/review/")
    assert r.status_code == 503
    assert r["Content-Type"].startswith("text/html") and "稍后重试" in r.content.decode()
    assert _written(pk)["status"] == "draft" and _written(pk)["submit_events"] == 0
    r = page.get(f"/portal/applications/{pk}/review/")
    assert r.status_code == 200
