"""Post-loan services (writes): open a loan, record repayments (penalty → interest → principal, oldest
installment first; early repayment under the product's prepayment rule), days past due and the
five-category classification (floors, manual downgrade, upgrade through approval), restructuring and
write-off through approval, warning tasks, renewals (无还本续贷) and satisfaction surveys.

The nightly, set-based monitoring job lives in `postloan.monitoring`; the CSV import in `postloan.imports`.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django_fsm import has_transition_perm

from applications.models import LoanProduct
from applications.services import application_create, prescreen_run
from contracts.models import DisbursementOrder
from contracts.schedules import add_months, build_schedule
from contracts.services import schedule_options
from ledger.selectors import account_for
from ledger.services import Cr, Dr, Entry, entries_post, entry_post
from loanservice import roles
from loanservice.audit import audit_record
from loanservice.business_date import business_date
from loanservice.errors import ApplicationError, Conflict
from loanservice.notifications import in_default_language, notify
from loanservice.sla import business_calendar
from underwriting.models import DataSnapshot
from underwriting.services import snapshot_pull, source_config
from underwriting.sources import SOURCES

from .models import (
    CATEGORY_ORDER,
    ApprovalRequest,
    ClassificationChange,
    Collateral,
    EarlyWarning,
    Installment,
    Loan,
    PostloanPolicy,
    RenewalOffer,
    Repayment,
    SourceRefresh,
    SurveyResponse,
    WarningTask,
)
from .monitoring import delinquency_refresh, monitored_sources
from .policy import (
    classification_floor,
    policy_in_force,
    prepayment_rule,
    rank,
)
from .provisions import loan_allowance_release_for_write_off

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def _round(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)














def loan_floor(loan: Loan, *, today: dt.date | None = None) -> str:
    """The lowest category the loan may hold now: the DPD floor, and during a restructuring's observation
    period the restructuring floor (重组观察期内不得上调)."""
    today = today or timezone.localdate()
    floor = classification_floor(loan.dpd)
    if loan.observation_until and loan.observation_until >= today:
        restructure_floor = policy_in_force(today).restructure_min_category
        if loan.restructured_on:
            restructure_floor = max(restructure_floor, _category_before_restructuring(loan), key=rank)
        floor = max(floor, restructure_floor, key=rank)
    return floor


def _category_before_restructuring(loan: Loan) -> str:
    change = loan.classification_history.filter(kind="restructure").order_by("-at", "-id").first()
    return change.from_category if change else "normal"


def loan_refresh_delinquency(*, loan: Loan, today: dt.date | None = None) -> Loan:
    """DPD, bucket and classification floor of one loan as of `today`, as the nightly job computes them for all
    (after a repayment, a restructuring, or where a page must be current)."""
    delinquency_refresh(today=today or timezone.localdate(), loan_ids=[loan.pk])
    loan.refresh_from_db(fields=["overdue_since", "dpd", "bucket", "classification"])
    return loan






def months_between(start: dt.date, end: dt.date) -> int:
    months = (end.year - start.year) * 12 + end.month - start.month
    return months - (1 if end.day < start.day else 0)


# ---------------------------------------------------------------- the ledger
def _entry(loan: Loan, *, kind: str, on: dt.date, key: str, **amounts: tuple[str, Decimal]) -> Entry | None:
    """One balanced entry for the loan (reference `loan:<id>`): each keyword is a line, `role=("Dr"|"Cr", amount)`,
    its account read from the product's account mapping (ledger data). None when every amount is zero."""
    lines = tuple((Dr if side == "Dr" else Cr)(account_for(role, loan.product_code), amount)
                  for role, (side, amount) in amounts.items() if amount)
    if not lines:
        return None
    return Entry(kind=kind, value_date=on, lines=lines, branch_id=loan.branch_id, product=loan.product_code,
                 reference=f"loan:{loan.pk}", key=key)


def _post(loan: Loan, *, kind: str, on: dt.date, key: str, by, **amounts: tuple[str, Decimal]) -> None:
    """Post the entry in the caller's transaction (with the money movement it records)."""
    entry = _entry(loan, kind=kind, on=on, key=key, **amounts)
    if entry is not None:
        entry_post(kind=entry.kind, value_date=entry.value_date, lines=entry.lines, branch_id=entry.branch_id,
                   product=entry.product, reference=entry.reference, key=entry.key, by=by)


# ---------------------------------------------------------------- close of business for one loan (日终)
def _interest_target(loan: Loan, installments: list[Installment], on: dt.date) -> tuple[Installment | None, Decimal]:
    """The contract interest that should stand accrued on `on` for the installment whose period holds `on`: the
    principal not yet due × rate × days since the period's nominal start / 360 (what a payoff would charge), and on
    the due date the scheduled interest. Never below what the borrower already paid of it."""
    k = next((k for k, inst in enumerate(installments) if inst.due_date >= on), None)
    if k is None:
        return None, ZERO  # past maturity: overdue amounts accrue penalty interest, not contract interest
    inst = installments[k]
    if on == inst.due_date:
        return inst, max(inst.interest, inst.paid_interest)
    start = installments[k - 1].due_date if k else loan.disbursed_on
    not_due = sum((i.principal - i.paid_principal for i in installments[k:]), ZERO)
    return inst, max(_round(not_due * loan.annual_rate * (on - start).days / 360), inst.interest_accrued)


def _accrual(loan: Loan, *, amount: Decimal, on: dt.date, key: str) -> Entry | None:
    """Dr interest receivable / Cr interest income; a negative amount (the due-date adjustment) the other way."""
    if amount >= 0:
        return _entry(loan, kind="accrual", on=on, key=key, interest_receivable=("Dr", amount), interest_income=("Cr", amount))
    return _entry(loan, kind="accrual", on=on, key=key, interest_income=("Dr", -amount), interest_receivable=("Cr", -amount))


def _penalty_accrual(loan: Loan, *, amount: Decimal, on: dt.date, key: str) -> Entry | None:
    """Dr penalty receivable / Cr penalty income."""
    return _entry(loan, kind="penalty_accrual", on=on, key=key, penalty_receivable=("Dr", amount),
                  penalty_income=("Cr", amount))


def _accrual_post(loan: Loan, *, amount: Decimal, on: dt.date, key: str, by, penalty: Decimal = ZERO) -> None:
    entries = [_accrual(loan, amount=amount, on=on, key=key),
               _penalty_accrual(loan, amount=penalty, on=on, key=f"{key}:penalty")]
    if any(entries):
        entries_post([e for e in entries if e is not None], by=by)


