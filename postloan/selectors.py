"""Post-loan reads: what each user may see, the loan position, the risk overview, warnings by severity
and branch, RM tasks, approvals waiting, and the satisfaction score for analytics."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, Sum

from ledger.models import AccountMapping
from ledger.selectors import entries_for
from loanservice import roles
from loanservice.money import money_text
from loanservice.sla import business_calendar
from underwriting.models import Guarantor

from .models import NPL_CATEGORIES, ApprovalRequest, EarlyWarning, Loan, WarningTask

SEE_ALL = roles.BANK_WIDE | {roles.INTEGRATION}


def due_date_provisional(installment, cal=None) -> bool:
    """暂定: an unpaid installment due on a year whose official holidays are not loaded yet (the State Council publishes
    the next year's each November): its due date was moved by weekends only, and is recomputed when the year is."""
    return installment.settled_on is None and not (cal or business_calendar()).is_known(installment.due_date)


def loan_guarantors(loan: Loan):
    """The guarantors (保证人) of the loan's application: an extension needs each one's written consent."""
    return Guarantor.objects.filter(application_id=loan.application_id).order_by("pk")


def loans_visible_to(user):
    return roles.scope_to(Loan.objects.all(), user, owner="borrower", bank_wide=SEE_ALL)


def warnings_visible_to(user):
    return EarlyWarning.objects.filter(loan__in=loans_visible_to(user))


def warnings_open(user, *, severity: str = "", branch: str = ""):
    qs = (warnings_visible_to(user).filter(status=EarlyWarning.Status.OPEN)
          .select_related("rule", "branch", "loan__enterprise", "task__assigned_to"))
    if severity:
        qs = qs.filter(severity=severity)
    if branch:
        qs = qs.filter(branch__code=branch)
    return qs.order_by("severity", "-detected_on", "-id")


def warnings_by_severity_and_branch(user) -> list[dict]:
    rows = (warnings_visible_to(user).filter(status=EarlyWarning.Status.OPEN)
            .values("branch__code", "branch__name", "severity").annotate(n=Count("id")).order_by("branch__code", "severity"))
    table: dict = {}
    for r in rows:
        entry = table.setdefault(r["branch__code"] or "", {"branch": r["branch__name"] or "—", "code": r["branch__code"] or "",
                                                          "red": 0, "orange": 0, "yellow": 0})
        entry[r["severity"]] = r["n"]
    return list(table.values())


def tasks_for(user):
    return (WarningTask.objects.filter(assigned_to=user).select_related("warning__rule", "loan__enterprise")
            .order_by("status", "due_at"))


def approvals_waiting(user):
    return (ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING, loan__in=loans_visible_to(user))
            .exclude(requested_by=user).select_related("loan__enterprise", "requested_by").order_by("requested_at"))


def portfolio_summary(user) -> dict:
    loans = loans_visible_to(user).filter(status=Loan.Status.ACTIVE)
    total = loans.aggregate(balance=Sum("outstanding_principal"), n=Count("id"))
    npl = loans.filter(classification__in=NPL_CATEGORIES).aggregate(b=Sum("outstanding_principal"), n=Count("id"))
    balance = total["balance"] or 0
    return {"balance": balance, "n": total["n"], "npl": npl["b"] or 0, "npl_n": npl["n"],
            "npl_ratio": (npl["b"] or 0) / balance if balance else 0}




# What the borrower is shown of the loan's book: money that moved, not the bank's accruals and provisions.
BORROWER_TRANSACTION_TYPES = frozenset({"disbursement", "repayment", "fee", "reversal"})
PART_OF_ROLE = {"loan_principal": "principal", "interest_income": "interest", "interest_receivable": "interest",
                "penalty_income": "penalty", "penalty_receivable": "penalty", "compound_income": "compound",
                "compound_receivable": "compound", "fee_income": "fee"}


def loan_transactions(loan: Loan, *, with_entries: bool) -> list[dict]:
    """The loan's ledger entries as transactions (`GET /api/v1/loans/{id}/transactions/`): each with its amount
    (the entry's debits), its parts by role (principal, interest, penalty, compound, fee) and, for staff, the
    entry's lines. A constant number of queries."""
    roles = dict(AccountMapping.objects.filter(product__in=["", loan.product_code]).order_by("product")
                 .values_list("account__code", "role"))
    channels = {f"repayment:{pk}": channel for pk, channel in loan.repayments.values_list("pk", "channel")}
    out = []
    for entry in entries_for(f"loan:{loan.pk}"):
        if not with_entries and entry.kind not in BORROWER_TRANSACTION_TYPES:
            continue
        lines = list(entry.lines.all())
        sides = {}  # part → [debits, credits]: an accrual debits the receivable and credits income for one amount
        for line in lines:
            part = PART_OF_ROLE.get(roles.get(line.account.code, ""))
            if part:
                side = sides.setdefault(part, [Decimal("0.00"), Decimal("0.00")])
                side[0] += line.debit
                side[1] += line.credit
        parts = {p: max(sides.get(p, [Decimal("0.00")] * 2)) for p in ("principal", "interest", "penalty", "compound", "fee")}
        item = {"id": entry.pk, "type": entry.kind, "date": entry.value_date,
                "amount": money_text(sum((x.debit for x in lines), Decimal("0.00"))),
                "reversed": hasattr(entry, "reversal"), "reverses": entry.reverses_id,
                "parts": {k: money_text(v) for k, v in parts.items()}, "channel": channels.get(entry.key or "", "")}
        if with_entries:
            item["entries"] = [{"account": x.account.code, "name": x.account.name, "debit": money_text(x.debit),
                                "credit": money_text(x.credit)} for x in lines]
        out.append(item)
    return out


def loans_active():
    """The active loans, whose outstanding principal is the borrower's term-loan exposure (filter it by enterprise, or
    by `enterprise_id=OuterRef(...)` inside a statement)."""
    return Loan.objects.filter(status=Loan.Status.ACTIVE)


def loans_outstanding_by_enterprise(*, enterprise_ids, exclude_loan_ids=()) -> dict[int, Decimal]:
    """Outstanding principal of the active loans of these enterprises (one query), for the borrower's exposure;
    `exclude_loan_ids`: loans counted elsewhere (a credit line's drawdowns)."""
    rows = (loans_active().filter(enterprise_id__in=list(enterprise_ids))
            .exclude(pk__in=list(exclude_loan_ids)).values("enterprise_id").annotate(total=Sum("outstanding_principal")))
    return {row["enterprise_id"]: row["total"] or Decimal("0.00") for row in rows}
