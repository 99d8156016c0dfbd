"""Credit lines in the risk dashboard and the analytics: utilisation, drawdowns, frozen lines and lines expiring,
with figures from lines drawn, repaid and frozen through the real services; the pages, the CSV and the API's
access rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.conftest import client_for
from tests.factories import ApplicantFactory
from tests.test_creditlines import _outbound, draw, make_line  # noqa: F401 (the autouse fixture of the line tests)

pytestmark = pytest.mark.django_db


def _portfolio(**kwargs):
    from creditlines.selectors import lines_portfolio
    from loanservice.business_date import business_date

    on = business_date()
    return lines_portfolio(date_from=on - dt.timedelta(days=365), date_to=on, **kwargs)


@pytest.fixture
def book(products, org):
    """Three lines: A drawn 300,000 then repaid in part, B drawn 50,000 and frozen by risk, C never drawn and
    expiring in 20 days with its annual review opened by the nightly step."""
    from creditlines.models import CreditLine
    from creditlines.services import line_change, review_tasks_create
    from loanservice.business_date import business_date
    from postloan.services import repayment_record

    a = make_line(seed=1, limit="500000.00")
    b = make_line(seed=2, limit="200000.00")
    c = make_line(seed=3, limit="100000.00")
    drawn_a, _ = draw(a, "300000.00", key="a1", term=6, method="interest_only")
    draw(b, "50000.00", key="b1", term=6)
    repayment_record(loan=drawn_a.loan, amount=Decimal("100000.00"), paid_on=business_date(), reference="RA1", by=org["demo_ops"])
    drawn_a.loan.refresh_from_db()
    line_change(line=b, kind="freeze", reason="经营异常 / Business trouble", by=org["demo_risk"])
    CreditLine.objects.filter(pk=c.pk).update(valid_until=business_date() + dt.timedelta(days=20))
    assert review_tasks_create() == 1
    return {"a": a, "b": b, "c": c, "a_used": drawn_a.loan.outstanding_principal}


def test_utilisation_drawdowns_frozen_and_expiring(book):
    from loanservice.business_date import business_date

    figures = _portfolio()
    a_used = book["a_used"]
    assert a_used < Decimal("300000.00")  # the repayment made principal available again
    totals = figures["totals"]
    assert totals["lines"] == 3 and totals["limit"] == Decimal("800000.00")
    assert totals["used"] == a_used + Decimal("50000.00") and totals["available"] == Decimal("800000.00") - totals["used"]
    assert totals["utilisation"] == (totals["used"] / Decimal("800000.00")).quantize(Decimal("0.0001"))
    assert totals["drawdowns"] == 2 and totals["drawdown_amount"] == Decimal("350000.00")
    assert totals["frozen"] == 1 and totals["frozen_limit"] == Decimal("200000.00")
    assert totals["expiring"] == 1 and totals["reviews_open"] == 1 and totals["reviews_overdue"] == 0
    status = {r["status"]: r for r in figures["by_status"]}
    assert status["active"]["lines"] == 2 and status["frozen"]["used"] == Decimal("50000.00")
    (product,) = figures["by_product"]
    assert product["code"] == "xinyidai-line" and product["used"] == totals["used"] and product["lines"] == 3
    assert sum(r["lines"] for r in figures["by_branch"]) == 3
    today = business_date()
    months = figures["drawdowns_by_month"]
    assert len(months) in (12, 13) and sum(r["drawdowns"] for r in months) == 2  # every month of the period, quiet ones 0
    assert months[-1] == {"month": f"{today:%Y-%m}", "drawdowns": 2, "amount": Decimal("350000.00")}
    assert len(figures["drawdowns_by_day"]) == 30 and figures["drawdowns_by_day"][-1] == {
        "day": today, "drawdowns": 2, "amount": Decimal("350000.00")}
    (frozen,) = figures["frozen"]
    assert frozen["line"] == book["b"].pk and frozen["reason"] == "经营异常 / Business trouble" and frozen["frozen_at"] is not None
    assert frozen["used"] == Decimal("50000.00") and frozen["available"] == Decimal("150000.00")
    (expiring,) = figures["expiring"]
    assert expiring["line"] == book["c"].pk and expiring["days_left"] == 20 and expiring["review_status"] == "open"


def test_filters_and_visibility(book, org):
    from creditlines.selectors import lines_visible_to

    assert _portfolio(product="xinmiaodai")["totals"]["lines"] == 0
    assert _portfolio(lines=lines_visible_to(book["a"].borrower))["totals"]["lines"] == 1  # the owner's own line only
    on = book["a"].valid_from
    from creditlines.selectors import lines_portfolio

    later = lines_portfolio(date_from=on + dt.timedelta(days=1), date_to=on + dt.timedelta(days=40))
    assert later["totals"]["drawdowns"] == 0 and later["totals"]["lines"] == 3  # the period picks drawdowns, not lines


def test_a_fixed_number_of_queries(book):
    with CaptureQueriesContext(connection) as first:
        _portfolio()
    line = make_line(seed=4, limit="100000.00")
    draw(line, "20000.00", key="d1")
    with CaptureQueriesContext(connection) as second:
        figures = _portfolio()
    assert figures["totals"]["lines"] == 4 and len(second) == len(first)


def test_risk_dashboard_shows_the_lines_and_the_applicant_is_refused(book, org):
    risk = Client()
    risk.force_login(org["demo_risk"])
    r = risk.get("/staff/risk/")
    assert r.status_code == 200
    html = r.content.decode()
    assert 'id="line-kpis"' in html and 'id="chart-line-drawdowns"' in html
    assert f'href="/staff/credit-lines/{book["b"].pk}/"' in html and "经营异常" in html
    assert "¥200,000.00" in html  # the frozen limit, formatted
    owner = Client()
    owner.force_login(book["a"].borrower)
    assert owner.get("/staff/risk/").status_code == 404  # refused as the other staff pages are


def test_analytics_tab_csv_and_api(book, org):
    risk = Client()
    risk.force_login(org["demo_risk"])
    r = risk.get("/staff/analytics/credit_lines/")
    assert r.status_code == 200
    html = r.content.decode()
    assert 'id="tab-credit_lines"' in html and 'data-table="lines_by_product"' in html and 'id="chart-lines_drawdowns_by_month"' in html
    assert f'href="/staff/credit-lines/{book["b"].pk}/"' in html
    csv = risk.get("/staff/analytics/csv/lines_frozen.csv")
    assert csv.status_code == 200
    rows = csv.content.decode("utf-8-sig").splitlines()
    assert len(rows) == 2 and "200000.00" in rows[1]
    body = client_for(org["demo_risk"]).get("/api/v1/analytics/summary/").json()["credit_lines"]
    assert body["totals"]["lines"] == 3 and body["totals"]["frozen_limit"] == "200000.00"
    assert body["frozen"][0]["line"] == book["b"].pk and body["totals"]["utilisation"] is not None
    assert client_for(ApplicantFactory(username="nosy_line")).get("/api/v1/analytics/summary/").status_code == 403
    assert client_for(None).get("/api/v1/analytics/summary/").status_code in (401, 403)
    owner = Client()
    owner.force_login(book["a"].borrower)
    assert owner.get("/staff/analytics/credit_lines/").status_code in (403, 404)