def loans_close_through(*, loans: list[Loan], through: dt.date, by=None, delinquency: bool = True) -> int:
    """Close each loan for every date up to `through` that it has not closed (exactly once per date): accrue contract
    interest (one entry per stretch between due dates, dated at its end: a daily run posts one a day), then days
    past due, bucket and classification floors on `through`. The caller holds the loans' row locks. A constant
    number of queries for the lot; returns the entries posted."""
    loans = [x for x in loans if x.status == Loan.Status.ACTIVE and (x.accrued_through or x.disbursed_on) < through]
    if not loans:
        return 0
    schedules: dict[int, list[Installment]] = {x.pk: [] for x in loans}
    for inst in Installment.objects.filter(loan__in=loans, superseded=False).order_by("loan_id", "n"):
        schedules[inst.loan_id].append(inst)
    entries, changed = [], []
    policy, cal = policy_in_force(through), business_calendar()
    for loan in loans:
        installments, cursor = schedules[loan.pk], loan.accrued_through or loan.disbursed_on
        while cursor < through:
            next_due = min((i.due_date for i in installments if i.due_date > cursor), default=None)
            stop = min(through, next_due) if next_due else through
            inst, target = _interest_target(loan, installments, stop)
            if inst is not None and target != inst.interest_accrued:
                entries.append(_accrual(loan, amount=target - inst.interest_accrued, on=stop,
                                        key=f"loan:{loan.pk}:accrual:{stop}"))
                inst.interest_accrued = target
                changed.append(inst)
            cursor = stop
        # 罚息: overdue installments past their grace end accrue penalty interest through the date
        rate, penalty = penalty_rate(loan, policy), ZERO
        for inst in installments:
            if inst.settled_on is None and inst.due_date < through:
                accrued = installment_accrue_penalty(inst, on=through, rate=rate, policy=policy, cal=cal)
                if accrued:
                    penalty += accrued
                    changed.append(inst)
        entries.append(_penalty_accrual(loan, amount=penalty, on=through, key=f"loan:{loan.pk}:penalty:{through}"))
        loan.accrued_through = through
    posted = entries_post([e for e in entries if e is not None], by=by)
    Installment.objects.bulk_update(list({id(i): i for i in changed}.values()),
                                    ["interest_accrued", "penalty_accrued", "penalty_exact", "penalty_through"],
                                    batch_size=1000)
    ids = [x.pk for x in loans]
    Loan.objects.filter(pk__in=ids).update(accrued_through=through)
    if delinquency:
        delinquency_refresh(today=through, loan_ids=ids)
    return posted


def loan_close_through(*, loan: Loan, through: dt.date, by=None) -> int:
    """One loan (inline close of business), with its days past due and floors refreshed on the object."""
    posted = loans_close_through(loans=[loan], through=through, by=by)
    if loan.accrued_through == through:
        loan.refresh_from_db(fields=["overdue_since", "dpd", "bucket", "classification"])
    return posted


def loan_catch_up(*, loan: Loan, by=None) -> int:
    """Inline close of business: a loan written to while behind is first closed through the last closed date."""
    return loan_close_through(loan=loan, through=business_date() - dt.timedelta(days=1), by=by)


def interest_receivable(installments) -> Decimal:
    """Accrued contract interest not yet paid (the sub-ledger side of account 应收利息)."""
    return sum((max(i.interest_accrued - i.paid_interest, ZERO) for i in installments if not i.superseded), ZERO)


def penalty_receivable(installments) -> Decimal:
    """Accrued penalty interest not yet paid (the sub-ledger side of account 应收罚息)."""
    return sum((i.penalty_accrued - i.paid_penalty for i in installments if not i.superseded), ZERO)


# ---------------------------------------------------------------- open a loan (called by the conductor)
def loan_open(*, order: DisbursementOrder, by) -> Loan:
    """Create the loan and its schedule for a released order (inside the caller's transaction)."""
    application = order.application
    disbursed_on = timezone.localdate(order.released_at)
    # Grace months, repayment day and the due-date rule the loan contract states (contracts.services).
    lines = build_schedule(principal=order.amount, annual_rate=application.offer_rate, term_months=application.offer_term_months,
                           method=application.offer_repayment_method, start_date=disbursed_on, **schedule_options(application))
    loan = Loan.objects.create(
        application=application, disbursement=order, enterprise=application.enterprise, borrower=application.applicant,
        relationship_manager=application.relationship_manager, branch=application.branch, product_code=application.product.code,
        principal=order.amount, annual_rate=application.offer_rate, term_months=application.offer_term_months,
        repayment_method=application.offer_repayment_method, disbursed_on=disbursed_on, maturity_date=lines[-1].due_date,
        outstanding_principal=order.amount, accrued_through=disbursed_on,
    )
    Installment.objects.bulk_create([
        Installment(loan=loan, n=line.n, due_date=line.due_date, principal=line.principal, interest=line.interest)
        for line in lines
    ])
    _post(loan, kind="disbursement", on=disbursed_on, key=f"loan:{loan.pk}:disbursement", by=by,
          loan_principal=("Dr", loan.principal), settlement=("Cr", loan.principal))
    _monitoring_schedule(loan=loan, today=disbursed_on)
    SurveyResponse.objects.get_or_create(loan=loan, trigger="disbursement")
    audit_record(actor=by, action="loan.open", obj=loan, to_state=loan.status,
                 data={"application": application.pk, "principal": str(loan.principal), "installments": len(lines)})
    return loan


def _monitoring_schedule(*, loan: Loan, today: dt.date) -> None:
    """The nightly job refreshes each consented source when its snapshot leaves the freshness window."""
    consented = set(loan.application.consents.values_list("source", flat=True))
    latest = {}
    for snap in DataSnapshot.objects.filter(enterprise_id=loan.enterprise_id, status=DataSnapshot.OK).order_by("as_of", "id"):
        latest[snap.source] = snap.as_of
    rows = []
    for source in monitored_sources():
        if source not in consented:
            continue
        last = latest.get(source)
        due = last + dt.timedelta(days=source_config(source).freshness_days) if last else today
        rows.append(SourceRefresh(enterprise_id=loan.enterprise_id, source=source, due_on=max(due, today)))
    SourceRefresh.objects.bulk_create(rows, ignore_conflicts=True)


# ---------------------------------------------------------------- repayments
def penalty_rate(loan: Loan, policy: PostloanPolicy) -> Decimal:
    return loan.annual_rate * (1 + policy.penalty_rate_markup)


