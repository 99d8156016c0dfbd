"""Celery tasks: thin wrappers around the conductor; idempotent, acks late, retried on transient errors."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from . import lifecycle


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def score_and_route(self, application_id: int) -> str:
    return lifecycle.score_and_route(application_id)


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def fast_track_complete(self, contract_id: int) -> str:
    return lifecycle.fast_track_complete(contract_id)


@shared_task
def sla_check() -> dict:
    from .sla_monitor import sla_breaches_process

    return sla_breaches_process()


@shared_task
def outbox_sweep() -> dict:
    from .sweeper import sweep

    return sweep()
