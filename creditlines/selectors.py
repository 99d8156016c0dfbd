"""Reads of credit lines: who sees which line (the one visibility rule), what a line has used and has available."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import DecimalField, ExpressionWrapper, F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from loanservice import roles
from loanservice.business_date import business_date
from loanservice.money import money_text
from postloan.models import Loan
from postloan.selectors import SEE_ALL

from .models import CreditLine, Drawdown, LineChangeRequest, LineReviewTask

ZERO = Decimal("0.00")
OUTSTANDING = (Loan.Status.ACTIVE,)


def lines_visible_to(user):
    """The loans' rule: bank-wide roles every line, branch staff their branch's and their customers', the owner theirs."""
    return roles.scope_to(CreditLine.objects.all(), user, owner="borrower", bank_wide=SEE_ALL)


def drawdown_loans(line: CreditLine):
    return Loan.objects.filter(drawdown__line=line)


def line_used(line: CreditLine) -> Decimal:
    """Σ outstanding principal of the line's drawdowns that are still on the book: computed, never stored, so a
    repayment makes it available again at once and a reversed repayment takes it back."""
    total = (drawdown_loans(line).filter(status__in=OUTSTANDING)
             .aggregate(s=Sum("outstanding_principal"))["s"])
    return total or ZERO


def line_usage(line: CreditLine) -> dict:
    used = line_used(line)
    return {"limit": line.limit, "used": used, "available": line.limit - used}


def lines_with_usage(qs):
    """Each line with `used_amount` annotated in the same query (lists)."""
    used = (Loan.objects.filter(drawdown__line=OuterRef("pk"), status__in=OUTSTANDING).values("drawdown__line")
            .annotate(s=Sum("outstanding_principal")).values("s"))
    money = DecimalField(max_digits=16, decimal_places=2)
    return (qs.annotate(used_amount=Coalesce(Subquery(used, output_field=money), Value(ZERO), output_field=money))
            .annotate(available_amount=ExpressionWrapper(F("limit") - F("used_amount"), output_field=money)))


def line_detail(line: CreditLine) -> dict:
    usage = line_usage(line)
    return {
        "id": line.pk, "application": line.application_id, "contract": line.contract_id, "product": line.product.code,
        "enterprise": {"id": line.enterprise_id, "name": line.enterprise.name},
        "limit": money_text(usage["limit"]), "used": money_text(usage["used"]), "available": money_text(usage["available"]),
        "annual_rate": f"{line.annual_rate:.4f}", "valid_from": line.valid_from, "valid_until": line.valid_until,
        "status": line.status, "status_reason": line.status_reason or None, "business_date": business_date(),
        "drawdowns": list(line.drawdowns.order_by("id").values_list("loan_id", flat=True)),
    }


def line_drawdowns(line: CreditLine) -> list[Drawdown]:
    return list(line.drawdowns.select_related("loan").order_by("-id"))


def change_requests_pending(line: CreditLine) -> list[LineChangeRequest]:
    return list(line.change_requests.filter(status=LineChangeRequest.Status.PENDING).select_related("requested_by"))


def line_review_tasks_open(user) -> list[LineReviewTask]:
    return list(LineReviewTask.objects.filter(status=LineReviewTask.Status.OPEN, line__in=lines_visible_to(user))
                .select_related("line__enterprise").order_by("due_on"))


@dataclass(frozen=True)
class LineExposure:
    """The lines' part of the borrower's total exposure (casework.exposure): an amount per enterprise, and the
    drawdown loans and line applications it already counts (left out of term loans and offers, never twice)."""

    amounts: dict[int, Decimal] = field(default_factory=dict)
    loan_ids: frozenset[int] = frozenset()
    application_ids: frozenset[int] = frozenset()


def lines_exposure(enterprise_ids: list[int]) -> LineExposure:
    """Each line at the larger of its limit and its outstanding (DESIGN.md "Exposure"); an expired or closed line
    can no longer be drawn, so only what is outstanding on it counts. Three queries whatever the number of lines."""
    lines = list(lines_with_usage(CreditLine.objects.filter(enterprise_id__in=enterprise_ids))
                 .values("pk", "enterprise_id", "application_id", "status", "limit", "used_amount"))
    drawable = {CreditLine.Status.ACTIVE, CreditLine.Status.FROZEN}
    amounts: dict[int, Decimal] = {}
    for line in lines:
        amount = max(line["limit"], line["used_amount"]) if line["status"] in drawable else line["used_amount"]
        amounts[line["enterprise_id"]] = amounts.get(line["enterprise_id"], ZERO) + amount
    loans = Drawdown.objects.filter(line_id__in=[line["pk"] for line in lines]).values_list("loan_id", flat=True)
    return LineExposure(amounts=amounts, loan_ids=frozenset(loans),
                        application_ids=frozenset(line["application_id"] for line in lines))
