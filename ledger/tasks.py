"""The ledger's Celery tasks: the core-banking outbox (a batch sent once committed, the pending ones retried)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from . import services


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def voucher_batch_send(batch_id: int) -> str:
    return services.voucher_batch_send(batch_id=batch_id).status


@shared_task
def vouchers_send_pending() -> dict:
    """Beat: every voucher batch core banking has not taken yet, sent again under its own reference."""
    return services.vouchers_send_pending()
