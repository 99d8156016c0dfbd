"""Who may read the ledger."""

from __future__ import annotations

import rules

from loanservice.roles import is_admin, is_integration, is_operations, is_risk

# The trial balance and the other ledger reports: operations, risk (and finance, when that role exists), admin.
rules.add_perm("ledger.trial_balance", is_operations | is_risk | is_admin)
# The core's daily file (对账文件): operations and the integration account upload it; operations, risk and admin read
# the reconciliation (the integration account reads what it uploaded through the same API).
rules.add_perm("ledger.core_files", is_operations | is_risk | is_integration | is_admin)
rules.add_perm("ledger.upload_core_file", is_operations | is_integration | is_admin)
