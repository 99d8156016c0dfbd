"""The benchmark's floor endpoint (loanservice.bench_floor): absent from production URLs, and with BENCH_FLOOR on one
authenticated POST writes one row and one audit event and dispatches one task on commit."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import NoReverseMatch, reverse

from loanservice.models import AuditEvent, Notification
from tests.conftest import client_for
from tests.factories import ApplicantFactory

pytestmark = pytest.mark.django_db


def test_the_floor_is_not_in_production_urls():
    with pytest.raises(NoReverseMatch):
        reverse("bench-floor")
    assert client_for(ApplicantFactory()).post("/api/v1/bench/floor/").status_code == 404


@override_settings(ROOT_URLCONF="config.urls_bench", BENCH_FLOOR=True)
def test_the_floor_writes_one_row_one_audit_event_and_dispatches_one_task(django_capture_on_commit_callbacks, monkeypatch):
    from loanservice import tasks

    ran = []
    monkeypatch.setattr(tasks.bench_noop, "apply_async", lambda args, kwargs, **_kw: ran.append(args))
    user = ApplicantFactory()
    assert client_for(None).post("/api/v1/bench/floor/").status_code in (401, 403)
    with django_capture_on_commit_callbacks(execute=True):
        r = client_for(user).post("/api/v1/bench/floor/")
    assert r.status_code == 201, r.content
    note = Notification.objects.get(pk=r.json()["id"])
    assert note.user == user and note.kind == "bench_floor"
    assert AuditEvent.objects.filter(action="bench.floor", object_id=str(note.pk), actor_id=user.pk).count() == 1
    assert ran == [(note.pk,)]


@override_settings(ROOT_URLCONF="config.urls_bench", BENCH_FLOOR=False)
def test_the_floor_answers_404_when_the_setting_is_off():
    assert client_for(ApplicantFactory()).post("/api/v1/bench/floor/").status_code == 404
