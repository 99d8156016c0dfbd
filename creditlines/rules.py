"""Who may do what with a credit line (授信额度)."""

from __future__ import annotations

import rules

from loanservice.four_eyes import requested_it
from loanservice.roles import is_admin, is_applicant, is_approver, is_risk, is_rm, is_staff


@rules.predicate
def is_line_borrower(user, line) -> bool:
    return line is None or line.borrower_id == user.pk


# The staff line page (the rows are lines_visible_to's) and the borrower's own line (lines_visible_to's owner rule).
rules.add_perm("creditlines.view", is_staff)
# Draw down: the borrower of the line.
rules.add_perm("creditlines.draw", is_applicant & is_line_borrower)
# Freeze, unfreeze, reduce: risk at once; the RM asks, risk or an approver (never the requester) approves.
rules.add_perm("creditlines.manage", is_risk)
rules.add_perm("creditlines.change", is_risk | is_rm)
rules.add_perm("creditlines.request_change", is_rm)
rules.add_perm("creditlines.decide_change", is_risk | is_approver)
rules.add_perm("creditlines.decide_change_of", (is_risk | is_approver) & ~requested_it)
# The annual review (年审): the RM (or risk) completes it.
rules.add_perm("creditlines.review", is_rm | is_risk | is_admin)
