"""The one set of display filters (loanservice/templatetags/display.py), in both languages."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import timezone, translation

from loanservice import labels
from loanservice.templatetags import display

ZH, EN = "zh-hans", "en"


def _render(source: str, language: str, **context) -> str:
    with translation.override(language):
        return Template("{% load display %}" + source).render(Context(context))


@pytest.mark.parametrize("language", [ZH, EN])
def test_money_has_the_sign_separators_and_cents_in_every_language(language):
    assert _render("{{ v|money }}", language, v=Decimal("1234567.891")) == "¥1,234,567.89"
    assert _render("{{ v|money }}", language, v=Decimal("-1234.5")) == "-¥1,234.50"
    assert _render("{{ v|money:0 }}", language, v=35531517) == "¥35,531,517"
    assert _render("{{ v|cny:2 }}", language, v="2500000.00") == "2,500,000.00"
    assert _render("[{{ v|money }}]", language, v=None) == "[]"


@pytest.mark.parametrize("language", [ZH, EN])
def test_rates_and_percentages_from_fractions(language):
    assert _render("{{ v|rate }}", language, v=Decimal("0.0350")) == "3.50%"
    assert _render("{{ v|rate_pct }}", language, v="0.0435") == "4.35%"
    assert _render("{{ v|percent }}", language, v=0.35) == "35.0%"
    assert _render("{{ v|percent:0 }}", language, v=Decimal("0.03")) == "3%"
    assert _render("{{ v|number }}", language, v=12345) == "12,345"


def test_dates_in_the_readers_language_and_local_time():
    moment = dt.datetime(2027, 1, 6, 22, 5, tzinfo=dt.UTC)  # 06:05 on 7 January in Shanghai
    assert _render("{{ v|day }}", ZH, v=dt.date(2027, 1, 7)) == "2027年1月7日"
    assert _render("{{ v|day }}", EN, v=dt.date(2027, 1, 7)) == "7 Jan 2027"
    assert _render("{{ v|daytime }}", ZH, v=moment) == "2027年1月7日 06:05"
    assert _render("{{ v|daytime }}", EN, v=moment) == "7 Jan 2027 06:05"
    assert _render("{{ v|day }}", ZH, v=moment) == "2027年1月7日"
    assert _render("{{ v|day }}", EN, v="2027-03-01") == "1 Mar 2027"


def test_durations_say_left_or_overdue_in_words():
    assert _render("{{ v|duration }}", ZH, v=51) == "剩 2 天 3 小时"
    assert _render("{{ v|duration }}", EN, v=51) == "2 d 3 h left"
    assert _render("{{ v|duration }}", ZH, v=Decimal("-5.2")) == "超时 5 小时"
    assert _render("{{ v|duration }}", EN, v=Decimal("-5.2")) == "5 h overdue"
    assert _render("{{ v|duration }}", ZH, v=-994.9) == "超时 41 天 11 小时"
    assert _render("{{ v|duration }}", EN, v=dt.timedelta(minutes=20)) == "20 min left"
    assert _render("{{ v|span }}", ZH, v=48) == "2 天"
    deadline = timezone.now() + dt.timedelta(hours=3, minutes=10)
    assert _render("{{ v|duration }}", EN, v=deadline) == "3 h left"
    assert "-" not in _render("{{ v|duration }}", ZH, v=-994.9)


@pytest.mark.parametrize("language, expected", [
    (ZH, ["草稿", "征信", "关注", "分行", "等额本息"]),
    (EN, ["Draft", "Credit bureau", "Special mention", "Branch", "Equal installment"]),
])
def test_codes_from_model_choices(language, expected):
    shown = [_render('{{ v|label:"' + kind + '" }}', language, v=code) for code, kind in (
        ("draft", "loanapplication.status"), ("credit_bureau", "source"), ("special_mention", ""),
        ("branch", "route"), ("equal_installment", "repayment_method"))]
    assert [s.lower() for s in shown] == [e.lower() for e in expected]


@pytest.mark.parametrize("language, expected", [(ZH, "创建申请"), (EN, "Created the application")])
def test_audit_event_kinds_in_words(language, expected):
    assert _render('{{ v|label:"event" }}', language, v="application.create") == expected
    assert _render("{{ v|label }}", language, v="consent.grant") != "consent.grant"


def test_products_and_branches_by_name_from_their_tables(products):
    from loanservice.models import Branch

    product = products["xinmiaodai"]
    assert _render('{{ v|label:"product" }}', ZH, v=product.code) == product.name
    if product.name_en:
        assert _render('{{ v|label:"product" }}', EN, v=product.code) == product.name_en
    Branch.objects.create(code="ZZ99", name="测试支行")
    assert _render('{{ v|label:"branch" }}', ZH, v="ZZ99") == "测试支行"
    Branch.objects.filter(code="ZZ99").update(name="改名支行")
    Branch.objects.get(code="ZZ99").save()  # a save forgets the cached table
    assert _render('{{ v|label:"branch" }}', ZH, v="ZZ99") == "改名支行"


def test_a_code_nobody_named_is_still_readable_and_a_list_is_running_text():
    assert display.label("some_new_code") == "some new code"
    assert _render('{{ v|labels:"source" }}', ZH, v=["credit_bureau", "customs"]) == "征信、海关"
    assert _render('{{ v|labels:"source" }}', EN, v=["credit_bureau", "customs"]).lower() == "credit bureau, customs"
    assert _render("{{ v|yesno_text }}", ZH, v=True) == "是" and _render("{{ v|yesno_text }}", EN, v=False) == "No"


def test_lang_shows_one_half_of_a_pair():
    assert _render("{{ v|lang }}", ZH, v="请确认 / Please confirm") == "请确认"
    assert _render("{{ v|lang }}", EN, v="请确认 / Please confirm") == "Please confirm"


def test_an_app_registers_names_for_its_own_kind():
    labels.register("test-kind", {"zz_only_here": "仅此一处 / only here"})
    assert _render('{{ v|label:"test-kind" }}', EN, v="zz_only_here") == "only here"
    assert _render("{{ v|label }}", ZH, v="zz_only_here") == "仅此一处"
    assert labels.lookup("draft", "test-kind") == labels.lookup("draft")  # another code: falls through


def test_phone_numbers_are_grouped():
    assert _render("{{ v|phone }}", ZH, v="13953865172") == "139 5386 5172"
    assert _render("{{ v|phone }}", EN, v="021-1234") == "021-1234"
