"""Business-day calendar / SLA clock tests (pure Python, run with -p no:django).

Facts asserted against chinese_calendar 1.11 data for 2026:
  National Day 1-7 Oct 2026 (Thu-Wed); Mid-autumn 25-27 Sep 2026;
  调休 make-up workdays Sun 20 Sep 2026 and Sat 10 Oct 2026.
  Spring Festival 15-23 Feb 2026; make-up workdays Sat 14 Feb and Sat 28 Feb 2026.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from chinese_calendar import constants
from hypothesis import given, settings
from hypothesis import strategies as st

from loanservice.bizcal import (
    BusinessCalendar,
    business_elapsed,
    calendar_from_chinese_calendar,
    due_at,
    remaining,
    warnings_for,
    weekends_only,
)

SH = ZoneInfo("Asia/Shanghai")
H = timedelta(hours=1)
DAY = timedelta(days=1)


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


def drange(a: date, b: date):
    while a <= b:
        yield a
        a += DAY


@pytest.fixture(scope="module")
def cal() -> BusinessCalendar:
    return BusinessCalendar(*calendar_from_chinese_calendar(range(2004, 2028)))


# -- the library data itself -----------------------------------------------------
def test_library_2026_national_day_and_makeup_days():
    oct_hol = sorted(d for d in constants.holidays if (d.year, d.month) == (2026, 10))
    assert oct_hol == list(drange(date(2026, 10, 1), date(2026, 10, 7)))
    assert all(constants.holidays[d] == chinese_calendar.Holiday.national_day.value for d in oct_hol)
    assert date(2026, 10, 8) not in constants.holidays
    mid_autumn = sorted(
        d
        for d, h in constants.holidays.items()
        if h == chinese_calendar.Holiday.mid_autumn_festival.value and d.year == 2026
    )
    assert mid_autumn == [date(2026, 9, 25), date(2026, 9, 26), date(2026, 9, 27)]
    nd_makeup = sorted(
        d
        for d, h in constants.workdays.items()
        if d.year == 2026 and h == chinese_calendar.Holiday.national_day.value
    )
    assert nd_makeup == [date(2026, 9, 20), date(2026, 10, 10)]
    assert [d.strftime("%a") for d in nd_makeup] == ["Sun", "Sat"]


def test_library_2026_spring_festival_and_makeup_days():
    sf = sorted(
        d
        for d, h in constants.holidays.items()
        if d.year == 2026 and h == chinese_calendar.Holiday.spring_festival.value
    )
    assert sf == list(drange(date(2026, 2, 15), date(2026, 2, 23)))
    sf_makeup = sorted(
        d
        for d, h in constants.workdays.items()
        if d.year == 2026 and h == chinese_calendar.Holiday.spring_festival.value
    )
    assert sf_makeup == [date(2026, 2, 14), date(2026, 2, 28)]
    assert all(d.weekday() == 5 for d in sf_makeup)


def test_calendar_from_chinese_calendar_skips_unknown_years(caplog):
    with caplog.at_level(logging.INFO, logger="loanservice.bizcal"):
        holidays, workdays, known = calendar_from_chinese_calendar([2025, 2026, 2027, 2099])
    assert known == {2025, 2026}
    assert "2027" in caplog.text and "2099" in caplog.text
    assert {d.year for d in holidays} == {2025, 2026}
    assert date(2026, 10, 3) in holidays  # a Saturday holiday is stored too
    assert {date(2026, 9, 20), date(2026, 10, 10), date(2026, 2, 14), date(2026, 2, 28)} <= workdays
    assert all(d.year in known for d in workdays)


def test_calendar_matches_library_every_day_2004_2026(cal):
    for d in drange(date(2004, 1, 1), date(2026, 12, 31)):
        assert cal.is_business_day(d) == chinese_calendar.is_workday(d), d
        assert cal.is_known(d)


# -- dates ------------------------------------------------------------------------
def test_business_days_around_national_day_2026(cal):
    assert cal.is_business_day(date(2026, 9, 30))
    assert not any(cal.is_business_day(d) for d in drange(date(2026, 10, 1), date(2026, 10, 7)))
    assert cal.is_business_day(date(2026, 10, 8))
    assert cal.is_business_day(date(2026, 10, 10))  # Saturday make-up workday
    assert cal.is_business_day(date(2026, 9, 20))  # Sunday make-up workday
    assert not cal.is_business_day(date(2026, 10, 11))  # ordinary Sunday


def test_next_business_day(cal):
    assert cal.next_business_day(date(2026, 9, 30)) == date(2026, 10, 8)
    assert cal.next_business_day(date(2026, 10, 3)) == date(2026, 10, 8)
    assert cal.next_business_day(date(2026, 9, 30), include_self=True) == date(2026, 9, 30)
    assert cal.next_business_day(date(2026, 10, 1), include_self=True) == date(2026, 10, 8)
    assert cal.next_business_day(date(2026, 10, 9)) == date(2026, 10, 10)  # Fri → Sat make-up


def test_add_business_days_across_holiday(cal):
    assert cal.add_business_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
    assert cal.add_business_days(date(2026, 9, 30), 3) == date(2026, 10, 10)  # Sat counts
    assert cal.add_business_days(date(2026, 9, 30), 4) == date(2026, 10, 12)
    assert cal.add_business_days(date(2026, 10, 8), -1) == date(2026, 9, 30)
    assert cal.add_business_days(date(2026, 10, 4), 1) == date(2026, 10, 8)  # from a holiday
    assert cal.add_business_days(date(2026, 10, 4), 0) == date(2026, 10, 4)
    # Mid-autumn + National Day: Thu 24 Sep + 1 → Mon 28 Sep
    assert cal.add_business_days(date(2026, 9, 24), 1) == date(2026, 9, 28)


def test_business_days_between(cal):
    assert cal.business_days_between(date(2026, 9, 30), date(2026, 10, 8)) == 1
    assert cal.business_days_between(date(2026, 10, 8), date(2026, 9, 30)) == -1
    assert cal.business_days_between(date(2026, 9, 30), date(2026, 9, 30)) == 0
    assert cal.business_days_between(date(2026, 10, 9), date(2026, 10, 12)) == 2  # Sat 10th + Mon
    # the whole of 2026 (Jan 1 - Dec 31), straight from the library
    expected = len(chinese_calendar.get_workdays(date(2026, 1, 1), date(2026, 12, 31)))
    assert cal.business_days_between(date(2025, 12, 31), date(2026, 12, 31)) == expected


@given(
    d=st.dates(min_value=date(2004, 1, 1), max_value=date(2030, 12, 31)),
    n=st.integers(min_value=0, max_value=400),
)
@settings(max_examples=200, deadline=None, database=None)
def test_add_then_count_roundtrip(d, n):
    cal = _CAL
    out = cal.add_business_days(d, n)
    assert cal.business_days_between(d, out) == n
    assert n == 0 or cal.is_business_day(out)
    slow = sum(cal.is_business_day(x) for x in drange(d + DAY, out))
    assert slow == n


# -- SLA clocks ---------------------------------------------------------------------
def test_due_at_afternoon_before_national_day(cal):
    start = sh(2026, 9, 30, 15, 0)
    assert due_at(start, 1, cal) == sh(2026, 10, 8, 15, 0)
    assert due_at(start, 2, cal) == sh(2026, 10, 9, 15, 0)
    assert due_at(start, 3, cal) == sh(2026, 10, 10, 15, 0)  # Saturday make-up workday counts
    assert due_at(start, 4, cal) == sh(2026, 10, 12, 15, 0)


def test_due_at_friday_afternoon(cal):
    assert due_at(sh(2026, 10, 16, 15, 0), 1, cal) == sh(2026, 10, 19, 15, 0)
    # Fri 9 Oct is followed by the Saturday make-up workday
    assert due_at(sh(2026, 10, 9, 15, 0), 1, cal) == sh(2026, 10, 10, 15, 0)


def test_due_at_weekend_or_holiday_start(cal):
    # Saturday: clock starts Monday 00:00, so 1 business day ends Monday 24:00
    assert due_at(sh(2026, 10, 17, 10, 30), 1, cal) == sh(2026, 10, 20, 0, 0)
    assert due_at(sh(2026, 10, 17, 10, 30), 0, cal) == sh(2026, 10, 19, 0, 0)
    assert due_at(sh(2026, 10, 3, 9, 0), 1, cal) == sh(2026, 10, 9, 0, 0)
    assert due_at(sh(2026, 10, 3, 9, 0), Decimal("0.5"), cal) == sh(2026, 10, 8, 12, 0)


def test_due_at_rolls_end_of_day_into_next_business_day(cal):
    # Budget exhausted exactly at Friday 24:00 → reported as Monday 00:00 (inside business time)
    due = due_at(sh(2026, 10, 16, 0, 0), 1, cal)
    assert due == sh(2026, 10, 19, 0, 0)
    assert due_at(sh(2026, 9, 30, 0, 0), 1, cal) == sh(2026, 10, 8, 0, 0)
    # still not breached during the weekend / at due, breached right after
    assert remaining(due, sh(2026, 10, 18, 12, 0), cal) == timedelta(0)
    assert remaining(due, due, cal) == timedelta(0)
    assert remaining(due, due + timedelta(seconds=1), cal) == -timedelta(seconds=1)


def test_due_at_zero_in_business_time_is_start(cal):
    start = sh(2026, 10, 8, 9, 15)
    assert due_at(start, 0, cal) == start


def test_due_at_fractional(cal):
    start = sh(2026, 9, 30, 15, 0)
    assert due_at(start, Decimal("0.5"), cal) == sh(2026, 10, 8, 3, 0)  # 9 h + 3 h
    assert due_at(start, 0.25, cal) == sh(2026, 9, 30, 21, 0)
    assert due_at(start, Decimal("1.5"), cal) == sh(2026, 10, 9, 3, 0)
    assert due_at(sh(2026, 10, 16, 9, 0), Decimal("0.125"), cal) == sh(2026, 10, 16, 12, 0)


def test_due_at_rejects_bad_budgets(cal):
    start = sh(2026, 10, 8, 9, 0)
    with pytest.raises(ValueError):
        due_at(start, -1, cal)
    with pytest.raises(ValueError):
        due_at(start, Decimal("NaN"), cal)
    with pytest.raises(ValueError):
        due_at(start, float("inf"), cal)


def test_business_elapsed_plain(cal):
    assert business_elapsed(sh(2026, 9, 30, 15, 0), sh(2026, 10, 8, 15, 0), cal) == DAY
    assert business_elapsed(sh(2026, 10, 16, 15, 0), sh(2026, 10, 19, 9, 0), cal) == 18 * H
    # Saturday make-up workday counts in full
    assert business_elapsed(sh(2026, 10, 9, 12, 0), sh(2026, 10, 12, 0, 0), cal) == 36 * H
    # whole period inside a holiday
    assert business_elapsed(sh(2026, 10, 2), sh(2026, 10, 6), cal) == timedelta(0)
    # end before start
    assert business_elapsed(sh(2026, 10, 9), sh(2026, 10, 8), cal) == timedelta(0)


def test_business_elapsed_closed_pause(cal):
    start, end = sh(2026, 10, 12, 9, 0), sh(2026, 10, 14, 9, 0)  # Mon → Wed, 48 h
    pauses = [(sh(2026, 10, 12, 10, 0), sh(2026, 10, 12, 14, 0))]
    assert business_elapsed(start, end, cal, pauses=pauses) == 44 * H


def test_business_elapsed_pause_over_weekend_subtracts_only_business_time(cal):
    start, end = sh(2026, 10, 16, 9, 0), sh(2026, 10, 20, 9, 0)  # Fri 09 → Tue 09: 15 + 24 + 9 = 48 h
    assert business_elapsed(start, end, cal) == 48 * H
    pauses = [(sh(2026, 10, 16, 18, 0), sh(2026, 10, 19, 6, 0))]  # Fri 18:00 → Mon 06:00: 6 + 6 h business
    assert business_elapsed(start, end, cal, pauses=pauses) == 36 * H


def test_business_elapsed_open_pause(cal):
    start, end = sh(2026, 10, 12, 9, 0), sh(2026, 10, 13, 9, 0)
    pauses = [(sh(2026, 10, 12, 21, 0), None)]  # still paused at `end`
    assert business_elapsed(start, end, cal, pauses=pauses) == 12 * H


def test_business_elapsed_overlapping_pauses_counted_once(cal):
    start, end = sh(2026, 10, 12, 0, 0), sh(2026, 10, 13, 0, 0)  # 24 h
    pauses = [
        (sh(2026, 10, 12, 8, 0), sh(2026, 10, 12, 12, 0)),
        (sh(2026, 10, 12, 10, 0), sh(2026, 10, 12, 14, 0)),  # overlaps the first
        (sh(2026, 10, 12, 9, 0), sh(2026, 10, 12, 11, 0)),  # nested
        (sh(2026, 10, 12, 20, 0), None),  # open, overlaps nothing
        (sh(2026, 10, 12, 22, 0), sh(2026, 10, 12, 23, 0)),  # inside the open pause
    ]
    # paused 08-14 (6 h) + 20-24 (4 h)
    assert business_elapsed(start, end, cal, pauses=pauses) == 14 * H


def test_business_elapsed_pauses_outside_window_are_clipped(cal):
    start, end = sh(2026, 10, 12, 9, 0), sh(2026, 10, 12, 17, 0)
    pauses = [
        (sh(2026, 10, 12, 6, 0), sh(2026, 10, 12, 10, 0)),  # 1 h inside
        (sh(2026, 10, 12, 16, 0), sh(2026, 10, 12, 23, 0)),  # 1 h inside
        (sh(2026, 10, 13, 9, 0), None),  # after end
    ]
    assert business_elapsed(start, end, cal, pauses=pauses) == 6 * H


def test_business_elapsed_rejects_inverted_pause(cal):
    with pytest.raises(ValueError):
        business_elapsed(
            sh(2026, 10, 12, 9, 0),
            sh(2026, 10, 13, 9, 0),
            cal,
            pauses=[(sh(2026, 10, 12, 12, 0), sh(2026, 10, 12, 11, 0))],
        )


def test_remaining_positive_then_negative_when_breached(cal):
    due = due_at(sh(2026, 9, 30, 15, 0), 1, cal)  # 8 Oct 15:00
    assert remaining(due, sh(2026, 9, 30, 15, 0), cal) == DAY
    assert remaining(due, sh(2026, 10, 5, 12, 0), cal) == 15 * H  # holiday time does not count
    assert remaining(due, due, cal) == timedelta(0)
    assert remaining(due, sh(2026, 10, 8, 16, 30), cal) == -timedelta(hours=1, minutes=30)
    # breached across a weekend: Fri 15:00 due, Mon 10:00 now → 9 h Fri + 10 h Mon overdue
    due2 = sh(2026, 10, 16, 15, 0)
    assert remaining(due2, sh(2026, 10, 19, 10, 0), cal) == -19 * H
    assert remaining(due2, sh(2026, 10, 17, 10, 0), cal) < timedelta(0)


# -- unknown years -------------------------------------------------------------------
def test_2027_falls_back_to_weekends_with_warning(cal):
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2027, 1, 1))  # the library does raise…
    d = date(2027, 1, 1)  # a Friday; New Year's Day in reality, but not loaded
    assert not cal.is_known(d)
    assert cal.is_business_day(d)  # …we fall back to weekends only
    assert not cal.is_business_day(date(2027, 1, 2))
    assert cal.next_business_day(date(2027, 1, 1)) == date(2027, 1, 4)
    assert cal.add_business_days(date(2026, 12, 31), 2) == date(2027, 1, 4)
    [msg] = warnings_for(d, cal)
    assert "2027" in msg and "尚未录入" in msg and "weekends only" in msg
    assert warnings_for(date(2026, 10, 1), cal) == []
    # SLA clocks spanning into 2027 never raise
    due = due_at(sh(2026, 12, 31, 15, 0), 2, cal)
    assert due == sh(2027, 1, 4, 15, 0)
    assert warnings_for(due, cal)
    assert business_elapsed(sh(2026, 12, 31, 15, 0), due, cal) == 2 * DAY
    assert remaining(due, sh(2027, 3, 1, 9, 0), cal) < timedelta(0)
    assert cal.business_days_between(date(2027, 1, 1), date(2028, 1, 1)) > 200


def test_weekends_only():
    wk = weekends_only()
    assert wk.known_years == frozenset()
    assert wk.is_business_day(date(2026, 10, 1))  # National Day ignored
    assert not wk.is_business_day(date(2026, 10, 10))  # make-up Saturday ignored
    assert wk.add_business_days(date(2026, 10, 16), 1) == date(2026, 10, 19)
    assert warnings_for(date(2026, 10, 1), wk)


def test_calendar_is_frozen_and_accepts_plain_sets():
    c = BusinessCalendar({date(2026, 10, 1)}, {date(2026, 10, 10)}, {2026})
    assert isinstance(c.holidays, frozenset) and isinstance(c.known_years, frozenset)
    assert c == BusinessCalendar(
        frozenset({date(2026, 10, 1)}), frozenset({date(2026, 10, 10)}), frozenset({2026})
    )
    hash(c)
    with pytest.raises(AttributeError):
        c.holidays = frozenset()  # type: ignore[misc]


# -- time zones ---------------------------------------------------------------------
def test_asia_shanghai_is_dst_free():
    for m in range(1, 13):
        assert sh(2026, m, 15, 12).utcoffset() == 8 * H
    # a business day is exactly 24 h of clock time
    assert business_elapsed(sh(2026, 10, 12), sh(2026, 10, 13), weekends_only()) == 24 * H


def test_aware_datetimes_in_other_zones_use_shanghai_days(cal):
    # 2026-09-30 17:00 UTC == 2026-10-01 01:00 Shanghai (National Day) → clock starts 8 Oct 00:00
    start = datetime(2026, 9, 30, 17, 0, tzinfo=UTC)
    due = due_at(start, 1, cal)
    assert due == sh(2026, 10, 9, 0, 0)
    assert due.tzinfo is UTC  # returned in the caller's zone
    assert due_at(sh(2026, 9, 30, 15, 0).astimezone(UTC), 1, cal) == sh(2026, 10, 8, 15, 0)
    assert business_elapsed(start, due, cal) == DAY


def test_naive_datetimes_rejected(cal):
    with pytest.raises(ValueError):
        due_at(datetime(2026, 10, 8, 9, 0), 1, cal)
    with pytest.raises(ValueError):
        business_elapsed(datetime(2026, 10, 8, 9, 0), sh(2026, 10, 9), cal)
    with pytest.raises(ValueError):
        remaining(sh(2026, 10, 9), datetime(2026, 10, 8, 9, 0), cal)


# -- property: due_at and business_elapsed are inverse --------------------------------
_CAL = BusinessCalendar(*calendar_from_chinese_calendar(range(2004, 2028)))

_instants = st.datetimes(
    min_value=datetime(2024, 1, 1),
    max_value=datetime(2027, 12, 31, 23, 59, 59),
).map(lambda d: d.replace(tzinfo=SH))


def _days(n: Decimal) -> timedelta:
    us = n * 86_400_000_000
    assert us == int(us)  # 4 decimal places of a day are whole microseconds
    return timedelta(microseconds=int(us))


_budgets = st.decimals(min_value=0, max_value=30, places=4, allow_nan=False, allow_infinity=False)


@given(start=_instants.filter(lambda t: _CAL.is_business_day(t.date())), n=_budgets)
@settings(max_examples=300, deadline=None, database=None)
def test_due_then_elapsed_is_n_business_days(start, n):
    due = due_at(start, n, _CAL)
    assert due.tzinfo is SH
    assert _CAL.is_business_day(due.date())  # always inside business time
    assert business_elapsed(start, due, _CAL) == _days(n)
    assert remaining(due, start, _CAL) == _days(n)
    assert due >= start


@given(start=_instants, n=_budgets)
@settings(max_examples=200, deadline=None, database=None)
def test_due_then_elapsed_any_start(start, n):
    due = due_at(start, n, _CAL)
    assert business_elapsed(start, due, _CAL) == _days(n)
    assert _CAL.is_business_day(due.date())