def _grace_end(due: dt.date, policy: PostloanPolicy, cal) -> dt.date:
    return cal.next_business_day(due, include_self=True) if policy.holiday_rollover else due


def installment_accrue_penalty(inst: Installment, *, on: dt.date, rate: Decimal, policy: PostloanPolicy, cal) -> Decimal:
    """罚息: the overdue part of an installment (unpaid principal and interest) accrues penalty interest at
    `rate` per year on actual days / 360, from the due date, once the installment is past its grace end
    (the next business day for a due date on a holiday). Accrued up to `on`; returns the new accrual."""
    if on <= _grace_end(inst.due_date, policy, cal):
        return ZERO
    start = inst.penalty_through or inst.due_date
    days = (on - start).days
    base = inst.due_remaining
    if days <= 0:
        return ZERO
    exact = (inst.penalty_exact if inst.penalty_exact is not None else inst.penalty_accrued) + (
        base * rate * days / 360 if base > 0 else ZERO)
    accrual = _round(exact) - inst.penalty_accrued
    inst.penalty_accrued += accrual
    inst.penalty_exact = exact.quantize(Decimal("1e-12"))
    inst.penalty_through = on
    return accrual


def loan_position(loan: Loan, *, on: dt.date | None = None, installments=None) -> dict:
    """What the borrower owes on `on`: overdue amount, penalty to date, next due installment."""
    on = on or timezone.localdate()
    policy = policy_in_force(on)
    cal = business_calendar()
    rate = penalty_rate(loan, policy)
    lines = [i for i in (installments if installments is not None else loan.installments.all()) if not i.superseded]
    overdue = penalty = ZERO
    next_due = None
    for inst in lines:
        if inst.settled_on is not None:
            continue
        penalty_due = inst.penalty_accrued - inst.paid_penalty
        if on > _grace_end(inst.due_date, policy, cal):
            start = inst.penalty_through or inst.due_date
            penalty_due += _round(inst.due_remaining * rate * max((on - start).days, 0) / 360)
            overdue += inst.due_remaining
        penalty += penalty_due
        if next_due is None and inst.due_date >= on:
            next_due = inst
    return {"overdue": overdue, "penalty": penalty, "next_due": next_due}


def repayment_record(*, loan: Loan, amount: Decimal, paid_on: dt.date, reference: str, by, channel: str = "api",
                     batch=None) -> tuple[Repayment, bool]:
    """Allocate a repayment: oldest installment first, within it penalty → interest → principal, over the
    installments due by `paid_on` (when none is, the current one: paying it a few days early is normal). What
    is left is an early repayment of principal under the product's prepayment rule; if the rule does not
    allow it, it is kept as unapplied credit. Idempotent by reference: the same reference returns the first
    result (created=False); the same reference with another amount is a 409. The values come checked by
    postloan.serializers.RepaymentSerializer (the API, each line of an import)."""
    with transaction.atomic():
        loan = Loan.objects.select_for_update().get(pk=loan.pk)
        existing = Repayment.objects.filter(loan=loan, reference=reference).first()
        if existing:
            if existing.amount != amount or existing.paid_on != paid_on:
                raise Conflict(_("该流水号已用于另一笔还款 / This reference was already used for another payment."), state=loan.status)
            return existing, False
        if loan.status != Loan.Status.ACTIVE:
            raise Conflict(_("贷款已结清或核销 / The loan is closed."), state=loan.status)
        loan_catch_up(loan=loan, by=by)
        if paid_on < loan.disbursed_on:
            raise ApplicationError(_("还款日期早于放款日 / The payment date is before disbursement."),
                                   errors={"paid_on": [_("不得早于放款日 %(d)s / Not before %(d)s") % {"d": loan.disbursed_on}]})
        last = loan.repayments.order_by("-paid_on").values_list("paid_on", flat=True).first()
        if last and paid_on < last:
            raise ApplicationError(_("还款日期早于上一笔还款 / The payment date is before the last recorded payment."),
                                   errors={"paid_on": [_("不得早于 %(d)s / Not before %(d)s") % {"d": last}]})
        policy = policy_in_force(paid_on)
        cal = business_calendar()
        rate = penalty_rate(loan, policy)
        installments = list(loan.installments.select_for_update().filter(settled_on__isnull=True, superseded=False).order_by("n"))
        penalty_now = sum((installment_accrue_penalty(inst, on=paid_on, rate=rate, policy=policy, cal=cal)
                           for inst in installments), ZERO)
        for inst in installments:  # a payment changes the base: the next stretch of penalty is rounded on its own
            inst.penalty_exact = None
        due = sum(1 for inst in installments if inst.due_date <= paid_on)
        split = due or min(1, len(installments))  # nothing due yet: the current installment may be paid early
        current, future = installments[:split], installments[split:]
        remaining = amount
        allocation = []
        totals = {"penalty": ZERO, "interest": ZERO, "principal": ZERO}
        accrued_now = ZERO  # interest paid before close of business accrued it: accrued at payment
        for inst in current:
            for part, owed in (("penalty", inst.penalty_accrued - inst.paid_penalty),
                               ("interest", inst.interest - inst.paid_interest),
                               ("principal", inst.principal - inst.paid_principal)):
                take = min(owed, remaining)
                if take > 0 and part == "interest" and inst.paid_interest + take > inst.interest_accrued:
                    accrued_now += inst.paid_interest + take - inst.interest_accrued
                    inst.interest_accrued = inst.paid_interest + take
                if take > 0:
                    setattr(inst, f"paid_{part}", getattr(inst, f"paid_{part}") + take)
                    remaining -= take
                    totals[part] += take
                    allocation.append({"n": inst.n, "part": part, "amount": f"{take:.2f}"})
            if inst.due_remaining == 0 and inst.penalty_accrued == inst.paid_penalty:
                inst.settled_on = paid_on
            if remaining <= 0:
                break
        prepaid = fee = released = ZERO
        note = ""
        if remaining > 0 and future:
            rule = prepayment_rule(loan.product_code)
            months = months_between(loan.disbursed_on, paid_on)
            if not rule.allowed or months < rule.lock_in_months:
                note = "prepayment not allowed"
            else:
                fee_rate = rule.fee_rate if months < rule.fee_free_after_months else Decimal("0")
                left = sum((i.principal - i.paid_principal for i in future), ZERO)
                prepaid = min(left, (remaining / (1 + fee_rate)).quantize(CENT, rounding=ROUND_DOWN))
                fee = _round(prepaid * fee_rate)
                while prepaid + fee > remaining:
                    prepaid -= CENT
                    fee = _round(prepaid * fee_rate)
                remaining -= prepaid + fee
                allocation.append({"part": "prepayment", "amount": f"{prepaid:.2f}", "fee": f"{fee:.2f}", "mode": rule.mode})
                released = _reschedule_after_prepayment(loan=loan, current=current, future=future, prepaid=prepaid,
                                                        mode=rule.mode)
        Installment.objects.bulk_update(installments, ["paid_interest", "paid_principal", "paid_penalty", "penalty_accrued",
                                                       "penalty_exact", "penalty_through", "settled_on", "interest_accrued"])
        loan.outstanding_principal -= totals["principal"] + prepaid
        if loan.outstanding_principal <= 0 and not loan.installments.filter(settled_on__isnull=True, superseded=False).exists():
            loan.close()
            loan.closed_on = paid_on
        try:
            with transaction.atomic():
                repayment = Repayment.objects.create(
                    loan=loan, amount=amount, paid_on=paid_on, reference=reference, channel=channel, batch=batch,
                    allocation={"lines": allocation, **({"note": note} if note else {})}, penalty_paid=totals["penalty"],
                    interest_paid=totals["interest"], principal_paid=totals["principal"], prepaid_principal=prepaid,
                    prepayment_fee=fee, unapplied=remaining, recorded_by=by)
        except IntegrityError:
            raise Conflict(_("重复的流水号 / Duplicate reference."), state=loan.status) from None
        # Received through clearing; the interest paid clears the receivable that accrual built (topped up first
        # where the borrower paid ahead of accrual); accrued interest of a schedule paid off early is released.
        _accrual_post(loan, amount=accrued_now - released, on=paid_on, key=f"repayment:{repayment.pk}:accrual", by=by,
                      penalty=penalty_now)
        _post(loan, kind="repayment", on=paid_on, key=f"repayment:{repayment.pk}", by=by, clearing=("Dr", amount),
              penalty_receivable=("Cr", totals["penalty"]), interest_receivable=("Cr", totals["interest"]),
              loan_principal=("Cr", totals["principal"] + prepaid), fee_income=("Cr", fee), settlement=("Cr", remaining))
        loan.save()
        loan_refresh_delinquency(loan=loan)
        if loan.repayments.count() == policy.nps_after_repayments:
            SurveyResponse.objects.get_or_create(loan=loan, trigger="repayments")
        audit_record(actor=by, action="loan.repayment", obj=loan, to_state=loan.status,
                     data={"reference": reference, "amount": str(amount), "channel": channel, "penalty": str(totals["penalty"]),
                           "interest": str(totals["interest"]), "principal": str(totals["principal"]),
                           "prepaid": str(prepaid), "fee": str(fee), "unapplied": str(remaining)})
    return repayment, True


