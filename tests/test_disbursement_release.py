"""Disbursement: conditions precedent from the product and the approval (data proves some, operations check
off the rest with evidence, the fast track is automatic), release once by Idempotency-Key, and the outbound
record to core banking sent after commit through the one core-banking adapter (ledger.core_banking)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import borrower_sign_via_api, client_for
from tests.contracts_support import (
    accept,
    push_internal,
    sign_all,
    signed_case,
)
from tests.factories import ApplicationFactory, FastTrackApplicationFactory, owner_view

pytestmark = pytest.mark.django_db


@pytest.fixture
def outbound_dir(settings, tmp_path):
    settings.CORE_BANKING_OUTBOUND_DIR = tmp_path / "outbound"
    settings.CORE_BANKING_BACKEND = "sandbox"
    return settings.CORE_BANKING_OUTBOUND_DIR


def test_fast_track_conditions_are_all_automatic_and_core_banking_gets_the_record(
        products, org, outbound_dir, django_capture_on_commit_callbacks):
    from contracts.models import CoreBankingOutbound, DisbursementOrder

    pk, owner, client = owner_view(FastTrackApplicationFactory(seed=1))
    detail = accept(client, pk)
    with django_capture_on_commit_callbacks(execute=True):  # the seal-and-release task, then its core-banking send
        borrower_sign_via_api(client, detail["contract"])
    order = DisbursementOrder.objects.get(application_id=pk)
    assert order.status == "released" and order.released_by is None and order.idempotency_key.startswith("auto-")
    assert order.conditions and all(c["met"] and c["by"] == "system" for c in order.conditions)
    outbound = CoreBankingOutbound.objects.get(order=order)
    assert outbound.status == "sent" and outbound.attempts == 1 and outbound.adapter == "sandbox"
    order.refresh_from_db()
    assert order.core_banking_ref == outbound.external_ref == f"CB{order.pk:010d}"
    lines = [json.loads(x) for f in outbound_dir.iterdir() for x in f.read_text(encoding="utf-8").splitlines()]
    assert lines == [outbound.payload]
    assert lines[0]["amount"] == "300000.00" and lines[0]["account"] == order.account and lines[0]["released_at"]


def test_manual_release_waits_for_conditions_checked_off_with_evidence(products, org, outbound_dir,
                                                                       django_capture_on_commit_callbacks):
    from applications.models import LoanApplication
    from contracts.models import DisbursementOrder
    from loanservice.models import AuditEvent
    from postloan.models import Loan

    pk, owner, client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=7, conditions=[
        {"code": "REGISTERED_MORTGAGE", "text": "办妥抵押登记"}, {"code": "ACCOUNT_OPENED", "text": "开立结算账户"},
        {"code": "ENTRUSTED_PAYMENT", "text": "采用受托支付"}]))
    enterprise_id = LoanApplication.objects.get(pk=pk).enterprise_id
    push_internal(enterprise_id, inflow="0.00", deposit="0.00", integration_user=org["demo_ops"])  # no relationship yet
    loan_contract = sign_all(org, client, accept(client, pk))
    order = DisbursementOrder.objects.get(application_id=pk)
    codes = {c["code"]: c for c in order.conditions}
    assert list(codes) == ["CONTRACTS_SIGNED", "REGISTERED_MORTGAGE", "ACCOUNT_OPENED", "ENTRUSTED_PAYMENT"]
    assert codes["CONTRACTS_SIGNED"]["met"] and codes["CONTRACTS_SIGNED"]["by"] == "system"
    assert not codes["REGISTERED_MORTGAGE"]["met"] and codes["ENTRUSTED_PAYMENT"]["source"] == "approval"

    ops = client_for(org["demo_ops"])
    r = ops.post(f"/api/v1/contracts/{loan_contract}/disburse/", HTTP_IDEMPOTENCY_KEY="k1")
    assert r.status_code == 400 and any("REGISTERED_MORTGAGE" in m for m in r.json()["errors"]["conditions"])
    assert not Loan.objects.filter(application_id=pk).exists()

    r = ops.post(f"/api/v1/contracts/{loan_contract}/conditions/", {"code": "REGISTERED_MORTGAGE", "evidence": " "}, format="json")
    assert r.status_code == 400 and "evidence" in r.json()["errors"]
    r = ops.post(f"/api/v1/contracts/{loan_contract}/conditions/", {"code": "NOPE", "evidence": "x"}, format="json")
    assert r.status_code == 400 and "code" in r.json()["errors"]
    assert client.post(f"/api/v1/contracts/{loan_contract}/conditions/", {"code": "ENTRUSTED_PAYMENT", "evidence": "x"},
                       format="json").status_code == 403
    for code, evidence in (("REGISTERED_MORTGAGE", "沪(2025)浦东新区不动产证明第0012345号"), ("ENTRUSTED_PAYMENT", "受托支付协议 DOC-88")):
        r = ops.post(f"/api/v1/contracts/{loan_contract}/conditions/", {"code": code, "evidence": evidence}, format="json")
        assert r.status_code == 200
    r = ops.post(f"/api/v1/contracts/{loan_contract}/conditions/", {"code": "ENTRUSTED_PAYMENT", "evidence": "again"}, format="json")
    assert r.status_code == 409

    # The settlement account is proven by the bank's own ledger data once it shows a relationship.
    r = ops.post(f"/api/v1/contracts/{loan_contract}/disburse/", HTTP_IDEMPOTENCY_KEY="k1")
    assert r.status_code == 400 and r.json()["errors"]["conditions"] == ["ACCOUNT_OPENED: 开立结算账户"]
    push_internal(enterprise_id, inflow="1200000.00", deposit="300000.00", integration_user=org["demo_ops"])
    with django_capture_on_commit_callbacks(execute=True):
        first = ops.post(f"/api/v1/contracts/{loan_contract}/disburse/", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == 201, first.content
    order.refresh_from_db()
    account = {c["code"]: c for c in order.conditions}["ACCOUNT_OPENED"]
    assert account["met"] and account["by"] == "system" and "internal@" in account["evidence"]
    assert order.released_by == org["demo_ops"] and order.released_at and order.account and order.amount
    assert {c["code"]: c["by"] for c in order.conditions}["REGISTERED_MORTGAGE"] == "demo_ops"
    again = ops.post(f"/api/v1/contracts/{loan_contract}/disburse/", HTTP_IDEMPOTENCY_KEY="k1")
    assert again.status_code == 201 and again.json() == first.json()
    other = ops.post(f"/api/v1/contracts/{loan_contract}/disburse/", HTTP_IDEMPOTENCY_KEY="k2")
    assert other.status_code == 409 and other.json()["state"] == "released"
    assert Loan.objects.filter(application_id=pk).count() == 1
    actions = list(AuditEvent.objects.filter(object_type="contracts.disbursementorder", object_id=str(order.pk))
                   .values_list("action", flat=True))
    assert actions.count("disbursement.condition_met") == 2 and actions.count("disbursement.release") == 1
    assert "disbursement.core_banking_sent" in actions


def test_a_core_banking_outage_leaves_the_record_pending_until_the_sweeper_sends_it(
        products, org, settings, outbound_dir, monkeypatch, django_capture_on_commit_callbacks):
    import datetime as dt

    from django.utils import timezone

    from casework import lifecycle
    from casework.sweeper import sweep
    from contracts.models import CoreBankingOutbound
    from ledger.core_banking import CoreBankingError, SandboxCoreBanking

    def down(self, *, record):
        raise CoreBankingError("core banking is down")

    pk, owner, client, loan_contract = signed_case(org, seed=7)
    send = SandboxCoreBanking.disbursement_send
    monkeypatch.setattr(SandboxCoreBanking, "disbursement_send", down)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.disbursement_release(application_id=pk, user=org["demo_ops"], idempotency_key="outage")
    outbound = CoreBankingOutbound.objects.get(order__application_id=pk)
    assert outbound.status == "pending" and outbound.attempts == 1 and "core banking is down" in outbound.last_error
    assert sweep()["resent"] == 0  # not before the grace period
    assert outbound.adapter == ""  # no backend took it yet

    monkeypatch.setattr(SandboxCoreBanking, "disbursement_send", send)
    result = sweep(now=timezone.now() + dt.timedelta(minutes=5))
    outbound.refresh_from_db()
    assert result["resent"] == 1 and outbound.status == "sent" and outbound.attempts == 2 and outbound.last_error == ""
    assert outbound.adapter == "sandbox" and [json.loads(x)["order"] for f in outbound_dir.iterdir()
                                              for x in f.read_text(encoding="utf-8").splitlines()] == [outbound.order_id]
    assert sweep(now=timezone.now() + dt.timedelta(minutes=5))["resent"] == 0  # sent once


def test_with_the_http_backend_the_release_goes_to_the_cores_api_and_the_record_says_so(
        products, org, settings, monkeypatch, django_capture_on_commit_callbacks):
    import io
    import urllib.request

    from casework import lifecycle
    from contracts.models import CoreBankingOutbound

    posted = []

    class Answer(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def urlopen(request, timeout):
        posted.append((request.full_url, json.loads(request.data)))
        return Answer(json.dumps({"reference": "CORE-D-1"}).encode())

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    settings.CORE_BANKING_BACKEND = "http"
    settings.CORE_BANKING_URL = "https://core.bank.example/api"
    pk, owner, client, loan_contract = signed_case(org, seed=7)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.disbursement_release(application_id=pk, user=org["demo_ops"], idempotency_key="via-http")
    outbound = CoreBankingOutbound.objects.get(order__application_id=pk)
    assert outbound.status == "sent" and outbound.adapter == "http" and outbound.external_ref == "CORE-D-1"
    assert posted == [("https://core.bank.example/api/disbursements", outbound.payload)]
    assert outbound.order.core_banking_ref == "CORE-D-1"


def test_release_needs_a_key_an_order_and_the_operations_role(products, org):
    pk, owner, client = owner_view(FastTrackApplicationFactory(seed=1))
    detail = accept(client, pk)
    ops = client_for(org["demo_ops"])
    r = ops.post(f"/api/v1/contracts/{detail['contract']}/disburse/", HTTP_IDEMPOTENCY_KEY="k")
    assert r.status_code == 409 and r.json()["state"] == "contracting"  # no order before every contract is signed
    assert ops.post(f"/api/v1/contracts/{detail['contract']}/disburse/").status_code == 400
    assert client.post(f"/api/v1/contracts/{detail['contract']}/disburse/", HTTP_IDEMPOTENCY_KEY="k").status_code == 403
