"""The kernel's own Celery task: the SLA watch (beat's `sla-check`)."""

from __future__ import annotations

from celery import shared_task

from .sla_monitor import sla_breaches_process


@shared_task(name="loanservice.tasks.sla_check")
def sla_check() -> dict:
    return sla_breaches_process()
