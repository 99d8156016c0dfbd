"""Dispatching Celery tasks after commit, without letting a broker outage break the request.

If the broker is down, the work is not lost: the sweeper (loanservice.tasks.outbox_sweep, also run by
`manage.py sweep`) finds cases whose background step has not happened and dispatches them again.
"""

from __future__ import annotations

import logging

from django.db import transaction

log = logging.getLogger(__name__)


def _send(task, args, kwargs):
    try:
        task.apply_async(args=args, kwargs=kwargs, retry=False)
    except Exception:
        log.warning("broker unavailable; %s left for the sweeper", task.name, exc_info=True)


def dispatch_on_commit(task, *args, **kwargs) -> None:
    transaction.on_commit(lambda: _send(task, args, kwargs), robust=True)
