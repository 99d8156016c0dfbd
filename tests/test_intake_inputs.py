"""One check per input: the wizard's pages, the API and the as-you-type field check bind the same forms
(applications.forms), so the same bad value gets the same message, under its own field, everywhere; the
services take the checked, typed values."""

from __future__ import annotations

import datetime as dt
import html as htmllib
from decimal import Decimal

import pytest

from applications.forms import EnterpriseForm
from applications.models import Enterprise, LoanApplication
from applications.services import enterprise_create
from loanservice.errors import ApplicationError
from loanservice.text import in_language
from tests.conftest import client_for
from tests.factories import ApplicantFactory, enterprise_payload, uscc_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return ApplicantFactory(username="inputs_owner")


@pytest.fixture
def portal(client, owner):
    client.force_login(owner)
    return client


def _under(page: str, field: str) -> str:
    """The text under a field on a wizard page (its field-status block)."""
    start = page.index(f'id="err-{field}"')
    return htmllib.unescape(page[start:page.index("</div>", start)])


def _live(portal, field, value, **extra) -> str:
    r = portal.post("/portal/validate/", {"field": field, field: value, **extra}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200
    return htmllib.unescape(r.content.decode())


ENTERPRISE_CASES = [
    ("uscc", "91310000MA1FL0BL50"), ("uscc", "123"), ("legal_rep_id_number", "110105198013011234"),
    ("industry_code", "C99"), ("founded_on", "2999-01-01"), ("founded_on", "yesterday"), ("employees", "-3"),
    ("employees", "1.5"), ("annual_revenue", "12.345"), ("annual_revenue", "NaN"), ("annual_revenue", "-5"),
    ("name", "企" * 201), ("legal_rep_name", ""), ("legal_form", "trust"),
]


@pytest.mark.parametrize("field, value", ENTERPRISE_CASES)
def test_an_enterprise_field_gets_one_message_on_the_api_the_page_and_the_live_check(owner, portal, products, field, value):
    data = {**enterprise_payload(uscc_for("", seed=601), seed=601, legal_form="llc"), field: value}
    r = client_for(owner).post("/api/v1/enterprises/", data, format="json")
    assert r.status_code == 400, r.content
    errors = r.json()["errors"]
    assert set(errors) == {field}, errors  # named under the field, and only there
    message = in_language(errors[field][0])
    assert message
    page = portal.post("/portal/apply/xinmiaodai/", data)
    assert page.status_code == 200 and message in _under(page.content.decode(), field)
    assert message in _live(portal, field, value)
    assert not Enterprise.objects.filter(owner=owner).exists()


def test_a_registered_uscc_is_named_alike_everywhere(owner, portal, products):
    other = ApplicantFactory(username="inputs_other")
    taken = enterprise_create(owner=other, **enterprise_payload(uscc_for("", seed=602), seed=602))
    data = enterprise_payload(taken.uscc, seed=603)
    errors = client_for(owner).post("/api/v1/enterprises/", data, format="json").json()["errors"]
    message = in_language(errors["uscc"][0])
    assert set(errors) == {"uscc"} and "已登记" in message
    assert message in _under(portal.post("/portal/apply/xinmiaodai/", data).content.decode(), "uscc")
    assert message in _live(portal, "uscc", taken.uscc)


def test_the_checked_values_reach_the_service_typed(owner):
    payload = enterprise_payload(" 91310000ma1fl0bl59 ", seed=604, annual_revenue="１，２３４，５６７．５", employees="12")
    r = client_for(owner).post("/api/v1/enterprises/", {**payload, "founded_on": "2019-05-06"}, format="json")
    assert r.status_code == 201, r.content
    enterprise = Enterprise.objects.get(pk=r.json()["id"])
    assert enterprise.uscc == "91310000MA1FL0BL59" and enterprise.annual_revenue == Decimal("1234567.50")
    assert enterprise.founded_on == dt.date(2019, 5, 6) and enterprise.employees == 12 and enterprise.legal_form == "llc"
    assert r.json()["annual_revenue"] == "1234567.50"


def test_a_concurrent_registration_of_the_same_uscc_is_refused_under_the_field(owner):
    form = EnterpriseForm(data=enterprise_payload(uscc_for("", seed=605), seed=605))
    assert form.is_valid(), form.errors
    enterprise_create(owner=ApplicantFactory(username="inputs_first"), **form.cleaned_data)  # won the race after the form's check
    with pytest.raises(ApplicationError) as exc:
        enterprise_create(owner=owner, **form.cleaned_data)
    assert set(exc.value.errors) == {"uscc"} and "已登记" in str(exc.value.errors["uscc"][0])
    assert not Enterprise.objects.filter(owner=owner).exists()


@pytest.mark.parametrize("body", [{"name": ["上海", "企业"]}, {"annual_revenue": {"value": 1}}, {"employees": [40]}])
def test_a_list_or_an_object_where_one_value_belongs_is_named(owner, body):
    data = {**enterprise_payload(uscc_for("", seed=606), seed=606), **body}
    r = client_for(owner).post("/api/v1/enterprises/", data, format="json")
    assert r.status_code == 400 and set(r.json()["errors"]) == set(body)
    assert not Enterprise.objects.filter(owner=owner).exists()


def test_a_body_that_is_not_an_object_is_refused(owner):
    r = client_for(owner).post("/api/v1/enterprises/", ["name", "uscc"], format="json")
    assert r.status_code == 400 and r.json()["errors"]


REQUEST_CASES = [
    ("amount", "abc"), ("amount", "0"), ("amount", "12.345"), ("amount", "20000000"), ("amount", "50000"),
    ("term_months", "6"), ("term_months", "1.5"), ("term_months", "x"), ("repayment_method", "balloon"),
    ("purpose", "用" * 301), ("purpose", ""),
]


@pytest.mark.parametrize("field, value", REQUEST_CASES)
def test_a_request_field_gets_one_message_on_the_api_the_page_and_the_live_check(owner, portal, products, field, value):
    product = products["secured-operating"]
    enterprise = enterprise_create(owner=owner, **enterprise_payload(uscc_for("", seed=607), seed=607))
    good = {"amount": "2000000.00", "term_months": product.min_term_months,
            "repayment_method": product.repayment_methods[0], "purpose": "设备更新"}
    r = client_for(owner).post("/api/v1/applications/", {"enterprise": enterprise.pk, "product": product.code,
                                                          **good, field: value}, format="json")
    assert r.status_code == 400, r.content
    errors = r.json()["errors"]
    assert set(errors) == {field}, errors
    message = in_language(errors[field][0])
    page = portal.post(f"/portal/apply/{product.code}/?enterprise={enterprise.pk}", {**good, field: value})
    assert page.status_code == 200 and message in _under(page.content.decode(), field)
    assert message in _live(portal, field, value, product=product.code)
    assert not LoanApplication.objects.filter(enterprise=enterprise).exists()


def test_a_draft_changed_on_the_page_is_checked_by_the_same_form_and_limits(owner, portal, products):
    product = products["secured-operating"]
    enterprise = enterprise_create(owner=owner, **enterprise_payload(uscc_for("", seed=608), seed=608))
    page = portal.post(f"/portal/apply/{product.code}/?enterprise={enterprise.pk}", {
        "amount": "2,000,000", "term_months": product.min_term_months, "repayment_method": product.repayment_methods[0],
        "purpose": "设备更新", "save_exit": "1"})
    assert page.status_code == 302
    application = LoanApplication.objects.get(enterprise=enterprise)
    assert application.amount == Decimal("2000000.00")
    url = f"/portal/applications/{application.pk}/request/"
    body = {"amount": "20000000", "term_months": product.min_term_months,
            "repayment_method": product.repayment_methods[0], "purpose": "设备更新"}
    html = portal.post(url, body).content.decode()
    assert "10,000,000.00" in _under(html, "amount")
    application.refresh_from_db()
    assert application.amount == Decimal("2000000.00")


@pytest.mark.parametrize("field, value, message", [
    ("enterprise", 999999, "企业不存在"), ("product", "no-such-product", "未知产品"), ("channel", "Web App", "渠道"),
])
def test_the_apis_own_fields_are_named(owner, products, field, value, message):
    enterprise = enterprise_create(owner=owner, **enterprise_payload(uscc_for("", seed=609), seed=609))
    body = {"enterprise": enterprise.pk, "product": "xinmiaodai", "amount": "300000.00", "term_months": 12,
            "repayment_method": "equal_installment", "purpose": "采购", field: value}
    r = client_for(owner).post("/api/v1/applications/", body, format="json")
    assert r.status_code == 400 and set(r.json()["errors"]) == {field}
    assert message in r.json()["errors"][field][0]


@pytest.mark.parametrize("scopes", [["tax", "gossip"], []])
def test_consent_scopes_get_one_message_on_the_api_and_the_page(owner, portal, products, scopes):
    from applications.services import application_create
    from casework.demo.cases import verify_representative

    enterprise = enterprise_create(owner=owner, **enterprise_payload(uscc_for("", seed=610), seed=610))
    draft = application_create(applicant=owner, enterprise=enterprise, product=products["xinmiaodai"],
                               amount=Decimal("300000"), term_months=12, repayment_method="equal_installment", purpose="采购")
    r = client_for(owner).post(f"/api/v1/applications/{draft.pk}/consent/", {"scopes": scopes}, format="json")
    assert r.status_code == 400 and set(r.json()["errors"]) == {"scopes"}, r.content
    message = in_language(r.json()["errors"]["scopes"][0])
    verify_representative(owner, enterprise)  # the page asks for the identity check first
    page = portal.post(f"/portal/applications/{draft.pk}/consent/", {"scopes": scopes}, follow=True)
    assert message in htmllib.unescape(page.content.decode())
    assert not draft.consents.exists()


def test_an_upload_gets_one_message_on_the_api_and_the_wizard_page(owner, portal, products):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from applications.services import application_create
    from tests.conftest import TINY_PDF

    enterprise = enterprise_create(owner=owner, **enterprise_payload(uscc_for("", seed=611), seed=611))
    draft = application_create(applicant=owner, enterprise=enterprise, product=products["xinmiaodai"],
                               amount=Decimal("300000"), term_months=12, repayment_method="equal_installment", purpose="采购")
    cases = [
        (lambda: {"requirement": "invoices"}, "file"),
        (lambda: {"requirement": "invoices", "file": SimpleUploadedFile("e.pdf", b"", content_type="application/pdf")}, "file"),
        (lambda: {"file": SimpleUploadedFile("a.pdf", TINY_PDF, content_type="application/pdf")}, "requirement"),
    ]
    for body, field in cases:
        r = client_for(owner).post(f"/api/v1/applications/{draft.pk}/documents/", body(), format="multipart")
        assert r.status_code == 400 and set(r.json()["errors"]) == {field}, r.content
        message = in_language(r.json()["errors"][field][0])
        page = portal.post(f"/portal/applications/{draft.pk}/documents/", body())
        assert page.status_code == 400 and message in htmllib.unescape(page.content.decode())
    assert not draft.documents.exists()
