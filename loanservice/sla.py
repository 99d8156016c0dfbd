"""SLA clocks on the official Chinese business calendar (business days; holidays and 调休 honoured)."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from decimal import Decimal

from django.core.cache import cache
from django.utils import timezone

from .bizcal import BusinessCalendar, business_elapsed, due_at
from .models import CalendarDay, CalendarYear, SlaClock, SlaTarget

DEFAULT_TARGETS = {
    "due_diligence": Decimal("2"),
    "branch_approval": Decimal("1"),
    "head_office_approval": Decimal("2"),
    "committee_approval": Decimal("5"),
    "contracting": Decimal("2"),
    "disbursement": Decimal("1"),
}
_CACHE_KEY = "loanservice:bizcal:v1"


_PINNED: contextvars.ContextVar[BusinessCalendar | None] = contextvars.ContextVar("business_calendar", default=None)


def business_calendar() -> BusinessCalendar:
    """The calendar from the database, cached briefly (admins edit it a few times a year)."""
    pinned = _PINNED.get()
    return pinned if pinned is not None else _business_calendar_shared()


@contextlib.contextmanager
def business_calendar_pinned():
    """One calendar for a batch of clock computations (a queue page showing hundreds of clocks asks the
    shared cache once, not once per clock)."""
    token = _PINNED.set(_business_calendar_shared())
    try:
        yield
    finally:
        _PINNED.reset(token)


def _business_calendar_shared() -> BusinessCalendar:
    cal = cache.get(_CACHE_KEY)
    if cal is None:
        holidays, workdays = set(), set()
        for day, kind in CalendarDay.objects.values_list("date", "kind"):
            (holidays if kind == CalendarDay.HOLIDAY else workdays).add(day)
        years = set(CalendarYear.objects.values_list("year", flat=True))
        cal = BusinessCalendar(holidays=frozenset(holidays), workdays=frozenset(workdays), known_years=frozenset(years))
        cache.set(_CACHE_KEY, cal, 300)
    return cal


def business_calendar_changed() -> None:
    cache.delete(_CACHE_KEY)


def sla_target_days(*, stage: str, product_code: str = "") -> Decimal:
    targets = {
        t.product_code: t.business_days
        for t in SlaTarget.objects.filter(stage=stage, product_code__in=[product_code, ""])
    }
    for key in (product_code, ""):
        if key in targets:
            return targets[key]
    return DEFAULT_TARGETS[stage]


def _local(value: dt.datetime) -> dt.datetime:
    return timezone.localtime(value)


def sla_clock_start(*, case_id: int, stage: str, owner=None, branch=None, product_code: str = "",
                    now: dt.datetime | None = None) -> SlaClock:
    """Start a stage's clock; an open clock for the same stage is reused (idempotent)."""
    now = now or timezone.now()
    existing = SlaClock.objects.filter(case_id=case_id, stage=stage, stopped_at__isnull=True).first()
    if existing:
        return existing
    target = sla_target_days(stage=stage, product_code=product_code)
    return SlaClock.objects.create(
        case_id=case_id,
        stage=stage,
        owner=owner,
        branch=branch,
        product_code=product_code,
        target_days=target,
        started_at=now,
        due_at=due_at(_local(now), target, business_calendar()),
    )


def _pause_pairs(clock: SlaClock) -> list[tuple[dt.datetime, dt.datetime | None]]:
    pairs = [(dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b)) for a, b in clock.pauses]
    if clock.paused_at:
        pairs.append((clock.paused_at, None))
    return pairs


def sla_clock_stop(*, case_id: int, stage: str | None = None, now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    qs = SlaClock.objects.filter(case_id=case_id, stopped_at__isnull=True)
    if stage:
        qs = qs.filter(stage=stage)
    count = 0
    for clock in qs:
        if clock.paused_at:
            clock.pauses = [*clock.pauses, [clock.paused_at.isoformat(), now.isoformat()]]
            clock.paused_at = None
        clock.stopped_at = now
        if clock.breached_at is None and now > clock.due_at:
            clock.breached_at = now
        clock.save()
        count += 1
    return count


def sla_clock_pause(*, case_id: int, now: dt.datetime | None = None) -> None:
    """Waiting for the applicant does not count against the bank."""
    now = now or timezone.now()
    SlaClock.objects.filter(case_id=case_id, stopped_at__isnull=True, paused_at__isnull=True).update(paused_at=now)


def sla_clock_resume(*, case_id: int, now: dt.datetime | None = None) -> None:
    now = now or timezone.now()
    cal = business_calendar()
    for clock in SlaClock.objects.filter(case_id=case_id, stopped_at__isnull=True, paused_at__isnull=False):
        paused_for = business_elapsed(_local(clock.paused_at), _local(now), cal)
        clock.pauses = [*clock.pauses, [clock.paused_at.isoformat(), now.isoformat()]]
        clock.paused_at = None
        # The due time moves by the business time spent waiting.
        clock.due_at = due_at(_local(clock.due_at), Decimal(paused_for.total_seconds()) / Decimal(86400), cal) \
            if paused_for.total_seconds() > 0 else clock.due_at
        clock.save()


def sla_clock_elapsed(clock: SlaClock, *, now: dt.datetime | None = None) -> dt.timedelta:
    end = clock.stopped_at or now or timezone.now()
    return business_elapsed(_local(clock.started_at), _local(end), business_calendar(), pauses=_pause_pairs(clock))


def sla_clock_remaining(clock: SlaClock, *, now: dt.datetime | None = None) -> dt.timedelta:
    now = now or timezone.now()
    target = dt.timedelta(days=float(clock.target_days))
    return target - sla_clock_elapsed(clock, now=now)
