"""A decision says what it did (issue #15): approval_decide and committee_resolve return the outcome (final
approval, decline, return to the RM, escalation to the next tier, a committee vote), the tiers before and after,
and the application as written, so the conductor never reads the case again to find out."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.approvals_support import fast_passwords  # noqa: F401
from tests.factories import PendingApprovalFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


def _decide(application, user, **decision):
    from approvals.services import approval_decide

    return approval_decide(application=application, user=user, **decision)


def test_an_escalation_then_the_final_approval(products, org):
    from applications.models import LoanApplication
    from approvals.services import DecisionOutcome

    application = PendingApprovalFactory(amount="5000000.00", seed=9)
    assert application.route == "head_office"
    result = _decide(application, org["demo_branch_approver"], decision="approve", approved_amount=Decimal("4500000.00"))
    assert result.outcome == DecisionOutcome.ESCALATED and not result.closed
    assert (result.from_tier, result.to_tier) == ("branch", "head_office")
    assert result.decision.decision == "recommend" and result.case.tier == "head_office"
    assert result.application.status == LoanApplication.Status.PENDING_APPROVAL

    result = _decide(application, org["demo_head_approver"], decision="approve", rate=Decimal("0.0520"))
    assert result.outcome == DecisionOutcome.APPROVED and result.closed
    assert (result.from_tier, result.to_tier) == ("head_office", "head_office")
    assert result.case.status == "approved" and result.decision.decision == "approve"
    stored = LoanApplication.objects.get(pk=application.pk)
    assert result.application.status == stored.status == LoanApplication.Status.APPROVED
    assert result.application.offer_amount == stored.offer_amount == 4500000


def test_a_decline_and_a_return_are_final_for_the_tier(products, org):
    from approvals.services import DecisionOutcome

    declined = PendingApprovalFactory(seed=31)
    result = _decide(declined, org["demo_branch_approver"], decision="decline", reason_codes=["HIGH_LEVERAGE"])
    assert result.outcome == DecisionOutcome.DECLINED and result.closed
    assert result.application.status == "declined" and result.case.status == "declined"

    returned = PendingApprovalFactory(seed=14)
    result = _decide(returned, org["demo_branch_approver"], decision="return", reason_codes=["VISIT_REQUIRED"])
    assert result.outcome == DecisionOutcome.RETURNED and result.closed
    assert result.application.status == "under_review" and result.case.status == "returned"


def test_committee_votes_then_the_chairs_resolution(products, org):
    from approvals.services import DecisionOutcome, committee_configure, committee_resolve

    committee_configure(by=org["demo_admin"], chair=org["demo_committee_1"], quorum=3)
    application = PendingApprovalFactory(related_party=True, seed=16)
    assert _decide(application, org["demo_branch_approver"], decision="approve").to_tier == "committee"
    for member in ("demo_committee_1", "demo_committee_2", "demo_committee_3"):
        result = _decide(application, org[member], decision="approve")
        assert result.outcome == DecisionOutcome.VOTED and not result.closed
        assert result.decision.decision == "vote_approve" and result.application.status == "pending_approval"
    result = committee_resolve(application=application, user=org["demo_committee_1"], text="同意。")
    assert result.outcome == DecisionOutcome.APPROVED and result.closed
    assert result.decision is None and result.resolution.outcome == "approved"
    assert result.application.status == "approved"


def test_the_conductor_moves_the_clocks_by_the_outcome(products, org):
    from casework import lifecycle
    from loanservice.models import SlaClock

    application = PendingApprovalFactory(amount="5000000.00", seed=9)
    written = lifecycle.case_decide(application_id=application.pk, user=org["demo_branch_approver"], decision="approve")
    assert written.status == "pending_approval"
    assert list(SlaClock.objects.filter(case_id=application.pk, stopped_at__isnull=True).values_list("stage", flat=True)) \
        == ["head_office_approval"]
    written = lifecycle.case_decide(application_id=application.pk, user=org["demo_head_approver"], decision="decline",
                                    reason_codes=["HIGH_LEVERAGE"])
    assert written.status == "declined"
    assert not SlaClock.objects.filter(case_id=application.pk, stopped_at__isnull=True).exists()