def _replace_future(*, loan: Loan, future: list[Installment], lines, first_n: int, extra_interest: Decimal = ZERO,
                    carried: Decimal | None = None) -> None:
    """The new schedule's first installment carries the interest already accrued on the ones it replaces (the
    period in progress), so the receivable stays whole; its due date settles the difference."""
    if carried is None:
        carried = sum((i.interest_accrued - i.paid_interest for i in future), ZERO)
    Installment.objects.filter(pk__in=[i.pk for i in future if i.pk]).delete()
    new = [Installment(loan=loan, n=first_n + k, due_date=line.due_date, principal=line.principal,
                       interest=line.interest + (extra_interest if k == 0 else ZERO),
                       interest_accrued=carried if k == 0 else ZERO) for k, line in enumerate(lines)]
    Installment.objects.bulk_create(new)
    loan.maturity_date = new[-1].due_date if new else loan.maturity_date


def _reschedule_after_prepayment(*, loan: Loan, current: list[Installment], future: list[Installment], prepaid: Decimal,
                                 mode: str) -> Decimal:
    """Returns the accrued interest released: a schedule paid off ahead of its period no longer owes it."""
    left = sum((i.principal - i.paid_principal for i in future), ZERO) - prepaid
    if left <= 0:
        released = sum((i.interest_accrued - i.paid_interest for i in future), ZERO)
        Installment.objects.filter(pk__in=[i.pk for i in future]).delete()
        loan.maturity_date = current[-1].due_date if current else loan.maturity_date
        future.clear()
        return released
    start = current[-1].due_date if current else loan.disbursed_on
    term = len(future)
    if mode == "reduce_term":
        r = loan.annual_rate / 12
        if loan.repayment_method == "equal_installment" and r > 0:
            payment = future[0].total
            if left * r < payment:
                term = math.ceil(-math.log(1 - float(left * r / payment)) / math.log(1 + float(r)) - 1e-9)
        elif loan.repayment_method == "equal_principal" and future[0].principal > 0:
            term = math.ceil(left / future[0].principal)
        term = max(1, min(term, len(future)))
    lines = build_schedule(principal=left, annual_rate=loan.annual_rate, term_months=term, method=loan.repayment_method,
                           start_date=start, repayment_day=loan.disbursed_on.day)
    first_n = future[0].n
    _replace_future(loan=loan, future=future, lines=lines, first_n=first_n)
    future.clear()
    return ZERO


# ---------------------------------------------------------------- five-category classification
def _classification_set(*, loan: Loan, to: str, kind: str, reason: str, by, approved_by=None) -> ClassificationChange:
    change = ClassificationChange.objects.create(loan=loan, from_category=loan.classification, to_category=to, kind=kind,
                                                 reason=reason[:300], by=by, approved_by=approved_by)
    audit_record(actor=approved_by or by, action=f"loan.classification.{kind}", obj=loan, from_state=loan.classification,
                 to_state=to, reason=reason)
    Loan.objects.filter(pk=loan.pk).update(classification=to)
    loan.classification = to
    return change


def _require(user, perm: str) -> None:
    roles.permission_check(user, perm, message=_("无权执行此操作 / You are not allowed to do this."),
                           errors={"user": [_("需要风险管理或审批角色 / Needs the risk or approver role.")]})


def _category(value: str, field: str = "to_category") -> str:
    if value not in CATEGORY_ORDER:
        raise ApplicationError(_("分类无效 / Unknown category."), errors={field: [_("可选：%(c)s / One of: %(c)s") % {"c": ", ".join(CATEGORY_ORDER)}]})
    return value


def _reason(reason: str) -> str:
    if not (reason or "").strip():
        raise ApplicationError(_("请说明理由 / Give a reason."), errors={"reason": [_("此项为必填项 / This field is required.")]})
    return reason.strip()


