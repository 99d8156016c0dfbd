from datetime import date, datetime
from decimal import Decimal

import pytest

from underwriting.sources import (
    FIELD_LABELS,
    MSG_BOOL,
    MSG_DATE,
    MSG_ID_NUMBER,
    MSG_INDUSTRY,
    MSG_INT,
    MSG_INT_NEGATIVE,
    MSG_MONEY,
    MSG_MONEY_NEGATIVE,
    MSG_MONEY_TOO_LARGE,
    MSG_NOT_OBJECT,
    MSG_NULL,
    MSG_REQUIRED,
    MSG_UNKNOWN_FIELD,
    NON_FIELD_ERRORS,
    SOURCE_FIELDS,
    SOURCE_LABELS,
    SOURCES,
    is_valid_industry_code,
    validate_payload,
)

VALID = {
    "tax": {
        "tax_grade": "A",
        "months_filed": 36,
        "tax_paid_12m": "120000.00",
        "revenue_12m": "4000000.00",
        "revenue_prev_12m": "3500000.00",
        "major_violation": False,
    },
    "registry": {
        "status": "active",
        "founded_on": "2015-03-01",
        "registered_capital": "1000000.00",
        "legal_rep_id_number": "110101199003070011",
        "legal_rep_changed_12m": False,
        "abnormal_operations": False,
        "industry_code": "C1711",
    },
    "social_security": {"headcount": 25, "headcount_12m_ago": 20},
    "customs": {"export_12m": "0.00", "import_12m": "150000.00"},
    "credit_bureau": {
        "current_overdue_amount": "0.00",
        "overdue_count_24m": 1,
        "max_dpd_24m": 12,
        "inquiries_3m": 2,
        "outstanding_debt": "800000.00",
        "guarantees_outstanding": "0.00",
    },
    "judicial": {
        "dishonest_debtor": False,
        "legal_rep_dishonest_debtor": False,
        "enforcement_cases": 0,
        "litigation_cases_12m": 1,
    },
    "internal": {
        "settlement_inflow_12m": "2500000.00",
        "settlement_inflow_prev_12m": "2000000.00",
        "avg_deposit_balance_6m": "150000.00",
        "npl_5y": False,
        "existing_exposure": "0.00",
    },
}


def check(source, field, value):
    """Validate VALID[source] with ``field`` replaced by ``value``."""
    payload = dict(VALID[source], **{field: value})
    return validate_payload(source, payload)


def test_sources_and_labels_cover_every_field():
    assert SOURCES == (
        "tax",
        "registry",
        "social_security",
        "customs",
        "credit_bureau",
        "judicial",
        "internal",
    )
    assert set(SOURCE_LABELS) == set(SOURCES) == set(FIELD_LABELS) == set(VALID)
    for source in SOURCES:
        assert set(FIELD_LABELS[source]) == set(SOURCE_FIELDS[source]) == set(VALID[source])
        for zh, en in FIELD_LABELS[source].values():
            assert zh and en and zh != en
            assert any("\u4e00" <= ch <= "\u9fff" for ch in zh)


@pytest.mark.parametrize("source", SOURCES)
def test_valid_payload_round_trips(source):
    cleaned, errors = validate_payload(source, VALID[source])
    assert errors == {}
    assert cleaned == VALID[source]
    assert list(cleaned) == list(SOURCE_FIELDS[source])


@pytest.mark.parametrize("source", SOURCES)
def test_empty_payload_reports_every_field_missing(source):
    cleaned, errors = validate_payload(source, {})
    assert cleaned == {}
    assert errors == {name: [MSG_REQUIRED] for name in SOURCE_FIELDS[source]}


def test_unknown_source_raises():
    with pytest.raises(ValueError):
        validate_payload("weather", {})
    with pytest.raises(ValueError):
        validate_payload(None, {})


