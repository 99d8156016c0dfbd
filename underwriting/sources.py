"""External data sources used for underwriting and their normalised payload schemas.

Pure Python (no Django imports) so that it can be used from providers, Celery
tasks, management commands and tests alike.

Every source answers with a flat JSON object.  The declarative table
``SOURCE_FIELDS`` describes the fields of each source; ``validate_payload``
checks a raw payload against it and returns a cleaned copy in the normalised
representation:

* money   -> ``str`` with exactly two decimals, e.g. ``"1234.50"`` (never negative)
* int     -> ``int`` >= 0
* bool    -> ``bool``
* date    -> ``"YYYY-MM-DD"``
* enum    -> one of the declared values (canonical spelling)
* industry-> GB/T 4754-2017 code: section letter + 2, 3 or 4 digits ("F51", "C171", "C1711"),
             the 2-digit division must belong to the section
* id      -> identity document number (letters/digits, upper-cased)

Error messages are short plain-English strings (module constants ``MSG_*``)
so that callers can wrap them for translation.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

__all__ = [
    "SOURCES",
    "SOURCE_LABELS",
    "SOURCE_FIELDS",
    "FIELD_LABELS",
    "FieldSpec",
    "MONEY",
    "INT",
    "BOOL",
    "DATE",
    "ENUM",
    "INDUSTRY",
    "ID_NUMBER",
    "TAX_GRADES",
    "REGISTRY_STATUSES",
    "INDUSTRY_SECTIONS",
    "NON_FIELD_ERRORS",
    "validate_payload",
    "clean_value",
    "is_valid_industry_code",
]

# --------------------------------------------------------------------------- kinds

MONEY = "money"
INT = "int"
BOOL = "bool"
DATE = "date"
ENUM = "enum"
INDUSTRY = "industry"
ID_NUMBER = "id"

KINDS = (MONEY, INT, BOOL, DATE, ENUM, INDUSTRY, ID_NUMBER)

NON_FIELD_ERRORS = "__all__"

# --------------------------------------------------------------------------- messages

MSG_REQUIRED = "this field is required"
MSG_NULL = "this field may not be null"
MSG_UNKNOWN_FIELD = "unknown field"
MSG_NOT_OBJECT = "payload must be a JSON object"
MSG_MONEY = "must be a non-negative amount with at most two decimals"
MSG_MONEY_NEGATIVE = "must not be negative"
MSG_MONEY_TOO_LARGE = "amount is too large"
MSG_INT = "must be a whole number"
MSG_INT_NEGATIVE = "must be zero or greater"
MSG_BOOL = "must be true or false"
MSG_DATE = "must be a date in YYYY-MM-DD format"
MSG_ENUM = "must be one of: {choices}"
MSG_INDUSTRY = "must be a GB/T 4754 industry code such as C1711 or F51"
MSG_ID_NUMBER = "must be an identity document number (6-32 letters or digits)"

# Largest accepted amount: 15 integer digits (fits DecimalField(max_digits=17, decimal_places=2)).
MONEY_MAX = Decimal("999999999999999.99")
_CENT = Decimal("0.01")

# --------------------------------------------------------------------------- enums

TAX_GRADES = ("A", "B", "M", "C", "D")
REGISTRY_STATUSES = ("active", "revoked", "cancelled", "liquidation")

# GB/T 4754-2017: section letter -> inclusive range of 2-digit divisions.
INDUSTRY_SECTIONS: dict[str, tuple[int, int]] = {
    "A": (1, 5),
    "B": (6, 12),
    "C": (13, 43),
    "D": (44, 46),
    "E": (47, 50),
    "F": (51, 52),
    "G": (53, 60),
    "H": (61, 62),
    "I": (63, 65),
    "J": (66, 69),
    "K": (70, 70),
    "L": (71, 72),
    "M": (73, 75),
    "N": (76, 79),
    "O": (80, 82),
    "P": (83, 83),
    "Q": (84, 85),
    "R": (86, 90),
    "S": (91, 96),
    "T": (97, 97),
}

# --------------------------------------------------------------------------- table


@dataclass(frozen=True)
class FieldSpec:
    kind: str
    label_zh: str
    label_en: str
    choices: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown field kind {self.kind!r}")
        if (self.kind == ENUM) != (self.choices is not None):
            raise ValueError("choices are required for enum fields and only for them")


def _f(kind: str, zh: str, en: str, choices: tuple[str, ...] | None = None) -> FieldSpec:
    return FieldSpec(kind, zh, en, choices)


SOURCES: tuple[str, ...] = (
    "tax",
    "registry",
    "social_security",
    "customs",
    "credit_bureau",
    "judicial",
    "internal",
)

SOURCE_LABELS: dict[str, tuple[str, str]] = {
    "tax": ("税务", "Tax"),
    "registry": ("工商登记", "Business registry"),
    "social_security": ("社保", "Social security"),
    "customs": ("海关", "Customs"),
    "credit_bureau": ("征信", "Credit bureau"),
    "judicial": ("司法", "Judicial"),
    "internal": ("行内数据", "Internal (bank)"),
}

SOURCE_FIELDS: dict[str, dict[str, FieldSpec]] = {
    "tax": {
        "tax_grade": _f(ENUM, "纳税信用等级", "Tax credit grade", TAX_GRADES),
        "months_filed": _f(INT, "连续申报月数", "Months filed"),
        "tax_paid_12m": _f(MONEY, "近12个月纳税额", "Tax paid (12 months)"),
        "revenue_12m": _f(MONEY, "近12个月开票/申报收入", "Revenue (12 months)"),
        "revenue_prev_12m": _f(MONEY, "上一12个月收入", "Revenue (previous 12 months)"),
        "major_violation": _f(BOOL, "重大税收违法", "Major tax violation"),
    },
    "registry": {
        "status": _f(ENUM, "登记状态", "Registration status", REGISTRY_STATUSES),
        "founded_on": _f(DATE, "成立日期", "Founded on"),
        "registered_capital": _f(MONEY, "注册资本", "Registered capital"),
        "legal_rep_id_number": _f(ID_NUMBER, "法定代表人证件号码", "Legal representative ID number"),
        "legal_rep_changed_12m": _f(
            BOOL, "近12个月法定代表人变更", "Legal representative changed (12 months)"
        ),
        "abnormal_operations": _f(BOOL, "经营异常名录", "Listed for abnormal operations"),
        "industry_code": _f(INDUSTRY, "行业代码", "Industry code (GB/T 4754)"),
    },
    "social_security": {
        "headcount": _f(INT, "社保缴纳人数", "Insured headcount"),
        "headcount_12m_ago": _f(INT, "12个月前社保缴纳人数", "Insured headcount 12 months ago"),
    },
    "customs": {
        "export_12m": _f(MONEY, "近12个月出口额", "Exports (12 months)"),
        "import_12m": _f(MONEY, "近12个月进口额", "Imports (12 months)"),
    },
    "credit_bureau": {
        "current_overdue_amount": _f(MONEY, "当前逾期金额", "Current overdue amount"),
        "overdue_count_24m": _f(INT, "近24个月逾期次数", "Overdue count (24 months)"),
        "max_dpd_24m": _f(INT, "近24个月最长逾期天数", "Max days past due (24 months)"),
        "inquiries_3m": _f(INT, "近3个月查询次数", "Credit inquiries (3 months)"),
        "outstanding_debt": _f(MONEY, "未结清贷款余额", "Outstanding debt"),
        "guarantees_outstanding": _f(MONEY, "对外担保余额", "Guarantees outstanding"),
    },
    "judicial": {
        "dishonest_debtor": _f(BOOL, "失信被执行人", "Dishonest judgment debtor"),
        "legal_rep_dishonest_debtor": _f(
            BOOL, "法定代表人失信", "Legal representative is a dishonest debtor"
        ),
        "enforcement_cases": _f(INT, "被执行案件数", "Enforcement cases"),
        "litigation_cases_12m": _f(INT, "近12个月涉诉案件数", "Litigation cases (12 months)"),
    },
    "internal": {
        "settlement_inflow_12m": _f(MONEY, "近12个月结算流入", "Settlement inflow (12 months)"),
        "settlement_inflow_prev_12m": _f(
            MONEY, "上一12个月结算流入", "Settlement inflow (previous 12 months)"
        ),
        "avg_deposit_balance_6m": _f(MONEY, "近6个月日均存款", "Average deposit balance (6 months)"),
        "npl_5y": _f(BOOL, "近5年本行不良记录", "Non-performing loan with us (5 years)"),
        "existing_exposure": _f(MONEY, "本行现有敞口", "Existing exposure with us"),
    },
}

# FIELD_LABELS[source][field] = ("中文", "English")
FIELD_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    source: {name: (spec.label_zh, spec.label_en) for name, spec in fields.items()}
    for source, fields in SOURCE_FIELDS.items()
}

assert tuple(SOURCE_FIELDS) == SOURCES

# --------------------------------------------------------------------------- cleaning


class _Invalid(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_MONEY_SHAPE_RE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)$")
_INT_RE = re.compile(r"^[+-]?\d+$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INDUSTRY_RE = re.compile(r"^([A-T])(\d{2}|\d{3}|\d{4})$")
_ID_RE = re.compile(r"^[0-9A-Z]{6,32}$")
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})


def _clean_money(value: Any) -> str:
    if isinstance(value, bool):
        raise _Invalid(MSG_MONEY)
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _Invalid(MSG_MONEY)
        amount = Decimal(repr(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise _Invalid(MSG_MONEY)
        amount = value
    elif isinstance(value, str):
        text = value.strip()
        if not _MONEY_SHAPE_RE.match(text):
            raise _Invalid(MSG_MONEY)
        try:
            amount = Decimal(text)
        except InvalidOperation:  # pragma: no cover - guarded by the regex
            raise _Invalid(MSG_MONEY) from None
    else:
        raise _Invalid(MSG_MONEY)
    if amount < 0:
        raise _Invalid(MSG_MONEY_NEGATIVE)
    if amount != amount.quantize(_CENT, rounding=ROUND_HALF_UP):
        raise _Invalid(MSG_MONEY)
    if amount > MONEY_MAX:
        raise _Invalid(MSG_MONEY_TOO_LARGE)
    return str(amount.quantize(_CENT))


def _clean_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Invalid(MSG_INT)
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise _Invalid(MSG_INT)
        number = int(value)
    elif isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise _Invalid(MSG_INT)
        number = int(value)
    elif isinstance(value, str) and _INT_RE.match(value.strip()):
        number = int(value.strip())
    else:
        raise _Invalid(MSG_INT)
    if number < 0:
        raise _Invalid(MSG_INT_NEGATIVE)
    return number


def _clean_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _Invalid(MSG_BOOL)


def _clean_date(value: Any) -> str:
    if isinstance(value, _dt.datetime):
        return value.date().isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        if _DATE_RE.match(text):
            try:
                return _dt.date.fromisoformat(text).isoformat()
            except ValueError:
                pass
    raise _Invalid(MSG_DATE)


def _clean_enum(value: Any, choices: tuple[str, ...]) -> str:
    if isinstance(value, str):
        text = value.strip()
        for choice in choices:
            if text.lower() == choice.lower():
                return choice
    raise _Invalid(MSG_ENUM.format(choices=", ".join(choices)))


def is_valid_industry_code(value: Any) -> bool:
    """True for a GB/T 4754-2017 code: section letter + division (2 digits) [+ group digit [+ class digit]]."""
    if not isinstance(value, str):
        return False
    match = _INDUSTRY_RE.match(value.strip().upper())
    if not match:
        return False
    section, digits = match.groups()
    low, high = INDUSTRY_SECTIONS[section]
    return low <= int(digits[:2]) <= high


def _clean_industry(value: Any) -> str:
    if not is_valid_industry_code(value):
        raise _Invalid(MSG_INDUSTRY)
    return value.strip().upper()


def _clean_id_number(value: Any) -> str:
    if isinstance(value, str):
        text = value.strip().upper()
        if _ID_RE.match(text):
            return text
    raise _Invalid(MSG_ID_NUMBER)


def clean_value(spec: FieldSpec, value: Any) -> Any:
    """Clean one value according to ``spec``; raises ``ValueError(message)`` when invalid."""
    try:
        return _clean(spec, value)
    except _Invalid as exc:
        raise ValueError(exc.message) from None


def _clean(spec: FieldSpec, value: Any) -> Any:
    if spec.kind == MONEY:
        return _clean_money(value)
    if spec.kind == INT:
        return _clean_int(value)
    if spec.kind == BOOL:
        return _clean_bool(value)
    if spec.kind == DATE:
        return _clean_date(value)
    if spec.kind == ENUM:
        assert spec.choices is not None
        return _clean_enum(value, spec.choices)
    if spec.kind == INDUSTRY:
        return _clean_industry(value)
    if spec.kind == ID_NUMBER:
        return _clean_id_number(value)
    raise AssertionError(spec.kind)  # pragma: no cover


def validate_payload(source: str, payload: dict) -> tuple[dict, dict[str, list[str]]]:
    """Validate ``payload`` for ``source``.

    Returns ``(cleaned, errors)``: ``cleaned`` holds every field that validated, in
    its normalised form (in table order); ``errors`` maps a field name to a list of
    messages (``NON_FIELD_ERRORS`` when the payload is not a mapping at all).  The
    payload is valid when ``errors`` is empty.  Raises ``ValueError`` for an
    unknown source.
    """
    try:
        fields = SOURCE_FIELDS[source]
    except (KeyError, TypeError):
        raise ValueError(f"unknown data source {source!r}") from None

    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    if not isinstance(payload, dict):
        errors[NON_FIELD_ERRORS] = [MSG_NOT_OBJECT]
        return cleaned, errors

    for name, spec in fields.items():
        if name not in payload:
            errors[name] = [MSG_REQUIRED]
            continue
        value = payload[name]
        if value is None:
            errors[name] = [MSG_NULL]
            continue
        try:
            cleaned[name] = _clean(spec, value)
        except _Invalid as exc:
            errors[name] = [exc.message]

    for name in payload:
        if name not in fields:
            errors[str(name)] = [MSG_UNKNOWN_FIELD]
    return cleaned, errors
