"""Celery tasks for post-loan: thin wrappers, idempotent, safe to run twice (beat runs them nightly)."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import OperationalError

from .cob import cob_nightly_task as cob_nightly  # noqa: F401 - close of business's tasks, defined beside the run
from .cob import cob_partition_task as cob_partition  # noqa: F401
from .monitoring import monitoring_run
from .services import renewal_offers_make


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def nightly_monitoring(self, today: str | None = None) -> dict:
    """DPD, buckets, classification floors, data refresh, warnings and RM tasks (resumes a killed run)."""
    run = monitoring_run(today=dt.date.fromisoformat(today) if today else None)
    return {"run_date": str(run.run_date), "status": run.status, "step": run.step, "counts": run.counts} if run else {}


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def renewal_offers(self) -> dict:
    return renewal_offers_make()
