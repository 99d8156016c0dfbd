"""Reads of credit lines: who sees which line (the one visibility rule), what a line has used and has available."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Max, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncMonth

from loanservice import roles
from loanservice.business_date import business_date
from loanservice.models import AuditEvent
from loanservice.money import money_text
from postloan.models import Loan
from postloan.selectors import SEE_ALL

from .models import CreditLine, Drawdown, LineChangeRequest, LineReviewTask

ZERO = Decimal("0.00")
OUTSTANDING = (Loan.Status.ACTIVE,)
LINE_TYPE = "creditlines.creditline"  # the audit trail's object_type of a line


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


def lines_exposed():
    """The lines the borrower's exposure looks at: every one (an expired or closed line for what is still
    outstanding on it); filter it by enterprise, or by `enterprise_id=OuterRef(...)` inside a statement."""
    return CreditLine.objects.all()


def lines_exposure(enterprise_ids: list[int]) -> LineExposure:
    """Each line at the larger of its limit and its outstanding (DESIGN.md "Exposure"); an expired or closed line
    can no longer be drawn, so only what is outstanding on it counts. Two queries whatever the number of lines
    (one when there is none)."""
    lines = list(lines_with_usage(lines_exposed().filter(enterprise_id__in=enterprise_ids))
                 .values("pk", "enterprise_id", "application_id", "status", "limit", "used_amount"))
    if not lines:  # most borrowers have none: no drawdowns to name either
        return LineExposure()
    drawable = {CreditLine.Status.ACTIVE, CreditLine.Status.FROZEN}
    amounts: dict[int, Decimal] = {}
    for line in lines:
        amount = max(line["limit"], line["used_amount"]) if line["status"] in drawable else line["used_amount"]
        amounts[line["enterprise_id"]] = amounts.get(line["enterprise_id"], ZERO) + amount
    loans = Drawdown.objects.filter(line_id__in=[line["pk"] for line in lines]).values_list("loan_id", flat=True)
    return LineExposure(amounts=amounts, loan_ids=frozenset(loans),
                        application_ids=frozenset(line["application_id"] for line in lines))


# ---------------------------------------------------------------- the portfolio of lines (risk dashboard, analytics)
DRAWABLE = (CreditLine.Status.ACTIVE, CreditLine.Status.FROZEN)
EXPIRING_DAYS = 90  # the "expiring soon" window of the dashboards; the review tasks' own lead days are the product's
TREND_DAYS = 30
LIST_ROWS = 100


def _months(first: dt.date, last: dt.date, *, also=()) -> list[str]:
    """Every month of the period ("YYYY-MM"), so a trend shows its quiet months as zeros; a period of more than three
    years lists only the months that had drawdowns."""
    count = (last.year - first.year) * 12 + last.month - first.month + 1
    if count > 36:
        return sorted(also)
    return [f"{first.year + (first.month - 1 + i) // 12:04d}-{(first.month - 1 + i) % 12 + 1:02d}" for i in range(count)]


def _share(num: Decimal, den: Decimal) -> Decimal | None:
    return (num / den).quantize(Decimal("0.0001")) if den else None


def _usage_rows(qs, key: str) -> list[dict]:
    """Lines, limit, used and utilisation per value of `key`, over lines that can still be drawn (active, frozen):
    an expired line's limit is gone, what is still outstanding on it counts under its status, not here. 1 query."""
    rows = (lines_with_usage(qs.filter(status__in=DRAWABLE)).values(key)
            .annotate(n=Count("id"), limit_total=Sum("limit"), used_total=Sum("used_amount")).order_by(key))
    return [{"code": r[key] or "", "lines": r["n"], "limit": r["limit_total"] or ZERO, "used": r["used_total"] or ZERO,
             "available": (r["limit_total"] or ZERO) - (r["used_total"] or ZERO),
             "utilisation": _share(r["used_total"] or ZERO, r["limit_total"] or ZERO)} for r in rows]


