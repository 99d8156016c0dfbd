"""Post-loan reads: what each user may see, the loan position, the risk overview, warnings by severity
and branch, RM tasks, approvals waiting, and the satisfaction score for analytics."""

from __future__ import annotations

from django.db.models import Count, Sum

from loanservice import roles

from .models import NPL_CATEGORIES, ApprovalRequest, EarlyWarning, Loan, WarningTask

SEE_ALL = roles.BANK_WIDE | {roles.INTEGRATION}


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

