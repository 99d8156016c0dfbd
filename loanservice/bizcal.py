"""Business-day calendar and SLA clocks on the official Chinese calendar.

Pure Python (no Django imports) so it can be unit-tested in isolation and used
from models, services, Celery tasks and management commands alike.

Calendar rules
--------------
* A date listed in ``workdays`` (调休 make-up working day) is a business day.
* Otherwise a date listed in ``holidays`` (official holiday) is not.
* Otherwise Monday-Friday are business days, Saturday/Sunday are not.

Explicit entries win over the weekday rule in every year.  Years that are not in
``known_years`` (the State Council has not published / nobody loaded them yet)
therefore fall back to weekends-only; they never raise, and
:func:`warnings_for` returns a bilingual message the UI should show.

SLA clocks
----------
Business time runs only on business days, 24 h of clock time per business day
(00:00-24:00 Asia/Shanghai).  Aware datetimes in any zone are accepted (they are
converted to Asia/Shanghai to decide which calendar day an instant belongs to);
results are returned in the zone of the ``start`` / ``due`` argument.  Naive
datetimes are rejected with ``ValueError``.

A due instant is always placed *inside* business time: when the budget runs
out exactly at the end of a business day that is followed by non-business days,
the due instant is the 00:00 that starts the next business day (so "due end of
Friday" is reported as Monday 00:00).  Hence ``now > due`` if and only if
``remaining(due, now, cal) < 0``.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import NamedTuple
from zoneinfo import ZoneInfo

__all__ = [
    "BANK_TZ",
    "BusinessCalendar",
    "ChineseCalendarData",
    "business_elapsed",
    "calendar_from_chinese_calendar",
    "due_at",
    "remaining",
    "warnings_for",
    "weekends_only",
]

logger = logging.getLogger(__name__)

#: Zone in which calendar days are counted (DST-free since 1991).
BANK_TZ = ZoneInfo("Asia/Shanghai")

_ONE_DAY = timedelta(days=1)
_US_PER_DAY = 86_400_000_000


def _weekdays_before(d: date) -> int:
    """Number of Mon-Fri dates in [date(1, 1, 1), d).  date(1, 1, 1) is a Monday."""
    k = d.toordinal() - 1
    weeks, rest = divmod(k, 7)
    return weeks * 5 + min(rest, 5)


def _as_date(d: date | datetime) -> date:
    """Accept a date, or a datetime (aware → its Asia/Shanghai calendar day)."""
    if isinstance(d, datetime):
        if d.tzinfo is not None and d.utcoffset() is not None:
            return d.astimezone(BANK_TZ).date()
        return d.date()
    return d


@dataclass(frozen=True)
class BusinessCalendar:
    """Immutable business-day calendar.

    ``holidays``: official holiday dates (any weekday).  ``workdays``: 调休 make-up
    working days (weekend days declared working).  ``known_years``: years whose
    schedule is loaded; other years fall back to weekends-only with a warning.
    Plain ``set``/iterables are accepted and frozen.
    """

    holidays: frozenset[date]
    workdays: frozenset[date]
    known_years: frozenset[int]
    # Derived lookup tables (sorted exception lists) for O(log n) range counts.
    _off_weekdays: tuple[date, ...] = field(init=False, repr=False, compare=False)
    _on_weekends: tuple[date, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        holidays = frozenset(self.holidays)
        workdays = frozenset(self.workdays)
        known_years = frozenset(int(y) for y in self.known_years)
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "workdays", workdays)
        object.__setattr__(self, "known_years", known_years)
        # Exceptions to the Mon-Fri rule; a make-up workday beats a holiday entry.
        off = sorted(h for h in holidays if h.weekday() < 5 and h not in workdays)
        on = sorted(w for w in workdays if w.weekday() >= 5)
        object.__setattr__(self, "_off_weekdays", tuple(off))
        object.__setattr__(self, "_on_weekends", tuple(on))

    # -- dates -----------------------------------------------------------------
    def is_business_day(self, d: date) -> bool:
        d = _as_date(d)
        if d in self.workdays:
            return True
        if d in self.holidays:
            return False
        return d.weekday() < 5

    def is_known(self, d: date) -> bool:
        """True when d's year has a loaded holiday schedule."""
        return _as_date(d).year in self.known_years

    def next_business_day(self, d: date, *, include_self: bool = False) -> date:
        """First business day after d (or d itself if include_self and d is one)."""
        d = _as_date(d)
        if not include_self:
            d += _ONE_DAY
        while not self.is_business_day(d):
            d += _ONE_DAY
        return d

    def previous_business_day(self, d: date, *, include_self: bool = False) -> date:
        """Last business day before d (or d itself if include_self and d is one)."""
        d = _as_date(d)
        if not include_self:
            d -= _ONE_DAY
        while not self.is_business_day(d):
            d -= _ONE_DAY
        return d

    def add_business_days(self, d: date, n: int) -> date:
        """The n-th business day strictly after d (n > 0) or strictly before d (n < 0).

        ``n == 0`` returns d unchanged (even when d is not a business day).
        E.g. Saturday + 1 → Monday, Saturday - 1 → Friday (no holidays).
        For n >= 0: ``business_days_between(d, add_business_days(d, n)) == n``.
        """
        d = _as_date(d)
        n = int(n)
        step = _ONE_DAY if n > 0 else -_ONE_DAY
        for _ in range(abs(n)):
            d += step
            while not self.is_business_day(d):
                d += step
        return d

    def business_days_between(self, start: date, end: date) -> int:
        """Business days in the half-open range (start, end]; negated if end < start.

        I.e. the number of business days that pass after ``start`` up to and
        including ``end``: Friday → next Monday is 1.  Antisymmetric.
        """
        start, end = _as_date(start), _as_date(end)
        if end < start:
            return -self.business_days_between(end, start)
        lo, hi = start + _ONE_DAY, end + _ONE_DAY  # count over [lo, hi)
        count = _weekdays_before(hi) - _weekdays_before(lo)
        count -= bisect_right(self._off_weekdays, end) - bisect_right(self._off_weekdays, start)
        count += bisect_right(self._on_weekends, end) - bisect_right(self._on_weekends, start)
        return count