def lines_portfolio(*, lines=None, product: str = "", branch: str = "", date_from: dt.date, date_to: dt.date,
                    on: dt.date | None = None) -> dict:
    """The lines at a glance (DESIGN.md "Revolving credit lines"; docs/creditlines.md "Dashboards"), for the risk
    dashboard and the analytics: utilisation (Σ used / Σ limit of the lines that can be drawn) in total, by status,
    product and branch; drawdowns made in the period (their loans' disbursement dates) by month and over the last
    30 days to `date_to`; frozen lines with their reason and since when; lines expiring within 90 days of the
    business date with their annual review. `lines` is who may see what (lines_visible_to); product and branch are
    codes. Amounts are Decimals. A fixed number of queries whatever the number of lines (10)."""
    on = on or business_date()
    qs = lines if lines is not None else CreditLine.objects.all()
    if product:
        qs = qs.filter(product__code=product)
    if branch:
        qs = qs.filter(branch__code=branch)
    status_rows = {r["status"]: r for r in lines_with_usage(qs).values("status").annotate(
        n=Count("id"), limit_total=Sum("limit"), used_total=Sum("used_amount"))}
    by_status = [{"status": code, "lines": status_rows.get(code, {}).get("n", 0),
                  "limit": status_rows.get(code, {}).get("limit_total") or ZERO,
                  "used": status_rows.get(code, {}).get("used_total") or ZERO} for code in CreditLine.Status.values]
    drawable = [r for r in by_status if r["status"] in DRAWABLE]
    limit_total = sum((r["limit"] for r in drawable), ZERO)
    used_total = sum((r["used"] for r in drawable), ZERO)
    frozen = next(r for r in by_status if r["status"] == CreditLine.Status.FROZEN)

    drawdowns = Drawdown.objects.filter(line__in=qs, loan__disbursed_on__gte=date_from, loan__disbursed_on__lte=date_to)
    months = {f"{r['month']:%Y-%m}": r for r in drawdowns.annotate(month=TruncMonth("loan__disbursed_on")).values("month")
              .annotate(n=Count("id"), amount=Sum("amount"))}
    by_month = [{"month": m, "drawdowns": months.get(m, {}).get("n", 0), "amount": months.get(m, {}).get("amount") or ZERO}
                for m in _months(date_from, date_to, also=months)]
    trend_from = date_to - dt.timedelta(days=TREND_DAYS - 1)
    per_day = {r["loan__disbursed_on"]: r for r in Drawdown.objects.filter(
        line__in=qs, loan__disbursed_on__gte=trend_from, loan__disbursed_on__lte=date_to)
        .values("loan__disbursed_on").annotate(n=Count("id"), amount=Sum("amount"))}
    by_day = [{"day": day, "drawdowns": per_day.get(day, {}).get("n", 0), "amount": per_day.get(day, {}).get("amount") or ZERO}
              for day in (trend_from + dt.timedelta(days=i) for i in range(TREND_DAYS))]

    frozen_lines = list(lines_with_usage(qs.filter(status=CreditLine.Status.FROZEN))
                        .select_related("enterprise", "product", "branch").order_by("-limit", "pk")[:LIST_ROWS])
    since = dict(AuditEvent.objects.filter(object_type=LINE_TYPE, action="credit_line.freeze",
                                           object_id__in=[str(line.pk) for line in frozen_lines])
                 .values("object_id").annotate(last=Max("at")).values_list("object_id", "last"))
    expiring = list(lines_with_usage(qs.filter(status__in=DRAWABLE, valid_until__gte=on,
                                               valid_until__lte=on + dt.timedelta(days=EXPIRING_DAYS)))
                    .select_related("enterprise", "product", "branch").order_by("valid_until", "pk")[:LIST_ROWS])
    reviews = {t.line_id: t for t in LineReviewTask.objects.filter(line_id__in=[line.pk for line in expiring]).order_by("due_on")}
    reviews_open = LineReviewTask.objects.filter(line__in=qs, status=LineReviewTask.Status.OPEN).aggregate(
        n=Count("id"), overdue=Count("id", filter=Q(due_on__lt=on)))

    def row(line: CreditLine) -> dict:
        return {"line": line.pk, "enterprise": line.enterprise.name, "product": line.product.code,
                "branch": line.branch.code if line.branch_id else "", "limit": line.limit, "used": line.used_amount,
                "available": line.available_amount, "valid_until": line.valid_until}

    return {
        "on": on,
        "totals": {"lines": sum(r["lines"] for r in drawable), "limit": limit_total, "used": used_total,
                   "available": limit_total - used_total, "utilisation": _share(used_total, limit_total),
                   "frozen": frozen["lines"], "frozen_limit": frozen["limit"],
                   "drawdowns": sum(r["drawdowns"] for r in by_month), "drawdown_amount": sum((r["amount"] for r in by_month), ZERO),
                   "expiring": len(expiring), "reviews_open": reviews_open["n"], "reviews_overdue": reviews_open["overdue"]},
        "by_status": by_status,
        "by_product": _usage_rows(qs, "product__code"),
        "by_branch": _usage_rows(qs, "branch__code"),
        "drawdowns_by_month": by_month,
        "drawdowns_by_day": by_day,
        "frozen": [{**row(line), "reason": line.status_reason, "frozen_at": since.get(str(line.pk))} for line in frozen_lines],
        "expiring": [{**row(line), "days_left": (line.valid_until - on).days,
                      "review_due_on": reviews[line.pk].due_on if line.pk in reviews else None,
                      "review_status": reviews[line.pk].status if line.pk in reviews else None} for line in expiring],
    }