@transaction.atomic
def classification_downgrade(*, loan: Loan, to_category: str, reason: str, by) -> ClassificationChange:
    """Risk may downgrade a loan at once, with a reason (人工下调)."""
    _require(by, "postloan.downgrade")
    to_category, reason = _category(to_category), _reason(reason)
    loan = Loan.objects.select_for_update().get(pk=loan.pk)
    if rank(to_category) <= rank(loan.classification):
        raise ApplicationError(_("下调须低于当前分类；上调须审批 / A downgrade must be below the current category; an upgrade needs approval."),
                               errors={"to_category": [_("当前分类：%(c)s / Current: %(c)s") % {"c": loan.classification}]})
    return _classification_set(loan=loan, to=to_category, kind="downgrade", reason=reason, by=by)


@transaction.atomic
def classification_upgrade_request(*, loan: Loan, to_category: str, reason: str, by) -> ApprovalRequest:
    """An upgrade needs a second person's approval, and never above the floor the rules set."""
    _require(by, "postloan.request_upgrade")
    to_category, reason = _category(to_category), _reason(reason)
    loan = Loan.objects.select_for_update().get(pk=loan.pk)
    if rank(to_category) >= rank(loan.classification):
        raise ApplicationError(_("上调须高于当前分类 / An upgrade must be above the current category."),
                               errors={"to_category": [_("当前分类：%(c)s / Current: %(c)s") % {"c": loan.classification}]})
    _check_floor(loan, to_category)
    return _approval_open(loan=loan, kind=ApprovalRequest.Kind.UPGRADE, params={"to_category": to_category,
                                                                                 "from_category": loan.classification},
                          reason=reason, by=by)


def _check_floor(loan: Loan, to_category: str) -> None:
    floor = loan_floor(loan)
    if rank(to_category) < rank(floor):
        raise ApplicationError(_("不得高于监管规则下限 / Not above the floor the rules set."),
                               errors={"to_category": [_("最高只能调至：%(c)s / At best: %(c)s") % {"c": floor}]})


def _approval_open(*, loan: Loan, kind: str, params: dict, reason: str, by) -> ApprovalRequest:
    if loan.approval_requests.filter(kind=kind, status=ApprovalRequest.Status.PENDING).exists():
        raise Conflict(_("已有待审批的同类申请 / A request of this kind is already pending."), state="pending")
    request = ApprovalRequest.objects.create(loan=loan, kind=kind, params=params, reason=reason, requested_by=by)
    audit_record(actor=by, action=f"loan.approval_request.{kind}", obj=loan, to_state=request.status, reason=reason,
                 data={"request": request.pk, **params})
    return request


@transaction.atomic
def restructure_request(*, loan: Loan, kind: str, reason: str, by, extra_months=None, term_months=None,
                        repayment_method: str = "") -> ApprovalRequest:
    """展期 (extension: `extra_months` more) or reschedule (a new term and method for what is left)."""
    _require(by, "postloan.request_restructure")
    reason = _reason(reason)
    loan = Loan.objects.select_for_update().get(pk=loan.pk)
    if loan.status != Loan.Status.ACTIVE:
        raise Conflict(_("贷款不在存续状态 / The loan is not active."), state=loan.status)
    if kind == ApprovalRequest.Kind.EXTENSION:
        months = _positive_int(extra_months, "extra_months", 1, 60)
        params = {"extra_months": months}
    elif kind == ApprovalRequest.Kind.RESCHEDULE:
        months = _positive_int(term_months, "term_months", 1, 120)
        method = repayment_method or loan.repayment_method
        if method not in {m for m, _label in Loan._meta.get_field("repayment_method").choices}:
            raise ApplicationError(_("还款方式无效 / Unknown repayment method."), errors={"repayment_method": [_("无效 / Invalid.")]})
        params = {"term_months": months, "repayment_method": method}
    else:
        raise ApplicationError(_("类型无效 / Unknown kind."), errors={"kind": [_("extension 或 reschedule")]})
    return _approval_open(loan=loan, kind=kind, params=params, reason=reason, by=by)


def _positive_int(value, field: str, low: int, high: int) -> int:
    try:
        number = int(value)
        if not low <= number <= high:
            raise ValueError
        return number
    except (TypeError, ValueError):
        raise ApplicationError(_("数值无效 / Invalid number."),
                               errors={field: [_("须为 %(a)s 至 %(b)s 的整数 / A whole number from %(a)s to %(b)s") % {"a": low, "b": high}]}) from None


@transaction.atomic
def write_off_request(*, loan: Loan, reason: str, by) -> ApprovalRequest:
    """核销: only a loan classified at least as the policy says (default 可疑), through approval."""
    _require(by, "postloan.request_write_off")
    reason = _reason(reason)
    loan = Loan.objects.select_for_update().get(pk=loan.pk)
    if loan.status != Loan.Status.ACTIVE:
        raise Conflict(_("贷款不在存续状态 / The loan is not active."), state=loan.status)
    minimum = policy_in_force().write_off_min_category
    if rank(loan.classification) < rank(minimum):
        raise ApplicationError(_("分类未达核销条件 / The classification does not allow a write-off."),
                               errors={"classification": [_("至少须为：%(c)s / At least: %(c)s") % {"c": minimum}]})
    return _approval_open(loan=loan, kind=ApprovalRequest.Kind.WRITE_OFF, params={"amount": str(loan.outstanding_principal)},
                          reason=reason, by=by)


@transaction.atomic
def approval_request_decide(*, request: ApprovalRequest, approve: bool, by, comment: str = "") -> ApprovalRequest:
    """Four eyes: someone other than the requester, with the risk or an approver role, decides."""
    _require(by, "postloan.decide_request")
    request = ApprovalRequest.objects.select_for_update().get(pk=request.pk)
    roles.permission_check(by, "postloan.decide_request_of", request,
                           message=_("申请人不能审批自己的申请 / The requester cannot approve their own request."),
                           errors={"user": [_("需由另一人审批 / Needs a second person.")]})
    transition = request.approve if approve else request.reject
    if not has_transition_perm(transition, by):  # allowed to decide, so only the state can say no
        raise Conflict(_("该申请已处理 / This request was already decided."), state=request.status)
    loan = Loan.objects.select_for_update().get(pk=request.loan_id)
    if approve:
        if request.kind == ApprovalRequest.Kind.UPGRADE:
            to = request.params["to_category"]
            _check_floor(loan, to)
            _classification_set(loan=loan, to=to, kind="upgrade", reason=request.reason, by=request.requested_by, approved_by=by)
            request.result = {"classification": to}
        elif request.kind in (ApprovalRequest.Kind.EXTENSION, ApprovalRequest.Kind.RESCHEDULE):
            request.result = _restructure_apply(loan=loan, request=request, by=by)
        elif request.kind == ApprovalRequest.Kind.WRITE_OFF:
            request.result = _write_off_apply(loan=loan, request=request, by=by)
    transition()
    request.decided_by = by
    request.comment = (comment or "")[:500]
    request.save()
    audit_record(actor=by, action=f"loan.approval_request.{'approve' if approve else 'reject'}", obj=loan,
                 from_state="pending", to_state=request.status, reason=comment, data={"request": request.pk, "kind": request.kind,
                                                                                        "result": request.result})
    with in_default_language():
        title = (_("贷后申请 #%(id)s 已批准 / Post-loan request #%(id)s approved") if approve
                 else _("贷后申请 #%(id)s 已否决 / Post-loan request #%(id)s rejected"))
        notify(user=request.requested_by, kind="postloan_decision", title=title % {"id": request.pk},
               url=reverse("postloan:loan", args=[loan.pk]))
    return request


