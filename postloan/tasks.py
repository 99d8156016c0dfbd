"""Celery tasks for post-loan: thin wrappers, idempotent, safe to run twice (beat runs them nightly)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def nightly_monitoring(self, today: str | None = None) -> dict:
    """DPD, buckets, classification floors, data refresh, warnings and RM tasks (resumes a killed run)."""
    import datetime as dt

    from .monitoring import monitoring_run

    run = monitoring_run(today=dt.date.fromisoformat(today) if today else None)
    return {"run_date": str(run.run_date), "status": run.status, "step": run.step, "counts": run.counts} if run else {}


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def renewal_offers(self) -> dict:
    from .services import renewal_offers_make

    return renewal_offers_make()


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def cob_partition(self, partition_id: int) -> dict:
    """One partition of close of business; run it again after a crash and it resumes where it stopped."""
    from .cob import cob_partition_run

    return cob_partition_run(partition_id=partition_id)


@shared_task
def cob_nightly() -> dict:
    """Close of business each night for the days that have ended (beat, just after midnight bank time)."""
    from .cob import cob_nightly as start

    run = start()
    return {"run": run.pk, "until": str(run.until)} if run else {}
