"""Who may decide a case (审批): the tier's role, four eyes, no conflict of interest, one decision each,
and at the branch tier only the branch's own cases."""

from __future__ import annotations

import rules

from loanservice.roles import has_role, is_approver, is_committee, is_staff, user_branch_id

from .models import TIER_ROLE, ConflictOfInterest

# The object of these predicates is the ApprovalCase; its application is the (locked) case row.


@rules.predicate
def holds_tier_role(user, case) -> bool:
    return has_role(user, TIER_ROLE[case.tier])


@rules.predicate
def did_not_prepare(user, case) -> bool:
    """Four eyes (四眼原则): neither the preparer nor the case's RM decides it."""
    return user.pk not in (case.prepared_by_id, case.application.relationship_manager_id)


@rules.predicate
def has_no_conflict(user, case) -> bool:
    return not ConflictOfInterest.objects.filter(user=user, enterprise_id=case.application.enterprise_id, is_active=True).exists()


@rules.predicate
def has_not_decided(user, case) -> bool:
    return not case.decisions.filter(approver=user).exists()


@rules.predicate
def is_in_case_branch(user, case) -> bool:
    """At the branch tier, the branch's own cases (a user with no branch is head office)."""
    return case.tier != "branch" or user_branch_id(user) in (None, case.application.branch_id)


# The approver's queue and review page, and the decide call (the case's own rules are decide_case's).
rules.add_perm("approvals.review", is_approver)
# Decide (or vote) on this case at its current tier.
rules.add_perm("approvals.decide_case", holds_tier_role & did_not_prepare & has_no_conflict & has_not_decided & is_in_case_branch)
# Ask the applicant for information on this case at a tier the user decides on.
rules.add_perm("approvals.request_info_on_case", holds_tier_role & is_in_case_branch & has_no_conflict)
# Record the credit committee's resolution.
rules.add_perm("approvals.resolve", is_committee)
# Read the reason-code catalogue.
rules.add_perm("approvals.reason_codes", is_staff)