@pytest.mark.parametrize("payload", [None, [], "x", 3])
def test_non_object_payload(payload):
    cleaned, errors = validate_payload("tax", payload)
    assert cleaned == {}
    assert errors == {NON_FIELD_ERRORS: [MSG_NOT_OBJECT]}


def test_missing_null_and_extra_fields():
    payload = dict(VALID["tax"], colour="red")
    del payload["months_filed"]
    payload["revenue_12m"] = None
    cleaned, errors = validate_payload("tax", payload)
    assert errors == {
        "months_filed": [MSG_REQUIRED],
        "revenue_12m": [MSG_NULL],
        "colour": [MSG_UNKNOWN_FIELD],
    }
    assert "colour" not in cleaned and "revenue_12m" not in cleaned
    assert cleaned["tax_grade"] == "A"


# ----------------------------------------------------------------- money


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1234.5", "1234.50"),
        ("1234.50", "1234.50"),
        (" 7 ", "7.00"),
        ("0", "0.00"),
        (1234, "1234.00"),
        (12.5, "12.50"),
        (0.1, "0.10"),
        (Decimal("99.990"), "99.99"),
        ("999999999999999.99", "999999999999999.99"),
    ],
)
def test_money_normalised(value, expected):
    cleaned, errors = check("tax", "revenue_12m", value)
    assert errors == {}
    assert cleaned["revenue_12m"] == expected
    assert isinstance(cleaned["revenue_12m"], str)


@pytest.mark.parametrize(
    "value, message",
    [
        ("12.345", MSG_MONEY),
        ("abc", MSG_MONEY),
        ("1,000.00", MSG_MONEY),
        ("1e6", MSG_MONEY),
        ("", MSG_MONEY),
        (True, MSG_MONEY),
        (float("nan"), MSG_MONEY),
        (float("inf"), MSG_MONEY),
        (Decimal("NaN"), MSG_MONEY),
        ([1], MSG_MONEY),
        (0.125, MSG_MONEY),
        (-1, MSG_MONEY_NEGATIVE),
        ("-0.01", MSG_MONEY_NEGATIVE),
        (Decimal("-5"), MSG_MONEY_NEGATIVE),
        ("1000000000000000.00", MSG_MONEY_TOO_LARGE),
    ],
)
def test_money_errors(value, message):
    cleaned, errors = check("credit_bureau", "outstanding_debt", value)
    assert errors == {"outstanding_debt": [message]}
    assert "outstanding_debt" not in cleaned


# ----------------------------------------------------------------- int


@pytest.mark.parametrize(
    "value, expected", [(0, 0), (36, 36), ("12", 12), (" 3 ", 3), (24.0, 24), (Decimal("5"), 5)]
)
def test_int_normalised(value, expected):
    cleaned, errors = check("tax", "months_filed", value)
    assert errors == {}
    assert cleaned["months_filed"] == expected
    assert type(cleaned["months_filed"]) is int


@pytest.mark.parametrize(
    "value, message",
    [
        (-1, MSG_INT_NEGATIVE),
        ("-3", MSG_INT_NEGATIVE),
        (1.5, MSG_INT),
        ("1.5", MSG_INT),
        ("many", MSG_INT),
        (True, MSG_INT),
        (float("inf"), MSG_INT),
        ({}, MSG_INT),
    ],
)
def test_int_errors(value, message):
    _, errors = check("social_security", "headcount", value)
    assert errors == {"headcount": [message]}


# ----------------------------------------------------------------- bool


@pytest.mark.parametrize(
    "value, expected",
    [(True, True), (False, False), (1, True), (0, False), ("true", True), ("False", False), ("0", False)],
)
def test_bool_normalised(value, expected):
    cleaned, errors = check("judicial", "dishonest_debtor", value)
    assert errors == {}
    assert cleaned["dishonest_debtor"] is expected


@pytest.mark.parametrize("value", ["maybe", 2, -1, 0.5, [], ""])
def test_bool_errors(value):
    _, errors = check("judicial", "dishonest_debtor", value)
    assert errors == {"dishonest_debtor": [MSG_BOOL]}


