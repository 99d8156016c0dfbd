"""Celery tasks of the contracts stage: thin, idempotent."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from . import services


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def core_banking_send(self, outbound_id: int) -> str:
    return services.core_banking_send(outbound_id=outbound_id).status


@shared_task(acks_late=True)
def contract_places_prepare(contract_id: int) -> bool:
    """Where the signatures go on a new contract, found before anyone signs (an optimisation: signing finds them
    itself when this has not run)."""
    return services.contract_places_prepare(contract_id=contract_id) is not None


@shared_task(acks_late=True)
def contract_signatures_prepare(contract_id: int) -> bool | None:
    """The signatures of a newly signed contract file validated once after commit and kept in the cache (an
    optimisation: the first page view validates them itself when this has not run)."""
    return services.contract_signatures_prepare(contract_id=contract_id)
