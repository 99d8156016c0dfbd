"""Concurrent decisions on Postgres: two approvers submit at the same moment; exactly one wins, the other
gets 409 with the current state, and exactly one effect is recorded."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from tests.approvals_support import fast_passwords, staff_user  # noqa: F401
from tests.conftest import client_for, using_postgres
from tests.factories import PendingApprovalFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_passwords"),
    pytest.mark.skipif(not using_postgres(), reason="row locks need Postgres (SQLite serialises writers)"),
]


def _race(calls):
    """Run the calls in threads released together; each thread uses (and closes) its own connection."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait(timeout=30)
            results[i] = call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_two_approvers_decide_at_once_exactly_one_wins(products, org):
    from applications.models import LoanApplication
    from approvals.models import Decision
    from loanservice.models import AuditEvent

    application = PendingApprovalFactory(seed=31)
    first = org["demo_branch_approver"]
    second = staff_user("branch_approver_2", "branch_approver", "SH01")
    url = f"/api/v1/applications/{application.pk}/decide/"
    approve = client_for(first)
    decline = client_for(second)
    responses = _race([
        lambda: approve.post(url, {"decision": "approve", "comment": "同意"}, format="json"),
        lambda: decline.post(url, {"decision": "decline", "reason_codes": ["HIGH_LEVERAGE"]}, format="json"),
    ])
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409], [r.content for r in responses]
    winner = next(r for r in responses if r.status_code == 200).json()
    loser = next(r for r in responses if r.status_code == 409).json()
    final = LoanApplication.objects.get(pk=application.pk).status
    assert winner["status"] == final and loser["state"] == final and final in ("approved", "declined")
    assert Decision.objects.filter(application=application).count() == 1
    assert AuditEvent.objects.filter(object_id=str(application.pk), action__in=["application.approve", "application.decline"]).count() == 1


def test_the_same_approver_double_submitting_records_one_decision(products, org):
    from approvals.models import Decision

    application = PendingApprovalFactory(seed=32)
    clients = [client_for(org["demo_branch_approver"]) for _ in range(2)]  # one browser tab each
    url = f"/api/v1/applications/{application.pk}/decide/"
    responses = _race([lambda c=c: c.post(url, {"decision": "approve"}, format="json") for c in clients])
    assert sorted(r.status_code for r in responses)[0] == 200
    assert sorted(r.status_code for r in responses)[1] in (403, 409)
    assert Decision.objects.filter(application=application).count() == 1
