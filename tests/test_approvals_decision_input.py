"""The approver's decision is checked once, by approvals.serializers.DecisionSerializer, for the case API and
the review page alike: the same bad input gets the same message under the same field on both, and nothing
is recorded; approval_decide takes the checked values and checks only what the catalogue and product allow."""

from __future__ import annotations

import html as htmllib
from decimal import Decimal

import pytest

from approvals.serializers import DecisionSerializer
from loanservice.text import in_language
from tests.approvals_support import fast_passwords  # noqa: F401
from tests.conftest import client_for
from tests.factories import PendingApprovalFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

BAD = [
    ({"decision": "maybe"}, "decision"),
    ({"decision": "approve", "approved_amount": "abc"}, "approved_amount"),
    ({"decision": "approve", "approved_amount": "12.345"}, "approved_amount"),
    ({"decision": "approve", "approved_amount": "-1"}, "approved_amount"),
    ({"decision": "approve", "approved_amount": "9000000.00"}, "approved_amount"),  # above the request: the service
    ({"decision": "approve", "term_months": "x"}, "term_months"),
    ({"decision": "approve", "rate": "0.9"}, "rate"),  # outside the product's band: the service
    ({"decision": "approve", "conditions": ["NO_SUCH_CONDITION"]}, "conditions"),  # not in the catalogue: the service
    ({"decision": "decline", "reason_codes": ["HIGH_LEVERAGE"], "approved_amount": "100000.00"}, "decision"),
]


def test_the_same_bad_decision_gets_the_same_message_on_the_api_and_the_page(client, products, org):
    application = PendingApprovalFactory(seed=11)
    approver = org["demo_branch_approver"]
    client.force_login(approver)
    for body, field in BAD:
        r = client_for(approver).post(f"/api/v1/applications/{application.pk}/decide/", body, format="json")
        assert r.status_code == 400, (body, r.content)
        errors = r.json()["errors"]
        assert set(errors) == {field}, (body, errors)
        message = in_language(errors[field][0])
        page = client.post(f"/staff/cases/{application.pk}/action/decide/",
                           {**body, "next": f"/staff/approvals/{application.pk}/"}, follow=True)
        assert message in htmllib.unescape(page.content.decode()), (body, message)
        application.refresh_from_db()
        assert application.status == "pending_approval" and not application.decisions.exists()


def test_the_page_and_the_api_read_the_same_values():
    page = DecisionSerializer(data=_querydict({"decision": "approve", "approved_amount": "1,600,000", "rate": "",
                                               "term_months": "", "conditions": ["ACCOUNT_SUPERVISION"]}))
    api = DecisionSerializer(data={"decision": "approve", "approved_amount": "1600000.00", "rate": None,
                                   "conditions": [{"code": "ACCOUNT_SUPERVISION"}]})
    assert page.is_valid(), page.errors
    assert api.is_valid(), api.errors
    for data in (page.validated_data, api.validated_data):
        assert data["approved_amount"] == Decimal("1600000.00") and data.get("rate") is None
        assert data["conditions"] == [{"code": "ACCOUNT_SUPERVISION", "text": ""}]


@pytest.mark.parametrize("condition", [[], {"text": "x"}, {"code": 5}, "  "])
def test_a_condition_is_a_code_or_code_and_text(condition):
    ser = DecisionSerializer(data={"decision": "approve", "conditions": [condition]})
    assert not ser.is_valid() and set(ser.errors) == {"conditions"}


def _querydict(data: dict):
    from django.http import QueryDict

    qd = QueryDict(mutable=True)
    for key, value in data.items():
        qd.setlist(key, value if isinstance(value, list) else [value])
    return qd
