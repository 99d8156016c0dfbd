"""Celery tasks: thin wrappers around the conductor; idempotent, acks late, retried on transient errors.

The names stay `loanservice.tasks.*`, where these tasks lived before the top floor had a package of its own:
beat's database rows and messages already queued refer to them by name.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from underwriting.services import SourcesUnavailable

from . import lifecycle
from .retention import personal_data_retention as retention_run
from .sweeper import sweep


@shared_task(name="loanservice.tasks.score_and_route", bind=True, acks_late=True, autoretry_for=(OperationalError,),
             retry_backoff=True, max_retries=5)
def score_and_route(self, application_id: int) -> str:
    """A data source that timed out or failed (5xx, circuit open) is retried with backoff, up to
    UNDERWRITING_SOURCE_RETRIES times; the last attempt refers the case to a person with the gap named."""
    retries = settings.UNDERWRITING_SOURCE_RETRIES
    attempt = self.request.retries
    while True:
        try:
            return lifecycle.score_and_route(application_id, retry_transient=attempt < retries)
        except SourcesUnavailable as exc:
            if not self.request.is_eager:
                wait = settings.UNDERWRITING_SOURCE_RETRY_SECONDS * 2 ** attempt
                raise self.retry(exc=exc, countdown=wait, max_retries=retries) from exc
            attempt += 1  # eager (the embedded default) has no broker to wait on: try again at once


@shared_task(name="loanservice.tasks.fast_track_complete", bind=True, acks_late=True,
             autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def fast_track_complete(self, contract_id: int) -> str:
    return lifecycle.fast_track_complete(contract_id)


@shared_task(name="loanservice.tasks.outbox_sweep")
def outbox_sweep() -> dict:
    return sweep()


@shared_task(acks_late=True)
def personal_data_retention() -> dict:
    """Beat's `personal-data-retention` (03:30): personal data past the retention schedule anonymised (casework.retention)."""
    done = retention_run()
    return {kind: len(ids) for kind, ids in done.items()}
