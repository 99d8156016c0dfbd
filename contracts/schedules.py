"""Exact repayment schedules (还款计划) for SME loans.

Pure Python / ``Decimal``; no Django imports.  The conventions (day count,
rounding, broken first period, grace months, due-date adjustment) are
documented in ``docs/schedules.md``; the short version:

* ``annual_rate`` is a fraction (``Decimal("0.0435")`` = 4.35 % p.a.),
  monthly rate = annual / 12.
* Every amount on every line is rounded ROUND_HALF_UP to the cent; the last
  line absorbs the rounding residue, so principal sums exactly to the loan and
  the balance ends at exactly 0.00.
* Interest is always charged on the actual (rounded) outstanding balance.
* A broken first period (``repayment_day`` differs from the start day) accrues
  interest on actual days / 360; every later period is one month = annual / 12.
* ``adjust_due_date`` only moves the due date; interest is computed on the
  nominal (unadjusted) period.
* ``daily_interest`` (随借随还) charges every period on actual days / 360; its
  schedule is an estimate made on the full balance (the loan book charges what
  is actually outstanding day by day, docs/schedules.md).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext

__all__ = ["METHODS", "ScheduleLine", "build_schedule", "add_months", "annualised_rate"]

#: 等额本息, 等额本金, 先息后本, 到期一次还本付息, 随借随还 (interest by the day, principal at will or at maturity)
METHODS = ("equal_installment", "equal_principal", "interest_only", "bullet", "daily_interest")

_GRACE_METHODS = ("equal_installment", "equal_principal")
_CENT = Decimal("0.01")
_ZERO = Decimal("0.00")
_PREC = 50  # working precision for intermediate (unrounded) values


@dataclass(frozen=True)
class ScheduleLine:
    n: int
    due_date: date
    principal: Decimal
    interest: Decimal
    total: Decimal
    balance: Decimal  # outstanding principal after this line


# --------------------------------------------------------------------------- helpers


def _round(x: Decimal) -> Decimal:
    return x.quantize(_CENT, rounding=ROUND_HALF_UP)


def add_months(d: date, months: int, day: int | None = None) -> date:
    """``d`` shifted by ``months`` calendar months, on ``day`` (default ``d.day``)
    clamped to the last day of the target month (31 -> 30 Apr / 28-29 Feb)."""
    y, m0 = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m0 + 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day if day is not None else d.day, last))


def _as_decimal(value, name: str) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"{name} must be a Decimal (or int/str), not {type(value).__name__}")
    if isinstance(value, Decimal):
        dec = value
    elif isinstance(value, int | str):
        try:
            dec = Decimal(value)
        except ArithmeticError as exc:
            raise ValueError(f"{name} is not a valid number: {value!r}") from exc
    else:
        raise TypeError(f"{name} must be a Decimal (or int/str), not {type(value).__name__}")
    if not dec.is_finite():
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return dec


def _as_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


# --------------------------------------------------------------------------- interest


def _month_interest(balance: Decimal, annual_rate: Decimal) -> Decimal:
    """One regular month: balance * annual / 12 (computed exactly, then rounded)."""
    return _round(balance * annual_rate / 12)


def _days_interest(balance: Decimal, annual_rate: Decimal, days: int) -> Decimal:
    """Broken period: balance * annual * actual days / 360."""
    return _round(balance * annual_rate * days / 360)


def _annuity(balance: Decimal, annual_rate: Decimal, months: int) -> Decimal:
    """Unrounded annuity payment amortising ``balance`` over ``months``."""
    if annual_rate == 0:
        return balance / months
    r = annual_rate / 12
    return balance * r / (1 - (1 + r) ** -months)


# --------------------------------------------------------------------------- principal plans
# A "plan" is the list of principal repayments for the amortising months, computed on the
# regular monthly rate.  The interest actually charged on each line is computed separately
# (that is where the broken first period comes in), so the amortisation never depends on
# the length of the first period.


def _plan_equal_installment(balance: Decimal, annual_rate: Decimal, months: int) -> list[Decimal]:
    """Fixed installment A = round(annuity); principal = A - monthly interest on the actual
    balance; the last line repays whatever is left.

    A cent-rounded installment drifts (the rounding error compounds at the loan rate).  For
    ordinary loans the drift is a few cents and is absorbed by the last line.  For extreme
    parameter combinations (e.g. 360 months at 24 %) the drift can exceed the installment
    itself; if the fixed installment does not amortise cleanly (a line would need negative
    principal, the loan would be repaid before maturity, or the last installment would differ
    from A by more than half of A) the installment is instead re-computed every month on the
    outstanding balance and remaining months, which is drift-free.
    """
    installment = _round(_annuity(balance, annual_rate, months))
    plan: list[Decimal] = []
    bal = balance
    clean = True
    for _ in range(months - 1):
        p = installment - _month_interest(bal, annual_rate)
        if p < 0 or p > bal:
            clean = False
            break
        plan.append(p)
        bal -= p
    if clean:
        last_total = bal + _month_interest(bal, annual_rate)
        if abs(last_total - installment) * 2 <= installment:
            plan.append(bal)
            return plan
    return _plan_reamortised(balance, annual_rate, months)


def _plan_reamortised(balance: Decimal, annual_rate: Decimal, months: int) -> list[Decimal]:
    """Installment recomputed each month on the outstanding balance.  Principal is
    round(annuity) - round(interest) which lies in [0, balance] (annuity >= interest,
    annuity <= balance * (1 + r)); with one month left it is exactly the balance."""
    plan: list[Decimal] = []
    bal = balance
    for k in range(months, 0, -1):
        if k == 1:
            p = bal
        else:
            p = _round(_annuity(bal, annual_rate, k)) - _month_interest(bal, annual_rate)
            p = min(max(p, _ZERO), bal)  # defensive; holds mathematically
        plan.append(p)
        bal -= p
    return plan


def _plan_equal_principal(balance: Decimal, months: int) -> list[Decimal]:
    each = _round(balance / months)
    if each * (months - 1) > balance:  # only for tiny loans over many months
        each = (balance / months).quantize(_CENT, rounding=ROUND_DOWN)
    return [each] * (months - 1) + [balance - each * (months - 1)]


# --------------------------------------------------------------------------- public API


def build_schedule(
    *,
    principal: Decimal,
    annual_rate: Decimal,
    term_months: int,
    method: str,
    start_date: date,
    repayment_day: int | None = None,
    grace_months: int = 0,
    adjust_due_date: Callable[[date], date] | None = None,
) -> list[ScheduleLine]:
    """Build the repayment schedule.

    :param principal: loan amount, > 0, at most 2 decimals (Decimal/int/str; float rejected).
    :param annual_rate: nominal annual rate as a fraction, 0 <= rate < 1 (0.0435 = 4.35 %).
    :param term_months: number of monthly periods, >= 1.
    :param method: one of :data:`METHODS`.  ``daily_interest`` (随借随还): a line on each due date with the
        interest of the period's actual days / 360 on the full balance, the whole principal on the last one; it
        is the schedule if nothing is repaid early (principal repaid at will lowers the later lines).
    :param start_date: value date (放款日).
    :param repayment_day: fixed day of month for due dates (1..31).  If it differs from
        ``start_date.day`` the first due date is that day of the next month and the first
        period's interest is actual days / 360.
    :param grace_months: interest-only months before amortisation (equal_installment /
        equal_principal only), 0 <= grace < term.
    :param adjust_due_date: moves a nominal due date (e.g. to the next business day); the
        interest is still computed on the nominal period.
    :raises ValueError: invalid values.  :raises TypeError: wrong types (e.g. float money).
    """
    # ---- validation
    principal = _as_decimal(principal, "principal")
    annual_rate = _as_decimal(annual_rate, "annual_rate")
    term_months = _as_int(term_months, "term_months")
    grace_months = _as_int(grace_months, "grace_months")
    if principal <= 0:
        raise ValueError(f"principal must be positive, got {principal}")
    if principal != principal.quantize(_CENT):
        raise ValueError(f"principal must be a whole number of cents, got {principal}")
    if annual_rate < 0:
        raise ValueError(f"annual_rate must not be negative, got {annual_rate}")
    if annual_rate >= 1:
        raise ValueError(f"annual_rate is a fraction (0.0435 for 4.35 %) and must be < 1, got {annual_rate}")
    if term_months < 1:
        raise ValueError(f"term_months must be at least 1, got {term_months}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if isinstance(start_date, datetime) or not isinstance(start_date, date):
        raise TypeError(f"start_date must be a datetime.date, not {type(start_date).__name__}")
    if repayment_day is not None:
        repayment_day = _as_int(repayment_day, "repayment_day")
        if not 1 <= repayment_day <= 31:
            raise ValueError(f"repayment_day must be between 1 and 31, got {repayment_day}")
    if not 0 <= grace_months < term_months:
        raise ValueError(
            f"grace_months must satisfy 0 <= grace_months < term_months ({term_months}), got {grace_months}"
        )
    if grace_months and method not in _GRACE_METHODS:
        raise ValueError(f"grace_months is only supported for {' / '.join(_GRACE_METHODS)}, not {method}")
    if adjust_due_date is not None and not callable(adjust_due_date):
        raise TypeError("adjust_due_date must be callable")

    principal = principal.quantize(_CENT)

    with localcontext() as ctx:
        ctx.prec = _PREC
        ctx.rounding = ROUND_HALF_UP

        # ---- nominal due dates and the (possibly broken) first period
        broken = repayment_day is not None and repayment_day != start_date.day
        day = repayment_day if broken else start_date.day
        nominal = [add_months(start_date, n, day) for n in range(1, term_months + 1)]
        first_days = (nominal[0] - start_date).days if broken else None

        def interest_for(n: int, balance: Decimal) -> Decimal:
            if method == "daily_interest":  # every period on its actual (nominal) days
                begin = nominal[n - 2] if n > 1 else start_date
                return _days_interest(balance, annual_rate, (nominal[n - 1] - begin).days)
            if n == 1 and broken:
                return _days_interest(balance, annual_rate, first_days)
            return _month_interest(balance, annual_rate)

        # ---- (n, nominal due date, principal, interest)
        rows: list[tuple[int, date, Decimal, Decimal]] = []
        if method == "bullet":
            # One line at maturity: simple interest for the whole term; the first month
            # counts its actual days / 360, every further month 30 / 360 (= annual / 12).
            days = (first_days if broken else 30) + 30 * (term_months - 1)
            rows.append((1, nominal[-1], principal, _days_interest(principal, annual_rate, days)))
        else:
            amortising = term_months - grace_months
            if method == "equal_installment":
                plan = _plan_equal_installment(principal, annual_rate, amortising)
            elif method == "equal_principal":
                plan = _plan_equal_principal(principal, amortising)
            else:  # interest_only, daily_interest: the whole principal at maturity
                plan = [_ZERO] * (term_months - 1) + [principal]
            plan = [_ZERO] * (term_months - len(plan)) + plan
            balance = principal
            for n, (due, p) in enumerate(zip(nominal, plan, strict=True), start=1):
                rows.append((n, due, p, interest_for(n, balance)))
                balance -= p

        # ---- assemble lines, adjusting due dates
        lines: list[ScheduleLine] = []
        balance = principal
        previous: date | None = None
        for n, due, p, i in rows:
            if adjust_due_date is not None:
                due = adjust_due_date(due)
                if isinstance(due, datetime) or not isinstance(due, date):
                    raise TypeError("adjust_due_date must return a datetime.date")
                if due <= start_date or (previous is not None and due <= previous):
                    raise ValueError(
                        f"adjust_due_date produced {due}, which is not after the previous due "
                        f"date / start date; due dates must stay strictly increasing"
                    )
            previous = due
            balance -= p
            lines.append(
                ScheduleLine(n=n, due_date=due, principal=p, interest=i, total=p + i, balance=balance)
            )
    return lines


# --------------------------------------------------------------------------- annualised rate


def _months_from(start: date, end: date) -> Decimal:
    """Whole calendar months from ``start`` to ``end``, plus the days left over / 30."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if end.day < start.day and add_months(start, months) > end:
        months -= 1
    return Decimal(months) + Decimal((end - add_months(start, months)).days) / 30


