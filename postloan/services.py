"""Post-loan services: open a loan from a released disbursement, record repayments, days past due,
buckets and the five-category floor."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from contracts.models import DisbursementOrder
from contracts.schedules import build_schedule
from loanservice.audit import audit_record
from loanservice.errors import ApplicationError, Conflict

from .models import ClassificationChange, Installment, Loan, Repayment

CATEGORY_ORDER = ["normal", "special_mention", "substandard", "doubtful", "loss"]
BUCKETS = [(0, "M0"), (30, "M1"), (60, "M2"), (90, "M3")]  # upper bounds in days; beyond: M4+


def bucket_for(dpd: int) -> str:
    for upper, name in BUCKETS:
        if dpd <= upper:
            return name
    return "M4+"


def classification_floor(dpd: int) -> str:
    """The 2023 rules as a floor: any overdue at least 关注, >90 次级, >270 可疑, >360 损失."""
    if dpd > 360:
        return "loss"
    if dpd > 270:
        return "doubtful"
    if dpd > 90:
        return "substandard"
    if dpd > 0:
        return "special_mention"
    return "normal"


def loan_open(*, order: DisbursementOrder, by) -> Loan:
    """Create the loan and its schedule for a released order (inside the caller's transaction)."""
    application = order.application
    disbursed_on = timezone.localdate(order.released_at)
    lines = build_schedule(principal=order.amount, annual_rate=application.offer_rate, term_months=application.offer_term_months,
                           method=application.offer_repayment_method, start_date=disbursed_on)
    loan = Loan.objects.create(
        application=application, disbursement=order, enterprise=application.enterprise, borrower=application.applicant,
        relationship_manager=application.relationship_manager, branch=application.branch, principal=order.amount,
        annual_rate=application.offer_rate, term_months=application.offer_term_months,
        repayment_method=application.offer_repayment_method, disbursed_on=disbursed_on, maturity_date=lines[-1].due_date,
        outstanding_principal=order.amount,
    )
    Installment.objects.bulk_create([
        Installment(loan=loan, n=line.n, due_date=line.due_date, principal=line.principal, interest=line.interest)
        for line in lines
    ])
    audit_record(actor=by, action="loan.open", obj=loan, to_state=loan.status,
                 data={"application": application.pk, "principal": str(loan.principal), "installments": len(lines)})
    return loan


def _money(value, field: str) -> Decimal:
    try:
        amount = Decimal(str(value))
        if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
            raise InvalidOperation
        return amount
    except (InvalidOperation, ValueError):
        raise ApplicationError(_("金额无效 / Invalid amount."),
                               errors={field: [_("请填写正数金额（最多两位小数）/ A positive amount with at most two decimals.")]}) from None


def repayment_record(*, loan: Loan, amount, paid_on, reference: str, by) -> tuple[Repayment, bool]:
    """Allocate a repayment oldest installment first, interest before principal. Idempotent by reference:
    the same reference returns the first result (created=False)."""
    amount = _money(amount, "amount")
    if isinstance(paid_on, str):
        try:
            paid_on = dt.date.fromisoformat(paid_on)
        except ValueError:
            paid_on = None
    if not isinstance(paid_on, dt.date) or paid_on > timezone.localdate():
        raise ApplicationError(_("还款日期无效 / Invalid payment date."), errors={"paid_on": [_("YYYY-MM-DD，不晚于今天 / not in the future")]})
    reference = (reference or "").strip()
    if not reference:
        raise ApplicationError(_("请填写流水号 / Give the payment reference."), errors={"reference": [_("此项为必填项 / This field is required.")]})
    with transaction.atomic():
        loan = Loan.objects.select_for_update().get(pk=loan.pk)
        existing = Repayment.objects.filter(loan=loan, reference=reference).first()
        if existing:
            if existing.amount != amount:
                raise Conflict(_("该流水号已用于另一金额 / This reference was already used for another amount."), state=loan.status)
            return existing, False
        if loan.status != "active":
            raise Conflict(_("贷款已结清或核销 / The loan is closed."), state=loan.status)
        remaining = amount
        allocation = []
        installments = list(loan.installments.select_for_update().filter(settled_on__isnull=True).order_by("n"))
        for inst in installments:  # oldest installment first; within it interest, then principal
            for part in ("interest", "principal"):
                owed = getattr(inst, part) - getattr(inst, f"paid_{part}")
                take = min(owed, remaining)
                if take > 0:
                    setattr(inst, f"paid_{part}", getattr(inst, f"paid_{part}") + take)
                    remaining -= take
                    allocation.append({"n": inst.n, "part": part, "amount": f"{take:.2f}"})
            if remaining <= 0:
                break
        principal_paid = sum((Decimal(a["amount"]) for a in allocation if a["part"] == "principal"), Decimal("0"))
        for inst in installments:
            if inst.due_remaining == 0 and inst.settled_on is None:
                inst.settled_on = paid_on
        Installment.objects.bulk_update(installments, ["paid_interest", "paid_principal", "settled_on"])
        loan.outstanding_principal -= principal_paid
        if loan.outstanding_principal <= 0:
            loan.status = "closed"
        try:
            with transaction.atomic():
                repayment = Repayment.objects.create(loan=loan, amount=amount, paid_on=paid_on, reference=reference,
                                                     allocation={"lines": allocation}, unapplied=remaining, recorded_by=by)
        except IntegrityError:
            raise Conflict(_("重复的流水号 / Duplicate reference."), state=loan.status) from None
        loan_refresh_delinquency(loan=loan, today=timezone.localdate(), save=False)
        loan.save()
        audit_record(actor=by, action="loan.repayment", obj=loan,
                     data={"reference": reference, "amount": str(amount), "unapplied": str(remaining)})
    return repayment, True


def loan_dpd(loan: Loan, *, today: dt.date) -> int:
    oldest = loan.installments.filter(settled_on__isnull=True, due_date__lt=today).order_by("due_date").first()
    if oldest is None or oldest.due_remaining <= 0:
        return 0
    return (today - oldest.due_date).days


def loan_refresh_delinquency(*, loan: Loan, today: dt.date, save: bool = True) -> Loan:
    loan.dpd = loan_dpd(loan, today=today)
    loan.bucket = bucket_for(loan.dpd)
    floor = classification_floor(loan.dpd)
    if CATEGORY_ORDER.index(floor) > CATEGORY_ORDER.index(loan.classification):
        ClassificationChange.objects.create(loan=loan, from_category=loan.classification, to_category=floor,
                                            reason=f"DPD {loan.dpd} floor")
        loan.classification = floor
    loan.monitored_on = today
    if save:
        loan.save(update_fields=["dpd", "bucket", "classification", "monitored_on"])
    return loan
