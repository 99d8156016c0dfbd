"""The RM's due-diligence inputs are checked once, by underwriting.serializers, for the case API and the
staff case page alike: the same bad collateral, guarantor or note gets the same message under the same
field on both, and nothing is recorded; the services take the checked values."""

from __future__ import annotations

import datetime as dt
import html as htmllib
from decimal import Decimal

import pytest

from loanservice.text import in_language
from tests.test_underwriting_due_diligence import _collateral, page_client, secured_case  # noqa: F401

pytestmark = pytest.mark.django_db

TODAY = dt.date.today()
PERSON = {"kind": "person", "name": "李四", "id_number": "", "relationship": "实际控制人"}

BAD = [
    ("collateral", _collateral(valuation="abc"), "valuation"),
    ("collateral", _collateral(valuation="-1"), "valuation"),
    ("collateral", _collateral(valuation="1.005"), "valuation"),
    ("collateral", _collateral(kind="gold"), "kind"),
    ("collateral", _collateral(description=""), "description"),
    ("collateral", _collateral(appraiser="估" * 101), "appraiser"),
    ("collateral", _collateral(appraised_on="soon"), "appraised_on"),
    ("collateral", _collateral(appraised_on=(TODAY + dt.timedelta(days=3)).isoformat()), "appraised_on"),
    ("collateral", _collateral(ltv="1.5"), "ltv"),
    ("collateral", _collateral(ltv="0.95"), "ltv"),  # above the policy's cap: the service
    ("collateral", _collateral(appraised_on=(TODAY - dt.timedelta(days=400)).isoformat()), "appraised_on"),  # policy
    ("guarantors", {**PERSON, "id_number": "110101199001011234"}, "id_number"),
    ("guarantors", {**PERSON, "kind": "enterprise", "uscc": "91310000MA1234567X"}, "uscc"),
    ("guarantors", {**PERSON, "kind": "company"}, "kind"),
    ("guarantors", {**PERSON, "id_number": "11010519491231002X", "guaranteed_amount": "NaN"}, "guaranteed_amount"),
    ("notes", {"text": "   "}, "text"),
]
PAGE_ACTION = {"collateral": "collateral", "guarantors": "guarantor", "notes": "note"}


def test_the_same_bad_input_gets_the_same_message_on_the_api_and_the_case_page(secured_case, org):  # noqa: F811
    pk, rm = secured_case["pk"], secured_case["rm"]
    page = page_client(org["demo_rm"])
    for endpoint, body, field in BAD:
        r = rm.post(f"/api/v1/applications/{pk}/{endpoint}/", body, format="json")
        assert r.status_code == 400, (body, r.content)
        errors = r.json()["errors"]
        assert set(errors) == {field}, (body, errors)
        html = page.post(f"/staff/cases/{pk}/action/{PAGE_ACTION[endpoint]}/", body, follow=True).content.decode()
        for message in errors[field]:
            assert in_language(message) in htmllib.unescape(html), (body, message)
    application = secured_case["application"]
    assert not application.collateral.exists() and not application.guarantors.exists() and not application.notes.exists()


def test_the_page_and_the_api_hand_the_service_the_same_values(secured_case, org):  # noqa: F811
    pk, rm = secured_case["pk"], secured_case["rm"]
    r = rm.post(f"/api/v1/applications/{pk}/collateral/", _collateral(valuation="4,000,000", ltv=""), format="json")
    assert r.status_code == 201, r.content
    page_client(org["demo_rm"]).post(f"/staff/cases/{pk}/action/collateral/",
                                      _collateral(kind="equipment", valuation="１，０００，０００", ltv=""))
    items = list(secured_case["application"].collateral.order_by("id").values_list("kind", "valuation", "ltv"))
    assert items == [("real_estate", Decimal("4000000.00"), Decimal("0.7000")),
                     ("equipment", Decimal("1000000.00"), items[1][2])] and items[1][2] > 0


def test_a_request_for_information_gets_the_same_message_on_the_api_and_the_case_page(secured_case, org):  # noqa: F811
    pk, rm = secured_case["pk"], secured_case["rm"]
    page = page_client(org["demo_rm"])
    yesterday = (TODAY - dt.timedelta(days=1)).isoformat()
    for body, form, field in (
        ({"questions": ["x"], "due_on": yesterday}, {"questions": "x", "due_on": yesterday}, "due_on"),
        ({"questions": ["x"], "due_on": "soon"}, {"questions": "x", "due_on": "soon"}, "due_on"),
        ({"questions": ["问" * 301]}, {"questions": "问" * 301}, "questions"),
        ({"documents": ["nonsense"]}, {"documents": "nonsense"}, "documents"),  # not on the checklist: the service
    ):
        r = rm.post(f"/api/v1/applications/{pk}/request-info/", body, format="json")
        assert r.status_code == 400 and set(r.json()["errors"]) == {field}, r.content
        message = in_language(r.json()["errors"][field][0])
        html = page.post(f"/staff/cases/{pk}/action/request_info/", form, follow=True).content.decode()
        assert message in htmllib.unescape(html), (body, message)
    application = secured_case["application"]
    application.refresh_from_db()
    assert application.status == "under_review" and not application.info_requests.exists()


def test_a_visit_gets_the_same_message_on_the_api_and_the_case_page(secured_case, org):  # noqa: F811
    pk, rm = secured_case["pk"], secured_case["rm"]
    page = page_client(org["demo_rm"])
    for body, field in (({"mode": "phone", "notes": "x"}, "mode"), ({"mode": "onsite", "notes": "  "}, "notes")):
        r = rm.post(f"/api/v1/applications/{pk}/site-visit/", body, format="json")
        assert r.status_code == 400 and set(r.json()["errors"]) == {field}, r.content
        message = in_language(r.json()["errors"][field][0])
        html = page.post(f"/staff/cases/{pk}/action/visit/", body, follow=True).content.decode()
        assert message in htmllib.unescape(html), (body, message)
    assert not secured_case["application"].visits.exists()
