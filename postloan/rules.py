"""Who may watch and act on a loan after disbursement (贷后管理)."""

from __future__ import annotations

import rules

from loanservice.four_eyes import requested_it
from loanservice.roles import (
    is_admin,
    is_applicant,
    is_approver,
    is_branch_approver,
    is_head_approver,
    is_integration,
    is_operations,
    is_risk,
    is_rm,
    is_staff,
)


@rules.predicate
def is_task_assignee(user, task) -> bool:
    return task.assigned_to_id == user.pk


@rules.predicate
def borrows_it(user, loan) -> bool:
    return loan is not None and loan.borrower_id == user.pk


# The staff loan page (the rows are loans_visible_to's).
rules.add_perm("postloan.loan_page", is_staff)
# Act on a loan from its page (each action's own permission below decides).
rules.add_perm("postloan.act_on_loan", is_risk | is_rm | is_operations)
rules.add_perm("postloan.downgrade", is_risk)
rules.add_perm("postloan.request_upgrade", is_risk | is_rm)
rules.add_perm("postloan.request_restructure", is_rm | is_risk)
rules.add_perm("postloan.request_write_off", is_risk)
rules.add_perm("postloan.record_collateral", is_risk | is_rm | is_operations)
# Post-loan approvals: the page, and this request (four eyes: never the requester's own). The request's
# approve and reject transitions carry decide_request_of as their permission.
rules.add_perm("postloan.decide_request", is_risk | is_approver)
rules.add_perm("postloan.decide_request_of", (is_risk | is_approver) & ~requested_it)
# The risk overview.
rules.add_perm("postloan.risk_overview", is_risk | is_admin)
# The early-warning board (page) and the warning list (API).
rules.add_perm("postloan.warning_board", is_risk | is_admin | is_head_approver | is_branch_approver | is_rm)
rules.add_perm("postloan.view_warnings", is_staff)
# Warning tasks: the page, and this task (its assignee, or risk).
rules.add_perm("postloan.follow_up", is_rm | is_risk)
rules.add_perm("postloan.complete_task", is_task_assignee | is_risk)
# Repayments: recorded one at a time (API) or imported (core banking's file); the import pages are operations'.
rules.add_perm("postloan.record_repayment", is_operations | is_integration)
rules.add_perm("postloan.import_repayments", is_operations)
# The loan book: the business date and close of business (日终); staff see a loan's journal lines.
rules.add_perm("postloan.view_business_date", is_staff | is_integration)
rules.add_perm("postloan.run_cob", is_operations | is_admin)
rules.add_perm("postloan.view_book", is_staff)
# Servicing to the contract: quotes (the borrower of the loan, staff), prepayments (the borrower, operations),
# acceleration and recoveries after write-off (risk, operations), reversals of repayments (operations ask; another
# person with the risk or an approver role approves: decide_request_of).
rules.add_perm("postloan.quote", is_applicant | is_staff)
rules.add_perm("postloan.prepay", is_applicant | is_operations)
rules.add_perm("postloan.accelerate", is_risk | is_operations)
rules.add_perm("postloan.record_recovery", is_risk | is_operations)
rules.add_perm("postloan.request_reversal", is_operations)
# The auto-debit authorisation (自动扣款授权) of a loan: its borrower revokes or grants it again, and operations.
rules.add_perm("postloan.set_auto_debit", is_applicant | is_operations)
rules.add_perm("postloan.set_auto_debit_of", borrows_it | is_operations)


# Finance (issue #17): there is no finance role, operations keeps the book (as for the trial balance). The finance
# pages' index and the close-of-business page: operations, risk, admin; the reconciliation: the same.
rules.add_perm("postloan.finance", is_operations | is_risk | is_admin)
rules.add_perm("postloan.reconciliation", is_operations | is_risk | is_admin)
# Asset quality (five categories, NPL ratio, provision coverage) and the provisions: risk (and admin).
rules.add_perm("postloan.asset_quality", is_risk | is_admin)
rules.add_perm("postloan.provisions", is_risk | is_admin)


# The provision overlay (管理层叠加): a risk officer submits it, another risk officer or an approver decides (four eyes).
rules.add_perm("postloan.submit_overlay", is_risk)
rules.add_perm("postloan.decide_overlay", is_risk | is_approver)
rules.add_perm("postloan.decide_overlay_of", (is_risk | is_approver) & ~requested_it)
