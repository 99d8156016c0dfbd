"""Who may work the precision-marketing prospects (精准营销)."""

from __future__ import annotations

import rules

from loanservice.roles import is_admin, is_branch_approver, is_risk, is_rm


@rules.predicate
def is_prospect_rm(user, prospect) -> bool:
    return prospect.relationship_manager_id == user.pk


# The prospect queue and pages (the rows are prospects_visible_to's).
rules.add_perm("marketing.work", is_rm | is_risk | is_admin | is_branch_approver)
# Import a partner list.
rules.add_perm("marketing.import_list", is_rm | is_risk | is_admin)
# Derive prospects from settlement customers.
rules.add_perm("marketing.derive", is_risk | is_admin)
# Contact or invite this prospect: its RM, or an administrator.
rules.add_perm("marketing.own_prospect", is_prospect_rm | is_admin)
