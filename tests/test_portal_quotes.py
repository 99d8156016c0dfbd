"""The borrower sees a payoff quote and a prepayment quote on the loan page before paying (issues #16, #17): the
same figures as the API's quotes (postloan.quotes), the amount checked by the API's serializer, only their own
loan, in the reader's language."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.conf import settings

from postloan.quotes import payoff_quote, prepayment_quote
from tests.factories import ApplicantFactory, FastTrackLoanFactory


def _lang(client, language):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language


@pytest.fixture
def loan(products, org):
    return FastTrackLoanFactory(owner=ApplicantFactory(username="quote-owner"), seed=61, amount="120000.00")


def test_the_loan_page_shows_todays_payoff_with_its_parts(loan, client):
    client.force_login(loan.borrower)
    quote = payoff_quote(loan=loan, on=None)
    assert quote["total"] >= quote["principal"] > 0
    for language, words in (("zh-hans", ["今天一次结清需还", "未到期本金", "试算"]), ("en", ["Pay off today", "Principal not yet due", "Quote"])):
        _lang(client, language)
        html = client.get(f"/portal/loans/{loan.pk}/").content.decode()
        for word in words:
            assert word in html, (language, word)
        total = re.search(r'id="payoff-total">(¥[\d,]+\.\d\d)<', html).group(1)
        assert total == f"¥{quote['total']:,.2f}"


def test_a_prepayment_quote_returns_the_rebuilt_schedule_as_the_api_would(loan, client):
    client.force_login(loan.borrower)
    _lang(client, "zh-hans")
    response = client.post(f"/portal/loans/{loan.pk}/prepayment-quote/", {"amount": "30,000", "mode": "lower_installment"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    expected = prepayment_quote(loan=loan, amount=Decimal("30000"), on=None, mode="lower_installment")
    due_now = re.search(r'id="prepayment-due-now">.*?<strong>(¥[\d,]+\.\d\d)</strong>', html, flags=re.S).group(1)
    assert due_now == f"¥{expected['due_now']:,.2f}"
    rows = re.findall(r"<tr>\s*<td data-label", html)
    assert len(rows) == len(expected["schedule"]) > 0
    assert f"¥{expected['schedule'][0]['total']:,.2f}" in html


@pytest.mark.parametrize("body", [{"amount": "abc", "mode": "lower_installment"}, {"amount": "1000", "mode": ""},
                                  {"amount": "-5", "mode": "shorten_term"}])
def test_a_bad_prepayment_request_says_why_in_words(loan, client, body):
    client.force_login(loan.borrower)
    _lang(client, "en")
    html = client.post(f"/portal/loans/{loan.pk}/prepayment-quote/", body).content.decode()
    assert 'class="alert alert-danger' in html and "prepayment-schedule" not in html
    assert "Please check" in html and " / " not in html


def test_another_owner_cannot_quote_someone_elses_loan(loan, client):
    client.force_login(ApplicantFactory(username="quote-stranger"))
    assert client.post(f"/portal/loans/{loan.pk}/prepayment-quote/", {"amount": "1000", "mode": "shorten_term"}).status_code == 404
    assert client.get(f"/portal/loans/{loan.pk}/").status_code == 404


def test_signed_out_is_sent_to_sign_in(loan, client):
    response = client.post(f"/portal/loans/{loan.pk}/prepayment-quote/", {"amount": "1000", "mode": "shorten_term"})
    assert response.status_code in (302, 401, 403)
