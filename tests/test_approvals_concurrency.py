"""Concurrent decisions, on Postgres and on the embedded SQLite default alike: two approvers submit at the same
moment; exactly one wins, the other gets 409 with the current state (never a 503 "database is locked"), and
exactly one effect is recorded."""

from __future__ import annotations

import pytest

from tests.approvals_support import fast_passwords, staff_user  # noqa: F401
from tests.concurrency import held_elsewhere, run_together
from tests.conftest import client_for
from tests.factories import PendingApprovalFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_passwords"),
]


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
    responses = run_together([
        lambda: approve.post(url, {"decision": "approve", "comment": "同意"}, format="json"),
        lambda: decline.post(url, {"decision": "decline", "reason_codes": ["HIGH_LEVERAGE"]}, format="json"),
    ], what="a decision")
    assert not any(isinstance(r, Exception) for r in responses), responses
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
    responses = run_together([lambda c=c: c.post(url, {"decision": "approve"}, format="json") for c in clients],
                             what="a decision")
    assert not any(isinstance(r, Exception) for r in responses), responses
    assert sorted(r.status_code for r in responses)[0] == 200
    assert sorted(r.status_code for r in responses)[1] in (403, 409)
    assert Decision.objects.filter(application=application).count() == 1


def test_reads_are_answered_while_a_decision_holds_the_write_lock(products, org):
    """Reads are not queued behind a writer: the case and the queue are served while another connection is in
    the middle of a write transaction (SQLite: WAL readers beside the one writer; reads stay in autocommit)."""
    from applications.models import LoanApplication

    application = PendingApprovalFactory(seed=33)
    owner = application.applicant

    def write():
        LoanApplication.objects.filter(pk=application.pk).update(recommendation="写事务进行中")

    # held_elsewhere fails unless the reads are done before the writer's 30 s are up
    with held_elsewhere(write, timeout=30):
        approver, applicant = client_for(org["demo_branch_approver"]), client_for(owner)
        responses = [approver.get(f"/api/v1/applications/{application.pk}/"), approver.get("/api/v1/applications/"),
                     applicant.get(f"/api/v1/applications/{application.pk}/")]
    assert [r.status_code for r in responses] == [200, 200, 200], [r.content[:200] for r in responses]
    assert responses[0].json()["status"] == "pending_approval"
