"""The after-loan inputs are checked once, by postloan.serializers: a repayment's amount, date and reference
get the same message under the same field from the API and from a line of a CSV import; a top-up's amount
the same from the API and the portal; a collateral value on the loan page is read by the same money parser."""

from __future__ import annotations

import datetime as dt
import html as htmllib
from decimal import Decimal

import pytest
import time_machine

from loanservice.text import in_language
from tests.conftest import client_for
from tests.test_postloan_repayments import DISBURSED

pytestmark = pytest.mark.django_db


@pytest.fixture
def loan(products, org):
    from tests.factories import ApplicantFactory, FastTrackLoanFactory

    with time_machine.travel(dt.datetime.combine(DISBURSED, dt.time(2)), tick=False):
        return FastTrackLoanFactory(owner=ApplicantFactory(username="pl_inputs"), seed=52)


@pytest.mark.parametrize("field, value", [
    ("amount", "-5"), ("amount", "1.001"), ("amount", "abc"), ("amount", "NaN"), ("amount", "0"),
    ("paid_on", "2999-01-01"), ("paid_on", "yesterday"), ("reference", ""), ("reference", "R" * 81),
])
def test_a_repayment_field_gets_one_message_from_the_api_and_the_import(loan, org, field, value):
    from postloan.imports import repayment_import_preview

    ops = org["demo_ops"]
    first = loan.installments.get(n=1)
    body = {"amount": f"{first.total:.2f}", "paid_on": first.due_date.isoformat(), "reference": "CB-IN-1", field: value}
    with time_machine.travel(dt.datetime.combine(first.due_date, dt.time(12)), tick=False):
        r = client_for(ops).post(f"/api/v1/loans/{loan.pk}/repayments/", body, format="json")
        assert r.status_code == 400, r.content
        errors = r.json()["errors"]
        assert set(errors) == {field}, errors
        csv = f"loan_id,reference,amount,paid_on\n{loan.pk},{body['reference']},{body['amount']},{body['paid_on']}\n"
        batch = repayment_import_preview(file_name="in.csv", content=csv.encode(), by=ops)
    line = batch.lines[0]
    assert batch.status == "rejected" and set(line["errors"]) == {field}
    assert line["errors"][field] == errors[field]
    assert loan.repayments.count() == 0


def test_the_api_and_the_import_read_the_same_amount_and_date(loan, org):
    from postloan.imports import repayment_import_apply, repayment_import_preview

    ops = org["demo_ops"]
    first, second = loan.installments.get(n=1), loan.installments.get(n=2)
    with time_machine.travel(dt.datetime.combine(second.due_date, dt.time(12)), tick=False):
        r = client_for(ops).post(f"/api/v1/loans/{loan.pk}/repayments/", {
            "amount": f"{first.total:,.2f}", "paid_on": first.due_date.strftime("%Y/%m/%d"), "reference": "CB-A"}, format="json")
        assert r.status_code == 201, r.content
        csv = f'loan_id,reference,amount,paid_on\n{loan.pk},CB-B,"{second.total:,.2f}",{second.due_date:%Y/%m/%d}\n'
        batch = repayment_import_apply(batch=repayment_import_preview(file_name="b.csv", content=csv.encode(), by=ops), by=ops)
    assert batch.summary["applied"] == 1
    assert {(r.reference, r.amount, r.paid_on) for r in loan.repayments.all()} == {
        ("CB-A", first.total, first.due_date), ("CB-B", second.total, second.due_date)}


def test_a_top_up_amount_gets_one_message_from_the_api_and_the_portal(loan, client):
    for body, field in (({"kind": "top_up"}, "amount"), ({"kind": "top_up", "amount": "12.345"}, "amount"),
                        ({"kind": "more"}, "kind")):
        r = client_for(loan.borrower).post(f"/api/v1/loans/{loan.pk}/renewal/", body, format="json")
        assert r.status_code == 400 and set(r.json()["errors"]) == {field}, r.content
        message = in_language(r.json()["errors"][field][0])
        client.force_login(loan.borrower)
        page = client.post(f"/postloan/my/loans/{loan.pk}/renewal/", body, follow=True)
        assert message in htmllib.unescape(page.content.decode()), (body, message)
    assert not loan.renewals.exists()


def test_a_collateral_value_on_the_loan_page_is_read_by_the_money_parser(loan, org, client):
    client.force_login(org["demo_risk"])
    url = f"/postloan/loans/{loan.pk}/action/collateral/"
    page = client.post(url, {"description": "厂房", "value": "1e6", "valued_on": dt.date.today().isoformat()}, follow=True)
    assert "请填写有效金额" in htmllib.unescape(page.content.decode()) and not loan.collateral.exists()
    client.post(url, {"description": "厂房", "value": "1,200,000.5", "valued_on": dt.date.today().isoformat()})
    assert loan.collateral.get().value == Decimal("1200000.50")


def test_the_downgrade_has_no_default_category_and_requires_one(loan, org, client):
    """The category select starts on "choose" (it started on 正常), and a post without one changes nothing."""
    import re

    client.force_login(org["demo_risk"])
    html = client.get(f"/postloan/loans/{loan.pk}/").content.decode()
    select = re.search(r'<select id="down_to"[^>]*>(.*?)</select>', html, re.S)
    assert select and 'required' in re.search(r'<select id="down_to"[^>]*>', html).group(0)
    assert re.search(r'<option value="" selected disabled>', select.group(1))
    assert not re.search(r'<option value="\w+"[^>]* selected', select.group(1))
    page = client.post(f"/postloan/loans/{loan.pk}/action/downgrade/", {"reason": "现金流紧张"}, follow=True)
    assert page.status_code == 200
    loan.refresh_from_db()
    assert loan.classification == "normal" and not loan.classification_history.filter(kind="downgrade").exists()


def test_a_warning_and_its_task_read_in_words(products, org, client):
    """The RM's task showed the warning's evidence as {'enforcement_cases': ...}; the visit and action selects
    start on "choose"."""
    from postloan.models import EarlyWarning, WarningRule

    warning = EarlyWarning(rule=WarningRule(code="x", name="被执行"), evidence={"enforcement_cases": "3", "previous": "1",
                                                                              "drop": "0.4200", "revenue_12m": "5947150.50"})
    text = warning.evidence_text
    assert "{" not in text and "enforcement_cases" not in text
    assert "42.0%" in text and "5,947,150.50" in text and "3" in text
