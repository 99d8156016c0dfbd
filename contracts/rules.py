"""Who may sign, correct and release contracts (合同与放款)."""

from __future__ import annotations

import rules

from loanservice.roles import is_applicant, is_operations


@rules.predicate
def is_contract_applicant(user, contract) -> bool:
    """The applicant of the contract's case (the borrower, or the guarantor party it stands for)."""
    return contract.application.applicant_id == user.pk


# The operations desk: its queue, corrections, conditions precedent, the bank's seal, the release.
rules.add_perm("contracts.operate", is_operations)
# The sign call: the applicant for its side, operations for the bank.
rules.add_perm("contracts.sign", is_applicant | is_operations)
# Sign this contract as its customer party.
rules.add_perm("contracts.sign_as_customer", is_contract_applicant)
# Sign this contract as the bank.
rules.add_perm("contracts.sign_as_bank", is_operations)