def weekends_only() -> BusinessCalendar:
    """Calendar with no holidays / make-up days and no known years (tests, fallback)."""
    return BusinessCalendar(frozenset(), frozenset(), frozenset())


# -- warnings ------------------------------------------------------------------
def warnings_for(d: date, cal: BusinessCalendar) -> list[str]:
    """User-visible warnings (zh / en in one string) about d's calendar data."""
    d = _as_date(d)
    if cal.is_known(d):
        return []
    y = d.year
    return [f"{y} 年的节假日安排尚未录入，按周末计算 / The {y} holiday schedule is not loaded; weekends only"]


# -- loading from the chinese_calendar package ---------------------------------
class ChineseCalendarData(NamedTuple):
    """Unpacks as ``(holidays, workdays, known_years)``; ``skipped`` is derivable."""

    holidays: set[date]
    workdays: set[date]
    known_years: set[int]


def calendar_from_chinese_calendar(years: Iterable[int]) -> ChineseCalendarData:
    """Official holidays and 调休 make-up workdays for ``years`` from chinese_calendar.

    Every date ``chinese_calendar.constants.holidays`` lists in a requested year
    is returned as a holiday (including those falling on a weekend), every date
    in ``constants.workdays`` as a make-up workday.  Years the library has no
    data for (it raises NotImplementedError outside its range) are skipped
    without raising; they are logged at INFO and are simply absent from the
    returned ``known_years`` (``skipped = set(years) - known_years``).
    """
    import chinese_calendar
    from chinese_calendar import constants

    requested = sorted({int(y) for y in years})
    known: set[int] = set()
    skipped: list[int] = []
    for y in requested:
        try:
            # Same range check the library applies to every query.
            chinese_calendar.is_workday(date(y, 1, 1))
            chinese_calendar.is_workday(date(y, 12, 31))
        except NotImplementedError:
            skipped.append(y)
        else:
            known.add(y)
    if skipped:
        logger.info("chinese_calendar has no holiday data for years %s; skipped", skipped)
    holidays = {d for d in constants.holidays if d.year in known}
    workdays = {d for d in constants.workdays if d.year in known}
    return ChineseCalendarData(holidays, workdays, known)


