"""The operations queue: contracts waiting for signatures and disbursements waiting for conditions with SLA
clocks, in a constant number of queries; seal, verify, correct, check off, release from the page; audited
downloads; the borrower's page shows the verification result."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import borrower_sign_via_api, signing_code
from tests.contracts_support import accept, contracts_of, sign_all
from tests.factories import ApplicationFactory, FastTrackApplicationFactory, owner_view

pytestmark = pytest.mark.django_db


def _ops_page(client) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as ctx:
        r = client.get("/staff/operations/")
    assert r.status_code == 200
    return r.content.decode(), len(ctx.captured_queries)


def _messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"]) if response.context else response.content.decode()


def test_queue_sections_clocks_and_constant_queries(products, org, client):
    from loanservice.models import SlaClock

    client.force_login(org["demo_ops"])
    first, _o, first_client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=7))
    accept(first_client, first)  # contracting, awaiting the borrower
    page, queries_one = _ops_page(client)
    assert f"contract-{contracts_of(first)[0].pk}" in page and 'id="queue-awaiting-customer"' in page
    assert SlaClock.objects.filter(case_id=first, stage="contracting", stopped_at__isnull=True).exists()
    assert re.search(r'class="badge (ok|warn|bad)[^"]*">(剩|超时) \d', page)  # the contracting clock is shown, in words

    second, _o, second_client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=8))
    sign_all(org, second_client, accept(second_client, second))  # signed: a disbursement order
    third, _o, third_client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=9))
    detail = accept(third_client, third)
    assert borrower_sign_via_api(third_client, detail["contract"]).status_code == 200
    page, queries_three = _ops_page(client)
    assert f'id="bank-sign-{third}"' in page and f'id="release-{second}"' in page
    for c in contracts_of(third):
        assert f'id="verify-{c.pk}"' in page and f'id="contract-pdf-{c.pk}"' in page
    assert SlaClock.objects.filter(case_id=second, stage="disbursement", stopped_at__isnull=True).exists()
    assert queries_three == queries_one  # whatever the number of cases


def test_seal_check_off_and_release_from_the_page(products, org, client, settings, tmp_path,
                                                 django_capture_on_commit_callbacks):
    from applications.models import LoanApplication
    from contracts.models import DisbursementOrder
    from postloan.models import Loan

    settings.CORE_BANKING_OUTBOUND_DIR = tmp_path
    pk, owner, customer = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=7, conditions=[{"code": "REGISTERED_MORTGAGE", "text": "办妥抵押登记"}]))
    detail = accept(customer, pk)
    borrower_sign_via_api(customer, detail["contract"])
    client.force_login(org["demo_ops"])
    r = client.post(f"/staff/operations/{pk}/action/bank_sign/", follow=True)
    assert "Bank seal applied" in _messages(r) and LoanApplication.objects.get(pk=pk).status == "signed"
    page = r.content.decode()
    assert re.search(rf'id="release-{pk}"[^>]*disabled', page)  # a condition is still open, and it says so
    assert f'id="release-blocked-{pk}"' in page
    assert f'id="check-off-{pk}-REGISTERED_MORTGAGE"' in page

    r = client.get(f"/staff/operations/{pk}/release/")  # the confirmation says why it cannot release
    assert 'id="release-blocked"' in r.content.decode() and 'id="confirm-release"' not in r.content.decode()
    r = client.post(f"/staff/operations/{pk}/action/release/", {"idempotency_key": "page-1", "confirmed": "1"}, follow=True)
    assert "REGISTERED_MORTGAGE" in _messages(r) and not Loan.objects.filter(application_id=pk).exists()
    r = client.post(f"/staff/operations/{pk}/action/condition/", {"code": "REGISTERED_MORTGAGE", "evidence": ""}, follow=True)
    assert "evidence" in _messages(r)
    r = client.post(f"/staff/operations/{pk}/action/condition/",
                    {"code": "REGISTERED_MORTGAGE", "evidence": "沪(2025)不动产证明第0099号"}, follow=True)
    assert "Condition checked off" in _messages(r)
    # One click on 放款 opens the confirmation with the amount and the payee; a post without it releases nothing.
    order = DisbursementOrder.objects.get(application_id=pk)
    r = client.post(f"/staff/operations/{pk}/action/release/", {"idempotency_key": "page-1"})
    assert r.status_code == 302 and r.url == f"/staff/operations/{pk}/release/" and not Loan.objects.filter(application_id=pk).exists()
    html = client.get(r.url).content.decode()
    assert re.search(r'id="release-amount"><strong>¥[\d,]+\.\d\d<', html) and f"{order.amount:,.2f}" in html
    assert order.account in html and 'id="confirm-release"' in html
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(f"/staff/operations/{pk}/action/release/", {"idempotency_key": "page-1", "confirmed": "1"}, follow=True)
    loan = Loan.objects.get(application_id=pk)
    assert f"loan {loan.pk}" in _messages(r)
    r = client.post(f"/staff/operations/{pk}/action/release/", {"idempotency_key": "page-1", "confirmed": "1"}, follow=True)  # double submit
    assert f"loan {loan.pk}" in _messages(r) and Loan.objects.filter(application_id=pk).count() == 1
    assert f'id="release-{pk}"' not in r.content.decode()
    assert 'id="queue-released"' in r.content.decode() and f"CB{loan.disbursement_id:010d}" in r.content.decode()


def test_verify_and_correct_from_the_page_and_downloads_are_audited(products, org, client):
    from contracts.models import Contract
    from loanservice.models import AuditEvent

    pk, owner, customer = owner_view(FastTrackApplicationFactory(seed=1))
    accept(customer, pk)
    contract = contracts_of(pk)[0]
    client.force_login(org["demo_ops"])
    r = client.post(f"/staff/operations/{pk}/action/verify/", {"contract": contract.pk}, follow=True)
    assert "intact" in _messages(r)

    assert client.get(f"/api/v1/contracts/{contract.pk}/pdf/").status_code == 200
    r = client.get(f"/api/v1/contracts/{contract.pk}/schedule/")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    # The pages link to the staff routes (never /api/), with the same download record.
    r = client.get(f"/staff/contracts/{contract.pk}/pdf/")
    assert r.status_code == 200 and r["Content-Type"] == "application/pdf"
    r = client.get(f"/staff/contracts/{contract.pk}/schedule.csv")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = r.content.decode("utf-8-sig").strip().splitlines()
    assert len(rows) == 1 + len(contract.terms["schedule"]) and rows[1].startswith("1,")
    downloads = AuditEvent.objects.filter(action="contract.download", object_id=str(contract.pk), actor=org["demo_ops"])
    assert sorted(e.data["what"] for e in downloads) == ["pdf", "pdf", "schedule", "schedule"]  # the API's and the page's

    r = client.post(f"/staff/operations/{pk}/action/correct/", {"contract": contract.pk, "reason": ""}, follow=True)
    assert "reason" in _messages(r)
    r = client.post(f"/staff/operations/{pk}/action/correct/",
                    {"contract": contract.pk, "reason": "收款账号更正", "account_number": "6222111122223333444"}, follow=True)
    new = Contract.objects.get(supersedes=contract)
    assert new.number in _messages(r) and new.terms["account"]["number"] == "6222111122223333444"
    contract.refresh_from_db()
    assert contract.status == "voided"


def test_the_borrowers_page_signs_every_contract_and_shows_the_verification(products, org, client):
    from contracts.models import Contract

    pk, owner, customer = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=7, conditions=[{"code": "ADD_GUARANTOR", "text": "追加保证人"}]))
    accept(customer, pk)
    client.force_login(owner)
    page = client.get(f"/portal/applications/{pk}/").content.decode()
    loan, mortgage, guarantee = contracts_of(pk)
    for c in (loan, mortgage, guarantee):
        assert c.number in page and f'id="verify-contract-{c.pk}"' in page
    assert 'id="sign-contract"' in page

    r = client.post(f"/portal/applications/{pk}/action/sign/", {"agree": "on", "sms_code": signing_code(customer, loan.pk)},
                    follow=True)
    assert "Contract signed" in _messages(r)
    assert {c.customer_party: c.status for c in Contract.objects.filter(application_id=pk)} == {
        "borrower": "borrower_signed", "guarantor": "borrower_signed"}
    assert 'id="sign-contract"' not in r.content.decode()

    r = client.post(f"/portal/applications/{pk}/action/verify/", {"contract": loan.pk}, follow=True)
    assert f"{loan.number}：合同文件完整" in _messages(r)
    path = loan.pdf.path
    data = bytearray(open(path, "rb").read())
    data[100] ^= 0x01
    open(path, "wb").write(bytes(data))
    r = client.post(f"/portal/applications/{pk}/action/verify/", {"contract": loan.pk}, follow=True)
    assert "文件已被篡改" in _messages(r) and "altered" in _messages(r)
    assert client.post(f"/portal/applications/{pk}/action/verify/", {"contract": 999999}).status_code == 404


def test_demo_data_leaves_a_disbursement_waiting_for_the_mortgage_registration(products, org):
    from casework.demo.contracts import seed_demo_data
    from contracts.models import DisbursementOrder

    seed_demo_data(org)
    seed_demo_data(org)  # idempotent
    order = DisbursementOrder.objects.get(application__enterprise__name="上海临港装备制造有限公司")
    assert order.status == "pending"
    conditions = {c["code"]: c["met"] for c in order.conditions}
    assert conditions == {"CONTRACTS_SIGNED": True, "REGISTERED_MORTGAGE": False, "ADD_GUARANTOR": True}
    assert sorted(order.application.contracts.values_list("kind", "status")) == [
        ("guarantee", "signed"), ("loan", "signed"), ("mortgage", "signed")]
