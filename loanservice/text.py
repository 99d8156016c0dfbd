"""Messages are written "中文 / English" (one msgid, both languages). On a page, show the user's half."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import get_language
from django.utils.translation import gettext as _


def in_language(message, language: str | None = None) -> str:
    text = str(message if message is not None else "")
    if " / " not in text:
        return text
    zh, en = text.split(" / ", 1)
    lang = language or get_language() or "zh-hans"
    return en.strip() if lang.startswith("en") else zh.strip()


def join_list(items: Iterable) -> str:
    """A list in running text: "甲、乙、丙" in Chinese, "A, B, C" in English (templates: `join:_("、")`)."""
    # Translators: the separator of a list in running text ("、" in Chinese, ", " in English).
    return _("、").join(str(item) for item in items)


def phone_masked(value) -> str:
    """A mobile number with its middle four digits hidden: 13953865172 → "139 **** 5172"."""
    digits = str(value or "")
    return f"{digits[:3]} **** {digits[7:]}" if len(digits) == 11 and digits.isdigit() else "****"


def phone_display(value) -> str:
    """A mainland mobile number grouped as people read it: 13953865172 → "139 5386 5172"; anything else as it is."""
    digits = str(value or "")
    if len(digits) == 11 and digits.isdigit():
        return f"{digits[:3]} {digits[3:7]} {digits[7:]}"
    return digits
