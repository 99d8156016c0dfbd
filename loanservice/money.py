"""Money in and out: the one parser of a person's amount and the one formatter (pages and API).

`parse_money` reads what a person typed ("1,000.50", "１２３４５", 300000, Decimal("5.5")) into a Decimal in
cents, or refuses it with one translated message. `MoneyField` (Django forms) and `MoneySerializerField`
(DRF) are that parser at the edge; services take the Decimal. `money_text` writes an amount for the API
and stored data ("1234.50"), `money_display` for people ("1,234.50"); the `cny` template filter uses it.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy
from rest_framework import serializers

CENT = Decimal("0.01")
MAX_MONEY = Decimal("99999999999999.99")  # a DecimalField(max_digits=16, decimal_places=2)
MONEY_INVALID = gettext_lazy("请填写有效金额（元，最多两位小数）/ Enter a valid amount in CNY (at most two decimals).")
REQUIRED = gettext_lazy("此项为必填项 / This field is required.")

# Digits with an optional decimal part, once grouping commas are gone: no sign, no exponent, no spaces inside.
_SHAPE = re.compile(r"^\+?(?:\d+(?:\.\d*)?|\.\d+)$")


def parse_money(value, *, allow_zero: bool = True, maximum: Decimal = MAX_MONEY) -> Decimal:
    """A CNY amount typed by a person, quantized to cents; ValidationError(MONEY_INVALID) otherwise.

    Accepted: non-negative numbers with at most two decimals, thousands commas (also the full-width "，"),
    full-width digits. Refused: NaN, infinity, exponents, negatives, a third decimal, more than `maximum`,
    zero unless `allow_zero`, and anything that is not a number or a string (bool, list, dict, None)."""
    if isinstance(value, bool):
        raise ValidationError(MONEY_INVALID, code="invalid")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))
    elif isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).replace(",", "").strip()
        if not _SHAPE.match(text):
            raise ValidationError(MONEY_INVALID, code="invalid")
        amount = Decimal(text)
    else:
        raise ValidationError(MONEY_INVALID, code="invalid")
    try:
        if not amount.is_finite() or amount != amount.quantize(CENT):
            raise ValidationError(MONEY_INVALID, code="invalid")
    except InvalidOperation:  # too many digits to quantize: far beyond any maximum
        raise ValidationError(MONEY_INVALID, code="invalid") from None
    if amount < 0 or amount > maximum or (amount == 0 and not allow_zero):
        raise ValidationError(MONEY_INVALID, code="invalid")
    return amount.quantize(CENT)


def money_text(value) -> str | None:
    """An amount as the API and stored data write it: "1234.50" (None stays None)."""
    if value is None:
        return None
    return f"{value if isinstance(value, (Decimal, int)) else Decimal(str(value)):.2f}"


def money_display(value, decimals: int = 2) -> str:
    """An amount for people: thousands separators, `decimals` places ("1,234,567.50"), the same in every
    language. A value that is not a number comes back as it is (a "—" placeholder, say)."""
    if value is None or value == "":
        return ""
    try:
        return f"{Decimal(str(value)):,.{int(decimals)}f}"
    except (InvalidOperation, ValueError, TypeError):
        return value


class MoneyField(forms.Field):
    """A Django form field for an amount in CNY: `parse_money` at the edge, a Decimal in cleaned_data."""

    widget = forms.NumberInput(attrs={"inputmode": "decimal", "step": "0.01"})
    default_error_messages = {"required": REQUIRED, "invalid": MONEY_INVALID}

    def __init__(self, *, allow_zero: bool = True, maximum: Decimal = MAX_MONEY, **kwargs):
        self.allow_zero, self.maximum = allow_zero, maximum
        super().__init__(**kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return parse_money(value, allow_zero=self.allow_zero, maximum=self.maximum)
        except ValidationError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None


class MoneySerializerField(serializers.DecimalField):
    """The DRF twin of MoneyField: the same parser and message in, "1234.50" out (a decimal string in the schema)."""

    default_error_messages = {"required": REQUIRED, "null": REQUIRED, "invalid": MONEY_INVALID}

    def __init__(self, *, allow_zero: bool = True, maximum: Decimal = MAX_MONEY, **kwargs):
        self.allow_zero, self.maximum = allow_zero, maximum
        kwargs.setdefault("max_digits", 16)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and not data.strip() and not self.required:
            return None
        try:
            return parse_money(data, allow_zero=self.allow_zero, maximum=self.maximum)
        except ValidationError:
            self.fail("invalid")
