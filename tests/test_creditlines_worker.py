"""The credit lines' nightly task on a real Celery worker (Redis, Postgres): a line past its validity expires and one
whose borrower has an open freezing warning is frozen, through the task the beat schedule names."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from tests.conftest import using_postgres
from tests.test_creditlines import draw, make_line

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not (os.environ.get("REDIS_URL") and using_postgres()), reason="needs REDIS_URL and Postgres"),
]


@pytest.fixture(autouse=True)
def _outbound(settings, tmp_path):
    settings.CORE_BANKING_OUTBOUND_DIR = tmp_path / "outbound"
    settings.CORE_BANKING_BACKEND = "sandbox"


def test_lines_nightly_on_a_real_worker(products, org):
    from config.celery import app as celery_app
    from config.settings import CELERY_BEAT_SCHEDULE
    from creditlines.models import CreditLine
    from creditlines.tasks import lines_nightly
    from loanservice.business_date import business_date
    from postloan.models import EarlyWarning, WarningRule
    from tests.worker import celery_worker, wait_for

    assert CELERY_BEAT_SCHEDULE["creditlines-nightly"]["task"] == lines_nightly.name
    old = make_line(seed=1)
    warned = make_line(seed=2)
    drawdown, _ = draw(warned, "10000.00")
    CreditLine.objects.filter(pk=old.pk).update(valid_until=business_date() - dt.timedelta(days=1))
    rule = WarningRule.objects.filter(freezes_credit_line=True).first()
    EarlyWarning.objects.create(loan=drawdown.loan, rule=rule, severity=rule.severity, fingerprint="w", detected_on=business_date())
    celery_app.conf.task_always_eager = False
    with celery_worker():
        lines_nightly.delay()
        done = wait_for(lambda: CreditLine.objects.filter(pk=old.pk, status="expired").first()
                        and CreditLine.objects.filter(pk=warned.pk, status="frozen").first(), timeout=300)
    assert done is not None, list(CreditLine.objects.values("pk", "status"))
