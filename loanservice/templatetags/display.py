"""The one set of display filters every page uses (`{% load display %}`): money, rates, percentages, dates,
durations and codes → names, in the reader's language (docs/frontend.md).

    {{ loan.principal|money }}            ¥1,234,567.89
    {{ amount|cny:2 }}                    1,234,567.89   (no currency sign, e.g. in a table column headed 元)
    {{ offer.rate|rate }}                 3.50%          (an annual rate kept as a fraction, 0.0350)
    {{ offer|rate_basis }}                按 2025年5月20日 一年期LPR 3.00% 加 50 个基点确定，固定利率
    {{ share|percent }}                   35.0%          (a fraction, 0.35)
    {{ when|day }}                        2027年1月7日 / 7 Jan 2027
    {{ when|daytime }}                    2027年1月7日 14:05 / 7 Jan 2027 14:05 (aware → local time)
    {{ clock.remaining_hours|duration }}  剩 2 天 3 小时 / 超时 5 小时 (hours, a timedelta or a deadline)
    {{ hours|span }}                      2天3小时 / 2 d 3 h (unsigned)
    {{ app.status|label }}                已批准 / Approved (any code; `label:"product"` names a kind)
    {{ message|lang }}                    the reader's half of a "中文 / English" message
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from django import template
from django.forms import CheckboxInput, CheckboxSelectMultiple, RadioSelect, Select, SelectMultiple
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from ..labels import label as _label
from ..money import money_display
from ..text import in_language, join_list, phone_display

register = template.Library()

_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _english() -> bool:
    return (get_language() or "").startswith("en")


def _decimal(value) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return number if number.is_finite() else None


@register.filter
def money(value, decimals=2):
    """An amount in CNY for people: "¥1,234,567.89" (a negative one "-¥1,234.50"); "" for nothing."""
    number = _decimal(value)
    if number is None:
        return "" if value in (None, "") else value
    sign = "-" if number < 0 else ""
    return f"{sign}¥{money_display(abs(number), int(decimals))}"


@register.filter
def cny(value, decimals=0):
    """1234567.5 → "1,234,568" (or with decimals, `|cny:2`): grouped digits without the currency sign."""
    return money_display(value, decimals)


@register.filter
def rate(value, decimals=2):
    """An annual rate kept as a fraction, 0.0350 → "3.50%"."""
    number = _decimal(value)
    if number is None:
        return "" if value in (None, "") else value
    return f"{number * 100:.{int(decimals)}f}%"


# The intake pages' older name for `rate`.
register.filter("rate_pct", rate)


@register.filter
def rate_basis(offer):
    """The rate basis of an offer or a loan ({lpr_tenor, lpr_rate, lpr_date, spread_bp, rate_type, repricing_months})
    as a sentence: "按 2025年5月20日 一年期LPR 3.00% 加 50 个基点确定，固定利率" / "1-year LPR of 20 May 2025 (3.00%)
    plus 50 basis points; fixed rate"; "" when it has no basis."""
    if not offer or _decimal(offer.get("lpr_rate")) is None:
        return ""
    spread = _decimal(offer.get("spread_bp")) or Decimal("0")
    points = f"{abs(spread):.2f}".rstrip("0").rstrip(".")
    floating = offer.get("rate_type") == "floating"
    months = offer.get("repricing_months")
    if _english():
        tenor = "1-year LPR" if offer.get("lpr_tenor") == "1y" else "5-year LPR"
        text = (f"{tenor} of {day(offer.get('lpr_date'))} ({rate(offer.get('lpr_rate'))}) "
                f"{'minus' if spread < 0 else 'plus'} {points} basis points; ")
        return text + (f"floating, repriced every {months} months" if floating else "fixed for the life of the loan")
    tenor = "一年期LPR" if offer.get("lpr_tenor") == "1y" else "五年期以上LPR"
    text = f"按 {day(offer.get('lpr_date'))} {tenor} {rate(offer.get('lpr_rate'))} {'减' if spread < 0 else '加'} {points} 个基点确定，"
    return text + (f"浮动利率，每 {months} 个月重定价" if floating else "固定利率")


@register.filter
def percent(value, decimals=1):
    """A share kept as a fraction, 0.35 → "35.0%"."""
    return rate(value, decimals)


