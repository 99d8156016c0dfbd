"""Who may read the ledger."""

from __future__ import annotations

import rules

from loanservice.roles import is_admin, is_operations, is_risk

# The trial balance and the other ledger reports: operations, risk (and finance, when that role exists), admin.
rules.add_perm("ledger.trial_balance", is_operations | is_risk | is_admin)
