"""HTML and script typed into any text field come back as text, never as markup: on every page that shows
them (portal, staff, notifications, admin, the browsable API) and in the API (JSON, never HTML)."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.conftest import TINY_PDF, client_for, consent_via_api
from tests.factories import ApplicantFactory, enterprise_payload, uscc_for, visit_answers

pytestmark = pytest.mark.django_db

XSS = '<script>alert("xss")</script><img src=x onerror=alert(1)>'
RAW = ["<script>alert", "<img src=x onerror", 'onerror=alert(1)>']


def _page(user, url):
    client = Client()
    client.force_login(user)
    r = client.get(url)
    assert r.status_code == 200, (url, r.status_code)
    return r.content.decode()


def _assert_escaped(html, where):
    for raw in RAW:
        assert raw not in html, f"{where}: unescaped {raw!r}"


@pytest.fixture
def tainted(products, org):
    """A case whose every free-text field the people can type carries markup, taken through the real flow."""
    from applications.models import LoanApplication
    from casework import lifecycle
    from underwriting.services import site_visit_record

    owner = ApplicantFactory(username="xss_owner")
    api = client_for(owner)
    accepted = {}
    payload = enterprise_payload(uscc_for("ABC", seed=7, tier="good"), seed=7, name=f"上海{XSS}有限公司")
    r = api.post("/api/v1/enterprises/", payload, format="json")
    assert r.status_code == 201, r.content  # a name may carry symbols; it must then be shown as text
    ent = r.json()["id"]
    r = api.post("/api/v1/applications/", {"enterprise": ent, "product": "secured-operating", "amount": "2000000.00",
                                           "term_months": 24, "repayment_method": "equal_principal", "purpose": f"用途{XSS}"},
                 format="json")
    assert r.status_code == 201, r.content
    pk = r.json()["id"]
    application = LoanApplication.objects.get(pk=pk)
    for req in application.product.checklist.all():
        if req.required and not req.satisfied_by_source:
            up = SimpleUploadedFile(f"{XSS}.pdf", TINY_PDF, content_type="application/pdf")
            assert api.post(f"/api/v1/applications/{pk}/documents/", {"requirement": req.code, "file": up},
                            format="multipart").status_code == 201
    assert consent_via_api(api, pk).status_code == 201  # the representative verified, then the authorisation
    assert api.post(f"/api/v1/applications/{pk}/submit/").status_code == 200
    if not LoanApplication.objects.get(pk=pk).route:
        lifecycle.score_and_route(pk)
    application = LoanApplication.objects.get(pk=pk)
    rm = application.relationship_manager
    assert application.status == "under_review" and rm is not None

    rm_api = client_for(rm)
    r = rm_api.post(f"/api/v1/applications/{pk}/request-info/", {"message": f"请补充{XSS}"}, format="json")
    accepted["request_info"] = r.status_code == 201
    if accepted["request_info"]:
        r = api.post(f"/api/v1/applications/{pk}/respond/", {"response": f"已补充{XSS}"}, format="json")
        assert r.status_code == 200, r.content
    from underwriting.selectors import questionnaire_for

    answers = visit_answers(application)
    answers.update({q.code: XSS for q in questionnaire_for(application.product) if q.qtype == "text"})
    site_visit_record(application=application, by=rm, mode="onsite", notes=f"走访{XSS}", answers=answers)
    lifecycle.case_send_to_approval(application_id=pk, user=rm, recommendation=f"建议{XSS}")
    return {"pk": pk, "owner": owner, "rm": rm, "enterprise": ent}


def test_markup_is_shown_as_text_on_every_page(tainted, org):
    from casework import lifecycle

    pk, owner, rm = tainted["pk"], tainted["owner"], tainted["rm"]
    approver = org["demo_branch_approver"]
    pages = [
        (owner, "/portal/"), (owner, f"/portal/applications/{pk}/"), (owner, "/notifications/"),
        (rm, "/staff/cases/"), (rm, f"/staff/cases/{pk}/"), (rm, "/notifications/"),
        (approver, "/staff/approvals/"), (approver, f"/staff/approvals/{pk}/"),
        (org["demo_risk"], "/staff/risk/"),
        (org["demo_admin"], "/admin/applications/enterprise/"), (org["demo_admin"], "/admin/applications/loanapplication/"),
        (org["demo_admin"], f"/admin/applications/loanapplication/{pk}/change/"),
    ]
    shown = 0
    for user, url in pages:
        html = _page(user, url)
        _assert_escaped(html, url)
        shown += html.count("&lt;script&gt;")
    # The fields are shown (escaped), not silently dropped: a test that finds no markup proves nothing.
    case_html = _page(rm, f"/staff/cases/{pk}/")
    assert case_html.count("&lt;script&gt;alert(&quot;xss&quot;)&lt;/script&gt;") >= 3  # name, purpose, recommendation, notes...
    assert shown >= 10

    # The approver's comment and the decided case, then the contract pages and the ops queue.
    lifecycle.case_decide(application_id=pk, user=approver, decision="approve", comment=f"同意{XSS}")
    lifecycle.offer_accept(application_id=pk, user=owner)
    for user, url in [(owner, f"/portal/applications/{pk}/"), (rm, f"/staff/cases/{pk}/"), (org["demo_ops"], "/staff/operations/")]:
        _assert_escaped(_page(user, url), url)


def test_the_api_returns_markup_as_json_data_never_as_html(tainted, org):
    pk = tainted["pk"]
    for client in (client_for(tainted["owner"]), client_for(tainted["rm"])):
        r = client.get(f"/api/v1/applications/{pk}/")
        assert r.status_code == 200 and r["Content-Type"].startswith("application/json")
        body = r.json()
        assert XSS in body["purpose"] and XSS in body["enterprise"]["name"]  # data kept exactly as typed
        assert r["X-Content-Type-Options"] == "nosniff"
    # The browsable API (HTML for a browser) escapes what it echoes.
    browser = Client()
    browser.force_login(tainted["rm"])
    r = browser.get(f"/api/v1/applications/{pk}/", HTTP_ACCEPT="text/html")
    if r["Content-Type"].startswith("text/html"):
        _assert_escaped(r.content.decode(), "browsable API")
    else:
        json.loads(r.content)


def test_the_wizard_echoes_invalid_input_escaped(products, org):
    owner = ApplicantFactory(username="xss_wizard")
    page = Client()
    page.force_login(owner)
    r = page.post("/portal/apply/xinmiaodai/", {"name": XSS, "uscc": XSS[:18], "legal_rep_name": XSS, "legal_form": "llc",
                                                 "legal_rep_id_number": XSS[:18], "industry_code": XSS[:10],
                                                 "founded_on": XSS, "employees": XSS, "annual_revenue": XSS})
    assert r.status_code in (200, 400)
    html = r.content.decode()
    _assert_escaped(html, "wizard")
    assert "&lt;script&gt;" in html  # the form is shown again with what was typed, escaped
