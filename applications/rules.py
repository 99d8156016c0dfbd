"""Who may act on applications and customers (申请与客户)."""

from __future__ import annotations

import rules

from loanservice.models import Profile
from loanservice.roles import (
    is_admin,
    is_applicant,
    is_branch_approver,
    is_operations,
    is_risk,
    is_rm,
    is_staff,
    user_branch_id,
)


@rules.predicate
def is_in_enterprise_branch(user, enterprise) -> bool:
    return bool(enterprise.branch_id) and user_branch_id(user) == enterprise.branch_id


@rules.predicate
def supervises_enterprise_rm(user, enterprise) -> bool:
    rm_id = enterprise.relationship_manager_id
    return bool(rm_id) and Profile.objects.filter(user_id=rm_id, supervisor=user).exists()


# The applicant's own pages and calls: its enterprises, drafts, documents, consents, submission, answers, offer.
rules.add_perm("applications.apply", is_applicant)
# The customer list of the RMs' supervisors (the rows are enterprises_reassignable_by's).
rules.add_perm("applications.reassign_rm", is_rm | is_branch_approver | is_admin)
# This customer's RM may be handed over by: an administrator, a branch approver of its branch, or whoever the
# current RM's profile names as supervisor.
rules.add_perm("applications.reassign_rm_of", rules.is_authenticated & (
    is_admin | (is_branch_approver & is_in_enterprise_branch) | supervises_enterprise_rm))
# A document of a case the staff member may see (the rows are applications_visible_to's).
rules.add_perm("applications.download_document", is_staff)
# Agents' powers of attorney are reviewed by operations (DESIGN.md: operations own contracts and signatures; a bank-wide
# back office that never prepares a case); identity_review_decide also refuses the enterprise's RM and the agent.
rules.add_perm("applications.review_identity", is_operations)
# Policy kept as data (admission criteria, checklists, the negative list...), maintained by risk in the admin.
rules.add_perm("applications.maintain_policy", is_risk)
