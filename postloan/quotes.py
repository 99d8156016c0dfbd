"""Servicing to the contract: the arithmetic the loan is serviced by, and the quotes a borrower sees before paying.

* Interest accrues on the contract's **nominal** period (the due date the holiday rule moved only says when it is
  payable): the principal not yet due × rate × actual days since the period's nominal start / 360, plus any interest
  of the period already charged at a prepayment; on the nominal due date the period's scheduled interest.
* 罚息 on overdue principal and 复利 on overdue interest, actual days / 360, at the contract's penalty rate
  (contract rate × (1 + the contract's markup, 30 %-50 %)), never above the policy's cap (九民纪要 §51: 24 % a year).
* `payoff_quote` (提前结清试算) and `prepayment_quote` (提前还款试算) for any date from the business date on; the
  services charge exactly what they quote (docs/postloan.md "Quotes").

Reads only: nothing here writes (services.py applies the same functions under the loan's lock).
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from django.utils.translation import gettext as _

from contracts.schedules import add_months, build_schedule
from contracts.services import due_date_adjuster
from loanservice.business_date import business_date
from loanservice.errors import ApplicationError, Conflict
from loanservice.sla import business_calendar

from .models import Installment, Loan, PostloanPolicy
from .policy import policy_in_force, prepayment_rule

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# The API's modes and the prepayment rule's (data) names for the same two choices.
MODES = {"shorten_term": "reduce_term", "lower_installment": "reduce_installment",
         "reduce_term": "reduce_term", "reduce_installment": "reduce_installment"}
#: 随借随还: interest by the day on what is outstanding, principal at will or at maturity.
DAILY_INTEREST = "daily_interest"


def _round(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def months_between(start: dt.date, end: dt.date) -> int:
    months = (end.year - start.year) * 12 + end.month - start.month
    return months - (1 if end.day < start.day else 0)


# ---------------------------------------------------------------- the contract's periods
def period_start(loan: Loan, rows: list[Installment], k: int) -> dt.date:
    """The nominal start of row k's period: its own record, else the previous row's nominal due date (the
    disbursement day for the first)."""
    if rows[k].period_start:
        return rows[k].period_start
    return rows[k - 1].nominal if k else loan.disbursed_on


def accrual_start(loan: Loan, rows: list[Installment], k: int) -> dt.date:
    """Where row k's not-yet-due principal starts earning at the loan's current rate: the period's nominal start, or the
    repricing date when a floating rate was repriced inside the period (what it earned before at the old rate is in
    ``interest_upfront``)."""
    return rows[k].accrual_start or period_start(loan, rows, k)


def interest_to_day(loan: Loan, rows: list[Installment], k: int, on: dt.date) -> Decimal:
    """The contract interest row k's period has earned by `on`: interest already charged in the period at a
    prepayment (or earned before a repricing inside the period), plus the principal not yet due × rate × actual days
    since the nominal start (or that repricing) / 360."""
    start = accrual_start(loan, rows, k)
    not_due = sum((r.principal - r.paid_principal for r in rows[k:]), ZERO)
    return rows[k].interest_upfront + _round(not_due * loan.annual_rate * max((on - start).days, 0) / 360)


# ---------------------------------------------------------------- penalty (罚息) and compound interest (复利)
def penalty_rate(loan: Loan, policy: PostloanPolicy) -> Decimal:
    """The contract's penalty rate: contract rate × (1 + the markup fixed in the contract), capped at the policy's
    annual cap on penalty, compound interest and fees (九民纪要 §51, 24 %)."""
    return min(loan.annual_rate * (1 + loan.penalty_markup), policy.overdue_charge_cap)


def grace_end(due: dt.date, policy: PostloanPolicy, cal) -> dt.date:
    return cal.next_business_day(due, include_self=True) if policy.holiday_rollover else due


def installment_accrue_penalty(inst: Installment, *, on: dt.date, rate: Decimal, policy: PostloanPolicy,
                               cal) -> tuple[Decimal, Decimal]:
    """罚息 on the installment's unpaid principal and 复利 on its unpaid interest, at `rate` per year on actual days
    / 360 from the due date, once the installment is past its grace end (the next business day for a due date on a
    holiday). Accrued up to `on` (kept to a fraction of a cent, so accruing daily and once charge the same cents);
    returns the new (penalty, compound) accrual."""
    if on <= grace_end(inst.due_date, policy, cal):
        return ZERO, ZERO
    start = inst.penalty_through or inst.due_date
    days = (on - start).days
    if days <= 0:
        return ZERO, ZERO
    principal, interest = inst.principal - inst.paid_principal, inst.interest - inst.paid_interest
    penalty_exact = (inst.penalty_exact if inst.penalty_exact is not None else inst.penalty_accrued) + (
        principal * rate * days / 360 if principal > 0 else ZERO)
    compound_exact = (inst.compound_exact if inst.compound_exact is not None else inst.compound_accrued) + (
        interest * rate * days / 360 if interest > 0 else ZERO)
    penalty, compound = _round(penalty_exact) - inst.penalty_accrued, _round(compound_exact) - inst.compound_accrued
    inst.penalty_accrued += penalty
    inst.compound_accrued += compound
    inst.penalty_exact = penalty_exact.quantize(Decimal("1e-12"))
    inst.compound_exact = compound_exact.quantize(Decimal("1e-12"))
    inst.penalty_through = on
    return penalty, compound


# ---------------------------------------------------------------- prepayment terms of the contract
@dataclass(frozen=True)
class PrepaymentTerms:
    allowed: bool
    fee_rate: Decimal
    mode: str


def prepayment_terms(loan: Loan, on: dt.date) -> PrepaymentTerms:
    """What the contract says of prepayment on `on` (the terms fixed at opening; older loans: the product's rule):
    allowed after the lock-in (a daily-interest loan always: repaying at will is what 随借随还 means); the fee
    rate on the prepaid principal only where the contract names one and only until its fee-free month."""
    terms = loan.prepayment_terms or {}
    if not terms:
        rule = prepayment_rule(loan.product_code)
        terms = {"allowed": rule.allowed, "lock_in_months": rule.lock_in_months, "fee_rate": str(rule.fee_rate),
                 "fee_free_after_months": rule.fee_free_after_months, "mode": rule.mode}
    months = months_between(loan.disbursed_on, on)
    allowed = bool(terms.get("allowed", True)) and months >= int(terms.get("lock_in_months") or 0)
    if loan.repayment_method == DAILY_INTEREST:
        allowed = True  # 随借随还: principal at will is the method itself; only a fee the contract names applies
    fee_rate = Decimal(str(terms.get("fee_rate") or "0"))
    if months >= int(terms.get("fee_free_after_months") or 0):
        fee_rate = Decimal("0")
    return PrepaymentTerms(allowed=allowed, fee_rate=fee_rate, mode=terms.get("mode") or "reduce_installment")


# ---------------------------------------------------------------- the schedule rebuilt to the contract
def rebuilt_lines(loan: Loan, rows: list[Installment], k: int, *, principal: Decimal, mode: str) -> list:
    """The lines that replace rows k.. (all not yet due) for `principal`: the period in progress keeps its nominal
    start, the due dates keep the contract's repayment day and holiday rule, and the last never runs past the
    current last due date (the contract's maturity). `reduce_term` keeps the installment and shortens the term;
    `reduce_installment` keeps the dates and lowers the installment. Each line: (ScheduleLine, nominal due date)."""
    future = rows[k:]
    if principal <= 0 or not future:
        return []
    start = period_start(loan, rows, k)
    count, r = len(future), loan.annual_rate / 12
    term = count
    method = loan.repayment_method
    if MODES.get(mode, mode) == "reduce_term":
        before = sum((x.principal - x.paid_principal for x in future), ZERO)
        if method == "equal_installment" and r > 0:
            payment = _round(before * r / (1 - (1 + r) ** -count))
            if principal * r < payment:
                term = math.ceil(-math.log(1 - float(principal * r / payment)) / math.log(1 + float(r)) - 1e-9)
        elif method == "equal_installment":
            term = math.ceil(principal / _round(before / count))
        elif method == "equal_principal":
            each = _round(before / count)
            term = math.ceil(principal / each) if each > 0 else count
        term = max(1, min(term, count))
    day = loan.repayment_day or loan.disbursed_on.day
    common = {"principal": principal, "annual_rate": loan.annual_rate, "term_months": term, "method": method,
              "start_date": start, "repayment_day": day}
    lines = build_schedule(**common, adjust_due_date=due_date_adjuster(loan.due_date_rule or "none"))
    nominal = [x.due_date for x in build_schedule(**common)]
    if method != "daily_interest" and start != loan.disbursed_on and start.day != day:
        # the period starts on a nominal due date clamped to a short month (day 31 → 30 Apr): a regular month
        regular = (_round(principal * loan.annual_rate * term / 12) if method == "bullet"
                   else _round(principal * loan.annual_rate / 12))
        first = lines[0]
        lines[0] = type(first)(n=first.n, due_date=first.due_date, principal=first.principal, interest=regular,
                               total=first.principal + regular, balance=first.balance)
    repriced = accrual_start(loan, rows, k)
    if repriced > start:
        # repriced inside the period: the rest of it earns the new rate on actual days (the part before is upfront)
        first = lines[0]
        part = _round(principal * loan.annual_rate * max((nominal[0] - repriced).days, 0) / 360)
        lines[0] = type(first)(n=first.n, due_date=first.due_date, principal=first.principal, interest=part,
                               total=first.principal + part, balance=first.balance)
    if nominal[-1] > future[-1].nominal:
        raise ApplicationError(_("新还款计划超出合同到期日 / The new schedule would run past the contract's maturity."),
                               errors={"mode": [mode]})
    return list(zip(lines, nominal, strict=True))


# ---------------------------------------------------------------- repricing (浮动利率重定价)
def regular_month(start: dt.date, end: dt.date, day: int) -> bool:
    """A period of exactly one contract month (charged annual / 12); any other is charged on actual days / 360."""
    return add_months(end, -1, day) == start


def repriced_interest(loan: Loan, rows: list[Installment], k: int, *, on: dt.date, old_rate: Decimal,
                      new_rate: Decimal) -> list[tuple[Installment, Decimal, Decimal, dt.date | None]]:
    """The interest of rows k.. (the periods not yet due on the repricing date `on`) at `new_rate` from `on`, keeping
    their principal, due dates and maturity: row k earns `old_rate` up to `on` (kept as interest earned upfront) and
    `new_rate` from it on actual days / 360 when `on` falls inside its period, else a regular month at `new_rate`;
    each later row a regular month (annual / 12) or its actual days / 360, as the schedule charged it.
    Returns (row, interest, interest_upfront, accrual_start) for each row; nothing is changed."""
    out = []
    day = loan.repayment_day or loan.disbursed_on.day
    for j in range(k, len(rows)):
        row = rows[j]
        start = period_start(loan, rows, j)
        not_due = sum((r.principal - r.paid_principal for r in rows[j:]), ZERO)
        upfront, begin = row.interest_upfront, None
        if j == k and accrual_start(loan, rows, k) < on:
            upfront += _round(not_due * old_rate * (on - accrual_start(loan, rows, k)).days / 360)
            begin = on
        if begin is not None or not regular_month(start, row.nominal, day):
            days = (row.nominal - (begin or start)).days
            interest = _round(not_due * new_rate * max(days, 0) / 360)
        else:
            interest = _round(not_due * new_rate / 12)
        out.append((row, max(upfront + interest, row.paid_interest), upfront, begin or row.accrual_start))
    return out


# ---------------------------------------------------------------- quotes
def _rows(loan: Loan) -> list[Installment]:
    return list(loan.installments.filter(superseded=False).order_by("n"))


def _quote_date(loan: Loan, on: dt.date | None) -> dt.date:
    today = business_date()
    on = on or today
    if on < today:
        raise ApplicationError(_("试算日不得早于营业日期 %(d)s / A quote is for the business date %(d)s or later.")
                               % {"d": today.isoformat()}, errors={"on": [today.isoformat()]})
    if loan.status != Loan.Status.ACTIVE:
        raise Conflict(_("贷款不在存续状态 / The loan is not active."), state=loan.status)
    return on


def payoff_figures(loan: Loan, rows: list[Installment], on: dt.date, *, policy: PostloanPolicy | None = None,
                   cal=None) -> dict:
    """What paying the whole loan off on `on` costs (the rows are the loan's schedule, not superseded, settled
    ones included). The penalty and compound interest are projected on copies: the rows are not changed."""
    policy, cal = policy or policy_in_force(on), cal or business_calendar()
    rate = penalty_rate(loan, policy)
    overdue = principal = penalty = compound = interest = ZERO
    k = None
    for idx, row in enumerate(rows):
        if row.settled_on is not None:
            continue
        if row.nominal <= on:
            overdue += row.due_remaining
            projected = copy.copy(row)
            installment_accrue_penalty(projected, on=on, rate=rate, policy=policy, cal=cal)
            penalty += projected.penalty_accrued - projected.paid_penalty
            compound += projected.compound_accrued - projected.paid_compound
        else:
            k = idx if k is None else k
            principal += row.principal - row.paid_principal
    if k is not None:
        interest = max(interest_to_day(loan, rows, k, on) - rows[k].paid_interest, ZERO)
    terms = prepayment_terms(loan, on)
    fee = _round(principal * terms.fee_rate)
    return {"on": on, "overdue": overdue, "principal": principal, "interest": interest, "penalty": penalty,
            "compound": compound, "fee": fee, "total": overdue + principal + interest + penalty + compound + fee,
            "allowed": terms.allowed or principal == 0, "current": k}


def payoff_quote(*, loan: Loan, on: dt.date | None = None) -> dict:
    """提前结清试算 for any date from the business date on: every amount due by then and unpaid (`overdue`), the
    principal not yet due, interest since the period's nominal start to the day (actual / 360), penalty and
    compound interest, and only the prepayment fee the contract names → `{on, overdue, principal, interest,
    penalty, compound, fee, total, allowed}` (Decimals)."""
    on = _quote_date(loan, on)
    figures = payoff_figures(loan, _rows(loan), on)
    figures.pop("current")
    return figures


def prepayment_figures(loan: Loan, rows: list[Installment], *, amount: Decimal, on: dt.date, mode: str,
                       policy: PostloanPolicy | None = None, cal=None) -> dict:
    """Prepaying `amount` of principal on `on`: what is due now (every amount due by then, penalty and compound
    interest, the interest the prepaid principal earned in the period so far, the principal, the contract's fee)
    and the schedule as it would become. Prepaying all the principal not yet due is a payoff."""
    figures = payoff_figures(loan, rows, on, policy=policy, cal=cal)
    k = figures["current"]
    if k is None or figures["principal"] <= 0:
        raise Conflict(_("没有未到期本金可提前偿还 / No principal is left to prepay."), state=loan.status)
    if not figures["allowed"]:
        raise Conflict(_("合同不允许此时提前还款 / The contract does not allow a prepayment now."), state="not_allowed")
    prepaid = min(amount, figures["principal"])
    arrears = figures["overdue"] + figures["penalty"] + figures["compound"]
    if prepaid == figures["principal"]:
        return {"on": on, "mode": mode, "principal": prepaid, "interest": figures["interest"], "fee": figures["fee"],
                "arrears": arrears, "due_now": figures["total"], "schedule": [], "payoff": True, "current": k}
    start = accrual_start(loan, rows, k)
    interest = _round(prepaid * loan.annual_rate * max((on - start).days, 0) / 360)
    fee = _round(prepaid * prepayment_terms(loan, on).fee_rate)
    lines = rebuilt_lines(loan, rows, k, principal=figures["principal"] - prepaid, mode=mode)
    schedule = [{"n": rows[k].n + j, "due_date": line.due_date, "principal": line.principal, "interest": line.interest,
                 "total": line.total} for j, (line, _nominal) in enumerate(lines)]
    return {"on": on, "mode": mode, "principal": prepaid, "interest": interest, "fee": fee, "arrears": arrears,
            "due_now": arrears + prepaid + interest + fee, "schedule": schedule, "payoff": False, "current": k,
            "lines": lines}


def prepayment_quote(*, loan: Loan, amount: Decimal, on: dt.date | None = None, mode: str = "lower_installment") -> dict:
    """提前还款试算: `{on, mode, principal, interest, fee, arrears, due_now, schedule[], payoff}` (Decimals); the
    schedule lines `{n, due_date, principal, interest, total}` are what is left to pay after the prepayment."""
    on = _quote_date(loan, on)
    figures = prepayment_figures(loan, _rows(loan), amount=amount, on=on, mode=mode)
    figures.pop("current")
    figures.pop("lines", None)
    return figures


def cash_split(*, cash: Decimal, fee_rate: Decimal, day_rate: Decimal, limit: Decimal) -> Decimal:
    """The most principal `cash` prepays when each yuan of it also costs the fee and the interest it earned so far."""
    def cost(p: Decimal) -> Decimal:
        return p + _round(p * fee_rate) + _round(p * day_rate)

    prepaid = min(limit, (cash / (1 + fee_rate + day_rate)).quantize(CENT, rounding=ROUND_DOWN))
    while prepaid > 0 and cost(prepaid) > cash:
        prepaid -= CENT
    while prepaid + CENT <= limit and cost(prepaid + CENT) <= cash:  # the rounding may leave room for a cent more
        prepaid += CENT
    return max(prepaid, ZERO)
