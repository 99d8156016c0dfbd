"""Data sources end to end: the http provider configured in DataSourceConfig against a local stub server,
whole submissions through the API with slow, failing and malformed sources, consent before any pull,
freshness, the shared circuit breaker, and task retries on transient provider errors."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.parse
from collections import Counter
from decimal import Decimal
from http.server import BaseHTTPRequestHandler

import pytest

from tests.conftest import client_for, consent_via_api, draft_via_api
from tests.factories import ApplicantFactory, uscc_for
from tests.loopback import LoopbackServer

pytestmark = pytest.mark.django_db


class StubSources(LoopbackServer):
    """A JSON endpoint per source, GET /{source}/{uscc}?as_of=YYYY-MM-DD, answering with the sandbox's payload
    for the registered enterprise, or misbehaving on purpose per source:

    ok · slow (answers after `delay` seconds) · error (HTTP 503) · malformed (not JSON) · invalid (JSON off-schema)
    · fail_first:N (503 for the first N requests, then ok)."""

    def __init__(self, delay: float = 1.0):
        from underwriting.providers import SandboxProvider

        self.behaviour: dict[str, str] = {}
        self.hints: dict[str, dict] = {}
        self.hits: Counter = Counter()
        self.delay = delay
        self.sandbox = SandboxProvider()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                parsed = urllib.parse.urlparse(self.path)
                _empty, source, uscc = parsed.path.split("/", 2)
                as_of = dt.date.fromisoformat(urllib.parse.parse_qs(parsed.query)["as_of"][0])
                stub.hits[source] += 1
                mode = stub.behaviour.get(source, "ok")
                if mode.startswith("fail_first:"):
                    mode = "error" if stub.hits[source] <= int(mode.split(":")[1]) else "ok"
                if mode == "slow":
                    time.sleep(stub.delay)
                if mode == "error":
                    return self._send(503, b'{"detail": "maintenance"}')
                if mode == "malformed":
                    return self._send(200, b"<html>gateway error</html>", "text/html")
                payload = stub.sandbox.fetch(source, uscc, as_of=as_of, hints=stub.hints.get(uscc))
                if mode == "invalid":
                    payload = {**payload, next(iter(payload)): "???"}
                self._send(200, json.dumps(payload).encode())

            def _send(self, status, body, ctype="application/json"):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up

        super().__init__(Handler)

    def register(self, enterprise) -> None:
        from underwriting.services import _hints

        self.hints[enterprise.uscc] = _hints(enterprise)


def use_http(stub: StubSources, *sources: str, timeout: str = "0.30", retries: int = 0, threshold: int = 5) -> None:
    from underwriting.models import DataSourceConfig

    for source in sources:
        DataSourceConfig.objects.update_or_create(source=source, defaults=dict(
            provider="http", base_url=stub.url, timeout_seconds=Decimal(timeout), retries=retries,
            backoff_seconds=Decimal("0.01"), breaker_threshold=threshold, breaker_reset_seconds=60))


@pytest.fixture
def stub():
    with StubSources() as server:
        yield server


@pytest.fixture
def one_task_retry(settings):
    settings.UNDERWRITING_SOURCE_RETRIES = 1
    settings.UNDERWRITING_SOURCE_RETRY_SECONDS = 0.01


def submit(client, pk, capture):
    with capture(execute=True):  # the score-and-route task runs on commit (eagerly here)
        r = client.post(f"/api/v1/applications/{pk}/submit/")
    assert r.status_code == 200, r.content
    return r.json()


def _draft(stub, seed: int, **kw):
    from applications.models import LoanApplication

    client = client_for(ApplicantFactory(username=f"owner{seed}"))
    pk = draft_via_api(client, uscc=uscc_for("AB", seed=seed), seed=seed, **kw)
    if stub is not None:
        stub.register(LoanApplication.objects.get(pk=pk).enterprise)
    return client, pk


def page_client(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def _pulls(pk, source):
    from loanservice.models import AuditEvent

    return [e.data for e in AuditEvent.objects.filter(action="data.pull").order_by("id") if e.data.get("application") == pk
            and e.data["source"] == source]


def test_http_provider_feeds_a_fast_track_approval(products, org, stub, django_capture_on_commit_callbacks):
    from underwriting.models import DataSnapshot, Score

    use_http(stub, "tax", "credit_bureau", "judicial")
    client, pk = _draft(stub, 31)
    submit(client, pk, django_capture_on_commit_callbacks)
    detail = client.get(f"/api/v1/applications/{pk}/").json()
    assert detail["status"] == "approved" and detail["route"] == "auto"
    score = Score.objects.get(application_id=pk, is_shadow=False)
    used = {s.source: s for s in score.snapshots.all()}
    assert set(used) == {"tax", "registry", "social_security", "customs", "credit_bureau", "judicial", "internal"}
    assert {s: used[s].provider for s in ("tax", "credit_bureau", "judicial", "registry")} == {
        "tax": "http", "credit_bureau": "http", "judicial": "http", "registry": "sandbox"}
    assert score.missing_sources == [] and score.decision_seconds is not None
    # pulled once at submission; the scoring task used the same fresh snapshots
    assert stub.hits["tax"] == 1 and DataSnapshot.objects.filter(application_id=pk, source="tax").count() == 1


@pytest.mark.parametrize("mode, code", [("slow", "unavailable"), ("error", "unavailable"), ("malformed", "malformed"),
                                        ("invalid", "invalid")])
def test_a_bad_source_refers_the_case_to_a_person_naming_it(products, org, stub, one_task_retry, mode, code,
                                                           django_capture_on_commit_callbacks):
    from applications.models import LoanApplication
    from approvals.services import fast_track_blockers
    from underwriting.models import Score

    use_http(stub, "credit_bureau")
    stub.behaviour["credit_bureau"] = mode
    client, pk = _draft(stub, 32)
    submit(client, pk, django_capture_on_commit_callbacks)
    application = LoanApplication.objects.get(pk=pk)
    assert application.status == "under_review" and application.route not in ("", "auto")  # never approved
    score = Score.objects.get(application=application, is_shadow=False)
    assert score.missing_sources == ["credit_bureau"]
    assert score.data_gaps["credit_bureau"]["code"] == code
    codes = [b["code"] for b in fast_track_blockers(application=application, score=score)]
    assert "DATA_MISSING_CREDIT_BUREAU" in codes
    # the case page names the gap for the RM
    page = page_client(application.relationship_manager).get(f"/staff/cases/{pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "DATA_MISSING_CREDIT_BUREAU" in html and f"credit_bureau ({code})" in html
    staff_view = client_for(application.relationship_manager).get(f"/api/v1/applications/{pk}/").json()
    assert staff_view["score"]["data_gaps"]["credit_bureau"]["code"] == code
    assert "data_gaps" not in client.get(f"/api/v1/applications/{pk}/").json()["score"]  # staff only
    pulls = _pulls(pk, "credit_bureau")
    if code == "unavailable":  # transient: the task retried before referring (submission + 2 task attempts)
        assert [p["code"] for p in pulls] == ["unavailable"] * 3
    else:  # a malformed or off-schema answer will not improve by asking again now
        assert [p["code"] for p in pulls] == [code] * 2


def test_a_transient_failure_is_retried_not_referred(products, org, stub, one_task_retry, django_capture_on_commit_callbacks):
    from applications.models import LoanApplication
    from loanservice.models import AuditEvent

    use_http(stub, "tax")
    stub.behaviour["tax"] = "fail_first:2"  # down at submission and at the task's first attempt
    client, pk = _draft(stub, 33)
    body = submit(client, pk, django_capture_on_commit_callbacks)
    assert body["prescreen"]["passed"] is True
    application = LoanApplication.objects.get(pk=pk)
    assert application.status == "approved", application.status
    assert [p["code"] for p in _pulls(pk, "tax")] == ["unavailable", "unavailable", ""]
    assert not application.prescreen["gaps"]  # judged again on the complete data
    assert AuditEvent.objects.filter(action="application.prescreen_refresh", object_id=str(pk)).exists()


def test_the_circuit_breaker_is_shared_through_the_cache(products, org, stub):
    from underwriting.models import DataSourceConfig
    from underwriting.providers import ProviderError
    from underwriting.services import provider_for, source_breaker

    use_http(stub, "judicial", threshold=2)
    stub.behaviour["judicial"] = "error"
    config = DataSourceConfig.objects.get(source="judicial")
    uscc = uscc_for("AB", seed=34)
    for _attempt in range(2):
        with pytest.raises(ProviderError):
            provider_for(config).fetch("judicial", uscc, as_of=dt.date.today())
    assert stub.hits["judicial"] == 2
    # a new provider (as in another request or worker) sees the open circuit and does not call at all
    assert source_breaker(config).state("judicial") == "open"
    with pytest.raises(ProviderError) as exc:
        provider_for(config).fetch("judicial", uscc, as_of=dt.date.today())
    assert exc.value.code == "circuit_open" and exc.value.transient
    assert stub.hits["judicial"] == 2


def test_no_consent_no_pull_and_the_gap_is_recorded(products, org, stub):
    from applications.models import Consent, LoanApplication
    from loanservice.models import AuditEvent
    from underwriting.models import DataSnapshot
    from underwriting.services import snapshot_pull, snapshots_gather

    use_http(stub, "tax")
    client, pk = _draft(stub, 35, consent=False)
    application = LoanApplication.objects.get(pk=pk)
    snap = snapshot_pull(enterprise=application.enterprise, source="tax", application=application, by=None)
    assert snap.status == DataSnapshot.FAILED and snap.error_code == "no_consent"
    assert stub.hits["tax"] == 0
    event = AuditEvent.objects.filter(action="data.pull").latest("id")
    assert event.data["code"] == "no_consent" and event.data["application"] == pk

    # a consent line that no authorisation record stands behind allows nothing
    bare = Consent.objects.create(application=application, source="tax", granted_by=application.applicant)
    assert snapshot_pull(enterprise=application.enterprise, source="tax", application=application,
                         by=None).error_code == "no_consent"
    bare.delete()
    assert consent_via_api(client, pk, ["tax"]).status_code == 201
    got = snapshots_gather(application=application, by=None, sources=["tax", "judicial"])
    assert got["tax"].status == "ok" and got["tax"].provider == "http" and stub.hits["tax"] == 1
    assert got["tax"].authorisation_id == Consent.objects.get(application=application, source="tax").authorisation_id
    assert got["judicial"].error_code == "no_consent" and got["judicial"].authorisation_id is None


def test_freshness_window_per_source_and_pushed_snapshots(products, org, stub):
    from applications.models import LoanApplication
    from underwriting.models import DataSnapshot, DataSourceConfig
    from underwriting.providers import SandboxProvider
    from underwriting.services import snapshot_push, snapshots_gather

    use_http(stub, "customs")
    _client, pk = _draft(stub, 36)
    application = LoanApplication.objects.get(pk=pk)
    enterprise = application.enterprise
    today = dt.date.today()
    payload = SandboxProvider().fetch("customs", enterprise.uscc, as_of=today)
    pushed = snapshot_push(enterprise=enterprise, source="customs", as_of=today - dt.timedelta(days=10), payload=payload,
                           by=org["demo_risk"])
    assert snapshots_gather(application=application, by=None, sources=["customs"])["customs"].pk == pushed.pk
    assert stub.hits["customs"] == 0
    DataSourceConfig.objects.filter(source="customs").update(freshness_days=7)  # now too old: asked again
    fresh = snapshots_gather(application=application, by=None, sources=["customs"])["customs"]
    assert fresh.pk != pushed.pk and fresh.provider == "http" and stub.hits["customs"] == 1
    # a failed pull is kept as a gap but never counts as fresh data
    stub.behaviour["customs"] = "error"
    DataSourceConfig.objects.filter(source="customs").update(freshness_days=0)
    DataSnapshot.objects.filter(pk=fresh.pk).update(as_of=today - dt.timedelta(days=1))
    failed = snapshots_gather(application=application, by=None, sources=["customs"])["customs"]
    assert failed.status == "failed" and failed.transient
    assert DataSnapshot.objects.filter(enterprise=enterprise, source="customs").count() == 3  # all kept, dated


def test_push_refuses_a_malformed_payload_naming_the_field(products, org, api):
    from applications.models import LoanApplication

    _client, pk = _draft(None, 37)
    enterprise = LoanApplication.objects.get(pk=pk).enterprise
    risk = api(org["demo_risk"])
    r = risk.put(f"/api/v1/enterprises/{enterprise.pk}/data/tax/", {"as_of": dt.date.today().isoformat(), "payload": {
        "tax_grade": "Z", "months_filed": 36, "tax_paid_12m": "1.00", "revenue_12m": "2.00", "revenue_prev_12m": "2.00",
        "major_violation": False}}, format="json")
    assert r.status_code == 400 and "payload.tax_grade" in r.json()["errors"]
    r = risk.put(f"/api/v1/enterprises/{enterprise.pk}/data/weather/", {"as_of": "2026-01-01", "payload": {}}, format="json")
    assert r.status_code == 400 and "source" in r.json()["errors"]
