"""The two journeys of the walking skeleton, through the public API only (DESIGN.md's contract)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.conftest import borrower_sign_via_api, client_for, consent_via_api, draft_via_api
from tests.factories import uscc_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_fast_track_from_registration_to_disbursed_with_no_staff_action(products, org):
    from rest_framework.test import APIClient

    anon = APIClient()
    r = anon.post("/api/v1/auth/register/", {"username": "sme_owner", "password": "Xy7-long-pass", "phone": "13912345678",
                                             "email": "owner@example.com"}, format="json")
    assert r.status_code == 201, r.content
    r = anon.post("/api/v1/auth/token/", {"username": "sme_owner", "password": "Xy7-long-pass"}, format="json")
    assert r.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {r.json()['token']}")

    r = client.get("/api/v1/products/")
    codes = {p["code"]: p for p in r.json()}
    assert codes["xinmiaodai"]["fast_track"] is True
    assert {"code", "name", "min_amount", "max_amount", "checklist", "admission_criteria"} <= set(codes["xinmiaodai"])

    pk = draft_via_api(client, uscc=uscc_for("AB"))
    r = client.post(f"/api/v1/applications/{pk}/submit/")
    assert r.status_code == 200, r.content
    assert r.json()["prescreen"] == {"passed": True, "reasons": []}

    detail = client.get(f"/api/v1/applications/{pk}/").json()
    assert detail["status"] == "approved"
    assert detail["route"] == "auto"
    assert detail["score"]["grade"] in ("A", "B")
    assert detail["relationship_manager"]["username"] == "demo_rm"
    assert detail["offer"]["amount"] == "300000.00"
    assert Decimal(detail["offer"]["annual_rate"]) > 0

    detail = client.post(f"/api/v1/applications/{pk}/accept-offer/").json()
    assert detail["status"] == "contracting" and detail["contract"]
    contract_id = detail["contract"]
    pdf = client.get(f"/api/v1/contracts/{contract_id}/pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert b"".join(pdf.streaming_content).startswith(b"%PDF")

    r = client.post(f"/api/v1/contracts/{contract_id}/sign/", {"agree": True}, format="json")
    assert r.status_code == 400 and "sms_code" in r.json()["errors"]  # the signing code to the verified phone first
    r = borrower_sign_via_api(client, contract_id, HTTP_USER_AGENT="pytest-phone")
    assert r.status_code == 200, r.content
    detail = client.get(f"/api/v1/applications/{pk}/").json()
    assert detail["status"] == "disbursed"
    loan = client.get(f"/api/v1/loans/{detail['loan']}/").json()
    assert loan["principal"] == "300000.00"
    assert sum(Decimal(line["principal"]) for line in loan["schedule"]) == Decimal("300000.00")
    assert len(loan["schedule"]) == 12

    contract = client.get(f"/api/v1/contracts/{contract_id}/").json()
    parties = [s["party"] for s in contract["signatures"]]
    assert parties == ["borrower", "bank"]
    assert contract["signatures"][0]["document_sha256"] == contract["sha256"]
    assert client.post(f"/api/v1/contracts/{contract_id}/verify/").json()["ok"] is True


def test_manual_journey_rm_visit_branch_approval_ops_disbursement(products, org, api):
    from tests.factories import ApplicantFactory

    owner = ApplicantFactory(username="owner1")
    client = client_for(owner)
    pk = draft_via_api(client, uscc=uscc_for("ABC", seed=7, tier="good"), product="secured-operating", amount="2000000.00",
                       term=24, method="equal_principal")
    assert client.post(f"/api/v1/applications/{pk}/submit/").json()["status"] == "under_review"

    rm = api(org["demo_rm"])
    case = rm.get(f"/api/v1/applications/{pk}/").json()
    assert case["status"] == "under_review" and case["route"] == "branch"
    assert {q["code"] for q in case["questionnaire"]} >= {"premises_verified", "monthly_sales"}

    # The RM can neither skip the visit nor decide.
    r = rm.post(f"/api/v1/applications/{pk}/send-to-approval/", {"recommendation": "ok"}, format="json")
    assert r.status_code == 400 and "site_visit" in r.json()["errors"]
    r = rm.post(f"/api/v1/applications/{pk}/site-visit/", {"mode": "waived"}, format="json")
    assert r.status_code == 400 and "mode" in r.json()["errors"]
    r = rm.post(f"/api/v1/applications/{pk}/site-visit/", {"mode": "video", "notes": "视频核实", "answers": {"premises_verified": True}}, format="json")
    assert r.status_code == 400 and "answers.operating_normally" in r.json()["errors"]
    r = rm.post(f"/api/v1/applications/{pk}/site-visit/", {"mode": "video", "notes": "视频核实，经营正常", "answers": {
        "premises_verified": True, "operating_normally": True, "main_customers": "中 medium", "monthly_sales": 500000}}, format="json")
    assert r.status_code == 201, r.content
    r = rm.post(f"/api/v1/applications/{pk}/send-to-approval/", {"recommendation": "经营稳定，建议批准"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "pending_approval"
    assert rm.post(f"/api/v1/applications/{pk}/decide/", {"decision": "approve"}, format="json").status_code == 403

    approver = api(org["demo_branch_approver"])
    r = approver.post(f"/api/v1/applications/{pk}/decide/", {"decision": "decline"}, format="json")
    assert r.status_code == 400 and "reason_codes" in r.json()["errors"]
    r = approver.post(f"/api/v1/applications/{pk}/decide/", {"decision": "approve", "approved_amount": "1800000.00",
                                                             "comment": "同意，调减金额"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "approved" and r.json()["offer"]["amount"] == "1800000.00"
    r = approver.post(f"/api/v1/applications/{pk}/decide/", {"decision": "approve"}, format="json")
    assert r.status_code == 409 and r.json()["state"] == "approved"

    contract_id = client.post(f"/api/v1/applications/{pk}/accept-offer/").json()["contract"]
    ops = api(org["demo_ops"])
    r = ops.post(f"/api/v1/contracts/{contract_id}/sign/", {"agree": True}, format="json")
    assert r.status_code == 409  # the borrower signs first
    assert borrower_sign_via_api(client, contract_id).json()["status"] == "borrower_signed"
    r = ops.post(f"/api/v1/contracts/{contract_id}/sign/", {"agree": True}, format="json")
    assert r.status_code == 200 and r.json()["application_status"] == "signed"

    assert ops.post(f"/api/v1/contracts/{contract_id}/disburse/").status_code == 400  # no Idempotency-Key
    first = ops.post(f"/api/v1/contracts/{contract_id}/disburse/", HTTP_IDEMPOTENCY_KEY="key-1")
    assert first.status_code == 201, first.content
    again = ops.post(f"/api/v1/contracts/{contract_id}/disburse/", HTTP_IDEMPOTENCY_KEY="key-1")
    assert again.status_code == 201 and again.json() == first.json()
    other = ops.post(f"/api/v1/contracts/{contract_id}/disburse/", HTTP_IDEMPOTENCY_KEY="key-2")
    assert other.status_code == 409

    loan = client.get(f"/api/v1/loans/{first.json()['loan']}/").json()
    assert loan["principal"] == "1800000.00" and loan["repayment_method"] == "equal_principal"
    assert sum(Decimal(x["principal"]) for x in loan["schedule"]) == Decimal("1800000.00")
    detail = client.get(f"/api/v1/applications/{pk}/").json()
    assert detail["status"] == "disbursed"
    actions = [e["action"] for e in detail["timeline"]]
    assert actions.index("application.submit") < actions.index("application.send_to_approval") < actions.index("application.approve")


def test_submit_refuses_missing_consent_and_documents_naming_them(products, org):
    from tests.factories import ApplicantFactory

    client = client_for(ApplicantFactory(username="owner1"))
    pk = draft_via_api(client, uscc=uscc_for("ABC", seed=8, tier="good"), product="secured-operating", amount="2000000.00",
                       term=24, consent=False, documents=False)
    r = client.post(f"/api/v1/applications/{pk}/submit/")
    assert r.status_code == 400 and "consent" in r.json()["errors"]
    assert consent_via_api(client, pk).status_code == 201
    r = client.post(f"/api/v1/applications/{pk}/submit/")
    assert r.status_code == 400
    missing = " ".join(r.json()["errors"]["documents"])
    assert "property_certificate" in missing and "appraisal" in missing and "business_licence" not in missing
    assert client.get(f"/api/v1/applications/{pk}/").json()["status"] == "draft"


def test_prescreen_decline_shows_each_failing_rule(products, org):
    from applications.models import LoanApplication
    from tests.factories import ApplicantFactory
    from underwriting.providers import make_uscc

    client = client_for(ApplicantFactory(username="owner1"))
    pk = draft_via_api(client, uscc=make_uscc(4, tier="bad"))
    body = client.post(f"/api/v1/applications/{pk}/submit/").json()
    assert body["status"] == "prescreen_declined"
    assert body["prescreen"]["passed"] is False and body["prescreen"]["reasons"]
    assert all({"code", "message"} <= set(r) for r in body["prescreen"]["reasons"])
    app = LoanApplication.objects.get(pk=pk)
    assert {r["code"] for r in app.prescreen["rules"]} >= {"tax_grade", "no_current_overdue", "dishonest_debtor", "years_in_business"}
