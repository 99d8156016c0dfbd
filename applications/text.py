"""Messages are written "中文 / English" (one msgid, both languages). On a page, show the user's half."""

from __future__ import annotations

from django.utils.translation import get_language


def in_language(message, language: str | None = None) -> str:
    text = str(message if message is not None else "")
    if " / " not in text:
        return text
    zh, en = text.split(" / ", 1)
    lang = language or get_language() or "zh-hans"
    return en.strip() if lang.startswith("en") else zh.strip()
