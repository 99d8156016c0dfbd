"""The owner's pages in words (issue #16): the loan page (what is due now, how to pay), the case page (history and
offer in words, no link into the API), the wizard (registry lookup, purpose list, consents not ticked, review
in names), the survey not preset. Each page is read as its owner reads it, in both languages."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import time_machine
from django.conf import settings

from applications.models import Enterprise
from loanservice.models import AuditEvent
from postloan.api import loan_detail
from tests.factories import (
    ApplicantFactory,
    ApplicationFactory,
    FastTrackApplicationFactory,
    FastTrackLoanFactory,
    enterprise_payload,
    uscc_for,
)

SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")


def _text(html: str) -> str:
    """The visible text of a page, roughly: no tags, no scripts."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def _get(client, url, language="zh-hans"):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


@pytest.fixture
def owner(db):
    return ApplicantFactory(username="pages-owner")


@pytest.fixture
def portal(client, owner):
    client.force_login(owner)
    return client


def test_the_overdue_borrower_sees_the_amount_due_now_and_how_to_pay(products, org, client):
    from postloan.monitoring import delinquency_refresh

    disbursed = dt.date(2026, 3, 2)
    with time_machine.travel(dt.datetime.combine(disbursed, dt.time(2)), tick=False):
        loan = FastTrackLoanFactory(owner=ApplicantFactory(username="pages-late"), seed=52)
    first = loan.installments.get(n=1)
    late = first.due_date + dt.timedelta(days=12)
    with time_machine.travel(dt.datetime.combine(late, dt.time(10)), tick=False):
        delinquency_refresh(today=late)
        loan.refresh_from_db()
        assert loan.dpd > 0
        client.force_login(loan.borrower)
        for language, words in (("zh-hans", ["已逾期", "现在应还", "如何还款", "附言"]),
                                ("en", ["overdue", "Due now", "How to pay", "Reference"])):
            html = _get(client, f"/portal/loans/{loan.pk}/", language)
            for word in words:
                assert word in html, (language, word)
            alert = html[html.index('id="overdue-alert"'):]
            due_now = re.search(r'id="due-now">(¥[\d,]+\.\d\d)<', alert).group(1)
            assert due_now != f"¥{loan.installments.get(n=2).total:,.2f}"  # not a future installment
            detail = loan_detail(loan)
            expected = Decimal(detail["overdue_amount"]) + Decimal(detail["penalty_due"])
            assert expected > 0 and due_now == f"¥{expected:,.2f}"
            assert loan.disbursement.contract.number in html[html.index('id="pay-reference"'):][:80]
            assert "table-danger" in html and 'class="table table-sm stack' in html  # the overdue row; cards on phones
            assert not SNAKE.search(_text(html)), SNAKE.findall(_text(html))
        renewal = client.get(f"/postloan/my/loans/{loan.pk}/renewal/").content.decode()
        assert "红色预警" not in renewal and "五级分类" not in renewal


def test_a_loan_in_good_standing_shows_the_next_payment_and_a_survey_not_preset(products, org, client):
    loan = FastTrackLoanFactory(owner=ApplicantFactory(username="pages-good"), seed=53)
    client.force_login(loan.borrower)
    html = _get(client, f"/portal/loans/{loan.pk}/")
    assert 'id="overdue-alert"' not in html and "下一期还款" in html and "¥" in html
    assert re.search(r"\d+年\d+月\d+日", html)  # dates in words, one line each
    start = html.index('<select id="score"')  # the survey after disbursement
    select = html[start:html.index("</select>", start)]
    assert '<option value="" selected>' in select and 'value="10" selected' not in select


def test_the_case_page_speaks_words_and_links_no_api(portal, owner, products, org):
    application = FastTrackApplicationFactory(applicant=owner, seed=3)
    for language in ("zh-hans", "en"):
        html = _get(portal, f"/portal/applications/{application.pk}/", language)
        text = _text(html)
        assert "/api/" not in html
        assert "application.create" not in text and "consent.grant" not in text and "→ draft" not in text
        assert not SNAKE.search(text), SNAKE.findall(text)
        assert not re.search(r"(?<![\d,.])\d{5,}\.\d\d", text)  # amounts grouped
        assert not re.search(r"\b0\.\d{4}\b", text)  # no rate as a fraction
        offer = html[html.index('id="offer"'):]
        assert re.search(r'id="offer-rate">\d+\.\d\d%<', offer) and 'id="offer-conditions"' in offer
        assert 'id="limit-explained"' in offer
    zh = _text(_get(portal, f"/portal/applications/{application.pk}/"))
    assert "创建申请" in zh and "授权数据查询" in zh and " / " not in zh