# -- SLA clocks on aware datetimes ---------------------------------------------
def _utc(dt: datetime, name: str) -> datetime:
    if not isinstance(dt, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (Asia/Shanghai), got naive {dt!r}")
    return dt.astimezone(UTC)


def _day_start(d: date) -> datetime:
    """00:00 Asia/Shanghai of d, as a UTC datetime."""
    return datetime.combine(d, time(0), tzinfo=BANK_TZ).astimezone(UTC)


def _local_date(t_utc: datetime) -> date:
    return t_utc.astimezone(BANK_TZ).date()


def _business_time(a: datetime, b: datetime, cal: BusinessCalendar) -> timedelta:
    """Business time in [a, b) for UTC datetimes a <= b."""
    total = timedelta(0)
    if b <= a:
        return total
    d, first, last = _local_date(a), _local_date(a), _local_date(b)
    while d <= last:
        if cal.is_business_day(d):
            if d == first or d == last:
                lo = max(a, _day_start(d))
                hi = min(b, _day_start(d + _ONE_DAY))
                if hi > lo:
                    total += hi - lo
            else:  # a whole day inside (a, b), 24 h in Asia/Shanghai: queues sum many long-open clocks
                total += _ONE_DAY
        d += _ONE_DAY
    return total


def _budget(business_days: Decimal | int | float) -> timedelta:
    if isinstance(business_days, bool):
        raise TypeError("business_days must be a number, not bool")
    try:
        if isinstance(business_days, float):
            value = Decimal(repr(business_days))
        else:
            value = Decimal(business_days)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise TypeError(f"business_days must be Decimal, int or float, got {business_days!r}") from exc
    if not value.is_finite() or value < 0:
        raise ValueError(f"business_days must be a finite number >= 0, got {business_days!r}")
    us = int((value * _US_PER_DAY).to_integral_value(rounding=ROUND_HALF_EVEN))
    return timedelta(microseconds=us)


def due_at(start: datetime, business_days: Decimal | int | float, cal: BusinessCalendar) -> datetime:
    """Instant at which ``business_days`` of business time have elapsed since start.

    Each business day contributes 24 h; a start on a non-business day starts the
    clock at 00:00 of the next business day; fractions are allowed (0.5 = 12 h),
    rounded to the microsecond.  The result is always inside business time (see
    module docstring) and is returned in ``start``'s time zone.
    """
    tz = start.tzinfo if isinstance(start, datetime) else None
    t = _utc(start, "start")
    left = _budget(business_days)
    while True:
        d = _local_date(t)
        if not cal.is_business_day(d):
            t = _day_start(cal.next_business_day(d))
            continue
        day_end = _day_start(d + _ONE_DAY)
        available = day_end - t
        if left < available:
            return (t + left).astimezone(tz)
        left -= available
        t = day_end


def _merge(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1]:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def business_elapsed(
    start: datetime,
    end: datetime,
    cal: BusinessCalendar,
    *,
    pauses: Iterable[tuple[datetime, datetime | None]] = (),
) -> timedelta:
    """Business time between start and end, minus paused business time.

    Pauses are ``(paused_at, resumed_at)`` pairs; ``resumed_at=None`` is an open
    pause running to ``end``.  Pauses are clipped to [start, end] and merged, so
    overlapping pauses are subtracted once.  Returns ``timedelta(0)`` when
    ``end <= start``.  A pause that resumes before it started raises ValueError.
    """
    a, b = _utc(start, "start"), _utc(end, "end")
    if b <= a:
        return timedelta(0)
    clipped: list[tuple[datetime, datetime]] = []
    for i, pause in enumerate(pauses):
        p_lo, p_hi = pause
        lo = _utc(p_lo, f"pauses[{i}][0]")
        hi = b if p_hi is None else _utc(p_hi, f"pauses[{i}][1]")
        if p_hi is not None and hi < lo:
            raise ValueError(f"pause {i} resumes ({p_hi!r}) before it starts ({p_lo!r})")
        lo, hi = max(lo, a), min(hi, b)
        if hi > lo:
            clipped.append((lo, hi))
    total = _business_time(a, b, cal)
    for lo, hi in _merge(clipped):
        total -= _business_time(lo, hi, cal)
    return total


def remaining(due: datetime, now: datetime, cal: BusinessCalendar) -> timedelta:
    """Business time left until ``due``; negative (business time overdue) once breached."""
    d, n = _utc(due, "due"), _utc(now, "now")
    if n <= d:
        return _business_time(n, d, cal)
    return -_business_time(d, n, cal)
