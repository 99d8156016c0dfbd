"""Who may read the portfolio analytics."""

from __future__ import annotations

import rules

from loanservice.roles import is_admin, is_approver, is_committee, is_head_approver, is_risk, is_staff

# The analytics pages and their CSV downloads.
rules.add_perm("analytics.view", is_risk | is_admin | is_approver)
# The summary call.
rules.add_perm("analytics.summary", is_staff)
# Every branch's figures; everyone else is held to their own branch.
rules.add_perm("analytics.all_branches", is_risk | is_admin | is_head_approver | is_committee)
