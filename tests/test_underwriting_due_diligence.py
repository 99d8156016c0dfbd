"""The RM's due-diligence workspace: collateral and guarantors (used in the limit, pre-screened), notes,
requests for information with documents and questions answered by the applicant, the case page with the
enterprise profile, and sending to approval with a recommendation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import TINY_PDF, client_for, draft_via_api
from tests.factories import ApplicantFactory, uscc_for

pytestmark = pytest.mark.django_db


def page_client(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def secured_case(products, org, django_capture_on_commit_callbacks):
    """A secured-operating application scored and routed to the branch, waiting for the RM."""
    from applications.models import LoanApplication

    owner = ApplicantFactory(username="dd_owner")
    client = client_for(owner)
    pk = draft_via_api(client, uscc=uscc_for("ABC", seed=41, tier="good"), seed=41, product="secured-operating",
                       amount="2000000.00", term=24, method="equal_principal")
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/v1/applications/{pk}/submit/").json()["status"] == "under_review"
    application = LoanApplication.objects.get(pk=pk)
    assert application.route in ("branch", "head_office", "committee")
    return {"pk": pk, "applicant": client, "owner": owner, "rm": client_for(org["demo_rm"]), "application": application}


def _collateral(**over):
    data = {"kind": "real_estate", "description": "上海市浦东新区张江路1号厂房 1200㎡", "certificate_no": "沪(2024)浦字第000123号",
            "owner_name": "上海申江贸易有限公司", "valuation": "4000000.00", "appraiser": "上海某某房地产估价有限公司",
            "appraised_on": (dt.date.today() - dt.timedelta(days=20)).isoformat()}
    data.update(over)
    return data


def test_collateral_lifts_the_limit_by_value_times_ltv(secured_case, org, api):
    from loanservice.models import AuditEvent
    from underwriting.models import Score

    pk, rm = secured_case["pk"], secured_case["rm"]
    before = Score.objects.get(application_id=pk, is_shadow=False)
    capacity = Decimal(before.limit_basis["cash_flow_capacity"])
    assert before.limit_basis["collateral_value"] == "0.00"

    r = rm.post(f"/api/v1/applications/{pk}/collateral/", _collateral(valuation="", appraiser="", appraised_on="soon"), format="json")
    assert r.status_code == 400 and {"valuation", "appraiser", "appraised_on"} <= set(r.json()["errors"])
    r = rm.post(f"/api/v1/applications/{pk}/collateral/", _collateral(ltv="0.95"), format="json")
    assert r.status_code == 400 and "ltv" in r.json()["errors"]  # above the policy cap for real estate (0.70)
    r = rm.post(f"/api/v1/applications/{pk}/collateral/", _collateral(appraised_on=(dt.date.today() - dt.timedelta(days=400)).isoformat()),
                format="json")
    assert r.status_code == 400 and "appraised_on" in r.json()["errors"]
    approver = api(org["demo_branch_approver"])
    assert approver.post(f"/api/v1/applications/{pk}/collateral/", _collateral(), format="json").status_code == 403

    r = rm.post(f"/api/v1/applications/{pk}/collateral/", _collateral(), format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["ltv"] == "0.7000" and body["lendable_value"] == "2800000.00"
    assert body["limit_basis"]["collateral_value"] == "2800000.00"
    expected = min(Decimal("10000000"), max(capacity, Decimal("2800000")))
    assert Decimal(body["recommended_limit"]) == (expected / 1000).to_integral_value(rounding="ROUND_DOWN") * 1000
    r = rm.post(f"/api/v1/applications/{pk}/collateral/", _collateral(kind="equipment", valuation="1000000.00", ltv="0.40"), format="json")
    assert r.status_code == 201 and r.json()["limit_basis"]["collateral_value"] == "3200000.00"
    assert AuditEvent.objects.filter(action="application.limit_refresh", object_id=str(pk)).count() == 2

    listing = approver.get(f"/api/v1/applications/{pk}/collateral/").json()
    assert [c["kind"] for c in listing["items"]] == ["real_estate", "equipment"]
    r = rm.delete(f"/api/v1/applications/{pk}/collateral/{listing['items'][1]['id']}/")
    assert r.status_code == 200 and r.json()["limit_basis"]["collateral_value"] == "2800000.00"


def test_unsecured_products_take_no_collateral(products, org, django_capture_on_commit_callbacks):
    from applications.models import LoanApplication

    client = client_for(ApplicantFactory(username="dd_unsecured"))
    pk = draft_via_api(client, uscc=uscc_for("ABC", seed=42, tier="good"), seed=42, product="supply-chain-order",
                       amount="800000.00", term=6, method="bullet")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/v1/applications/{pk}/submit/")
    rm = client_for(LoanApplication.objects.get(pk=pk).relationship_manager)
    r = rm.post(f"/api/v1/applications/{pk}/collateral/", _collateral(), format="json")
    assert r.status_code == 400 and "product" in r.json()["errors"]


def test_guarantors_are_prescreened_on_the_negative_list(secured_case, org):
    from applications.services import negative_list_add
    from tests.factories import enterprise_payload
    from underwriting.providers import SandboxProvider, make_resident_id, make_uscc
    from underwriting.services import snapshot_push

    pk, rm = secured_case["pk"], secured_case["rm"]
    clean_id, listed_id = make_resident_id(501, birth_year=1975), make_resident_id(502, birth_year=1980)
    negative_list_add(by=org["demo_risk"], reason="冒用他人身份 identity fraud", id_number=listed_id)

    r = rm.post(f"/api/v1/applications/{pk}/guarantors/", {"kind": "person", "name": "李四", "id_number": clean_id,
                                                           "relationship": "实际控制人", "guaranteed_amount": "2000000.00"}, format="json")
    assert r.status_code == 201 and r.json()["prescreen"]["passed"] is True
    r = rm.post(f"/api/v1/applications/{pk}/guarantors/", {"kind": "person", "name": "王五", "id_number": listed_id}, format="json")
    assert r.status_code == 201 and r.json()["prescreen"]["passed"] is False
    assert [x["code"] for x in r.json()["prescreen"]["reasons"]] == ["manual_list"]
    r = rm.post(f"/api/v1/applications/{pk}/guarantors/", {"kind": "person", "name": "王五", "id_number": listed_id}, format="json")
    assert r.status_code == 400 and "id_number" in r.json()["errors"]  # already recorded
    r = rm.post(f"/api/v1/applications/{pk}/guarantors/", {"kind": "person", "name": "赵六", "id_number": "110101199001011234"}, format="json")
    assert r.status_code == 400 and "id_number" in r.json()["errors"]

    # an enterprise guarantor the bank knows, with a dishonest-debtor record on file
    other_owner = ApplicantFactory(username="dd_guarantor_owner")
    guarantor_uscc = make_uscc(503, tier="fair")
    r = client_for(other_owner).post("/api/v1/enterprises/", enterprise_payload(guarantor_uscc, seed=503, name="担保企业有限公司"), format="json")
    from applications.models import Enterprise

    enterprise = Enterprise.objects.get(pk=r.json()["id"])
    judicial = {**SandboxProvider().fetch("judicial", guarantor_uscc, as_of=dt.date.today()), "dishonest_debtor": True}
    snapshot_push(enterprise=enterprise, source="judicial", as_of=dt.date.today(), payload=judicial, by=org["demo_risk"])
    r = rm.post(f"/api/v1/applications/{pk}/guarantors/", {"kind": "enterprise", "name": "担保企业有限公司", "uscc": guarantor_uscc}, format="json")
    assert r.status_code == 201, r.content
    screen = r.json()["prescreen"]
    assert screen["passed"] is False and "dishonest_debtor" in [x["code"] for x in screen["reasons"]]
    r = rm.post(f"/api/v1/applications/{pk}/guarantors/", {"kind": "enterprise", "name": "自己",
                                                           "uscc": secured_case["application"].enterprise.uscc}, format="json")
    assert r.status_code == 400 and "uscc" in r.json()["errors"]
    r = rm.post(f"/api/v1/applications/{pk}/guarantors/", {"kind": "enterprise", "name": "X", "uscc": "91310000MA1234567X"}, format="json")
    assert r.status_code == 400 and "uscc" in r.json()["errors"]
    assert len(rm.get(f"/api/v1/applications/{pk}/guarantors/").json()["items"]) == 3


def test_case_page_shows_profile_charts_raw_snapshots_and_takes_the_rms_work(secured_case, org):
    from applications.models import LoanApplication
    from underwriting.models import CaseNote, Collateral, Guarantor, Score

    pk = secured_case["pk"]
    page = page_client(org["demo_rm"])
    html = page.get(f"/staff/cases/{pk}/").content.decode()
    assert html.count("<svg") >= 5  # revenue, inflow, headcount, leverage, scorecard dimensions
    score = Score.objects.get(application_id=pk, is_shadow=False)
    tax_snapshot = score.snapshots.get(source="tax")
    assert 'id="snapshot-tax"' in html and f"#{tax_snapshot.pk}" in html and f'&quot;tax_grade&quot;: &quot;{tax_snapshot.payload["tax_grade"]}&quot;' in html
    assert 'id="collateral-form"' in html and 'id="guarantor-form"' in html and 'name="documents"' in html

    r = page.post(f"/staff/cases/{pk}/action/collateral/", _collateral())
    assert r.status_code == 302 and Collateral.objects.filter(application_id=pk).count() == 1
    from underwriting.providers import make_resident_id

    page.post(f"/staff/cases/{pk}/action/guarantor/", {"kind": "person", "name": "李四",
                                                       "id_number": make_resident_id(504, birth_year=1970)})
    assert Guarantor.objects.filter(application_id=pk).count() == 1
    page.post(f"/staff/cases/{pk}/action/note/", {"text": "与实际控制人面谈，订单饱满。"})
    assert CaseNote.objects.get(application_id=pk).text == "与实际控制人面谈，订单饱满。"
    r = page.post(f"/staff/cases/{pk}/action/note/", {"text": "  "}, follow=True)
    assert "text" in r.content.decode() and CaseNote.objects.filter(application_id=pk).count() == 1
    html = page.get(f"/staff/cases/{pk}/").content.decode()
    assert "2,800,000.00" in html and "订单饱满" in html and "李四" in html

    # visit, recommendation, and the approver sees the same summary
    page.post(f"/staff/cases/{pk}/action/visit/", {"mode": "onsite", "notes": "现场核实，经营正常", "q_premises_verified": "yes",
                                                   "q_operating_normally": "yes", "q_main_customers": "中 medium", "q_monthly_sales": "600000"})
    page.post(f"/staff/cases/{pk}/action/send/", {"recommendation": "押品充足，建议批准"})
    application = LoanApplication.objects.get(pk=pk)
    assert application.status == "pending_approval" and application.recommendation == "押品充足，建议批准"
    review = page_client(org["demo_branch_approver"]).get(f"/staff/approvals/{pk}/").content.decode()
    assert "押品充足，建议批准" in review and "2,800,000.00" in review and "订单饱满" in review and "<svg" in review


def test_request_info_with_documents_and_questions_answered_in_the_portal_api(secured_case, org):
    from applications.models import LoanApplication
    from underwriting.models import InfoRequestItem

    pk, rm, applicant = secured_case["pk"], secured_case["rm"], secured_case["applicant"]
    due = (dt.date.today() + dt.timedelta(days=5)).isoformat()
    r = rm.post(f"/api/v1/applications/{pk}/request-info/", {"documents": ["nonsense"], "due_on": due}, format="json")
    assert r.status_code == 400 and "documents" in r.json()["errors"]
    r = rm.post(f"/api/v1/applications/{pk}/request-info/", {"questions": ["x"], "due_on": "2000-01-01"}, format="json")
    assert r.status_code == 400 and "due_on" in r.json()["errors"]
    r = rm.post(f"/api/v1/applications/{pk}/request-info/", {"message": "请补充以下资料", "documents": ["bank_statements"],
                                                             "questions": ["近三个月最大的客户是谁？"], "due_on": due}, format="json")
    assert r.status_code == 201, r.content
    detail = applicant.get(f"/api/v1/applications/{pk}/").json()
    assert detail["status"] == "awaiting_info"
    request = detail["info_requests"][-1]
    assert "近三个月最大的客户是谁？" in request["message"] and "银行流水" in request["message"]
    items = {i["kind"]: i for i in request["items"]}
    assert items["document"]["requirement"] == "bank_statements" and request["due_on"] == due

    r = applicant.post(f"/api/v1/applications/{pk}/respond/", {"response": "已补充"}, format="json")
    assert r.status_code == 400 and "documents.bank_statements" in r.json()["errors"]
    up = SimpleUploadedFile("statements.pdf", TINY_PDF, content_type="application/pdf")
    r = applicant.post(f"/api/v1/applications/{pk}/documents/", {"requirement": "bank_statements", "file": up}, format="multipart")
    assert r.status_code == 201, r.content
    question = items["question"]["id"]
    r = applicant.post(f"/api/v1/applications/{pk}/respond/", {"response": "已上传流水并回答问题",
                                                               "answers": {str(question): "上海某某超市"}}, format="json")
    assert r.status_code == 200, r.content
    assert LoanApplication.objects.get(pk=pk).status == "under_review"
    answered = {i.kind: i for i in InfoRequestItem.objects.filter(info_request_id=request["id"])}
    assert answered["question"].answer == "上海某某超市" and answered["document"].document.original_name == "statements.pdf"
    assert all(i.fulfilled_at for i in answered.values())


def test_questionnaire_is_shown_to_staff_only(secured_case):
    pk = secured_case["pk"]
    staff = secured_case["rm"].get(f"/api/v1/applications/{pk}/").json()
    assert staff["questionnaire"] and {"code", "question", "type", "required", "choices"} <= set(staff["questionnaire"][0])
    assert {q["type"] for q in staff["questionnaire"]} <= {"yes_no", "number", "choice", "text"}
    assert "questionnaire" not in secured_case["applicant"].get(f"/api/v1/applications/{pk}/").json()


def test_profile_api_references_the_snapshots_the_score_used(secured_case, org, api):
    from underwriting.models import Score

    pk = secured_case["pk"]
    body = api(org["demo_branch_approver"]).get(f"/api/v1/applications/{pk}/profile/").json()
    used = set(Score.objects.get(application_id=pk, is_shadow=False).snapshots.values_list("pk", flat=True))
    assert {s["id"] for s in body["snapshots"].values() if s} == used
    assert body["features"]["tax_grade"] == body["snapshots"]["tax"]["payload"]["tax_grade"]
    assert secured_case["applicant"].get(f"/api/v1/applications/{pk}/profile/").status_code == 403


def test_a_visit_is_waived_only_where_the_rules_allow(products, org, django_capture_on_commit_callbacks):
    """DESIGN.md: waived for the fast track and for grade A under 1,000,000; otherwise on site or by video."""
    from applications.models import LoanApplication
    from underwriting.models import Score, SiteVisit

    cases = {}
    for grade, seed, amount in (("A", 81, "800000.00"), ("A", 82, "1500000.00")):
        client = client_for(ApplicantFactory(username=f"visit{seed}"))
        pk = draft_via_api(client, uscc=uscc_for(grade, seed=seed), seed=seed, product="supply-chain-order", amount=amount,
                           term=6, method="bullet")
        with django_capture_on_commit_callbacks(execute=True):
            client.post(f"/api/v1/applications/{pk}/submit/")
        assert Score.objects.get(application_id=pk, is_shadow=False).grade == grade
        cases[amount] = pk
    rm = client_for(LoanApplication.objects.get(pk=cases["800000.00"]).relationship_manager)
    r = rm.post(f"/api/v1/applications/{cases['800000.00']}/site-visit/", {"mode": "waived"}, format="json")
    assert r.status_code == 201 and SiteVisit.objects.get(application_id=cases["800000.00"]).mode == "waived"
    r = rm.post(f"/api/v1/applications/{cases['1500000.00']}/site-visit/", {"mode": "waived"}, format="json")
    assert r.status_code == 400 and "mode" in r.json()["errors"]
    assert not SiteVisit.objects.filter(application_id=cases["1500000.00"]).exists()


def test_the_applicant_uploads_requested_documents_in_the_portal(secured_case, org):
    from django.template.loader import render_to_string
    from django.test import RequestFactory

    from applications.models import ApplicationDocument, LoanApplication

    pk = secured_case["pk"]
    secured_case["rm"].post(f"/api/v1/applications/{pk}/request-info/", {"documents": ["bank_statements"],
                                                                         "questions": ["主要客户是谁？"]}, format="json")
    application = LoanApplication.objects.get(pk=pk)
    request = RequestFactory().get("/")
    request.user = secured_case["owner"]
    html = render_to_string("underwriting/_info_request_portal.html", {"application": application}, request=request)
    assert f"/portal/applications/{pk}/info-upload/" in html and 'value="bank_statements"' in html and "主要客户是谁？" in html

    portal = page_client(secured_case["owner"])
    r = portal.post(f"/portal/applications/{pk}/info-upload/", {"requirement": "bank_statements",
                                                                "file": SimpleUploadedFile("flow.pdf", TINY_PDF, content_type="application/pdf")})
    assert r.status_code == 302 and ApplicationDocument.objects.filter(application_id=pk, requirement__code="bank_statements",
                                                                       original_name="flow.pdf").exists()
    other = page_client(org["demo_applicant"])  # not the owner: not found
    r = other.post(f"/portal/applications/{pk}/info-upload/", {"requirement": "bank_statements",
                                                               "file": SimpleUploadedFile("x.pdf", TINY_PDF, content_type="application/pdf")})
    assert r.status_code == 404
    # the written reply answers the question; the case goes back to the RM
    r = portal.post(f"/portal/applications/{pk}/action/respond/", {"response": "主要客户为上海某某超市"})
    assert r.status_code == 302 and LoanApplication.objects.get(pk=pk).status == "under_review"


def test_demo_seed_is_idempotent(secured_case):
    from casework.demo.underwriting import seed_demo_data
    from underwriting.models import CaseNote, Collateral, Guarantor
    from underwriting.selectors import scorecard_champion

    seed_demo_data({"demo_applicant": secured_case["owner"]})
    seed_demo_data({"demo_applicant": secured_case["owner"]})
    pk = secured_case["pk"]
    assert (Collateral.objects.filter(application_id=pk).count(), Guarantor.objects.filter(application_id=pk).count(),
            CaseNote.objects.filter(application_id=pk).count()) == (1, 1, 1)
    assert scorecard_champion().development["n"] == 300
