from decimal import Decimal, InvalidOperation

from django import template

from loanservice.money import money_display
from loanservice.text import in_language

register = template.Library()


@register.filter
def lang(message):
    """The user's half of a "中文 / English" message."""
    return in_language(message)


@register.simple_tag(takes_context=True)
def tr(context, obj, field):
    """A bilingual model's field in the page's language (Bilingual.tr)."""
    return obj.tr(field)


@register.filter
def cny(value, decimals=0):
    """1234567.5 → "1,234,568" (or with decimals, `|cny:2`): the same grouping in every language. The one
    money filter of the pages (loanservice.money.money_display)."""
    return money_display(value, decimals)


@register.filter
def rate_pct(value, decimals=2):
    """An annual rate as a fraction, 0.0435 → "4.35%"."""
    if value in (None, ""):
        return ""

    try:
        return f"{Decimal(str(value)) * 100:.{int(decimals)}f}%"
    except (InvalidOperation, ValueError):
        return value
