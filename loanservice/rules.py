"""Kernel permissions: the ones every stage shares."""

from __future__ import annotations

import rules

from .roles import is_admin, is_signed_in, is_staff

# Any signed-in user: the rows they may see come from the scoped selectors (404 for what is not theirs).
rules.add_perm("loanservice.signed_in", is_signed_in)
# Any of the bank's staff roles.
rules.add_perm("loanservice.staff", is_staff)
# The system administrator's tools (Django admin, with staff status to reach it).
rules.add_perm("loanservice.administer", is_admin)
