"""USCC (GB 32100), resident ID (GB 11643) and GB/T 4754 industry codes: refused with a clear message,
normalised when valid, and an unknown county on a genuine ID is a warning, never a refusal."""

from __future__ import annotations

import datetime as dt

import pytest
from stdnum.cn import ric, uscc

from applications.identifiers import (
    check_industry_code,
    check_resident_id,
    check_uscc,
    region_of_uscc,
    resident_age,
)


def _rid(county: str, birth: str, seq: str = "123") -> str:
    body = f"{county}{birth}{seq}"
    return body + ric.calc_check_digit(body + "0")


VALID_USCC = "91310000MA1FL0BL59"


def test_valid_uscc_is_normalised_and_its_region_read():
    assert uscc.is_valid(VALID_USCC)
    check = check_uscc(f" {VALID_USCC[:8].lower()} {VALID_USCC[8:].lower()} ")
    assert check.ok and check.value == VALID_USCC
    assert region_of_uscc(VALID_USCC) == "310000"


@pytest.mark.parametrize("value, fragment", [
    ("91310115MA1FL8L4", "18"),  # too short
    ("91310115MA1FL8L4XYZ", "18"),  # too long
    ("9131O115MA1FL8L4I5", "格式"),  # letters the code never uses (O, I)
])
def test_bad_uscc_is_refused_with_a_message_that_names_the_problem(value, fragment):
    check = check_uscc(value)
    assert not check.ok
    assert "统一社会信用代码" in check.errors[0] and "USCC" in check.errors[0] and fragment in check.errors[0]


def test_wrong_uscc_check_character_is_named():
    good = VALID_USCC
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
    check = check_uscc(wrong)
    assert not check.ok and "校验位" in check.errors[0] and "check character" in check.errors[0]


def test_resident_id_valid_and_lower_case_x_accepted():
    number = _rid("110105", "19750312")
    assert number.endswith("X")
    check = check_resident_id(number.lower())
    assert check.ok and check.value == number and not check.warnings


def test_resident_id_with_a_county_created_after_birth_is_accepted_with_a_warning():
    # Pudong New Area (310115) was created in the 1990s; people born in 1975 there hold it genuinely.
    number = _rid("310115", "19750312")
    assert not ric.is_valid(number)  # what stdnum alone would do: refuse the customer
    check = check_resident_id(number)
    assert check.ok
    assert check.warnings and "地区代码" in check.warnings[0]


@pytest.mark.parametrize("number, fragment", [
    ("11010519800101123", "18"),
    ("1101051980010112X5", "格式"),
    (_rid("110105", "19801332"), "出生日期"),
    (_rid("110105", "20991231"), "出生日期"),
])
def test_resident_id_errors(number, fragment):
    check = check_resident_id(number, today=dt.date(2026, 6, 1))
    assert not check.ok and fragment in check.errors[0]


def test_resident_id_wrong_check_digit():
    good = _rid("110105", "19800101")
    wrong = good[:-1] + ("1" if good[-1] != "1" else "2")
    check = check_resident_id(wrong)
    assert not check.ok and "校验位" in check.errors[0]


def test_resident_age_counts_birthdays():
    number = _rid("110105", "19800615")
    assert resident_age(number, on=dt.date(2026, 6, 14)) == 45
    assert resident_age(number, on=dt.date(2026, 6, 15)) == 46


@pytest.mark.parametrize("code, ok", [
    ("C1711", True), ("c 1711", True), ("F5123", True), ("K70", True), ("A01", True), ("T97", True),
    ("C99", False), ("B05", False), ("Z12", False), ("C1", False), ("C17111", False), ("", False), ("1711", False),
])
def test_industry_codes_follow_gb_t_4754_sections(code, ok):
    check = check_industry_code(code)
    assert check.ok is ok, check.errors
    if ok:
        assert check.value == code.replace(" ", "").upper()
    else:
        assert "行业代码" in check.errors[0]
