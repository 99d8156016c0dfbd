"""The business date (营业日期), kept by the kernel: the date the bank's book stands on, moved only by close of
business. A new installation starts on today's date."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import refcache
from .models import BusinessDate

ROW = 1


def business_date() -> dt.date:
    row = refcache.cached(("business_date",), lambda: BusinessDate.objects.filter(pk=ROW).values_list("date", flat=True).first())
    return row if row is not None else timezone.localdate()


def simulated_dates_allowed() -> bool:
    """The demo may move time forward beyond today; production never closes a day that has not ended."""
    return bool(getattr(settings, "ALLOW_SIMULATED_BUSINESS_DATE", False))


@transaction.atomic
def business_date_set(date: dt.date) -> dt.date:
    """Only close of business moves the date (after it closed the day before `date`)."""
    BusinessDate.objects.update_or_create(pk=ROW, defaults={"date": date})
    return date