def annualised_rate(
    *,
    principal: Decimal,
    annual_rate: Decimal,
    start_date: date,
    payments: list[tuple[date, Decimal]],
    upfront_fees: Decimal = _ZERO,
) -> Decimal:
    """年化利率 (PBoC 公告〔2021〕第3号): the annualised internal rate of return of what the borrower receives and pays.

    ``payments`` are (nominal due date, amount paid) of the schedule.  Interest on every schedule here is the
    nominal rate on the outstanding balance (a month = annual / 12, a broken period actual days / 360), so without
    fees the IRR is the nominal rate itself and that is returned exactly.  With fees charged at disbursement the
    borrower receives ``principal - upfront_fees`` and the rate is the monthly IRR × 12 (periods in months, a broken
    one as days / 30), found by bisection to 1e-10."""
    principal, upfront_fees = _as_decimal(principal, "principal"), _as_decimal(upfront_fees, "upfront_fees")
    if upfront_fees <= 0:
        return annual_rate
    received = principal - upfront_fees
    if received <= 0 or not payments:
        raise ValueError("the fees must be less than the principal and the schedule must not be empty")
    flows = [(_months_from(start_date, due), Decimal(amount)) for due, amount in payments]
    with localcontext() as ctx:
        ctx.prec = _PREC

        def value(monthly: Decimal) -> Decimal:
            return sum((amount / (1 + monthly) ** t for t, amount in flows), _ZERO) - received

        lo, hi = Decimal(0), Decimal("0.5")
        if value(lo) < 0:  # pays back less than it received: no positive rate
            return _ZERO
        for _ in range(200):
            mid = (lo + hi) / 2
            if value(mid) > 0:
                lo = mid
            else:
                hi = mid
            if hi - lo < Decimal("1e-12"):
                break
        return ((lo + hi) / 2 * 12).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
