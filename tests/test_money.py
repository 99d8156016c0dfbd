"""loanservice.money: the one parser of a person's amount (and its form and serializer fields) and the one
formatter (API text, the pages' `cny` filter)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.template import Context, Template
from django.utils import translation
from rest_framework import serializers

from loanservice.money import (
    MAX_MONEY,
    MONEY_INVALID,
    MoneyField,
    MoneySerializerField,
    money_display,
    money_text,
    parse_money,
)


@pytest.mark.parametrize("value, expected", [
    ("1,000.50", Decimal("1000.50")),
    ("300000", Decimal("300000.00")),
    (" 7 ", Decimal("7.00")),
    ("+5", Decimal("5.00")),
    (".5", Decimal("0.50")),
    ("5.", Decimal("5.00")),
    ("１２３４５", Decimal("12345.00")),            # full-width digits, as a Chinese IME types them
    ("１２，３４５．６", Decimal("12345.60")),      # full-width comma and point
    ("1，000", Decimal("1000.00")),
    (300000, Decimal("300000.00")),
    (0.1, Decimal("0.10")),
    (Decimal("5.5"), Decimal("5.50")),
    ("0", Decimal("0.00")),
    (str(MAX_MONEY), MAX_MONEY),
])
def test_a_persons_amount_is_read_to_the_cent(value, expected):
    amount = parse_money(value)
    assert amount == expected and amount.as_tuple().exponent == -2


@pytest.mark.parametrize("value", [
    "NaN", "nan", "sNaN", "inf", "-Infinity", float("nan"), float("inf"), Decimal("NaN"), Decimal("Infinity"),
    "-5", "-0.01", -1, Decimal("-3"),
    "12.345", 12.345, Decimal("0.001"),
    "1e5", "1E+30", "9" * 40, "1 000", "12元", "abc", "", " ",
    True, False, None, [1], {"amount": 1}, b"12",
    MAX_MONEY + Decimal("0.01"),
])
def test_what_is_not_an_amount_is_refused_with_the_one_message(value):
    with pytest.raises(ValidationError) as exc:
        parse_money(value)
    assert exc.value.messages == [str(MONEY_INVALID)]


def test_zero_and_a_maximum_are_the_callers_choice():
    assert parse_money("0") == 0
    with pytest.raises(ValidationError):
        parse_money("0", allow_zero=False)
    with pytest.raises(ValidationError):
        parse_money("0.00", allow_zero=False)
    assert parse_money("100", maximum=Decimal("100")) == 100
    with pytest.raises(ValidationError):
        parse_money("100.01", maximum=Decimal("100"))


def test_the_message_is_a_pair_translated_for_the_reader():
    with translation.override("en"):
        with pytest.raises(ValidationError) as exc:
            parse_money("abc")
        assert exc.value.messages == ["Enter a valid amount in CNY (at most two decimals)."]
    with translation.override("zh-hans"):
        assert "请填写有效金额" in exc.value.messages[0]


class _Form(forms.Form):
    amount = MoneyField(allow_zero=False)
    fee = MoneyField(required=False)


class _Serializer(serializers.Serializer):
    amount = MoneySerializerField(allow_zero=False)
    fee = MoneySerializerField(required=False)


@pytest.mark.parametrize("value", ["abc", "12.345", "-1", "0", "NaN", "1e3"])
def test_the_form_field_and_the_serializer_field_give_the_same_message(value):
    form = _Form(data={"amount": value})
    ser = _Serializer(data={"amount": value})
    assert not form.is_valid() and not ser.is_valid()
    assert form.errors["amount"] == [str(MONEY_INVALID)]
    assert [str(e) for e in ser.errors["amount"]] == [str(MONEY_INVALID)]
    assert set(form.errors) == set(ser.errors) == {"amount"}


def test_both_fields_hand_over_a_decimal_in_cents():
    form = _Form(data={"amount": "1,234.5", "fee": ""})
    ser = _Serializer(data={"amount": "1,234.5"})
    assert form.is_valid() and ser.is_valid(), (form.errors, ser.errors)
    assert form.cleaned_data == {"amount": Decimal("1234.50"), "fee": None}
    assert ser.validated_data["amount"] == Decimal("1234.50") and "fee" not in ser.validated_data
    assert _Serializer({"amount": Decimal("1234.5"), "fee": Decimal("0")}).data == {"amount": "1234.50", "fee": "0.00"}


def test_a_missing_amount_is_required_in_both():
    form, ser = _Form(data={}), _Serializer(data={})
    assert not form.is_valid() and not ser.is_valid()
    assert "必填" in form.errors["amount"][0] and "必填" in str(ser.errors["amount"][0])


def test_money_text_is_the_apis_two_decimals():
    assert money_text(Decimal("1234.5")) == "1234.50"
    assert money_text(0) == "0.00"
    assert money_text(None) is None
    assert money_text("12") == "12.00"


@pytest.mark.parametrize("value, decimals, expected", [
    (Decimal("1234567.5"), 0, "1,234,568"),
    (Decimal("1234567.5"), 2, "1,234,567.50"),
    ("300000", 2, "300,000.00"),
    (0, 2, "0.00"),
    (None, 2, ""),
    ("", 2, ""),
    ("—", 2, "—"),
])
def test_money_display_and_the_cny_filter_agree(value, decimals, expected):
    assert money_display(value, decimals) == expected
    html = Template("{% load intake %}{{ v|cny:d }}").render(Context({"v": value, "d": decimals}))
    assert html == expected


@pytest.mark.django_db
def test_a_prospect_lists_declared_revenue_is_read_by_the_same_parser(products, org):
    from marketing.models import Prospect
    from marketing.services import prospect_list_import
    from underwriting.providers import make_uscc

    codes = [c for c in (make_uscc(seed, tier="prime") for seed in range(810000, 810200)) if c[2:4] == "31"][:4]
    rows = [f'{codes[0]},上海甲公司,,,,"1,200,000.5",', f"{codes[1]},上海乙公司,,,,12.345,",
            f"{codes[2]},上海丙公司,,,,NaN,", f"{codes[3]},上海丁公司,,,,-5,"]
    content = "\n".join(["uscc,name,contact_name,contact_phone,industry_code,annual_revenue,employees", *rows]).encode()
    plist = prospect_list_import(kind="industrial_park", partner_name="园区", file_name="p.csv", content=content,
                                 by=org["demo_rm"])
    assert plist.rows_imported == 1 and Prospect.objects.get(uscc=codes[0]).declared_revenue == Decimal("1200000.50")
    assert [(e["row"], e["field"]) for e in plist.errors] == [(3, "annual_revenue"), (4, "annual_revenue"), (5, "annual_revenue")]
    assert {e["message"] for e in plist.errors} == {str(MONEY_INVALID)}