def _restructure_apply(*, loan: Loan, request: ApprovalRequest, by) -> dict:
    """A new schedule for the outstanding principal from today; overdue interest and penalty are added to
    the first new installment; the old open lines are kept as history (superseded). The classification
    is at least the restructuring floor, and cannot be raised during the observation period."""
    if loan.status != Loan.Status.ACTIVE:
        raise Conflict(_("贷款不在存续状态 / The loan is not active."), state=loan.status)
    loan_catch_up(loan=loan, by=by)
    today = timezone.localdate()
    policy = policy_in_force(today)
    cal = business_calendar()
    rate = penalty_rate(loan, policy)
    open_lines = list(loan.installments.select_for_update().filter(settled_on__isnull=True, superseded=False).order_by("n"))
    arrears = ZERO
    not_due = 0
    penalty_now = sum((installment_accrue_penalty(inst, on=today, rate=rate, policy=policy, cal=cal) for inst in open_lines), ZERO)
    _accrual_post(loan, amount=ZERO, on=today, key=f"restructure:{request.pk}:accrual", by=by, penalty=penalty_now)
    # The arrears (interest and penalty) become interest of the new schedule: so does their receivable.
    penalty_open = penalty_receivable(open_lines)
    _post(loan, kind="restructure", on=today, key=f"restructure:{request.pk}", by=by,
          interest_receivable=("Dr", penalty_open), penalty_receivable=("Cr", penalty_open))
    carried = interest_receivable(open_lines) + penalty_open
    for inst in open_lines:
        if inst.due_date <= today:
            arrears += (inst.interest - inst.paid_interest) + (inst.penalty_accrued - inst.paid_penalty)
        else:
            not_due += 1
        inst.principal, inst.interest, inst.settled_on, inst.superseded = inst.paid_principal, inst.paid_interest, today, True
        inst.penalty_accrued, inst.penalty_exact, inst.interest_accrued = inst.paid_penalty, None, inst.paid_interest
    Installment.objects.bulk_update(open_lines, ["principal", "interest", "settled_on", "superseded", "penalty_accrued",
                                                 "penalty_exact", "penalty_through", "interest_accrued"])
    if request.kind == ApprovalRequest.Kind.EXTENSION:
        term = max(not_due, 1) + int(request.params["extra_months"])
        method = loan.repayment_method
    else:
        term = int(request.params["term_months"])
        method = request.params.get("repayment_method") or loan.repayment_method
    lines = build_schedule(principal=loan.outstanding_principal, annual_rate=loan.annual_rate, term_months=term, method=method,
                           start_date=today, repayment_day=loan.disbursed_on.day)
    first_n = (loan.installments.order_by("-n").values_list("n", flat=True).first() or 0) + 1
    _replace_future(loan=loan, future=[], lines=lines, first_n=first_n, extra_interest=arrears, carried=carried)
    loan.repayment_method = method
    loan.restructured_on = today
    loan.observation_until = add_months(today, policy.restructure_observation_months)
    loan.save()
    floor = max(policy.restructure_min_category, loan.classification, key=rank)
    ClassificationChange.objects.create(loan=loan, from_category=loan.classification, to_category=floor, kind="restructure",
                                        reason=request.reason[:300], by=request.requested_by, approved_by=by)
    Loan.objects.filter(pk=loan.pk).update(classification=floor)
    loan.classification = floor
    loan_refresh_delinquency(loan=loan, today=today)
    return {"term_months": term, "repayment_method": method, "arrears_capitalised": f"{arrears:.2f}",
            "maturity_date": loan.maturity_date.isoformat(), "classification": floor}


def _write_off_apply(*, loan: Loan, request: ApprovalRequest, by) -> dict:
    loan_catch_up(loan=loan, by=by)
    before = loan.classification
    amount = loan.outstanding_principal
    open_lines = list(loan.installments.filter(settled_on__isnull=True))
    receivable, penalty = interest_receivable(open_lines), penalty_receivable(open_lines)
    loan.write_off()
    loan.written_off_amount = amount
    loan.closed_on = timezone.localdate()
    loan.save()
    # Written off against the loan loss allowance the loan holds (its ECL); what the allowance does not cover is
    # charged to impairment, and an allowance above the amount written off is released.
    held = loan_allowance_release_for_write_off(loan=loan, on=loan.closed_on)
    beyond = amount + receivable + penalty - held
    _post(loan, kind="write_off", on=loan.closed_on, key=f"loan:{loan.pk}:write_off", by=by,
          allowance=("Dr", held), impairment=("Dr", beyond) if beyond > 0 else ("Cr", -beyond), loan_principal=("Cr", amount),
          interest_receivable=("Cr", receivable), penalty_receivable=("Cr", penalty))
    if before != "loss":
        _classification_set(loan=loan, to="loss", kind="write_off", reason=request.reason, by=request.requested_by, approved_by=by)
    EarlyWarning.objects.filter(loan=loan, status=EarlyWarning.Status.OPEN).update(status=EarlyWarning.Status.CLOSED,
                                                                                  closed_at=timezone.now())
    return {"written_off": f"{amount:.2f}"}


