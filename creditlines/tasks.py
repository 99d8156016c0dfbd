"""The credit lines' nightly task (beat: config/settings.py), after post-loan monitoring has raised the day's warnings:
freeze on freezing warnings, expire at the end of validity, open the annual review tasks. Idempotent."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import OperationalError

from .services import lines_nightly as _lines_nightly


@shared_task(name="creditlines.tasks.lines_nightly", bind=True, acks_late=True, autoretry_for=(OperationalError,),
             retry_backoff=True, max_retries=3)
def lines_nightly(self, on: str | None = None) -> dict:
    return _lines_nightly(on=dt.date.fromisoformat(on) if on else None)
