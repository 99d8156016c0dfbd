"""underwriting.services.snapshots_refresh_batch: many pulls at once (the nightly post-loan refresh) under the
rules of a single pull (consent per application, the configured provider, refusals and failures stored as
named gaps), with a constant number of queries and one audit event per batch."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import ApplicantFactory, enterprise_payload, uscc_for

pytestmark = pytest.mark.django_db
MONITORED = ["tax", "registry", "social_security", "credit_bureau", "judicial", "internal"]


def borrower(products, seed: int, scopes=MONITORED):
    """An enterprise and a draft application with consent to `scopes`, through the intake services."""
    from applications.services import application_create, consent_grant, enterprise_create
    from casework.demo.cases import verify_representative

    owner = ApplicantFactory(username=f"batch{seed}")
    enterprise = enterprise_create(owner=owner, **enterprise_payload(uscc_for(seed=seed), seed=seed))
    application = application_create(applicant=owner, enterprise=enterprise, product=products["xinmiaodai"],
                                     amount=Decimal("300000.00"), term_months=12, repayment_method="equal_installment",
                                     purpose="采购原材料")
    verify_representative(owner, enterprise)
    consent_grant(application=application, user=owner, scopes=scopes)
    return enterprise, application


def test_batch_pull_stores_what_single_pulls_would_and_audits_once(products):
    from loanservice.models import AuditEvent
    from underwriting.models import DataSnapshot
    from underwriting.services import snapshot_pull, snapshots_refresh_batch

    enterprise, application = borrower(products, 301, scopes=["tax", "judicial"])
    today = timezone.localdate()
    before = AuditEvent.objects.count()
    snaps = snapshots_refresh_batch(pulls=[(enterprise, "tax", application.pk), (enterprise, "judicial", application.pk),
                                           (enterprise, "customs", application.pk)], as_of=today, purpose="test")
    assert [(s.source, s.status, s.error_code) for s in snaps] == [("tax", "ok", ""), ("judicial", "ok", ""),
                                                                    ("customs", "failed", "no_consent")]
    assert all(s.pk for s in snaps) and DataSnapshot.objects.filter(enterprise=enterprise, as_of=today).count() == 3
    stored = DataSnapshot.objects.get(pk=snaps[0].pk)
    assert stored.application_id == application.pk and stored.provider == "sandbox"
    assert snaps[2].payload == {}  # no consent: nobody was asked
    events = list(AuditEvent.objects.order_by("id")[before:])
    single = snapshot_pull(enterprise=enterprise, source="tax", application=application, by=None, as_of=today)
    assert stored.payload == single.payload  # the same answer a single pull gets
    assert [e.action for e in events] == ["data.pull.batch"]
    assert events[0].data["pulls"] == 3 and events[0].data["purpose"] == "test"
    assert events[0].data["by_source"] == {"tax": {"ok": 1}, "judicial": {"ok": 1}, "customs": {"no_consent": 1}}
    assert snapshots_refresh_batch(pulls=[], as_of=today) == []
    with pytest.raises(ValueError):
        snapshots_refresh_batch(pulls=[(enterprise, "horoscope", application.pk)], as_of=today)


def test_refusals_and_provider_failures_are_named_gaps(products):
    from underwriting.models import DataSourceConfig
    from underwriting.services import snapshots_refresh_batch

    enterprise, application = borrower(products, 302)
    DataSourceConfig.objects.update_or_create(source="tax", defaults={"provider": "push"})
    DataSourceConfig.objects.update_or_create(source="registry", defaults={"is_active": False})
    DataSourceConfig.objects.update_or_create(source="credit_bureau", defaults={"provider": "http", "base_url": ""})
    with socket_closed() as url:  # nothing listens there: the provider fails, the batch goes on
        DataSourceConfig.objects.update_or_create(source="judicial", defaults={
            "provider": "http", "base_url": url, "retries": 0, "timeout_seconds": "0.50"})
        snaps = snapshots_refresh_batch(pulls=[(enterprise, s, application.pk) for s in MONITORED])
    codes = {s.source: (s.status, s.error_code) for s in snaps}
    assert codes == {"tax": ("failed", "not_pushed"), "registry": ("failed", "inactive"),
                     "credit_bureau": ("failed", "not_configured"), "judicial": ("failed", "unavailable"),
                     "social_security": ("ok", ""), "internal": ("ok", "")}
    assert all(s.as_of == timezone.localdate() for s in snaps)


def test_consent_on_any_application_when_none_is_named(products):
    from underwriting.services import snapshots_refresh_batch

    enterprise, _application = borrower(products, 303, scopes=["tax"])
    snaps = snapshots_refresh_batch(pulls=[(enterprise, "tax", None), (enterprise, "judicial", None)],
                                    as_of=timezone.localdate() - dt.timedelta(days=1))
    assert [(s.status, s.error_code, s.application_id) for s in snaps] == [("ok", "", None), ("failed", "no_consent", None)]


def test_more_pulls_need_no_more_queries(products):
    from underwriting.services import snapshots_refresh_batch

    borrowers = [borrower(products, 310 + k) for k in range(4)]

    def queries(pairs) -> int:
        with CaptureQueriesContext(connection) as captured:
            snapshots_refresh_batch(pulls=pairs)
        return len(captured)

    small = queries([(e, s, a.pk) for e, a in borrowers[:1] for s in MONITORED[:2]])
    large = queries([(e, s, a.pk) for e, a in borrowers for s in MONITORED])
    assert small == large


@contextlib.contextmanager
def socket_closed():
    """A local URL where nothing listens (the port was bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield f"http://127.0.0.1:{port}"