# ---------------------------------------------------------------- collateral and warning tasks
@transaction.atomic
def collateral_record(*, loan: Loan, description: str, value: Decimal, valued_on: dt.date, by) -> Collateral:
    """Record a pledge or a new appraisal (the LTV warning reads the latest values); the values come checked
    by postloan.serializers.CollateralValueSerializer."""
    _require(by, "postloan.record_collateral")
    item = Collateral.objects.filter(loan=loan, description=description.strip()).first()
    before = str(item.value) if item else ""
    if item:
        item.value, item.valued_on = value, valued_on
        item.save()
    else:
        item = Collateral.objects.create(loan=loan, description=description.strip(), value=value, valued_on=valued_on)
    audit_record(actor=by, action="loan.collateral", obj=loan, data={"collateral": item.pk, "before": before, "value": str(value)})
    return item




@transaction.atomic
def warning_task_complete(*, task: WarningTask, by, visit_mode: str, visit_notes: str, action: str, action_note: str = "") -> WarningTask:
    """The RM records the visit and the action; the warning closes. A recall marks the loan for recall."""
    task = WarningTask.objects.select_for_update(of=("self",)).select_related("warning", "loan").get(pk=task.pk)
    roles.permission_check(by, "postloan.complete_task", task, message=_("不是您的任务 / Not your task."),
                           errors={"task": [_("只有被指派的客户经理可以处理 / Only the assigned RM.")]})
    errors = {}
    if visit_mode not in dict(WarningTask.VISIT_MODES):
        errors["visit_mode"] = [_("请选择走访方式 / Choose how you visited.")]
    if not (visit_notes or "").strip():
        errors["visit_notes"] = [_("请填写走访情况 / Write what you found.")]
    if action not in dict(WarningTask.ACTIONS):
        errors["action"] = [_("请选择处置措施 / Choose an action.")]
    if errors:
        raise ApplicationError(_("处置信息不完整 / The follow-up is incomplete."), errors=errors)
    if task.status != WarningTask.Status.OPEN:
        raise Conflict(_("任务已完成 / The task is already done."), state=task.status)
    task.visit_mode, task.visit_notes, task.action, task.action_note = visit_mode, visit_notes.strip(), action, (action_note or "").strip()
    task.completed_by = by
    task.complete()
    task.save()
    EarlyWarning.objects.filter(pk=task.warning_id).update(status=EarlyWarning.Status.CLOSED, closed_at=timezone.now())
    if action == "recall":
        Loan.objects.filter(pk=task.loan_id, recall_requested_on__isnull=True).update(recall_requested_on=timezone.localdate())
    audit_record(actor=by, action="warning.task.complete", obj=task.loan, from_state="open", to_state="done",
                 reason=task.visit_notes[:200], data={"task": task.pk, "warning": task.warning_id, "rule": task.warning.rule_id,
                                                      "action": action, "visit_mode": visit_mode})
    return task


# ---------------------------------------------------------------- renewal (无还本续贷) and top-up
def renewal_eligibility(*, loan: Loan, today: dt.date | None = None, check_admission: bool = True,
                        payloads: dict | None = None) -> dict:
    """Eligible when: active and within the renewal window before maturity; good repayment (not overdue now,
    never later than the policy allows, classified normal); no open red warning; and the enterprise still
    passes the product's admission criteria and negative list on the latest data. `payloads`: that data,
    gathered beforehand by `renewal_admission_payloads` (a caller holding the loan's lock passes it, so no
    pull waits on the network under the lock); without it, stale consented sources are pulled here."""
    today = today or timezone.localdate()
    policy = policy_in_force(today)
    reasons = []

    def no(code, zh, en):
        reasons.append({"code": code, "message": f"{zh} / {en}"})

    if loan.status != Loan.Status.ACTIVE:
        no("not_active", "贷款不在存续状态", "The loan is not active")
    window_opens = loan.maturity_date - dt.timedelta(days=policy.renewal_window_days)
    if not window_opens <= today <= loan.maturity_date:
        no("outside_window", f"续贷须在到期前{policy.renewal_window_days}天内申请（{window_opens} 起）",
           f"Renewal opens {policy.renewal_window_days} days before maturity ({window_opens})")
    if loan.dpd > 0:
        no("overdue", "当前有逾期", "The loan is overdue now")
    late = [i for i in loan.installments.filter(superseded=False, due_date__lt=today)
            if (i.settled_on or today) > i.due_date + dt.timedelta(days=policy.renewal_max_late_days)]
    if late:
        no("late_history", f"有{len(late)}期未按时还款", f"{len(late)} installment(s) paid late")
    if loan.classification != "normal" or loan.restructured_on:
        no("classification", "五级分类须为正常且未重组", "The loan must be classified normal and never restructured")
    if loan.warnings.filter(status=EarlyWarning.Status.OPEN, severity="red").exists():
        no("red_warning", "存在未处置的红色预警", "An open red warning")
    admission = None
    if check_admission and not reasons:
        if payloads is None:
            payloads = renewal_admission_payloads(loan=loan, today=today)
        admission = _admission_check(loan=loan, today=today, payloads=payloads)
        for r in admission["reasons"]:
            reasons.append({"code": f"admission:{r['code']}", "message": r["message"]})
    return {"eligible": not reasons, "reasons": reasons, "window_opens_on": window_opens, "maturity_date": loan.maturity_date,
            "amount": loan.outstanding_principal}


def renewal_admission_payloads(*, loan: Loan, today: dt.date) -> dict:
    """The latest data per source for the admission re-check; a consented source whose snapshot is stale is
    pulled now. A network wait: call it before taking the loan's lock, never under it."""

    payloads = {}
    consented = set(loan.application.consents.values_list("source", flat=True))
    latest = {}
    for snap in DataSnapshot.objects.filter(enterprise_id=loan.enterprise_id).order_by("as_of", "id"):
        latest[snap.source] = snap
    for source in SOURCES:
        snap = latest.get(source)
        if source in consented and (snap is None or (today - snap.as_of).days > source_config(source).freshness_days):
            snap = snapshot_pull(enterprise=loan.enterprise, source=source, application=loan.application, by=None)
        payloads[source] = snap.payload if snap is not None and snap.status == DataSnapshot.OK else None
    return payloads


def _admission_check(*, loan: Loan, today: dt.date, payloads: dict) -> dict:
    product = LoanProduct.objects.get(code=loan.product_code) if loan.product_code else loan.application.product
    return prescreen_run(enterprise=loan.enterprise, product=product, payloads=payloads, amount=loan.outstanding_principal, today=today)


def _renewal_refused(result: dict) -> ApplicationError:
    return ApplicationError(_("暂不符合续贷条件 / Not eligible for renewal now."),
                            errors={"renewal": [r["message"] for r in result["reasons"]]})


