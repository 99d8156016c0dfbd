"""When an administrator loads a year's official holidays in admin (the kernel's CalendarYear and CalendarDay), the
unpaid installments due that year get their due dates again by their contract's holiday rule."""

from __future__ import annotations

from django.db.models.signals import post_save

from loanservice.models import CalendarDay, CalendarYear

from .services import schedules_recompute_for_years


def _year_loaded(sender, instance: CalendarYear, **kwargs) -> None:
    schedules_recompute_for_years(years=[instance.year])


def _day_changed(sender, instance: CalendarDay, **kwargs) -> None:
    schedules_recompute_for_years(years=[instance.date.year])  # nothing moves while the year is not loaded


def connect() -> None:
    post_save.connect(_year_loaded, sender=CalendarYear, dispatch_uid="postloan.calendar_year_loaded")
    post_save.connect(_day_changed, sender=CalendarDay, dispatch_uid="postloan.calendar_day_changed")
