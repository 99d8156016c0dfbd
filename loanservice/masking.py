"""Masks for personal data: identity numbers and phone numbers as people see them on a page (110***********1234,
138****5678), and `mask_personal`, which masks them anywhere in a JSON-like value (the audit trail's before/after,
so anonymisation never needs to touch the audit table; DESIGN.md "Trust rules")."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from stdnum.cn import ric

from .roles import has_role

# Keys whose values are personal identifiers wherever they appear (a model's fields, a form's, an API body's).
PERSONAL_KEY_SUFFIXES = ("id_number", "id_no", "id_card", "phone", "mobile", "phone_number")

_PHONE = re.compile(r"(?<![\d.])1[3-9]\d{9}(?![\d.])")
_RIC = re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])")


def mask_id_number(value: str) -> str:
    """110101198001011234 → 110***********1234: the region's first three digits and the last four."""
    value = str(value or "")
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_phone(value: str) -> str:
    """13812345678 → 138****5678."""
    value = str(value or "")
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def is_personal_key(key: str) -> bool:
    key = str(key).lower()
    return key.endswith(PERSONAL_KEY_SUFFIXES)


def mask_text(text: str) -> str:
    """Masks resident identity numbers (checksum-valid, so a company's USCC is left alone) and mainland mobile
    numbers inside free text."""
    def _ric(m: re.Match) -> str:
        return mask_id_number(m.group(0)) if ric.is_valid(m.group(0)) else m.group(0)

    return _PHONE.sub(lambda m: mask_phone(m.group(0)), _RIC.sub(_ric, text))


def mask_personal(value: Any, *, key: str = "") -> Any:
    """A copy of `value` (dicts, lists, strings, numbers) with personal identifiers masked: whole values under a
    personal key (`phone`, `legal_rep_id_number`, ...), and identity or mobile numbers found in any string."""
    if isinstance(value, dict):
        return {k: mask_personal(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_personal(v, key=key) for v in value]
    if key and is_personal_key(key) and value not in (None, ""):
        text = str(value)
        return mask_phone(text) if "phone" in key.lower() or "mobile" in key.lower() else mask_id_number(text)
    if isinstance(value, str):
        return mask_text(value)
    return value


# --- per role (DESIGN.md "Trust rules": masked on pages and in the API for roles that do not need them) ---------

def personal_kind(field_name: str) -> str:
    """Which rule of settings.PERSONAL_DATA_CLEAR_ROLES a field follows: `phone` or `id_number`."""
    name = field_name.lower()
    return "phone" if "phone" in name or "mobile" in name else "id_number"


def mask_value(value, kind: str) -> str:
    if value in (None, ""):
        return ""
    return mask_phone(value) if kind == "phone" else mask_id_number(value)


def may_reveal(user, kind: str) -> bool:
    """May this staff member ask for the clear value (an audited reveal)? The roles are settings data."""
    return has_role(user, *settings.PERSONAL_DATA_CLEAR_ROLES.get(kind, ()))


def personal_shown(value, *, kind: str, user, owner_id: int | None = None) -> str:
    """The value as a page or the API shows it to `user`: whole to the person or firm it belongs to (`owner_id`),
    masked to everyone else, staff included; staff with the right reveal it on demand (audited)."""
    if owner_id is not None and getattr(user, "pk", None) == owner_id:
        return value or ""
    return mask_value(value, kind)
