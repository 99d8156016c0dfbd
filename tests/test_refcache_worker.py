"""The policy cache across processes: a real Celery worker routes a fast-track case with the referral rules it
cached, an admin change commits, and the worker's very next case is routed by the new rule (loanservice.refcache:
the generation in Redis moved; the worker reads it at the start of each task)."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from tests.conftest import client_for, draft_via_api, using_postgres
from tests.factories import ApplicantFactory, uscc_for

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not (os.environ.get("REDIS_URL") and using_postgres()), reason="needs REDIS_URL and Postgres (CI sets both)"),
]


def test_a_policy_change_reaches_a_running_worker_at_once(products, org):
    from applications.models import LoanApplication
    from approvals.models import ReferralRule, RoutingRecord
    from config.celery import app as celery_app
    from tests.worker import celery_worker, wait_for

    celery_app.conf.task_always_eager = False
    client = client_for(ApplicantFactory(username="owner1"))
    first = draft_via_api(client, uscc=uscc_for("AB", seed=31))
    second = draft_via_api(client, uscc=uscc_for("AB", seed=32))

    def routed(pk):
        return wait_for(lambda: LoanApplication.objects.get(pk=pk).route or None)

    with celery_worker():
        assert client.post(f"/api/v1/applications/{first}/submit/").status_code == 200
        assert routed(first) == "auto"  # the worker has read (and cached) the referral rules: none fires
        ReferralRule.objects.create(code="YOUNG_FIRM", field="years_in_business", operator="lt", threshold=Decimal("50"),
                                    message="成立不满50年（测试）", message_en="Younger than 50 years (test)")
        assert client.post(f"/api/v1/applications/{second}/submit/").status_code == 200
        assert routed(second) != "auto"
    assert "WARNING_YOUNG_FIRM" in {r["code"] for r in RoutingRecord.objects.get(application_id=second).referrals}