# ----------------------------------------------------------------- date


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2020-02-29", "2020-02-29"),
        (date(2019, 1, 5), "2019-01-05"),
        (datetime(2019, 1, 5, 13, 30), "2019-01-05"),
        (" 2018-12-31 ", "2018-12-31"),
    ],
)
def test_date_normalised(value, expected):
    cleaned, errors = check("registry", "founded_on", value)
    assert errors == {}
    assert cleaned["founded_on"] == expected


@pytest.mark.parametrize(
    "value", ["2021-02-29", "20200101", "2020/01/01", "01-02-2020", 20200101, "", "2020-1-1"]
)
def test_date_errors(value):
    _, errors = check("registry", "founded_on", value)
    assert errors == {"founded_on": [MSG_DATE]}


# ----------------------------------------------------------------- enum


@pytest.mark.parametrize("grade", ["A", "B", "M", "C", "D"])
def test_tax_grades(grade):
    cleaned, errors = check("tax", "tax_grade", grade)
    assert errors == {} and cleaned["tax_grade"] == grade


def test_enum_is_case_insensitive_and_canonicalised():
    assert check("tax", "tax_grade", "b")[0]["tax_grade"] == "B"
    assert check("registry", "status", " Liquidation ")[0]["status"] == "liquidation"


@pytest.mark.parametrize(
    "source, field, value",
    [("tax", "tax_grade", "E"), ("tax", "tax_grade", 1), ("registry", "status", "dormant")],
)
def test_enum_errors_list_choices(source, field, value):
    _, errors = check(source, field, value)
    assert list(errors) == [field]
    assert errors[field][0].startswith("must be one of:")
    if field == "status":
        assert "active, revoked, cancelled, liquidation" in errors[field][0]
    else:
        assert "A, B, M, C, D" in errors[field][0]


# ----------------------------------------------------------------- industry code


@pytest.mark.parametrize(
    "value, expected",
    [
        ("C1711", "C1711"),
        ("F51", "F51"),
        ("c171", "C171"),
        (" I6513 ", "I6513"),
        ("T97", "T97"),
        ("A01", "A01"),
    ],
)
def test_industry_code_valid(value, expected):
    cleaned, errors = check("registry", "industry_code", value)
    assert errors == {}
    assert cleaned["industry_code"] == expected


@pytest.mark.parametrize(
    "value", ["C51", "F17", "X1711", "C17111", "C1", "1711", "C", "", 1711, "C17A1", "T98"]
)
def test_industry_code_errors(value):
    _, errors = check("registry", "industry_code", value)
    assert errors == {"industry_code": [MSG_INDUSTRY]}
    assert not is_valid_industry_code(value)


# ----------------------------------------------------------------- id number


def test_id_number_upper_cased():
    cleaned, errors = check("registry", "legal_rep_id_number", "11010119900307001x")
    assert errors == {} and cleaned["legal_rep_id_number"] == "11010119900307001X"


@pytest.mark.parametrize("value", ["", "12345", "1101-0119", 110101199003070011, "身份证号码"])
def test_id_number_errors(value):
    _, errors = check("registry", "legal_rep_id_number", value)
    assert errors == {"legal_rep_id_number": [MSG_ID_NUMBER]}


def test_several_errors_at_once():
    payload = {
        "tax_grade": "Z",
        "months_filed": -2,
        "tax_paid_12m": "-5",
        "revenue_12m": "1.001",
        "revenue_prev_12m": "100",
        "major_violation": "perhaps",
        "extra": 1,
    }
    cleaned, errors = validate_payload("tax", payload)
    assert cleaned == {"revenue_prev_12m": "100.00"}
    assert set(errors) == {
        "tax_grade",
        "months_filed",
        "tax_paid_12m",
        "revenue_12m",
        "major_violation",
        "extra",
    }
    assert all(
        isinstance(msgs, list) and msgs and all(isinstance(m, str) for m in msgs) for msgs in errors.values()
    )
