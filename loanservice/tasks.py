"""The kernel's own Celery tasks: the SLA watch (beat's `sla-check`) and the audit trail's nightly check (`audit-nightly`)."""

from __future__ import annotations

from celery import shared_task

from .audit_integrity import audit_nightly_check
from .sla_monitor import sla_breaches_process


@shared_task(name="loanservice.tasks.sla_check")
def sla_check() -> dict:
    return sla_breaches_process()


@shared_task(name="loanservice.tasks.audit_nightly")
def audit_nightly() -> dict:
    """Anchor yesterday's audit chains, then verify the trail; a break raises the alarm (audit_integrity.py)."""
    return audit_nightly_check()


@shared_task(name="loanservice.tasks.bench_noop")
def bench_noop(_pk: int) -> None:
    """The floor's task (loanservice.bench_floor): dispatched, carried by the broker, run by a worker, nothing done."""
    return None