def _renewal_existing(loan: Loan, kind: str) -> RenewalOffer | None:
    return loan.renewals.filter(kind=kind, application__isnull=False).exclude(
        application__status__in=["declined", "withdrawn", "expired", "prescreen_declined"]).first()


def _loan_lock(pk: int) -> Loan:
    return Loan.objects.select_for_update(of=("self",)).select_related("enterprise", "application__product").get(pk=pk)


def renewal_request(*, loan: Loan, by, kind: str = "renewal", amount: Decimal | None = None) -> RenewalOffer:
    """Create the new application (a draft the borrower completes and submits), prefilled from the loan:
    the same enterprise and product, the outstanding principal (renewal) or the asked amount (top-up,
    checked by postloan.serializers.RenewalSerializer).

    Gather, then lock, re-check and write: the admission data is pulled before the loan's row lock is taken;
    under the lock every condition is checked again on that data (nothing is pulled there)."""

    loan = Loan.objects.select_related("enterprise", "application__product").get(pk=loan.pk)
    if by.pk != loan.borrower_id:
        raise ApplicationError(_("只有借款人可以申请续贷 / Only the borrower can ask for a renewal."),
                               errors={"loan": [_("不是您的贷款 / Not your loan.")]}, code="forbidden")
    payloads = None
    if kind == "renewal" and _renewal_existing(loan, kind) is None:
        today = timezone.localdate()
        basics = renewal_eligibility(loan=loan, today=today, check_admission=False)
        if not basics["eligible"]:
            raise _renewal_refused(basics)
        payloads = renewal_admission_payloads(loan=loan, today=today)
    with transaction.atomic():
        loan = _loan_lock(loan.pk)
        existing = _renewal_existing(loan, kind)
        if existing:
            return existing
        if kind == "renewal":
            if payloads is None:  # an offer was there when we looked, and is gone now: ask again
                raise Conflict(_("续贷申请状态已变化，请重试 / The renewal changed meanwhile; please try again."),
                               state=loan.status)
            result = renewal_eligibility(loan=loan, payloads=payloads)
            if not result["eligible"]:
                raise _renewal_refused(result)
            amount = loan.outstanding_principal
            purpose = _("无还本续贷：续接贷款 #%(id)s / Renewal of loan #%(id)s") % {"id": loan.pk}
        else:
            if loan.status != Loan.Status.ACTIVE or loan.dpd > 0:
                raise ApplicationError(_("贷款须正常存续且无逾期 / The loan must be active and not overdue."), errors={"loan": [_("不符合 / Not eligible.")]})
            purpose = _("增额：贷款 #%(id)s 之外的新增需求 / Top-up beside loan #%(id)s") % {"id": loan.pk}
        product = loan.application.product
        term = min(max(loan.term_months, product.min_term_months), product.max_term_months)
        method = loan.repayment_method if loan.repayment_method in product.repayment_methods else product.repayment_methods[0]
        application = application_create(applicant=loan.borrower, enterprise=loan.enterprise, product=product, amount=amount,
                                         term_months=term, repayment_method=method, purpose=purpose, channel=kind)
        offer = loan.renewals.filter(kind=kind, application__isnull=True).first() or RenewalOffer(loan=loan, kind=kind,
                                                                                              offered_on=timezone.localdate())
        offer.application, offer.amount, offer.requested_at = application, amount, timezone.now()
        offer.save()
        audit_record(actor=by, action=f"loan.{kind}.request", obj=loan, data={"application": application.pk, "amount": str(amount)})
    return offer


def renewal_offers_make(*, today: dt.date | None = None, limit: int = 2000) -> dict:
    """Nightly: offer renewal to the eligible loans whose renewal window is open and that have no offer yet.
    Per loan: the admission data is gathered (pulled where stale) without a lock, then the loan is locked,
    checked again on that data, and offered."""
    today = today or timezone.localdate()
    policy = policy_in_force(today)
    candidates = (Loan.objects.filter(status=Loan.Status.ACTIVE, dpd=0, classification="normal", restructured_on__isnull=True,
                                      maturity_date__gte=today,
                                      maturity_date__lte=today + dt.timedelta(days=policy.renewal_window_days))
                  .exclude(renewals__kind="renewal").exclude(warnings__status="open", warnings__severity="red")
                  .select_related("enterprise", "application__product").order_by("maturity_date", "id")[:limit])
    offered = 0
    for candidate in candidates:
        if not renewal_eligibility(loan=candidate, today=today, check_admission=False)["eligible"]:
            continue
        payloads = renewal_admission_payloads(loan=candidate, today=today)
        with transaction.atomic():
            loan = _loan_lock(candidate.pk)
            if not renewal_eligibility(loan=loan, today=today, payloads=payloads)["eligible"]:
                continue
            _offer, created = RenewalOffer.objects.get_or_create(loan=loan, kind="renewal", defaults={"offered_on": today})
            if created:
                offered += 1
                audit_record(actor=None, action="loan.renewal.offer", obj=loan, data={"maturity_date": loan.maturity_date.isoformat()})
                notify(user=loan.borrower, kind="renewal_offer",
                       title=_("贷款 #%(id)s 可申请无还本续贷 / Loan #%(id)s can be renewed without repaying principal") % {"id": loan.pk},
                       url=reverse("portal:loan", args=[loan.pk]))
    return {"offered": offered}


# ---------------------------------------------------------------- satisfaction survey (NPS)
@transaction.atomic
def survey_answer(*, loan: Loan, by, score, comment: str = "", trigger: str | None = None) -> SurveyResponse:
    if by.pk != loan.borrower_id:
        raise ApplicationError(_("只有借款人可以评价 / Only the borrower can answer."), errors={"loan": [_("不是您的贷款 / Not your loan.")]},
                               code="forbidden")
    try:
        score = int(score)
        if not 0 <= score <= 10:
            raise ValueError
    except (TypeError, ValueError):
        raise ApplicationError(_("评分须为0-10 / The score is 0 to 10."), errors={"score": [_("0-10 的整数 / A whole number 0-10")]}) from None
    pending = SurveyResponse.objects.select_for_update().filter(loan=loan, answered_at__isnull=True)
    if trigger:
        pending = pending.filter(trigger=trigger)
    survey = pending.order_by("invited_at", "id").first()
    if survey is None:
        raise Conflict(_("没有待填写的问卷 / No survey is waiting."), state="answered")
    survey.score, survey.comment, survey.answered_at = score, (comment or "").strip()[:500], timezone.now()
    survey.save()
    audit_record(actor=by, action="loan.survey", obj=loan, data={"survey": survey.pk, "trigger": survey.trigger, "score": score})
    return survey
