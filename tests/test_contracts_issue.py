"""Issuing contracts: every key term in the PDF, the exact bytes hashed, the package a case needs (loan,
mortgage, guarantee), corrections as new versions, and the product's schedule policy in the annex and the loan."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest

from tests.conftest import borrower_sign_via_api, client_for
from tests.contracts_support import accept, contracts_of
from tests.factories import ApplicationFactory, FastTrackApplicationFactory, owner_view

pytestmark = pytest.mark.django_db


def _text(contract) -> str:
    from contracts.pdf import pdf_text

    return "".join(pdf_text(contract.pdf.open("rb").read()).split())  # lines wrap anywhere in Chinese text


def test_loan_contract_states_every_key_term_and_stores_the_hash_of_the_exact_bytes(products, org):
    from pypdf import PdfReader

    from contracts.pdf import pdf_sha256
    from contracts.services import lender

    pk, owner, client = owner_view(FastTrackApplicationFactory(seed=1, amount="300000.00"))
    detail = accept(client, pk)
    assert [c["kind"] for c in detail["contracts"]] == ["loan"]
    contract = contracts_of(pk)[0]
    e = contract.application.enterprise
    stored = contract.pdf.open("rb").read()
    assert contract.sha256 == pdf_sha256(stored)
    downloaded = b"".join(client.get(f"/api/v1/contracts/{contract.pk}/pdf/?original=1").streaming_content)
    assert downloaded == stored

    text = _text(contract)
    rate = contract.terms["annual_rate_percent"]
    for term in [contract.number, e.name, e.uscc, e.legal_rep_name, lender()["name"], lender()["uscc"], lender()["legal_rep"],
                 "人民币叁拾万元整", "300000.00", f"{rate}%", "12个月", "等额本息", "采购原材料", "附件一：还款计划",
                 "违约责任", "争议解决", "放款前提条件", contract.terms["account"]["number"]]:
        assert term.replace(" ", "") in text, term
    for line in contract.terms["schedule"]:  # the annex lists every installment
        assert line["due_date"] in text and line["total"] in text
    reader = PdfReader(io.BytesIO(stored))
    total = len(reader.pages)
    assert total >= 2
    for n, page in enumerate(reader.pages, start=1):
        page_text = page.extract_text().replace(" ", "")
        assert f"第{n}页/共{total}页" in page_text and f"合同编号{contract.number}" in page_text
        assert float(page.mediabox.width) == pytest.approx(595.28, abs=0.5)
    assert reader.metadata.title.startswith("流动资金借款合同")
    assert sum(Decimal(x["principal"]) for x in contract.terms["schedule"]) == Decimal("300000.00")


def test_accepting_again_issues_nothing_new_and_the_contract_never_changes(products, org):
    from applications.models import LoanApplication
    from contracts.services import contracts_issue

    pk, owner, client = owner_view(FastTrackApplicationFactory(seed=1))
    accept(client, pk)
    contract = contracts_of(pk)[0]
    before = contract.pdf.open("rb").read()
    again = contracts_issue(application=LoanApplication.objects.get(pk=pk), by=owner, penalty_markup=Decimal("0.30"))
    assert [c.pk for c in again] == [contract.pk] and len(contracts_of(pk)) == 1
    assert contract.pdf.open("rb").read() == before
    assert client.post(f"/api/v1/applications/{pk}/accept-offer/").status_code == 409


def test_secured_product_adds_a_mortgage_contract_and_a_guarantor_condition_a_guarantee_contract(products, org):
    pk, owner, client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=7, conditions=[{"code": "ADD_GUARANTOR", "text": "追加保证人"}]))
    detail = accept(client, pk)
    assert [c["kind"] for c in detail["contracts"]] == ["loan", "mortgage", "guarantee"]
    loan, mortgage, guarantee = contracts_of(pk)
    e = loan.application.enterprise
    mortgage_text = _text(mortgage)
    for term in ["抵押合同", mortgage.number, loan.number, e.name, e.uscc, e.legal_rep_name, "人民币贰佰万元整", "抵押登记",
                 "违约责任", "争议解决"]:
        assert term in mortgage_text, term
    guarantee_text = _text(guarantee)
    for term in ["保证合同", guarantee.number, loan.number, e.legal_rep_name, e.legal_rep_id_number, "连带责任保证",
                 "保证期间", "人民币贰佰万元整", "争议解决"]:
        assert term in guarantee_text, term
    assert "追加保证人" in _text(loan)  # the approver's condition is stated in the loan contract
    assert len({c.number for c in (loan, mortgage, guarantee)}) == 3


def test_recorded_guarantors_and_collateral_are_the_subject_of_the_security_contracts(products, org):
    from applications.models import LoanApplication
    from underwriting.models import Collateral, Guarantor

    pk, owner, client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=7))
    application = LoanApplication.objects.get(pk=pk)
    rm = application.relationship_manager
    Guarantor.objects.create(application=application, kind="enterprise", name="上海担保实业有限公司",
                             uscc="91310000MA1K000019", relationship="上游供应商", guaranteed_amount=Decimal("1000000.00"),
                             added_by=rm)
    Collateral.objects.create(application=application, kind="real_estate", description="浦东新区某路1号厂房",
                              owner_name=application.enterprise.name, certificate_no="沪(2024)浦字第000123号",
                              valuation=Decimal("3500000.00"), appraiser="上海某评估公司", appraised_on=dt.date(2025, 1, 10),
                              ltv=Decimal("0.7000"), added_by=rm)
    detail = accept(client, pk)
    assert [c["kind"] for c in detail["contracts"]] == ["loan", "mortgage", "guarantee"]
    loan, mortgage, guarantee = contracts_of(pk)
    assert guarantee.terms["guarantor"]["name"] == "上海担保实业有限公司" and guarantee.security_ref.startswith("guarantor:")
    assert "上海担保实业有限公司" in _text(guarantee) and "91310000MA1K000019" in _text(guarantee)
    assert mortgage.terms["collateral"]["value"] == "3500000.00"
    assert "沪(2024)浦字第000123号" in _text(mortgage) and "浦东新区某路1号厂房" in _text(mortgage)


def test_correction_issues_a_new_version_and_voids_the_old_one(products, org):
    from contracts.models import Contract
    from loanservice.models import AuditEvent

    pk, owner, client = owner_view(FastTrackApplicationFactory(seed=1))
    accept(client, pk)
    old = contracts_of(pk)[0]
    old_bytes = old.pdf.open("rb").read()
    ops = client_for(org["demo_ops"])
    assert client.post(f"/api/v1/contracts/{old.pk}/correct/", {"reason": "x"}, format="json").status_code == 403
    r = ops.post(f"/api/v1/contracts/{old.pk}/correct/", {"account": {"number": "12AB"}}, format="json")
    assert r.status_code == 400 and "reason" in r.json()["errors"]
    r = ops.post(f"/api/v1/contracts/{old.pk}/correct/", {"reason": "账号有误", "account": {"number": "12AB"}}, format="json")
    assert r.status_code == 400 and "account.number" in r.json()["errors"]
    r = ops.post(f"/api/v1/contracts/{old.pk}/correct/", {"reason": "账号有误", "account": {"number": "6222000011112222333"}},
                 format="json")
    assert r.status_code == 201, r.content
    new = Contract.objects.get(pk=r.json()["id"])
    old.refresh_from_db()
    assert old.status == "voided" and old.void_reason == "账号有误" and old.voided_at
    assert old.pdf.open("rb").read() == old_bytes  # the voided file is kept as it was
    assert (new.version, new.supersedes_id, new.status) == (2, old.pk, "issued") and new.number != old.number
    assert new.terms["account"]["number"] == "6222000011112222333" and "6222000011112222333" in _text(new)
    assert client.get(f"/api/v1/applications/{pk}/").json()["contract"] == new.pk
    assert {"contract.void", "contract.correct"} <= set(AuditEvent.objects.filter(
        object_type="contracts.contract", object_id__in=[str(old.pk), str(new.pk)]).values_list("action", flat=True))

    r = client.post(f"/api/v1/contracts/{old.pk}/sign/", {"agree": True}, format="json")
    assert r.status_code == 409  # a voided version cannot be signed
    # A second correction keeps the first one's changes.
    r = ops.post(f"/api/v1/contracts/{new.pk}/correct/", {"reason": "重新出具"}, format="json")
    assert r.status_code == 201 and Contract.objects.get(pk=r.json()["id"]).terms["account"]["number"] == "6222000011112222333"


def test_a_signed_contract_cannot_be_corrected_and_a_guarantor_id_is_checked(products, org, django_capture_on_commit_callbacks):
    pk, owner, client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=7, conditions=[{"code": "ADD_GUARANTOR", "text": "追加保证人"}]))
    detail = accept(client, pk)
    ops = client_for(org["demo_ops"])
    guarantee = next(c for c in detail["contracts"] if c["kind"] == "guarantee")
    r = ops.post(f"/api/v1/contracts/{guarantee['id']}/correct/", {"reason": "保证人证件号有误",
                                                                   "guarantor": {"id_number": "110101199003070000"}}, format="json")
    assert r.status_code == 400 and "guarantor.id_number" in r.json()["errors"]
    r = ops.post(f"/api/v1/contracts/{detail['contract']}/correct/", {"reason": "x", "guarantor": {"name": "王五"}}, format="json")
    assert r.status_code == 400 and "guarantor" in r.json()["errors"]

    assert borrower_sign_via_api(client, detail["contract"]).status_code == 200
    assert ops.post(f"/api/v1/contracts/{detail['contract']}/sign/", {"agree": True}, format="json").status_code == 200
    r = ops.post(f"/api/v1/contracts/{detail['contract']}/correct/", {"reason": "晚了"}, format="json")
    assert r.status_code == 409 and r.json()["state"] == "signed"


def test_schedule_policy_grace_repayment_day_and_business_day_rule_in_the_annex_and_the_loan(
        products, org, django_capture_on_commit_callbacks):
    from applications.models import LoanProduct
    from loanservice.sla import business_calendar
    from postloan.models import Loan

    LoanProduct.objects.filter(code="xinmiaodai").update(grace_months=2, repayment_day=20, due_date_rule="following")
    pk, owner, client = owner_view(FastTrackApplicationFactory(seed=1, amount="120000.00", term_months=12, repayment_method="equal_principal"))
    detail = accept(client, pk)
    contract = contracts_of(pk)[0]
    lines = contract.terms["schedule"]
    assert contract.terms["schedule_policy"] == {"grace_months": 2, "repayment_day": 20, "due_date_rule": "following"}
    assert [x["principal"] for x in lines[:2]] == ["0.00", "0.00"] and Decimal(lines[2]["principal"]) > 0
    cal = business_calendar()
    for x in lines:
        due = dt.date.fromisoformat(x["due_date"])
        assert cal.is_business_day(due)
        nominal = due.replace(day=20) if due.day >= 20 else None
        assert nominal is None or due == cal.next_business_day(nominal, include_self=True)
    assert "宽限期" in _text(contract) and "每月20日" in _text(contract)

    with django_capture_on_commit_callbacks(execute=True):
        borrower_sign_via_api(client, detail["contract"])
    loan = Loan.objects.get(application_id=pk)
    installments = list(loan.installments.order_by("n"))
    assert [(i.due_date.isoformat(), f"{i.principal:.2f}", f"{i.interest:.2f}") for i in installments] == [
        (x["due_date"], x["principal"], x["interest"]) for x in lines]  # disbursed today: the annex is the loan


def test_due_date_rules_on_the_official_calendar(db):
    from contracts.services import due_date_adjuster, schedule_policy

    assert due_date_adjuster("none") is None
    following, preceding, modified = (due_date_adjuster(r) for r in ("following", "preceding", "modified_following"))
    national_day = dt.date(2025, 10, 1)  # 1-8 October 2025 are holidays
    assert following(national_day) == dt.date(2025, 10, 9)
    assert preceding(national_day) == dt.date(2025, 9, 30)
    assert modified(national_day) == dt.date(2025, 10, 9)
    dragon_boat = dt.date(2025, 5, 31)  # Saturday; 31 May - 2 June 2025 off: following leaves the month
    assert following(dragon_boat) == dt.date(2025, 6, 3)
    assert modified(dragon_boat) == dt.date(2025, 5, 30)
    assert following(dt.date(2025, 9, 28)) == dt.date(2025, 9, 28)  # a make-up Sunday is a business day

    from applications.models import LoanProduct

    product = LoanProduct(grace_months=3, repayment_day=15, due_date_rule="following")
    assert schedule_policy(product=product, method="equal_installment", term_months=12)["grace_months"] == 3
    assert schedule_policy(product=product, method="bullet", term_months=12)["grace_months"] == 0  # no amortisation
    assert schedule_policy(product=product, method="equal_principal", term_months=3)["grace_months"] == 0