def test_the_wizard_looks_up_the_registry_and_stores_nothing_until_confirmed(portal, owner, products):
    uscc = uscc_for("AB", seed=77)
    before = Enterprise.objects.count()
    r = portal.post("/portal/apply/xinmiaodai/", {"uscc": uscc, "lookup": "1"})
    html = r.content.decode()
    assert r.status_code == 400 and "请勾选同意查询" in html[html.index('id="err-lookup-consent"'):][:200]
    r = portal.post("/portal/apply/xinmiaodai/", {"uscc": uscc, "consent": "on", "lookup": "1"})
    html = r.content.decode()
    assert r.status_code == 200 and 'id="registry-record"' in html
    record = html[html.index('id="registry-record"'):html.index("</dl>", html.index('id="registry-record"'))]
    assert "有限公司" in record and "（" in record[record.index('id="rec-industry"'):]  # industry in words
    assert not re.search(r"\b[A-T]\d{2,4}\b", _text(record))
    assert Enterprise.objects.count() == before  # nothing stored by a lookup
    assert AuditEvent.objects.filter(action="registry.lookup", object_id=uscc).count() == 1
    # the form comes filled: posting it as it is registers the enterprise
    fields = dict(re.findall(r'<input type="(?:text|number|date)" name="(\w+)" value="([^"]*)"', html))
    assert {"name", "uscc", "legal_rep_name", "industry_code", "founded_on"} <= set(fields)
    # the public record only: the representative's ID, headcount and revenue are the owner's to give
    assert not {"legal_rep_id_number", "employees", "annual_revenue"} & set(fields)
    payload = enterprise_payload(uscc, seed=77)
    fields.update({"legal_form": "llc", **{k: payload[k] for k in ("legal_rep_id_number", "employees", "annual_revenue")}})
    r = portal.post("/portal/apply/xinmiaodai/", fields)
    assert r.status_code == 302 and "enterprise=" in r["Location"], r.content.decode()[:2000]
    assert Enterprise.objects.get(uscc=uscc).owner == owner


def test_the_purpose_is_chosen_from_a_list_with_other(portal, owner, products):
    application = ApplicationFactory(applicant=owner, product="xinmiaodai", seed=78, grades="", tier="prime",
                                     amount="300000", term_months=12, repayment_method="equal_installment",
                                     purpose="采购原材料", documents=False, consent=False)
    url = f"/portal/applications/{application.pk}/request/"
    html = _get(portal, url)
    assert '<select name="purpose"' in html and 'value="other"' in html
    base = {"amount": "300000", "term_months": 12, "repayment_method": "equal_installment"}
    r = portal.post(url, {**base, "purpose": "other", "purpose_other": ""})
    assert r.status_code == 200 and "请说明用途" in r.content.decode()
    r = portal.post(url, {**base, "purpose": "other", "purpose_other": "参加展会"})
    application.refresh_from_db()
    assert r.status_code == 302 and application.purpose == "参加展会"
    html = _get(portal, url)
    assert 'value="参加展会"' in html  # a purpose of one's own comes back under "other"


def test_consents_come_unticked_and_the_review_names_sources_and_documents(portal, owner, products):
    application = ApplicationFactory(applicant=owner, product="secured-operating", seed=79, grades="", tier="prime",
                                     amount="2000000", term_months=24, repayment_method="equal_principal",
                                     purpose="设备购置", documents=True, consent=True)
    from applications.models import Consent

    Consent.objects.filter(application=application).delete()
    html = _get(portal, f"/portal/applications/{application.pk}/consent/")
    assert 'name="scopes"' in html and "checked" not in html[html.index('id="consent-form"'):html.index("</form>")]
    review = _text(_get(portal, f"/portal/applications/{application.pk}/review/"))
    assert not SNAKE.search(review), SNAKE.findall(review)
    assert ".pdf" not in review  # documents by checklist name, not upload file names
    r = portal.post(f"/portal/applications/{application.pk}/review/", follow=True)
    message = re.search(r'<li class="error">(.*?)</li>', r.content.decode(), flags=re.S)
    assert message and not SNAKE.search(message.group(1))