@register.filter
def number(value, decimals=0):
    """A count or measure with thousands separators: 12345 → "12,345"."""
    return money_display(value, decimals)


def _as_date(value) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return (timezone.localtime(value) if timezone.is_aware(value) else value).date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


@register.filter
def day(value):
    """A date: "2027年1月7日" in Chinese, "7 Jan 2027" in English (a datetime is read in local time)."""
    d = _as_date(value)
    if d is None:
        return "" if value in (None, "") else value
    if _english():
        return f"{d.day} {_MONTHS_EN[d.month - 1]} {d.year}"
    return f"{d.year}年{d.month}月{d.day}日"


@register.filter
def daytime(value):
    """A moment in local time: "2027年1月7日 14:05" / "7 Jan 2027 14:05"."""
    if isinstance(value, str) and value:
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, dt.datetime):
        return day(value)
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return f"{day(local)} {local:%H:%M}"


def _hours(value) -> Decimal | None:
    """Hours from a number of hours, a timedelta, or a deadline (hours from now until it)."""
    if isinstance(value, dt.timedelta):
        return Decimal(str(value.total_seconds())) / 3600
    if isinstance(value, dt.datetime):
        return Decimal(str((value - timezone.now()).total_seconds())) / 3600
    return _decimal(value)


def _span_text(hours: Decimal) -> str:
    """An unsigned duration to the hour (under an hour: minutes): "2 天 3 小时" / "2 d 3 h"."""
    total = int(abs(hours).to_integral_value())
    if total == 0:
        return _("%(n)d 分钟") % {"n": int((abs(hours) * 60).to_integral_value())}
    days, rest = divmod(total, 24)
    parts = [_("%(n)d 天") % {"n": days}] if days else []
    if rest:
        parts.append(_("%(n)d 小时") % {"n": rest})
    return " ".join(parts)


@register.filter
def span(value):
    """An unsigned duration: 51 (hours) → "2 天 3 小时" / "2 d 3 h"."""
    hours = _hours(value)
    if hours is None:
        return "" if value in (None, "") else value
    return _span_text(hours)


@register.filter
def duration(value):
    """Time left on a clock or past it: "剩 2 天 3 小时" / "2 d 3 h left", "超时 5 小时" / "5 h overdue"."""
    hours = _hours(value)
    if hours is None:
        return "" if value in (None, "") else value
    text = _span_text(hours)
    if hours < 0:
        return _("超时 %(span)s") % {"span": text}
    return _("剩 %(span)s") % {"span": text}


@register.filter
def label(value, kind=""):
    """A code → its name in the reader's language (loanservice.labels): statuses, stages, categories, routes,
    sources, reasons, products, branches, audit events, document types."""
    return _label(value, kind)


@register.filter
def labels(values, kind=""):
    """A list of codes → their names joined as running text ("征信、海关" / "credit bureau, customs")."""
    if not values:
        return ""
    return join_list(_label(v, kind) for v in values)


@register.filter
def phone(value):
    """A mainland mobile number grouped as people read it: 13953865172 → "139 5386 5172"."""
    return phone_display(value)


@register.filter
def lang(message):
    """The reader's half of a "中文 / English" message."""
    return in_language(message)


@register.filter
def yesno_text(value):
    """A boolean in words: 是/否, yes/no (never True/False on a page)."""
    if value is None:
        return "—"
    return _("是 yes") if value else _("否 no")


@register.filter
def bs(field):
    """A form field rendered with Bootstrap's classes (form-control, form-select, form-check-input) and
    `is-invalid` when it has errors; the project's form partial places the errors under it."""
    widget = field.field.widget
    if isinstance(widget, CheckboxInput | RadioSelect | CheckboxSelectMultiple):
        css = "form-check-input"
    elif isinstance(widget, Select | SelectMultiple):
        css = "form-select"
    else:
        css = "form-control"
    existing = widget.attrs.get("class", "")
    classes = " ".join(c for c in (existing, css, "is-invalid" if field.errors else "") if c)
    if isinstance(widget, RadioSelect | CheckboxSelectMultiple):
        return field.as_widget()
    return field.as_widget(attrs={"class": classes})
