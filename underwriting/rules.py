"""Who may do due diligence (尽职调查) on a case and pull its data."""

from __future__ import annotations

import rules

from loanservice.roles import is_approver, is_integration, is_risk, is_rm


@rules.predicate
def is_case_rm(user, application) -> bool:
    return application.relationship_manager_id == user.pk


# Pull a data source for an enterprise.
rules.add_perm("underwriting.pull_data", is_integration | is_risk)
# The case file: collateral, guarantors, notes, the enterprise profile.
rules.add_perm("underwriting.case_file", is_rm | is_approver | is_risk)
# The RM's work: the case queue, the site visit, sending the case to approval.
rules.add_perm("underwriting.due_diligence", is_rm)
# Ask the applicant for more information (an RM on their case, an approver on a case at their tier).
rules.add_perm("underwriting.request_info", is_rm | is_approver)
# Act on this case as its RM; approvers may act on any case they see (their tier's rules are approvals').
rules.add_perm("underwriting.work_on_case", is_case_rm | is_approver)
