"""Who may open the pages that span the stages."""

from __future__ import annotations

import rules

from loanservice.roles import is_admin, is_approver, is_risk, is_rm, is_staff

# The staff case page (the rows are applications_visible_to's).
rules.add_perm("casework.case_page", is_staff)
# The case page's actions (each action's own permission decides).
rules.add_perm("casework.case_action", is_rm | is_approver)
# The what-if simulation of an authority matrix draft.
rules.add_perm("casework.what_if", is_risk | is_admin)
# Asking to reveal a masked ID number or phone (the role rule itself is settings.PERSONAL_DATA_CLEAR_ROLES).
rules.add_perm("casework.personal_data_reveal", is_staff)
