"""Post-loan services (writes): open a loan, record repayments (penalty → interest → principal, oldest
installment first; early repayment under the product's prepayment rule), days past due and the
five-category classification (floors, manual downgrade, upgrade through approval), restructuring and
write-off through approval, warning tasks, renewals (无还本续贷) and satisfaction surveys.

The nightly, set-based monitoring job lives in `postloan.monitoring`; the CSV import in `postloan.imports`.
"""

from __future__ import annotations

import copy
import datetime as dt
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from applications.models import LoanProduct
from applications.prescreen import size_class
from applications.services import application_create, prescreen_run
from contracts.models import DisbursementOrder
from contracts.schedules import add_months, build_schedule
from contracts.services import contract_schedule_policy, due_date_adjuster, schedule_policy
from ledger.models import JournalEntry, JournalLine, VatRule
from ledger.selectors import account_for, vat_exemption_in_force
from ledger.services import Cr, Dr, Entry, entries_post, entry_post, entry_reverse
from loanservice import roles
from loanservice.audit import audit_record
from loanservice.bulk import rows_update
from loanservice.business_date import business_date
from loanservice.errors import ApplicationError, Conflict
from loanservice.four_eyes import four_eyes_lock, four_eyes_record
from loanservice.notifications import in_default_language, notify
from loanservice.sla import business_calendar, business_calendar_changed
from underwriting.models import DataSnapshot, Guarantor
from underwriting.selectors import lpr_on
from underwriting.services import rate_of, snapshot_pull, source_config
from underwriting.sources import SOURCES

from .accrual import ordinary_days_close
from .models import (
    CATEGORY_ORDER,
    ApprovalRequest,
    ClassificationChange,
    Collateral,
    EarlyWarning,
    Installment,
    Loan,
    PostloanPolicy,
    RateChange,
    Recovery,
    RenewalOffer,
    Repayment,
    SourceRefresh,
    SurveyResponse,
    WarningTask,
)
from .monitoring import borrower_floors_apply, delinquency_refresh, monitored_sources
from .policy import (
    classification_floor,
    overdue_cutoff,
    policy_in_force,
    prepayment_rule,
    rank,
)
from .provisions import loan_allowance_release_for_write_off, provisions_measure
from .quotes import (
    DAILY_INTEREST,
    MODES,
    accrual_start,
    cash_split,
    grace_end,
    installment_accrue_penalty,
    interest_to_day,
    payoff_figures,
    penalty_rate,
    period_start,
    prepayment_figures,
    prepayment_terms,
    rebuilt_lines,
    repriced_interest,
)

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
PENALTY_MARKUP_MIN, PENALTY_MARKUP_MAX = Decimal("0.30"), Decimal("0.50")  # 罚息上浮 30 %-50 % (银发〔2003〕251号)


def _round(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)














def loan_floor(loan: Loan, *, today: dt.date | None = None) -> str:
    """The lowest category the loan may hold now: the DPD floor, and during a restructuring's observation
    period the restructuring floor (重组观察期内不得上调)."""
    today = today or business_date()
    floor = classification_floor(loan.dpd)
    if loan.observation_until and loan.observation_until >= today:
        restructure_floor = policy_in_force(today).restructure_min_category
        if loan.restructured_on:
            restructure_floor = max(restructure_floor, _category_before_restructuring(loan), key=rank)
        floor = max(floor, restructure_floor, key=rank)
    return floor


def observation_end(due_dates: list[dt.date], months: int) -> dt.date:
    """重组观察期 (2023 rules, art. 24): counted from the first (nominal) due date of the new schedule, the policy's
    months (data), and at least two repayment periods."""
    return max(add_months(due_dates[0], months), due_dates[min(1, len(due_dates) - 1)])


def upgrade_cure_until(loan: Loan, *, today: dt.date | None = None) -> dt.date | None:
    """The cure period before an upgrade (data: months current): a loan classified worse may be upgraded only once it
    has been current for that many consecutive months, counted from the later of its last worsening and its last
    installment paid late (after its grace end). None when it may be upgraded now; else the first date it may."""
    today = today or business_date()
    policy = policy_in_force(today)
    worse = [c.on or timezone.localdate(c.at) for c in loan.classification_history.all()
             if rank(c.to_category) > rank(c.from_category)]
    if not worse:
        return None
    cal = business_calendar()
    late = [r.settled_on for r in loan.installments.filter(superseded=False, settled_on__isnull=False)
            if r.settled_on > grace_end(r.due_date, policy, cal)]
    start = max(worse + late)
    if loan.dpd > 0:
        start = today
    until = add_months(start, policy.upgrade_cure_months)
    return until if until > today else None


def _category_before_restructuring(loan: Loan) -> str:
    change = loan.classification_history.filter(kind="restructure").order_by("-at", "-id").first()
    return change.from_category if change else "normal"


def loan_refresh_delinquency(*, loan: Loan, today: dt.date | None = None) -> Loan:
    """DPD, bucket and classification floor of one loan as of `today`, as the nightly job computes them for all
    (after a repayment, a restructuring, or where a page must be current); `today` is the business date unless given,
    the date close of business counted the DPD to and the borrower's page shows."""
    delinquency_refresh(today=today or business_date(), loan_ids=[loan.pk])
    loan.refresh_from_db(fields=["overdue_since", "dpd", "bucket", "classification"])
    return loan






def stage_event(loan: Loan, *, by=None) -> dict:
    """After a servicing event outside close of business (a repayment, a restructuring, an acceleration, a manual
    downgrade, an approved upgrade, a write-off): the borrower's floor (2023 rules: the borrower as one), then the ECL
    of the borrower's loans whose stage moved since their last measurement re-measured at once, on the business date,
    in the caller's transaction (not only at month end)."""
    raised = borrower_floors_apply(enterprise_ids=[loan.enterprise_id])
    ids = list(Loan.objects.filter(enterprise_id=loan.enterprise_id, status=Loan.Status.ACTIVE).values_list("pk", flat=True))
    measured = provisions_measure(loan_ids=ids, on=business_date(), month_end=False, by=by, changed_only=True) if ids else {}
    if loan.pk in raised:
        loan.refresh_from_db(fields=["classification"])
    return {"raised": raised, **measured}


# ---------------------------------------------------------------- the ledger
def _entry(loan: Loan, *, kind: str, on: dt.date, key: str, **amounts: tuple[str, Decimal]) -> Entry | None:
    """One balanced entry for the loan (reference `loan:<id>`): each keyword is a line, `role=("Dr"|"Cr", amount)`,
    its account read from the product's account mapping (ledger data). None when every amount is zero."""
    lines = tuple((Dr if side == "Dr" else Cr)(account_for(role, loan.product_code), amount)
                  for role, (side, amount) in amounts.items() if amount)
    if not lines:
        return None
    return Entry(kind=kind, value_date=on, lines=lines, branch_id=loan.branch_id, product=loan.product_code,
                 reference=f"loan:{loan.pk}", key=key, tax_class=loan.tax_class)


# While a reversal replays a loan (冲正), nothing is posted: the differences are posted once, at the end.
_REPLAYING: ContextVar[bool] = ContextVar("postloan_replaying", default=False)


# Close of business refreshes days past due, floors and the ECL of a whole chunk of loans after its auto-debits
# (postloan.cob): a debit booked there leaves them to that pass instead of refreshing its loan on its own.
_CHUNK_REFRESHES: ContextVar[bool] = ContextVar("postloan_chunk_refreshes", default=False)


@contextmanager
def delinquency_by_chunk():
    """Within the block repayments leave days past due, floors and provisions to the caller's pass over the chunk."""
    token = _CHUNK_REFRESHES.set(True)
    try:
        yield
    finally:
        _CHUNK_REFRESHES.reset(token)


# Close of business books a chunk's auto-debits in one transaction: their entries are collected and posted together.
_COLLECTED: ContextVar[list | None] = ContextVar("postloan_collected_entries", default=None)


@contextmanager
def entries_collected():
    """Within the block the loans' entries are collected instead of posted, for the caller to post them all at once
    in the same transaction (`entries_post`: one INSERT pair for a chunk's debits instead of two pairs a debit). The
    caller keeps them only once the movements they record are saved (a movement rolled back drops its entries)."""
    collected: list[Entry] = []
    token = _COLLECTED.set(collected)
    try:
        yield collected
    finally:
        _COLLECTED.reset(token)


def _entries_post(entries: list[Entry], *, by) -> int:
    if _REPLAYING.get():
        return 0
    collected = _COLLECTED.get()
    if collected is not None:
        collected.extend(entries)
        return len(entries)
    return entries_post(entries, by=by)


def _post(loan: Loan, *, kind: str, on: dt.date, key: str, by, **amounts: tuple[str, Decimal]) -> None:
    """Post the entry in the caller's transaction (with the money movement it records)."""
    if _REPLAYING.get():
        return
    entry = _entry(loan, kind=kind, on=on, key=key, **amounts)
    if entry is not None and _COLLECTED.get() is not None:
        _COLLECTED.get().append(entry)
    elif entry is not None:
        entry_post(kind=entry.kind, value_date=entry.value_date, lines=entry.lines, branch_id=entry.branch_id,
                   product=entry.product, reference=entry.reference, key=entry.key, by=by, tax_class=entry.tax_class)


# ---------------------------------------------------------------- close of business for one loan (日终)
def _interest_target(loan: Loan, installments: list[Installment], on: dt.date) -> tuple[Installment | None, Decimal]:
    """The contract interest that should stand accrued on `on` for the installment whose nominal period holds `on`:
    what a payoff would charge (`quotes.interest_to_day`), and on the nominal due date the scheduled interest. Never
    below what already stands accrued or paid."""
    k = next((k for k, inst in enumerate(installments) if inst.nominal >= on), None)
    if k is None:
        return None, ZERO  # past maturity: overdue amounts accrue penalty interest, not contract interest
    inst = installments[k]
    if on == inst.nominal:
        return inst, max(inst.interest, inst.paid_interest)
    return inst, max(interest_to_day(loan, installments, k, on), inst.interest_accrued)


def _accrual(loan: Loan, *, amount: Decimal, on: dt.date, key: str) -> Entry | None:
    """Dr interest receivable / Cr interest income; a negative amount (the due-date adjustment) the other way."""
    if amount >= 0:
        return _entry(loan, kind="accrual", on=on, key=key, interest_receivable=("Dr", amount), interest_income=("Cr", amount))
    return _entry(loan, kind="accrual", on=on, key=key, interest_income=("Dr", -amount), interest_receivable=("Cr", -amount))


def _penalty_accrual(loan: Loan, *, amount: Decimal, on: dt.date, key: str, compound: Decimal = ZERO) -> Entry | None:
    """Dr penalty receivable / Cr penalty income (罚息); Dr compound receivable / Cr compound income (复利)."""
    return _entry(loan, kind="penalty_accrual", on=on, key=key, penalty_receivable=("Dr", amount),
                  penalty_income=("Cr", amount), compound_receivable=("Dr", compound), compound_income=("Cr", compound))


def _accrual_post(loan: Loan, *, amount: Decimal, on: dt.date, key: str, by, penalty: Decimal = ZERO,
                  compound: Decimal = ZERO) -> None:
    entries = [_accrual(loan, amount=amount, on=on, key=key),
               _penalty_accrual(loan, amount=penalty, on=on, key=f"{key}:penalty", compound=compound)]
    if any(entries):
        _entries_post([e for e in entries if e is not None], by=by)


def _off_balance(loan: Loan, *, amount: Decimal, on: dt.date, key: str, kind: str = "accrual") -> Entry | None:
    """非应计: interest, penalty or compound interest accrued while the loan is non-accrual goes only to the off-balance
    memo (Dr 表外欠息 / Cr its contra); a negative amount (the due-date adjustment, cash received) the other way."""
    if amount >= 0:
        return _entry(loan, kind=kind, on=on, key=key, off_balance_interest=("Dr", amount), off_balance_contra=("Cr", amount))
    return _entry(loan, kind=kind, on=on, key=key, off_balance_contra=("Dr", -amount), off_balance_interest=("Cr", -amount))


def _unpaid_accrued(rows) -> tuple[Decimal, Decimal, Decimal]:
    return interest_receivable(rows), penalty_receivable(rows), compound_receivable(rows)


def _non_accrual_transfer(loan: Loan, rows, *, on: dt.date, key: str, into: bool) -> list[Entry]:
    """Into non-accrual: the accrued unpaid interest, penalty and compound interest reversed out of income into the
    off-balance memo; out of it (cured): back on the balance sheet and into income."""
    interest, penalty, compound = _unpaid_accrued(rows)
    side, other = ("Dr", "Cr") if into else ("Cr", "Dr")
    entries = [_entry(loan, kind="non_accrual", on=on, key=key, interest_income=(side, interest),
                      interest_receivable=(other, interest), penalty_income=(side, penalty), penalty_receivable=(other, penalty),
                      compound_income=(side, compound), compound_receivable=(other, compound)),
               _off_balance(loan, amount=(interest + penalty + compound) * (1 if into else -1), on=on, key=f"{key}:memo",
                            kind="non_accrual")]
    return [e for e in entries if e is not None]


def _accrual_resume(loan: Loan, *, on: dt.date, key: str, by) -> None:
    """Back on the balance sheet before a restructuring or a write-off: what the memo holds becomes receivable and
    income again (the write-off then writes the receivable off like any other)."""
    if loan.non_accrual_since is None:
        return
    rows = list(loan.installments.filter(superseded=False))
    entries = _non_accrual_transfer(loan, rows, on=on, key=key, into=False)
    if entries:
        _entries_post(entries, by=by)
    loan.non_accrual_since = None
    Loan.objects.filter(pk=loan.pk).update(non_accrual_since=None)


def loan_dpd(loan: Loan, rows, on: dt.date, policy: PostloanPolicy) -> int:
    """Days past due on `on` as the nightly job counts them: since the oldest unpaid due date past its grace end."""
    cutoff = overdue_cutoff(on, policy)
    oldest = min((r.due_date for r in rows if r.settled_on is None and not r.superseded and r.due_date <= cutoff), default=None)
    return (on - oldest).days if oldest else 0


def loans_close_through(*, loans: list[Loan], through: dt.date, by=None, delinquency: bool = True,
                        set_based: bool = True) -> int:
    """Close each loan for every date up to `through` that it has not closed (exactly once per date): accrue contract
    interest on the nominal periods (one entry per stretch between nominal due dates, dated at its end: a daily run
    posts one a day), penalty and compound interest on the overdue parts, then days past due, bucket and
    classification floors on `through`. The caller holds the loans' row locks. A constant number of queries for the
    lot; returns the entries posted.

    The ordinary loan-day (one day of plain contract interest: `postloan.accrual`) is closed by one SQL statement for
    the lot when the entries are posted here (not collected by a caller, not a reversal's replay) and `set_based`;
    the other loans as below, one by one in Python."""
    loans = [x for x in loans if x.status == Loan.Status.ACTIVE and (x.accrued_through or x.disbursed_on) < through]
    if not loans:
        return 0
    ids = [x.pk for x in loans]
    fast = 0
    if set_based and not _REPLAYING.get() and _COLLECTED.get() is None:
        closed, fast = ordinary_days_close(loans=loans, through=through, by=by)
        loans = [x for x in loans if x.pk not in closed]
    if not loans:
        if delinquency:
            delinquency_refresh(today=through, loan_ids=ids)
        return fast
    schedules: dict[int, list[Installment]] = {x.pk: [] for x in loans}
    for inst in Installment.objects.filter(loan__in=loans, superseded=False).order_by("loan_id", "n"):
        schedules[inst.loan_id].append(inst)
    entries, changed, moved, repriced = [], [], [], []
    policy, cal = policy_in_force(through), business_calendar()
    for loan in loans:
        installments, cursor = schedules[loan.pk], loan.accrued_through or loan.disbursed_on
        off = loan.non_accrual_since is not None
        penalty = compound = ZERO
        while cursor < through:
            next_due = min((i.nominal for i in installments if i.nominal > cursor), default=None)
            stop = min(through, next_due) if next_due else through
            repricing = loan.next_repricing_on if loan.next_repricing_on and cursor < loan.next_repricing_on <= stop else None
            stop = repricing or stop
            inst, target = _interest_target(loan, installments, stop)
            if inst is not None and target != inst.interest_accrued:
                entries.append((_off_balance if off else _accrual)(loan, amount=target - inst.interest_accrued, on=stop,
                                                                   key=f"loan:{loan.pk}:accrual:{stop}"))
                inst.interest_accrued = target
                changed.append(inst)
            if repricing:
                # the days before the repricing date accrue penalty at the old rate, the days from it at the new
                rate = penalty_rate(loan, policy)
                for row in installments:
                    if row.settled_on is None and row.due_date < stop:
                        accrued = installment_accrue_penalty(row, on=stop, rate=rate, policy=policy, cal=cal)
                        if any(accrued):
                            penalty, compound = penalty + accrued[0], compound + accrued[1]
                            changed.append(row)
                changed.extend(_loan_reprice(loan, installments, on=stop, by=by))
                repriced.append(loan)
            cursor = stop
        # 罚息 and 复利: overdue installments past their grace end accrue them through the date
        rate = penalty_rate(loan, policy)
        for inst in installments:
            if inst.settled_on is None and inst.due_date < through:
                accrued = installment_accrue_penalty(inst, on=through, rate=rate, policy=policy, cal=cal)
                if any(accrued):
                    penalty, compound = penalty + accrued[0], compound + accrued[1]
                    changed.append(inst)
        key = f"loan:{loan.pk}:penalty:{through}"
        entries.append(_off_balance(loan, amount=penalty + compound, on=through, key=key) if off else
                       _penalty_accrual(loan, amount=penalty, on=through, key=key, compound=compound))
        # 非应计 at more than the policy's days past due; accrual resumes once every overdue amount is paid
        dpd = loan_dpd(loan, installments, through, policy)
        if not off and dpd > policy.non_accrual_dpd:
            entries.extend(_non_accrual_transfer(loan, installments, on=through, key=f"loan:{loan.pk}:non_accrual:{through}",
                                                 into=True))
            # the day it passed the policy's days (a catch-up or a replay closes many days at once)
            loan.non_accrual_since = max(through - dt.timedelta(days=dpd - policy.non_accrual_dpd - 1),
                                         (loan.accrued_through or loan.disbursed_on) + dt.timedelta(days=1))
            moved.append(loan)
        elif off and dpd == 0:
            entries.extend(_non_accrual_transfer(loan, installments, on=through, key=f"loan:{loan.pk}:accrual_resumed:{through}",
                                                 into=False))
            loan.non_accrual_since = None
            moved.append(loan)
        loan.accrued_through = through
    posted = _entries_post([e for e in entries if e is not None], by=by)
    rows_update(Installment, list({id(i): i for i in changed}.values()),
                ["interest_accrued", "penalty_accrued", "penalty_exact", "penalty_through",
                 "compound_accrued", "compound_exact", "interest", "interest_upfront", "accrual_start"])
    for loan in {x.pk: x for x in repriced}.values():  # the few floating-rate loans repriced today
        Loan.objects.filter(pk=loan.pk).update(annual_rate=loan.annual_rate, lpr_rate=loan.lpr_rate, lpr_date=loan.lpr_date,
                                               next_repricing_on=loan.next_repricing_on)
    Loan.objects.filter(pk__in=[x.pk for x in loans]).update(accrued_through=through)
    for loan in moved:  # the few loans that enter or leave non-accrual today
        Loan.objects.filter(pk=loan.pk).update(non_accrual_since=loan.non_accrual_since)
    if delinquency:
        delinquency_refresh(today=through, loan_ids=ids)
    return posted + fast


def _loan_reprice(loan: Loan, installments: list[Installment], *, on: dt.date, by) -> list[Installment]:
    """Reprice a floating-rate loan on its repricing date `on` (the caller holds its lock and has accrued it through
    `on` at the old rate): the LPR of its tenor last published before `on` + the contract's spread, from `on` on; the
    interest of the periods not yet due recomputed (principal, due dates and maturity kept); a line in the loan's rate
    history and an audit event; the next repricing date. Returns the rows changed."""
    lpr = lpr_on(loan.lpr_tenor, on - dt.timedelta(days=1))
    old, new = loan.annual_rate, max(rate_of(lpr=lpr.rate, spread_bp=loan.spread_bp), ZERO)
    k = next((j for j, row in enumerate(installments) if row.nominal > on), None)
    changed = []
    if k is not None and new != old:
        for row, interest, upfront, begin in repriced_interest(loan, installments, k, on=on, old_rate=old, new_rate=new):
            if row.settled_on is None:
                row.interest, row.interest_upfront, row.accrual_start = interest, upfront, begin
                changed.append(row)
    loan.annual_rate, loan.lpr_rate, loan.lpr_date = new, lpr.rate, lpr.published_on
    loan.next_repricing_on = repricing_date_next(loan, on)
    RateChange.objects.update_or_create(loan=loan, effective_on=on, defaults={
        "old_rate": old, "new_rate": new, "lpr_tenor": lpr.tenor, "lpr_rate": lpr.rate, "lpr_date": lpr.published_on,
        "spread_bp": loan.spread_bp})
    if not _REPLAYING.get():
        audit_record(actor=by, action="loan.reprice", obj=loan, data={
            "on": on.isoformat(), "old_rate": str(old), "new_rate": str(new), "lpr_tenor": lpr.tenor, "lpr_rate": str(lpr.rate),
            "lpr_date": lpr.published_on.isoformat(), "spread_bp": str(loan.spread_bp), "rows": [r.n for r in changed],
            "next_repricing_on": loan.next_repricing_on.isoformat() if loan.next_repricing_on else None})
    return changed


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


def compound_receivable(installments) -> Decimal:
    """Accrued compound interest not yet paid (the sub-ledger side of account 应收复利)."""
    return sum((i.compound_accrued - i.paid_compound for i in installments if not i.superseded), ZERO)


# ---------------------------------------------------------------- open a loan (called by the conductor)
def penalty_markup_clamp(markup: Decimal) -> Decimal:
    """A penalty markup kept within the legal 30 %-50 % (银发〔2003〕251号)."""
    return min(max(markup, PENALTY_MARKUP_MIN), PENALTY_MARKUP_MAX)


def contract_penalty_markup(*, on: dt.date | None = None) -> Decimal:
    """The penalty markup (罚息上浮) a contract issued on `on` (the business date) states and its loan then charges: the
    post-loan policy's in force, within 30 %-50 %. The conductor passes it to contracts, which cannot read the policy."""
    return penalty_markup_clamp(policy_in_force(on).penalty_rate_markup)


def _contract_terms(application, on: dt.date, *, method: str | None = None, term_months: int | None = None) -> dict:
    """The servicing terms the loan contract fixes: its repayment day and holiday rule, the penalty markup (the
    contract's when it states one, else the policy's at disbursement, always within 30 %-50 %), the prepayment terms and
    whether close of business may debit what is due (自动扣款: the contract's `auto_debit` term, else the policy's
    default for new contracts).
    A credit-line drawdown (its own method and term under the line's contract) takes the product's grace months for
    that method and term, the rest from the contract."""
    policy = contract_schedule_policy(application)
    if method is not None:
        policy = {**policy, "grace_months": schedule_policy(product=application.product, method=method,
                                                            term_months=term_months)["grace_months"]}
    terms = (application.contracts.filter(kind="loan").exclude(status="voided").order_by("-version")
             .values_list("terms", flat=True).first()) or {}  # the terms alone: a deferred Contract refreshes its state
    stated = terms.get("penalty_markup")
    # The markup the contract states (recorded at issue since contracts print it). A contract issued before then
    # states none, and its loan keeps what it was promised then: the policy's markup on the disbursement day.
    markup = Decimal(str(stated)) if stated not in (None, "") else policy_in_force(on).penalty_rate_markup
    rule = prepayment_rule(application.product.code)
    authorised = terms.get("auto_debit")
    return {"basis": _rate_basis(application, terms),
            "auto_debit": policy_in_force(on).auto_debit_new_contracts if authorised is None else bool(authorised),
            "repayment_day": policy.get("repayment_day"), "due_date_rule": policy.get("due_date_rule") or "none",
            "grace_months": policy.get("grace_months") or 0,
            "penalty_markup": penalty_markup_clamp(markup),
            "prepayment_terms": {"allowed": rule.allowed, "lock_in_months": rule.lock_in_months, "fee_rate": str(rule.fee_rate),
                                 "fee_free_after_months": rule.fee_free_after_months, "mode": rule.mode}}


def _rate_basis(application, terms: dict) -> dict:
    """The rate basis the loan contract states (its terms; an older contract without one: the offer's)."""
    if terms.get("lpr_rate"):
        return {"lpr_tenor": terms["lpr_tenor"], "lpr_rate": Decimal(terms["lpr_rate"]),
                "lpr_date": dt.date.fromisoformat(terms["lpr_date"]), "spread_bp": Decimal(terms["spread_bp"]),
                "rate_type": terms.get("rate_type") or "fixed", "repricing_months": terms.get("repricing_months")}
    if application.offer_lpr_rate is not None:
        return {"lpr_tenor": application.offer_lpr_tenor, "lpr_rate": application.offer_lpr_rate,
                "lpr_date": application.offer_lpr_date, "spread_bp": application.offer_spread_bp,
                "rate_type": application.offer_rate_type or "fixed", "repricing_months": application.offer_repricing_months}
    return {"rate_type": "fixed"}


def repricing_date_next(loan: Loan, after: dt.date) -> dt.date | None:
    """The first repricing date after `after` of a floating-rate loan: every repricing_months from the disbursement day
    (the same day of the month, the month's last day when it has none); None for a fixed rate or past maturity."""
    if loan.rate_type != "floating" or not loan.repricing_months:
        return None
    n = 1
    while (on := add_months(loan.disbursed_on, n * loan.repricing_months)) <= after:
        n += 1
    return on if on < loan.maturity_date else None


def loan_open(*, order: DisbursementOrder, by, term_months: int | None = None, method: str | None = None,
              disbursed_on: dt.date | None = None) -> Loan:
    """Create the loan and its schedule for a released order (inside the caller's transaction): the offer's terms, or
    for a credit-line drawdown its own term and method (at the line's rate) from `disbursed_on` (the business date)."""
    application = order.application
    disbursed_on = disbursed_on or business_date()  # the value date: the bank's date, not the wall clock
    term_months = term_months or application.offer_term_months
    method = method or application.offer_repayment_method
    drawdown = order.kind == DisbursementOrder.Kind.DRAWDOWN
    terms = _contract_terms(application, disbursed_on, **({"method": method, "term_months": term_months} if drawdown else {}))
    # Grace months, repayment day and the due-date rule the loan contract states (contracts.services).
    common = {"principal": order.amount, "annual_rate": application.offer_rate, "term_months": term_months,
              "method": method, "start_date": disbursed_on,
              "grace_months": terms["grace_months"], "repayment_day": terms["repayment_day"]}
    lines = build_schedule(**common, adjust_due_date=due_date_adjuster(terms["due_date_rule"]))
    nominal = [x.due_date for x in build_schedule(**common)]
    loan = Loan.objects.create(
        application=application, disbursement=order, enterprise_id=application.enterprise_id, borrower_id=application.applicant_id,
        relationship_manager_id=application.relationship_manager_id, branch_id=application.branch_id,
        product_code=application.product.code,  # ids: the people and branch need not be read to be referred to
        principal=order.amount, annual_rate=application.offer_rate, term_months=term_months,
        repayment_method=method, disbursed_on=disbursed_on, maturity_date=lines[-1].due_date,
        outstanding_principal=order.amount, accrued_through=disbursed_on,
        repayment_day=terms["repayment_day"] or disbursed_on.day, due_date_rule=terms["due_date_rule"],
        penalty_markup=terms["penalty_markup"], prepayment_terms=terms["prepayment_terms"], auto_debit=terms["auto_debit"],
        tax_class=vat_tax_class(enterprise=application.enterprise, credit=max(
            order.amount + _credit_in_use(application.enterprise_id), application.offer_amount or ZERO), on=disbursed_on),
        **terms["basis"],
    )
    if loan.rate_type == "floating":
        loan.next_repricing_on = repricing_date_next(loan, disbursed_on)
        Loan.objects.filter(pk=loan.pk).update(next_repricing_on=loan.next_repricing_on)
    Installment.objects.bulk_create([
        Installment(loan=loan, n=line.n, due_date=line.due_date, principal=line.principal, interest=line.interest,
                    nominal_due_date=nominal[k], period_start=nominal[k - 1] if k else disbursed_on)
        for k, line in enumerate(lines)
    ])
    _post(loan, kind="disbursement", on=disbursed_on, key=f"loan:{loan.pk}:disbursement", by=by,
          loan_principal=("Dr", loan.principal), settlement=("Cr", loan.principal))
    # A credit line's later drawdowns: the borrower's sources are already scheduled (per enterprise, from the same consents).
    if not (drawdown and SourceRefresh.objects.filter(enterprise_id=loan.enterprise_id).exists()):
        _monitoring_schedule(loan=loan, today=disbursed_on)
    SurveyResponse.objects.create(loan=loan, trigger="disbursement")  # the loan was created above: nothing to get
    audit_record(actor=by, action="loan.open", obj=loan, to_state=loan.status,
                 data={"application": application.pk, "principal": str(loan.principal), "installments": len(lines),
                       "penalty_markup": str(loan.penalty_markup), "annual_rate": str(loan.annual_rate),
                       "rate_type": loan.rate_type, "spread_bp": None if loan.spread_bp is None else str(loan.spread_bp),
                       "next_repricing_on": loan.next_repricing_on.isoformat() if loan.next_repricing_on else None})
    return loan


def _credit_in_use(enterprise_id: int) -> Decimal:
    return Loan.objects.filter(enterprise_id=enterprise_id, status=Loan.Status.ACTIVE).aggregate(
        s=Sum("principal"))["s"] or ZERO


def vat_tax_class(*, enterprise, credit: Decimal, on: dt.date) -> str:
    """The borrower's class for the VAT exemption of its loan's interest (小微企业贷款利息免征增值税), or "" where none
    applies: an individual business (个体工商户) or a micro or small enterprise by the official size standard
    (工信部联企业〔2011〕300号, `applications.prescreen.size_class`), when an exemption for the class is in force on
    `on` (ledger data, `VatExemption`) and the borrower's credit with the bank (单户授信: the loans it holds with
    this one, at least the credit approved) is within its limit (10 million yuan)."""
    if enterprise.legal_form == "individual":
        tax_class = "individual"
    else:
        tax_class = size_class(enterprise.industry_code, enterprise.employees, enterprise.annual_revenue)
    exemption = vat_exemption_in_force(tax_class, on) if tax_class in ("micro", "small", "individual") else None
    return tax_class if exemption is not None and credit <= exemption.max_credit else ""


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
def loan_position(loan: Loan, *, on: dt.date | None = None, installments=None) -> dict:
    """What the borrower owes on `on` (the business date unless given, as the quotes, the schedule's overdue rows and
    the DPD of close of business): overdue amount, penalty and compound interest to date, next due installment."""
    on = on or business_date()
    policy = policy_in_force(on)
    cal = business_calendar()
    rate = penalty_rate(loan, policy)
    lines = [i for i in (installments if installments is not None else loan.installments.all()) if not i.superseded]
    overdue = penalty = ZERO
    next_due = None
    for inst in lines:
        if inst.settled_on is not None:
            continue
        if on > grace_end(inst.due_date, policy, cal):
            overdue += inst.due_remaining
        projected = copy.copy(inst)
        installment_accrue_penalty(projected, on=on, rate=rate, policy=policy, cal=cal)
        penalty += projected.penalty_accrued - inst.paid_penalty + projected.compound_accrued - inst.paid_compound
        if next_due is None and inst.due_date >= on:
            next_due = inst
    return {"overdue": overdue, "penalty": penalty, "next_due": next_due}


def repayment_record(*, loan: Loan, amount: Decimal, paid_on: dt.date, reference: str, by, channel: str = "api",
                     batch=None) -> tuple[Repayment, bool]:
    """Allocate a repayment: oldest installment first, within it penalty → compound interest → interest →
    principal, over the installments due by `paid_on` (when none is, the current one: paying it a few days early is
    normal). What is left is an early repayment of principal under the contract's prepayment terms (its interest to
    the day and the fee the contract names); if they do not allow it, it is kept as unapplied credit. An amount
    that covers the payoff quote of `paid_on` pays the loan off (interest to the day, not the whole period).
    Idempotent by reference: the same reference returns the first result (created=False); the same reference with
    another amount is a 409. The values come checked by postloan.serializers.RepaymentSerializer."""
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
        if loan.accrued_through and paid_on < loan.accrued_through and _backdated_base(loan, paid_on) and not \
                loan.repayments.filter(reversed_at__isnull=True, state_before={}).exists():  # (recorded before replays)
            return _backdated_apply(loan=loan, amount=amount, paid_on=paid_on, reference=reference, by=by, channel=channel,
                                    batch=batch), True
        last = loan.repayments.filter(reversed_at__isnull=True).order_by("-paid_on").values_list("paid_on", flat=True).first()
        if last and paid_on < last:
            raise ApplicationError(_("还款日期早于上一笔还款 / The payment date is before the last recorded payment."),
                                   errors={"paid_on": [_("不得早于 %(d)s / Not before %(d)s") % {"d": last}]})
        repayment = _payment_apply(loan=loan, amount=amount, paid_on=paid_on, reference=reference, by=by, channel=channel,
                                   batch=batch)
    return repayment, True


def prepayment_make(*, loan: Loan, amount: Decimal, mode: str, key: str, by) -> tuple[Repayment, bool]:
    """提前还款 on the business date: `amount` of principal not yet due, with what the prepayment quote says is due
    with it (arrears, the prepaid principal's interest to the day, the contract's fee); the rest of the schedule is
    rebuilt to the contract (`mode`: shorten_term or lower_installment). Prepaying all of it pays the loan off.
    Idempotent by `key` (the Idempotency-Key header): the same key returns the first prepayment (created=False)."""
    reference = f"PP-{key}"
    with transaction.atomic():
        loan = Loan.objects.select_for_update().get(pk=loan.pk)
        existing = Repayment.objects.filter(loan=loan, reference=reference).first()
        if existing:
            if existing.allocation.get("requested") != f"{amount:.2f}" or existing.allocation.get("mode") != mode:
                raise Conflict(_("该幂等键已用于另一笔提前还款 / This Idempotency-Key was used for another prepayment."),
                               state=loan.status)
            return existing, False
        if loan.status != Loan.Status.ACTIVE:
            raise Conflict(_("贷款已结清或核销 / The loan is closed."), state=loan.status)
        loan_catch_up(loan=loan, by=by)
        on = business_date()
        rows = list(loan.installments.filter(superseded=False).order_by("n"))
        quote = prepayment_figures(loan, rows, amount=amount, on=on, mode=mode)
        repayment = _payment_apply(loan=loan, amount=quote["due_now"], paid_on=on, reference=reference, by=by, channel="api",
                                   prepay={"principal": quote["principal"], "mode": mode, "requested": f"{amount:.2f}"})
    return repayment, True


def _allocate(rows: list[Installment], remaining: Decimal, totals: dict, allocation: list) -> Decimal:
    """Oldest first, within each installment penalty → compound interest → interest → principal (民法典 art. 561)."""
    for inst in rows:
        for part, owed in (("penalty", inst.penalty_accrued - inst.paid_penalty),
                           ("compound", inst.compound_accrued - inst.paid_compound),
                           ("interest", inst.interest - inst.paid_interest),
                           ("principal", inst.principal - inst.paid_principal)):
            take = min(owed, remaining)
            if take > 0:
                setattr(inst, f"paid_{part}", getattr(inst, f"paid_{part}") + take)
                remaining -= take
                totals[part] += take
                allocation.append({"n": inst.n, "part": part, "amount": f"{take:.2f}"})
        if remaining <= 0:
            break
    return remaining


def _payment_apply(*, loan: Loan, amount: Decimal, paid_on: dt.date, reference: str, by, channel: str, batch=None,
                   prepay: dict | None = None, replay: Repayment | None = None, mode: str | None = None,
                   history_key: str = "before_reversal") -> Repayment:
    """The allocation, the schedule, the repayment and its entries, under the loan's lock (caught up). `replay`: a
    reversal re-applies this recorded repayment to the replayed loan (its record updated, nothing posted)."""
    policy = policy_in_force(paid_on)
    cal = business_calendar()
    rate = penalty_rate(loan, policy)
    rows = list(loan.installments.select_for_update().filter(superseded=False).order_by("n"))
    state_before = _snapshot(loan, rows)
    open_rows = [r for r in rows if r.settled_on is None]
    penalty_now = compound_now = ZERO
    for inst in open_rows:
        accrued = installment_accrue_penalty(inst, on=paid_on, rate=rate, policy=policy, cal=cal)
        penalty_now, compound_now = penalty_now + accrued[0], compound_now + accrued[1]
    for inst in open_rows:  # a payment changes the base: the next stretch of penalty is rounded on its own
        inst.penalty_exact = inst.compound_exact = None
    figures = payoff_figures(loan, rows, paid_on, policy=policy, cal=cal)
    k = figures["current"]
    terms = prepayment_terms(loan, paid_on)
    if mode:
        terms = type(terms)(allowed=terms.allowed, fee_rate=terms.fee_rate, mode=MODES.get(mode, mode))
    totals = {"penalty": ZERO, "compound": ZERO, "interest": ZERO, "principal": ZERO}
    allocation: list[dict] = []
    remaining, prepaid, fee, note, mode = amount, ZERO, ZERO, "", None
    payoff = k is not None and figures["allowed"] and (
        prepay["principal"] >= figures["principal"] if prepay else amount >= figures["total"])
    superseded: list[Installment] = []
    if payoff or prepay:
        remaining = _allocate([r for r in open_rows if r.nominal <= paid_on], remaining, totals, allocation)
    if payoff:
        # 提前结清: the period in progress charges its interest to the day; its installment takes all that is not due
        current = rows[k]
        for row in rows[k + 1:]:
            current.principal += row.principal - row.paid_principal
            current.interest_accrued += row.interest_accrued - row.paid_interest
            row.principal, row.interest, row.interest_accrued = row.paid_principal, row.paid_interest, row.paid_interest
            row.settled_on, row.superseded = paid_on, True
            superseded.append(row)
        current.interest = current.paid_interest + figures["interest"]
        current.due_date = current.nominal_due_date = paid_on
        prepaid = current.principal - current.paid_principal
        interest = figures["interest"]
        current.paid_principal, current.paid_interest = current.principal, current.interest
        fee = figures["fee"]
        totals["interest"] += interest
        remaining -= prepaid + interest + fee
        mode = "payoff"
        allocation.append({"n": current.n, "part": "payoff", "amount": f"{prepaid:.2f}", "interest": f"{interest:.2f}",
                           "fee": f"{fee:.2f}"})
        loan.maturity_date = paid_on
    elif prepay:
        mode = MODES.get(prepay["mode"], prepay["mode"])
        prepaid = prepay["principal"]
        interest, fee = _prepay(loan=loan, rows=rows, k=k, prepaid=prepaid, on=paid_on, mode=mode,
                                fee_rate=terms.fee_rate, superseded=superseded)
        totals["interest"] += interest
        remaining -= prepaid + interest + fee
        allocation.append({"part": "prepayment", "amount": f"{prepaid:.2f}", "interest": f"{interest:.2f}",
                           "fee": f"{fee:.2f}", "mode": mode})
    else:
        due = sum(1 for inst in open_rows if inst.due_date <= paid_on)
        split = due or min(1, len(open_rows))  # nothing due yet: the current installment may be paid early
        if not due and open_rows and loan.repayment_method == DAILY_INTEREST \
                and amount > open_rows[0].interest - open_rows[0].paid_interest:
            # 随借随还: more than the period's interest before anything is due repays principal at will (interest
            # to the day on it, the period's interest recomputed on the lower balance), never interest in advance
            split = 0
        current_rows, future = open_rows[:split], open_rows[split:]
        remaining = _allocate(current_rows, remaining, totals, allocation)
        if remaining > 0 and future:
            if not terms.allowed:
                note = "prepayment not allowed"
            else:
                mode = terms.mode
                k2 = rows.index(future[0])
                days = max((paid_on - accrual_start(loan, rows, k2)).days, 0)
                not_due = sum((r.principal - r.paid_principal for r in future), ZERO)
                prepaid = cash_split(cash=remaining, fee_rate=terms.fee_rate, day_rate=loan.annual_rate * days / 360,
                                     limit=not_due)
                if prepaid > 0:
                    interest, fee = _prepay(loan=loan, rows=rows, k=k2, prepaid=prepaid, on=paid_on, mode=mode,
                                            fee_rate=terms.fee_rate, superseded=superseded)
                    totals["interest"] += interest
                    remaining -= prepaid + interest + fee
                    allocation.append({"part": "prepayment", "amount": f"{prepaid:.2f}", "interest": f"{interest:.2f}",
                                       "fee": f"{fee:.2f}", "mode": mode})
    # Settle what is paid; the interest receivable follows the interest paid (accrued first where the borrower paid
    # ahead of accrual, released where a settled installment stood accrued above what it finally charged).
    accrual = ZERO
    for inst in rows:
        if inst in superseded:
            continue
        if inst.settled_on is None and inst.due_remaining == 0 and inst.penalty_accrued == inst.paid_penalty \
                and inst.compound_accrued == inst.paid_compound:
            inst.settled_on = paid_on
        if inst.settled_on == paid_on or inst.paid_interest > inst.interest_accrued:
            accrual += inst.paid_interest - inst.interest_accrued
            inst.interest_accrued = inst.paid_interest
    rows_update(Installment, rows, ["principal", "interest", "due_date", "nominal_due_date", "period_start",
                                    "interest_upfront", "paid_interest", "paid_principal", "paid_penalty",
                                    "paid_compound", "penalty_accrued", "penalty_exact", "penalty_through",
                                    "compound_accrued", "compound_exact", "settled_on", "superseded",
                                    "interest_accrued"])
    kept = [r for r in rows if r not in superseded]
    loan.outstanding_principal -= totals["principal"] + prepaid
    if kept and mode not in (None, "payoff"):
        loan.maturity_date = kept[-1].due_date
    if loan.outstanding_principal <= 0 and all(r.settled_on is not None for r in kept):
        loan.close()
        loan.closed_on = paid_on
    details = {"lines": allocation, **({"note": note} if note else {})}
    if prepay:
        details.update({"requested": prepay["requested"], "mode": prepay["mode"]})
    if replay is not None:  # a replay re-applies it: the record now says how it applies (the first allocation kept)
        details.update({k: v for k, v in replay.allocation.items() if k in ("requested", "mode", "backdated")})
        details[history_key] = replay.allocation.get(history_key) or replay.allocation.get("lines", [])
        for field, value in (("allocation", details), ("penalty_paid", totals["penalty"]), ("compound_paid", totals["compound"]),
                             ("interest_paid", totals["interest"]), ("principal_paid", totals["principal"]),
                             ("prepaid_principal", prepaid), ("prepayment_fee", fee), ("unapplied", remaining),
                             ("state_before", state_before)):
            setattr(replay, field, value)
        replay.save()
        loan.save()
        return replay
    try:
        with transaction.atomic():
            repayment = Repayment.objects.create(
                loan=loan, amount=amount, paid_on=paid_on, reference=reference, channel=channel, batch=batch,
                kind="prepayment" if prepay else "repayment", allocation=details, penalty_paid=totals["penalty"],
                compound_paid=totals["compound"], interest_paid=totals["interest"], principal_paid=totals["principal"],
                prepaid_principal=prepaid, prepayment_fee=fee, unapplied=remaining, recorded_by=by,
                state_before=state_before)
    except IntegrityError:
        raise Conflict(_("重复的流水号 / Duplicate reference."), state=loan.status) from None
    _payment_post(loan, repayment=repayment, accrual=accrual, penalty_now=penalty_now, compound_now=compound_now,
                  totals=totals, principal=totals["principal"] + prepaid, fee=fee, unapplied=remaining, by=by)
    loan.save()
    if not _CHUNK_REFRESHES.get():
        loan_refresh_delinquency(loan=loan)
        stage_event(loan, by=by)
    if loan.repayments.count() == policy.nps_after_repayments:
        SurveyResponse.objects.get_or_create(loan=loan, trigger="repayments")
    audit_record(actor=by, action=f"loan.{repayment.kind}", obj=loan, to_state=loan.status,
                 data={"reference": reference, "amount": str(amount), "channel": channel, "penalty": str(totals["penalty"]),
                       "compound": str(totals["compound"]), "interest": str(totals["interest"]),
                       "principal": str(totals["principal"]), "prepaid": str(prepaid), "fee": str(fee),
                       "unapplied": str(remaining), "mode": mode or ""})
    return repayment


def _payment_post(loan: Loan, *, repayment: Repayment, accrual: Decimal, penalty_now: Decimal, compound_now: Decimal,
                  totals: dict, principal: Decimal, fee: Decimal, unapplied: Decimal, by) -> None:
    """Received through clearing. Accruing: the interest, penalty and compound interest paid clear their receivables
    (accrued first where paid ahead of accrual). Non-accrual: they were only in the off-balance memo, so the cash
    is income when it arrives and the memo is released."""
    on, key = repayment.paid_on, f"repayment:{repayment.pk}"
    if loan.non_accrual_since is None:
        _accrual_post(loan, amount=accrual, on=on, key=f"{key}:accrual", by=by, penalty=penalty_now, compound=compound_now)
        _post(loan, kind="repayment", on=on, key=key, by=by, clearing=("Dr", repayment.amount),
              penalty_receivable=("Cr", totals["penalty"]), compound_receivable=("Cr", totals["compound"]),
              interest_receivable=("Cr", totals["interest"]), loan_principal=("Cr", principal), fee_income=("Cr", fee),
              settlement=("Cr", unapplied))
        return
    earned = totals["penalty"] + totals["compound"] + totals["interest"]
    memo = [e for e in (_off_balance(loan, amount=accrual + penalty_now + compound_now, on=on, key=f"{key}:accrual"),
                        _off_balance(loan, amount=-earned, on=on, key=f"{key}:memo", kind="repayment")) if e is not None]
    if memo:
        _entries_post(memo, by=by)
    _post(loan, kind="repayment", on=on, key=key, by=by, clearing=("Dr", repayment.amount),
          penalty_income=("Cr", totals["penalty"]), compound_income=("Cr", totals["compound"]),
          interest_income=("Cr", totals["interest"]), loan_principal=("Cr", principal), fee_income=("Cr", fee),
          settlement=("Cr", unapplied))


ROW_FIELDS = ("n", "due_date", "nominal_due_date", "period_start", "accrual_start", "principal", "interest", "interest_upfront",
              "paid_principal", "paid_interest", "paid_penalty", "paid_compound", "penalty_accrued", "penalty_exact",
              "penalty_through", "compound_accrued", "compound_exact", "interest_accrued", "settled_on", "superseded")
LOAN_FIELDS = ("outstanding_principal", "maturity_date", "status", "closed_on", "accrued_through", "non_accrual_since",
               "annual_rate", "lpr_rate", "lpr_date", "next_repricing_on", "repayment_method", "restructured_on",
               "observation_until", "accelerated_on", "recall_requested_on")
VOID_ROW = {"principal": ZERO, "interest": ZERO, "interest_upfront": ZERO, "paid_principal": ZERO, "paid_interest": ZERO,
            "paid_penalty": ZERO, "paid_compound": ZERO, "penalty_accrued": ZERO, "penalty_exact": None,
            "penalty_through": None, "compound_accrued": ZERO, "compound_exact": None, "interest_accrued": ZERO,
            "settled_on": None, "superseded": True}


def _json(value):
    return value.isoformat() if isinstance(value, dt.date) else str(value) if isinstance(value, Decimal) else value


def _snapshot(loan: Loan, rows: list[Installment]) -> dict:
    """The loan and its schedule as they stand (what a reversal replays from)."""
    return {"loan": {f: _json(getattr(loan, f)) for f in LOAN_FIELDS},
            "rows": {str(r.pk): {f: _json(getattr(r, f)) for f in ROW_FIELDS} for r in rows}}


def _restore(loan: Loan, state: dict) -> None:
    """Put the loan and its schedule back as `state` recorded them (rows superseded since come back). Rows a
    restructuring created since are voided (superseded, never settled, every amount zero; kept, not deleted): the
    replay rebuilds them in place when it re-applies the restructuring."""
    rows = {r.pk: r for r in loan.installments.filter(pk__in=[int(k) for k in state["rows"]])}
    for pk, values in state["rows"].items():
        row = rows[int(pk)]
        for f, value in values.items():
            setattr(row, f, Installment._meta.get_field(f).to_python(value))
    last = max((r.n for r in rows.values()), default=0)
    for row in loan.installments.filter(n__gt=last).exclude(pk__in=list(rows)):
        for f, value in VOID_ROW.items():
            setattr(row, f, value)
        rows[row.pk] = row
    Installment.objects.bulk_update(list(rows.values()), [f for f in ROW_FIELDS if f != "n"])
    for f, value in state["loan"].items():
        if f != "status":
            setattr(loan, f, Loan._meta.get_field(f).to_python(value))
    if loan.status == Loan.Status.CLOSED and state["loan"]["status"] == Loan.Status.ACTIVE:
        loan.reopen()
    loan.save()


def _prepay(*, loan: Loan, rows: list[Installment], k: int, prepaid: Decimal, on: dt.date, mode: str, fee_rate: Decimal,
            superseded: list[Installment]) -> tuple[Decimal, Decimal]:
    """Prepay `prepaid` of the principal not yet due (rows k..): the interest it earned in the period so far is charged
    now (row k's interest charged at prepayment), the contract's fee on it, and rows k.. are rebuilt in place to the
    contract (repayment day, holiday rule, never past maturity); rows the shorter term leaves out are kept,
    superseded. Returns (interest, fee)."""
    days = max((on - accrual_start(loan, rows, k)).days, 0)
    interest = _round(prepaid * loan.annual_rate * days / 360)
    fee = _round(prepaid * fee_rate)
    not_due = sum((r.principal - r.paid_principal for r in rows[k:]), ZERO)
    lines = rebuilt_lines(loan, rows, k, principal=not_due - prepaid, mode=mode)
    start = period_start(loan, rows, k)
    current = rows[k]
    current.interest_upfront += interest
    current.paid_interest += interest
    for j, row in enumerate(rows[k:]):
        if j < len(lines):
            line, nominal = lines[j]
            row.principal = line.principal + row.paid_principal
            row.interest = line.interest + (row.interest_upfront if j == 0 else ZERO)
            # interest already paid on the period stays charged: a lower balance never makes a negative bill
            row.interest = max(row.interest, row.paid_interest)
            row.due_date, row.nominal_due_date = line.due_date, nominal
            row.period_start = start if j == 0 else lines[j - 1][1]
        else:
            current.interest_accrued += row.interest_accrued - row.paid_interest
            row.principal, row.interest, row.interest_accrued = row.paid_principal, row.paid_interest, row.paid_interest
            row.settled_on, row.superseded = on, True
            superseded.append(row)
    return interest, fee


# ---------------------------------------------------------------- five-category classification
def _classification_set(*, loan: Loan, to: str, kind: str, reason: str, by, approved_by=None) -> ClassificationChange:
    change = ClassificationChange.objects.create(loan=loan, from_category=loan.classification, to_category=to, kind=kind,
                                                 reason=reason[:300], by=by, approved_by=approved_by, on=business_date())
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
    change = _classification_set(loan=loan, to=to_category, kind="downgrade", reason=reason, by=by)
    stage_event(loan, by=by)
    return change


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


def _check_floor(loan: Loan, to_category: str, *, cure: bool = False) -> None:
    """Never above the floor the rules set; when the upgrade is decided (`cure`), only after the cure period (the
    request may be made beforehand and waits)."""
    cure = upgrade_cure_until(loan) if cure else None
    if cure is not None and rank(to_category) < rank(loan.classification):
        raise ApplicationError(_("须连续按时还款满考察期方可上调 / An upgrade needs the cure period current first."),
                               errors={"to_category": [_("最早可于 %(d)s 上调 / Not before %(d)s") % {"d": cure.isoformat()}]})
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
                        repayment_method: str = "", guarantor_consents=None) -> ApprovalRequest:
    """展期 (extension: `extra_months` more, within 贷款通则's limits, with each guarantor's written consent recorded:
    `guarantor_consents` [{guarantor, consented_on, document}]) or reschedule (a new term and method for what is
    left)."""
    _require(by, "postloan.request_restructure")
    reason = _reason(reason)
    loan = Loan.objects.select_for_update().get(pk=loan.pk)
    if loan.status != Loan.Status.ACTIVE:
        raise Conflict(_("贷款不在存续状态 / The loan is not active."), state=loan.status)
    if kind == ApprovalRequest.Kind.EXTENSION:
        months = _positive_int(extra_months, "extra_months", 1, 60)
        _extension_check(loan, months)
        params = {"extra_months": months, "guarantor_consents": _guarantor_consents(loan, guarantor_consents)}
    elif kind == ApprovalRequest.Kind.RESCHEDULE:
        months = _positive_int(term_months, "term_months", 1, 120)
        method = repayment_method or loan.repayment_method
        if method not in {m for m, _label in Loan._meta.get_field("repayment_method").choices}:
            raise ApplicationError(_("还款方式无效 / Unknown repayment method."), errors={"repayment_method": [_("无效 / Invalid.")]})
        params = {"term_months": months, "repayment_method": method}
    else:
        raise ApplicationError(_("类型无效 / Unknown kind."), errors={"kind": [_("extension 或 reschedule")]})
    return _approval_open(loan=loan, kind=kind, params=params, reason=reason, by=by)


def extension_limit_months(term_months: int) -> int:
    """贷款通则 art. 12: a short-term loan (up to a year) may be extended by at most its original term, a medium-term one
    (up to five years) by half of it, a long-term one by three years; in total."""
    if term_months <= 12:
        return term_months
    if term_months <= 60:
        return term_months // 2
    return 36


def _extension_check(loan: Loan, months: int) -> None:
    """Within the legal limit (cumulative) and the number of extensions the policy allows (data, once by default)."""
    done = loan.approval_requests.filter(kind=ApprovalRequest.Kind.EXTENSION, status=ApprovalRequest.Status.APPROVED)
    allowed = policy_in_force().extension_max_times
    if done.count() >= allowed:
        raise ApplicationError(_("展期次数已达上限 / The loan was already extended as often as allowed."),
                               errors={"extra_months": [_("最多展期 %(n)s 次 / At most %(n)s extension(s)") % {"n": allowed}]})
    used = sum(int(r.params.get("extra_months") or 0) for r in done)
    limit = extension_limit_months(loan.term_months)
    if used + months > limit:
        raise ApplicationError(_("超过贷款通则规定的展期期限 / Beyond the extension 贷款通则 allows."),
                               errors={"extra_months": [_("原期限 %(t)s 个月，累计最多展期 %(l)s 个月，尚可 %(r)s 个月 / Original term "
                                                          "%(t)s months: at most %(l)s in all, %(r)s left") % {
                                                            "t": loan.term_months, "l": limit, "r": max(limit - used, 0)}]})


def _guarantor_consents(loan: Loan, consents) -> list[dict]:
    """A guaranteed loan is extended only with each guarantor's written consent (民法典 art. 695: without it the
    guarantor is not bound by the extension): the guarantor, the date and the document, recorded with the request."""
    guarantors = list(Guarantor.objects.filter(application_id=loan.application_id).order_by("pk"))
    given = {}
    for item in consents or []:
        try:
            given[int(item.get("guarantor"))] = item
        except (TypeError, ValueError, AttributeError):
            continue
    errors, out = [], []
    for g in guarantors:
        item = given.get(g.pk) or {}
        try:
            on = dt.date.fromisoformat(str(item.get("consented_on") or ""))
        except ValueError:
            on = None
        document = str(item.get("document") or "").strip()[:200]
        if on is None or on > business_date() or not document:
            errors.append(_("须记录保证人 %(g)s 同意展期的日期与书面文件 / Record %(g)s's written consent: date and document")
                          % {"g": g.name})
            continue
        out.append({"guarantor": g.pk, "name": g.name, "consented_on": on.isoformat(), "document": document})
    if errors:
        raise ApplicationError(_("保证贷款展期须经保证人书面同意 / A guaranteed loan is extended only with the guarantor's consent."),
                               errors={"guarantor_consents": errors})
    return out


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
    request = four_eyes_lock(ApprovalRequest, request.pk, approve=approve, by=by,
                             own_message=_("申请人不能审批自己的申请 / The requester cannot approve their own request."),
                             errors={"user": [_("需由另一人审批 / Needs a second person.")]},
                             decided_message=_("该申请已处理 / This request was already decided."))
    loan = Loan.objects.select_for_update().get(pk=request.loan_id)
    if approve:
        if request.kind == ApprovalRequest.Kind.UPGRADE:
            to = request.params["to_category"]
            _check_floor(loan, to, cure=True)
            _classification_set(loan=loan, to=to, kind="upgrade", reason=request.reason, by=request.requested_by, approved_by=by)
            stage_event(loan, by=by)
            request.result = {"classification": loan.classification}
        elif request.kind in (ApprovalRequest.Kind.EXTENSION, ApprovalRequest.Kind.RESCHEDULE):
            if request.kind == ApprovalRequest.Kind.EXTENSION:
                _extension_check(loan, int(request.params["extra_months"]))
            request.result = _restructure_apply(loan=loan, request=request, by=by)
        elif request.kind == ApprovalRequest.Kind.WRITE_OFF:
            request.result = _write_off_apply(loan=loan, request=request, by=by)
        elif request.kind == ApprovalRequest.Kind.REVERSAL:
            request.result = _reversal_apply(loan=loan, request=request, by=by)
        elif request.kind == ApprovalRequest.Kind.ACCELERATE:
            request.result = _accelerate_apply(loan=loan, reason=request.reason, by=by)
    four_eyes_record(request, approve=approve, by=by, comment=comment)
    audit_record(actor=by, action=f"loan.approval_request.{'approve' if approve else 'reject'}", obj=loan,
                 from_state="pending", to_state=request.status, reason=comment, data={"request": request.pk, "kind": request.kind,
                                                                                        "result": request.result})
    with in_default_language():
        title = (_("贷后申请 #%(id)s 已批准 / Post-loan request #%(id)s approved") if approve
                 else _("贷后申请 #%(id)s 已否决 / Post-loan request #%(id)s rejected"))
        notify(user=request.requested_by, kind="postloan_decision", title=title % {"id": request.pk},
               url=reverse("postloan:loan", args=[loan.pk]))
    return request


def _restructure_apply(*, loan: Loan, request: ApprovalRequest, by, on: dt.date | None = None) -> dict:
    """A new schedule for the outstanding principal from today, on the contract's repayment day and holiday rule;
    the arrears (overdue interest, penalty and compound interest) and the interest the period in progress earned
    are added to the first new installment; the old open lines are kept as history (superseded). The
    classification is at least the restructuring floor, and cannot be raised during the observation period.
    A replay (冲正) re-applies it on its own date `on` to the replayed loan (closed through the day before): the
    new rows it created the first time are rebuilt in place, nothing is posted, the classification is left to the
    floors the replay's caller applies."""
    if loan.status != Loan.Status.ACTIVE:
        raise Conflict(_("贷款不在存续状态 / The loan is not active."), state=loan.status)
    replaying = _REPLAYING.get()
    if not replaying:
        loan_catch_up(loan=loan, by=by)
    today = on or business_date()
    policy = policy_in_force(today)
    cal = business_calendar()
    rate = penalty_rate(loan, policy)
    _accrual_resume(loan, on=today, key=f"restructure:{request.pk}:resume", by=by)
    open_lines = list(loan.installments.select_for_update().filter(settled_on__isnull=True, superseded=False).order_by("n"))
    not_due = 0
    penalty_now = compound_now = ZERO
    for inst in open_lines:
        accrued = installment_accrue_penalty(inst, on=today, rate=rate, policy=policy, cal=cal)
        penalty_now, compound_now = penalty_now + accrued[0], compound_now + accrued[1]
    _accrual_post(loan, amount=ZERO, on=today, key=f"restructure:{request.pk}:accrual", by=by, penalty=penalty_now,
                  compound=compound_now)
    # The arrears (interest, penalty, compound interest) become interest of the new schedule: so does their receivable.
    penalty_open, compound_open = penalty_receivable(open_lines), compound_receivable(open_lines)
    _post(loan, kind="restructure", on=today, key=f"restructure:{request.pk}", by=by,
          interest_receivable=("Dr", penalty_open + compound_open), penalty_receivable=("Cr", penalty_open),
          compound_receivable=("Cr", compound_open))
    carried = interest_receivable(open_lines) + penalty_open + compound_open
    arrears = ZERO
    for inst in open_lines:
        if inst.due_date <= today:
            arrears += (inst.interest - inst.paid_interest) + (inst.penalty_accrued - inst.paid_penalty) + (
                inst.compound_accrued - inst.paid_compound)
        else:
            not_due += 1
            arrears += max(inst.interest_accrued - inst.paid_interest, ZERO)  # the period in progress, to the day
        inst.principal, inst.interest, inst.settled_on, inst.superseded = inst.paid_principal, inst.paid_interest, today, True
        inst.penalty_accrued, inst.penalty_exact, inst.interest_accrued = inst.paid_penalty, None, inst.paid_interest
        inst.compound_accrued, inst.compound_exact = inst.paid_compound, None
    Installment.objects.bulk_update(open_lines, ["principal", "interest", "settled_on", "superseded", "penalty_accrued",
                                                 "penalty_exact", "penalty_through", "interest_accrued", "compound_accrued",
                                                 "compound_exact"])
    if request.kind == ApprovalRequest.Kind.EXTENSION:
        term = max(not_due, 1) + int(request.params["extra_months"])
        method = loan.repayment_method
    else:
        term = int(request.params["term_months"])
        method = request.params.get("repayment_method") or loan.repayment_method
    # The contract's repayment day and holiday rule, not the disbursement day and the moved date.
    common = {"principal": loan.outstanding_principal, "annual_rate": loan.annual_rate, "term_months": term, "method": method,
              "start_date": today, "repayment_day": loan.repayment_day or loan.disbursed_on.day}
    lines = build_schedule(**common, adjust_due_date=due_date_adjuster(loan.due_date_rule or "none"))
    nominal = [x.due_date for x in build_schedule(**common)]
    # (rows a replay voided - superseded and never settled - keep their numbers: the replay rebuilds them in place)
    first_n = (loan.installments.exclude(superseded=True, settled_on__isnull=True).order_by("-n")
               .values_list("n", flat=True).first() or 0) + 1
    new_rows = [
        Installment(loan=loan, n=first_n + k, due_date=line.due_date, principal=line.principal,
                    interest=line.interest + (arrears if k == 0 else ZERO), interest_upfront=arrears if k == 0 else ZERO,
                    interest_accrued=carried if k == 0 else ZERO, nominal_due_date=nominal[k],
                    period_start=nominal[k - 1] if k else today)
        for k, line in enumerate(lines)]
    voided = {r.n: r for r in loan.installments.filter(n__gte=first_n)} if replaying else {}
    for row in new_rows:
        if row.n in voided:
            row.pk = voided[row.n].pk
    Installment.objects.bulk_update([r for r in new_rows if r.pk], [f for f in ROW_FIELDS if f != "n"])
    Installment.objects.bulk_create([r for r in new_rows if not r.pk])
    loan.maturity_date = lines[-1].due_date
    loan.repayment_method = method
    loan.restructured_on = today
    loan.observation_until = observation_end(nominal, policy.restructure_observation_months)
    loan.save()
    result = {"on": today.isoformat(), "term_months": term, "repayment_method": method,
              "arrears_capitalised": f"{arrears:.2f}", "maturity_date": loan.maturity_date.isoformat(),
              "moved": {"penalty": f"{penalty_open:.2f}", "compound": f"{compound_open:.2f}"}}
    if replaying:
        return result
    floor = max(policy.restructure_min_category, loan.classification, key=rank)
    ClassificationChange.objects.create(loan=loan, from_category=loan.classification, to_category=floor, kind="restructure",
                                        reason=request.reason[:300], by=request.requested_by, approved_by=by, on=today)
    Loan.objects.filter(pk=loan.pk).update(classification=floor)
    loan.classification = floor
    loan_refresh_delinquency(loan=loan, today=today)
    stage_event(loan, by=by)
    return {**result, "classification": floor}


def _write_off_apply(*, loan: Loan, request: ApprovalRequest, by) -> dict:
    loan_catch_up(loan=loan, by=by)
    _accrual_resume(loan, on=business_date(), key=f"loan:{loan.pk}:write_off:resume", by=by)
    before = loan.classification
    amount = loan.outstanding_principal
    open_lines = list(loan.installments.filter(settled_on__isnull=True))
    receivable, penalty = interest_receivable(open_lines), penalty_receivable(open_lines)
    loan.write_off()
    loan.written_off_amount = amount
    loan.closed_on = business_date()
    loan.save()
    # Written off against the loan loss allowance the loan holds (its ECL); what the allowance does not cover is
    # charged to impairment, and an allowance above the amount written off is released.
    held = loan_allowance_release_for_write_off(loan=loan, on=loan.closed_on)
    beyond = amount + receivable + penalty - held
    _post(loan, kind="write_off", on=loan.closed_on, key=f"loan:{loan.pk}:write_off", by=by,
          allowance=("Dr", held), impairment=("Dr", beyond) if beyond > 0 else ("Cr", -beyond), loan_principal=("Cr", amount),
          interest_receivable=("Cr", receivable), penalty_receivable=("Cr", penalty))
    compound = compound_receivable(open_lines)
    _post(loan, kind="write_off", on=loan.closed_on, key=f"loan:{loan.pk}:write_off:compound", by=by,
          impairment=("Dr", compound), compound_receivable=("Cr", compound))
    if before != "loss":
        _classification_set(loan=loan, to="loss", kind="write_off", reason=request.reason, by=request.requested_by, approved_by=by)
    EarlyWarning.objects.filter(loan=loan, status=EarlyWarning.Status.OPEN).update(status=EarlyWarning.Status.CLOSED,
                                                                                  closed_at=timezone.now())
    stage_event(loan, by=by)
    return {"written_off": f"{amount:.2f}"}


# ---------------------------------------------------------------- acceleration (宣布提前到期) and recovery after write-off
@transaction.atomic
def accelerate_request(*, loan: Loan, reason: str, by) -> tuple[ApprovalRequest | None, dict]:
    """宣布提前到期: the whole outstanding becomes due now. Through a second person's approval where the policy says so
    (returns the pending request), else at once (returns the result)."""
    _require(by, "postloan.accelerate")
    reason = _reason(reason)
    loan = Loan.objects.select_for_update().get(pk=loan.pk)
    if loan.status != Loan.Status.ACTIVE or loan.accelerated_on:
        raise Conflict(_("贷款不在存续状态或已宣布提前到期 / The loan is not active or already accelerated."),
                       state="accelerated" if loan.accelerated_on else loan.status)
    if policy_in_force(business_date()).accelerate_needs_approval:
        return _approval_open(loan=loan, kind=ApprovalRequest.Kind.ACCELERATE, params={}, reason=reason, by=by), {}
    return None, _accelerate_apply(loan=loan, reason=reason, by=by)


def _accelerate_apply(*, loan: Loan, reason: str, by, on: dt.date | None = None) -> dict:
    """Every installment not yet due becomes one installment due on the business date: the principal not yet due and
    the period's interest to the day. From the next day the whole of it is overdue (penalty, days past due). A replay
    (冲正) re-applies it on its own date `on` to the replayed loan (closed through the day before)."""
    if loan.status != Loan.Status.ACTIVE or loan.accelerated_on:
        raise Conflict(_("贷款不在存续状态或已宣布提前到期 / The loan is not active or already accelerated."), state=loan.status)
    replaying = _REPLAYING.get()
    if not replaying:
        loan_catch_up(loan=loan, by=by)
    on = on or business_date()
    rows = list(loan.installments.select_for_update().filter(superseded=False).order_by("n"))
    k = next((k for k, r in enumerate(rows) if r.settled_on is None and r.nominal > on), None)
    due_now = ZERO
    if k is not None:
        current = rows[k]
        interest = max(interest_to_day(loan, rows, k, on), current.paid_interest)
        for row in rows[k + 1:]:
            current.principal += row.principal - row.paid_principal
            current.interest_accrued += row.interest_accrued - row.paid_interest
            row.principal, row.interest, row.interest_accrued = row.paid_principal, row.paid_interest, row.paid_interest
            row.settled_on, row.superseded = on, True
        current.interest, current.due_date, current.nominal_due_date = interest, on, on
        Installment.objects.bulk_update(rows, ["principal", "interest", "interest_accrued", "due_date", "nominal_due_date",
                                               "settled_on", "superseded"])
    due_now = sum((r.due_remaining for r in rows if r.settled_on is None and not r.superseded), ZERO)
    loan.accelerated_on = loan.maturity_date = on
    loan.recall_requested_on = loan.recall_requested_on or on
    loan.save(update_fields=["accelerated_on", "maturity_date", "recall_requested_on"])
    if replaying:
        return {"accelerated_on": on.isoformat(), "due": f"{due_now:.2f}"}
    audit_record(actor=by, action="loan.accelerate", obj=loan, reason=reason, data={"on": on.isoformat(), "due": str(due_now)})
    stage_event(loan, by=by)
    return {"accelerated_on": on.isoformat(), "due": f"{due_now:.2f}"}


def recovery_record(*, loan: Loan, amount: Decimal, paid_on: dt.date, reference: str, by) -> tuple[Recovery, bool]:
    """账销案存: cash recovered on a written-off loan is booked against the loan and posted as recovery income
    (Dr clearing / Cr 核销贷款收回). Idempotent by reference; only a written-off loan takes one."""
    _require(by, "postloan.record_recovery")
    with transaction.atomic():
        loan = Loan.objects.select_for_update().get(pk=loan.pk)
        existing = Recovery.objects.filter(loan=loan, reference=reference).first()
        if existing:
            if existing.amount != amount or existing.paid_on != paid_on:
                raise Conflict(_("该流水号已用于另一笔收回 / This reference was already used for another recovery."),
                               state=loan.status)
            return existing, False
        if loan.status != Loan.Status.WRITTEN_OFF:
            raise Conflict(_("只有已核销的贷款才能登记核销后收回 / Only a written-off loan takes a recovery."), state=loan.status)
        if loan.closed_on and paid_on < loan.closed_on:
            raise ApplicationError(_("收回日期早于核销日 / The date is before the write-off."),
                                   errors={"paid_on": [_("不得早于 %(d)s / Not before %(d)s") % {"d": loan.closed_on}]})
        recovery = Recovery.objects.create(loan=loan, amount=amount, paid_on=paid_on, reference=reference, recorded_by=by)
        Loan.objects.filter(pk=loan.pk).update(recovered_amount=F("recovered_amount") + amount)
        _post(loan, kind="recovery", on=paid_on, key=f"recovery:{recovery.pk}", by=by, clearing=("Dr", amount),
              recovery_income=("Cr", amount))
        audit_record(actor=by, action="loan.recovery", obj=loan, data={"reference": reference, "amount": str(amount),
                                                                     "paid_on": paid_on.isoformat()})
    return recovery, True


# ---------------------------------------------------------------- the auto-debit authorisation (自动扣款授权)
@transaction.atomic
def loan_auto_debit_set(*, loan: Loan, enabled: bool, by, reason: str = "") -> tuple[Loan, bool]:
    """The borrower of the loan (or operations) revokes the auto-debit authorisation or grants it again: from the next
    close of business on, a revoked loan is not debited (what falls due is paid by transfer, or becomes overdue). Under
    the loan's row lock, audited; setting what already stands changes nothing (changed=False). Only an active loan."""
    roles.permission_check(by, "postloan.set_auto_debit_of", loan,
                           message=_("无权变更该贷款的自动扣款授权 / You may not change this loan's auto-debit authorisation."),
                           errors={"user": [_("须为借款人本人或运营人员 / Needs the borrower or operations.")]})
    loan = Loan.objects.select_for_update().get(pk=loan.pk)
    if loan.status != Loan.Status.ACTIVE:
        raise Conflict(_("贷款不在存续状态 / The loan is not active."), state=loan.status)
    if loan.auto_debit == enabled:
        return loan, False
    before = "granted" if loan.auto_debit else "revoked"
    loan.auto_debit = enabled
    loan.save(update_fields=["auto_debit"])
    audit_record(actor=by, action="loan.auto_debit.grant" if enabled else "loan.auto_debit.revoke", obj=loan,
                 from_state=before, to_state="granted" if enabled else "revoked", reason=(reason or "")[:300],
                 data={"on": business_date().isoformat()})
    return loan, True


# ---------------------------------------------------------------- reversal of a repayment (冲正), four eyes
@transaction.atomic
def reversal_request(*, loan: Loan, repayment: Repayment, reason: str, by) -> ApprovalRequest:
    """冲正 requested (operations); applied once another person (risk or an approver) approves it."""
    _require(by, "postloan.request_reversal")
    reason = _reason(reason)
    loan = Loan.objects.select_for_update().get(pk=loan.pk)
    _reversal_check(loan, repayment)
    if ApprovalRequest.objects.filter(loan=loan, kind=ApprovalRequest.Kind.REVERSAL, status=ApprovalRequest.Status.PENDING,
                                      params__repayment=repayment.pk).exists():
        raise Conflict(_("该笔还款已有待审批的冲正 / A reversal of this repayment is already pending."), state="pending")
    request = ApprovalRequest.objects.create(loan=loan, kind=ApprovalRequest.Kind.REVERSAL, reason=reason, requested_by=by,
                                             params={"repayment": repayment.pk, "reference": repayment.reference,
                                                     "amount": f"{repayment.amount:.2f}"})
    audit_record(actor=by, action="loan.approval_request.reversal", obj=loan, to_state=request.status, reason=reason,
                 data={"request": request.pk, "repayment": repayment.pk})
    return request


def _reversal_check(loan: Loan, repayment: Repayment) -> None:
    if repayment.loan_id != loan.pk:
        raise ApplicationError(_("不是该贷款的还款 / Not a repayment of this loan."), errors={"repayment": [str(repayment.pk)]},
                               code="not_found")
    if repayment.reversed_at:
        raise Conflict(_("该笔还款已冲正 / This repayment was already reversed."), state="reversed")
    if loan.status == Loan.Status.WRITTEN_OFF or not repayment.state_before:
        raise Conflict(_("贷款已核销或该笔还款无法重放，须人工处理 / Written off, or a payment the replay cannot redo: "
                         "handle by hand."), state=loan.status)


RESTRUCTURINGS = (ApprovalRequest.Kind.EXTENSION, ApprovalRequest.Kind.RESCHEDULE)


def _structural_events(loan: Loan) -> list[tuple[dt.date, str, ApprovalRequest | None]]:
    """The loan's restructurings and its acceleration, each with its business date, in order: what a replay re-applies
    on its date besides the repayments (non-accrual needs nothing: close of business decides it again)."""
    events = []
    for request in loan.approval_requests.filter(kind__in=RESTRUCTURINGS, status=ApprovalRequest.Status.APPROVED).order_by("pk"):
        on = request.result.get("on")  # (recorded before replays crossed restructurings: the day it was decided)
        events.append((dt.date.fromisoformat(on) if on else timezone.localdate(request.decided_at or request.requested_at),
                       "restructure", request))
    if loan.accelerated_on:
        events.append((loan.accelerated_on, "accelerate", None))
    return sorted(events, key=lambda e: e[0])


def _event_before(event: tuple, rep: Repayment) -> bool:
    """Did the restructuring or acceleration come before the repayment was applied? Its recorded state says (it was
    taken after the event); a state recorded before replays crossed events does not, then the dates do."""
    on, kind, _request = event
    seen = (rep.state_before or {}).get("loan", {})
    field = "restructured_on" if kind == "restructure" else "accelerated_on"
    if field not in seen:
        return on <= rep.paid_on
    return seen[field] is not None and dt.date.fromisoformat(seen[field]) >= on


def _replay_events(loan: Loan, reps: list[tuple[Repayment, dt.date]], *, base: Repayment | None) -> list[tuple]:
    """The repayments to re-apply (each with the date it applies after) merged with the restructurings and the
    acceleration that came after the state the replay starts from (`base`'s, or the opening): (kind, obj, date)."""
    events = [e for e in _structural_events(loan) if base is None or not _event_before(e, base)]
    out = []
    for rep, after in reps:
        while events and _event_before(events[0], rep):
            on, kind, request = events.pop(0)
            out.append((kind, request, on))
        out.append(("repayment", rep, after))
    return out + [(kind, request, on) for on, kind, request in events]


INCOME_OF = {"interest": "interest_income", "penalty": "penalty_income", "compound": "compound_income"}


def _applied_through(rep: Repayment) -> dt.date:
    """The last closed date of the loan when the repayment was applied (what a replay closes through before it)."""
    return Loan._meta.get_field("accrued_through").to_python(rep.state_before["loan"]["accrued_through"])


def _replay(loan: Loan, *, base: dict, events: list[tuple], through: dt.date, history_key: str) -> None:
    """Replay the loan (冲正, back-dated repayment): put it back as `base` recorded it, then for each event in order
    close the loan through the date it applies after and re-apply it — a repayment (its record says how it applies
    now), a restructuring (its new rows rebuilt, its result updated) or the acceleration, each on its own date —
    then close through `through` (the last closed date) again; non-accrual is decided again by close of business.
    Nothing is posted meanwhile: the caller posts the differences."""
    token = _REPLAYING.set(True)
    try:
        _restore(loan, base)
        if "accelerated_on" not in base["loan"] and any(kind == "accelerate" for kind, _obj, _on in events):
            loan.accelerated_on = None  # (a state recorded before replays crossed an acceleration)
        for kind, obj, on in events:
            if kind == "repayment":
                loans_close_through(loans=[loan], through=on, delinquency=False)
                _payment_apply(loan=loan, amount=obj.amount, paid_on=obj.paid_on, reference=obj.reference, by=obj.recorded_by,
                               channel=obj.channel, replay=obj, mode=obj.allocation.get("mode"), history_key=history_key)
                continue
            loans_close_through(loans=[loan], through=on - dt.timedelta(days=1), delinquency=False)
            if kind == "accelerate":
                if loan.status == Loan.Status.ACTIVE:
                    _accelerate_apply(loan=loan, reason="", by=None, on=on)
                continue
            first = obj.result.get(history_key) or {k: v for k, v in obj.result.items() if not k.startswith("before_")}
            if loan.status == Loan.Status.ACTIVE:
                obj.result = {**obj.result, **_restructure_apply(loan=loan, request=obj, by=obj.decided_by, on=on),
                              history_key: first}
            else:  # repaid before its date in the replay: it no longer applies (its rows stay void)
                obj.result = {**obj.result, "moved": {"penalty": "0.00", "compound": "0.00"}, "not_applied": True,
                              history_key: first}
            obj.save(update_fields=["result"])
        if loan.status == Loan.Status.ACTIVE:
            loans_close_through(loans=[loan], through=through, delinquency=False)
    finally:
        _REPLAYING.reset(token)


def _moved(loan: Loan) -> dict[str, Decimal]:
    """What the loan's restructurings moved from penalty and compound interest receivable into interest receivable
    (their rows no longer carry it as penalty: the income accounts still do)."""
    out = dict.fromkeys(INCOME_OF, ZERO)
    for request in loan.approval_requests.filter(kind__in=RESTRUCTURINGS, status=ApprovalRequest.Status.APPROVED):
        moved = request.result.get("moved")
        if moved is None:  # (recorded before replays crossed restructurings) its entry says
            moved = {"penalty": ZERO, "compound": ZERO}
            for line in JournalLine.objects.filter(entry__key=f"restructure:{request.pk}").select_related("account"):
                for t in ("penalty", "compound"):
                    if line.account.code == account_for(f"{t}_receivable", loan.product_code):
                        moved[t] += line.credit - line.debit
        p, c = Decimal(moved["penalty"]), Decimal(moved["compound"])
        out["penalty"], out["compound"], out["interest"] = out["penalty"] + p, out["compound"] + c, out["interest"] - p - c
    return out


def _income_of(lines, product: str) -> dict[str, Decimal]:
    """Interest, penalty and compound income in `lines` (in posting order), gross of the output VAT split from each
    (价税分离 puts the VAT line right after its income line, on the same side): what the accruals count."""
    out = dict.fromkeys(INCOME_OF, ZERO)
    codes = {account_for(role, product): t for t, role in INCOME_OF.items()}
    vat_codes = set(VatRule.objects.values_list("payable_account__code", flat=True))
    last = None
    for line in lines:
        code = line.account.code
        if code in codes:
            out[codes[code]] += line.credit - line.debit
            last = (line.entry_id, codes[code], bool(line.credit))
        elif code in vat_codes and last is not None and last[0] == line.entry_id and last[2] == bool(line.credit):
            out[last[1]] += line.credit - line.debit
            last = None
        else:
            last = None
    return out


def _differences_post(loan: Loan, *, today: dt.date, key: str, by, cash: Decimal = ZERO) -> dict[str, Decimal]:
    """After a replay: one entry on the business date that brings the loan's accounts to what the replayed loan says
    — balance-sheet accounts (and the non-accrual memo) to its sub-ledger; each income account to what the replayed
    loan earned: all it accrued, with what restructurings moved between kinds, less what stands off balance while
    non-accrual — with `cash` received (a back-dated repayment) debited to clearing. No closed date changes.
    Returns the lines."""
    loan.refresh_from_db()
    rows_all = list(loan.installments.all())
    ref = f"loan:{loan.pk}"
    off = loan.non_accrual_since is not None
    unpaid = dict(zip(INCOME_OF, _unpaid_accrued(rows_all), strict=True))
    lines: dict[str, Decimal] = {"clearing": cash} if cash else {}  # role → signed amount, + debit, − credit
    targets = {"loan_principal": loan.outstanding_principal if loan.status == Loan.Status.ACTIVE else ZERO,
               "interest_receivable": ZERO if off else unpaid["interest"],
               "penalty_receivable": ZERO if off else unpaid["penalty"],
               "compound_receivable": ZERO if off else unpaid["compound"],
               "off_balance_interest": sum(unpaid.values()) if off else ZERO,
               "off_balance_contra": -sum(unpaid.values()) if off else ZERO,
               "settlement": -(loan.principal + sum((r.unapplied for r in loan.repayments.filter(reversed_at__isnull=True)),
                                                    ZERO))}
    for role, target in targets.items():
        code = account_for(role, loan.product_code)
        net = _net_debit(code, today, ref)
        if target != net:
            lines[role] = target - net
    booked = _income_of(JournalLine.objects.filter(entry__reference=ref, entry__value_date__lte=today)
                        .select_related("account").order_by("entry_id", "id"), loan.product_code)
    moved = _moved(loan)
    for t, role in INCOME_OF.items():
        earned = sum((getattr(r, f"{t}_accrued") for r in rows_all), ZERO) + moved[t] - (unpaid[t] if off else ZERO)
        if earned != booked[t]:
            lines[role] = lines.get(role, ZERO) - (earned - booked[t])
    if any(lines.values()):
        _post(loan, kind="reversal" if not cash else "repayment", on=today, key=key, by=by,
              **{role: ("Dr", v) if v > 0 else ("Cr", -v) for role, v in lines.items() if v})
    return lines


def _reversal_apply(*, loan: Loan, request: ApprovalRequest, by) -> dict:
    """The opposite of the repayment's entries, the loan replayed from the repayment's value date without it (later
    repayments re-allocated, restructurings and the acceleration re-applied on their dates, accruals, penalty,
    non-accrual, days past due, classification floors), and the differences posted in one entry on the current
    business date: no closed date changes, nothing deleted."""
    repayment = Repayment.objects.select_for_update().get(pk=request.params["repayment"])
    _reversal_check(loan, repayment)
    today = business_date()
    if loan.status == Loan.Status.ACTIVE:
        loan_catch_up(loan=loan, by=by)
    ref = f"loan:{loan.pk}"
    own = Q(key=f"repayment:{repayment.pk}") | Q(key__startswith=f"repayment:{repayment.pk}:")
    for entry in JournalEntry.objects.filter(own, reference=ref).order_by("id"):
        entry_reverse(entry=entry, value_date=today, reason=request.reason, by=by)
    through = today - dt.timedelta(days=1)  # the last closed date: the replayed loan is closed through it again
    later = list(loan.repayments.filter(reversed_at__isnull=True).exclude(pk=repayment.pk)
                 .filter(Q(paid_on__gt=repayment.paid_on) | Q(paid_on=repayment.paid_on, pk__gt=repayment.pk))
                 .order_by("paid_on", "id"))
    events = _replay_events(loan, [(rep, _applied_through(rep)) for rep in later], base=repayment)
    _replay(loan, base=repayment.state_before, events=events, through=through, history_key="before_reversal")
    repayment.reversed_at = timezone.now()
    repayment.save(update_fields=["reversed_at"])
    lines = _differences_post(loan, today=today, key=f"reversal:{request.pk}", by=by)
    if loan.status == Loan.Status.ACTIVE:
        loan_refresh_delinquency(loan=loan, today=through)
    stage_event(loan, by=by)
    crossed = [kind if obj is None else f"{kind}:{obj.pk}" for kind, obj, _on in events if kind != "repayment"]
    audit_record(actor=by, action="loan.repayment.reverse", obj=loan, reason=request.reason,
                 data={"repayment": repayment.pk, "replayed": [r.pk for r in later], "crossed": crossed, "differences": {
                     k: str(v) for k, v in lines.items()}})
    return {"repayment": repayment.pk, "replayed": len(later), "crossed": crossed, "status": loan.status}


ZEROED_ON_OPENING = {"paid_principal": ZERO, "paid_interest": ZERO, "paid_penalty": ZERO, "paid_compound": ZERO,
                     "penalty_accrued": ZERO, "penalty_exact": None, "penalty_through": None, "compound_accrued": ZERO,
                     "compound_exact": None, "interest_accrued": ZERO, "interest_upfront": ZERO, "settled_on": None,
                     "superseded": False}


def _opening_state(loan: Loan) -> dict:
    """The loan as it was opened (what a replay from before its first repayment starts from): the schedule as the
    first repayment found it (only repayments rebuild it where no restructuring intervened), nothing paid or accrued."""
    first = loan.repayments.exclude(state_before={}).order_by("paid_on", "id").first()
    state = copy.deepcopy(first.state_before) if first else _snapshot(loan, list(loan.installments.all()))
    for row in state["rows"].values():
        row.update({f: _json(v) for f, v in ZEROED_ON_OPENING.items()})
    live = [r for r in state["rows"].values()]
    state["loan"].update({"outstanding_principal": _json(loan.principal), "status": Loan.Status.ACTIVE, "closed_on": None,
                          "accrued_through": _json(loan.disbursed_on), "non_accrual_since": None,
                          "maturity_date": max(r["due_date"] for r in live), "restructured_on": None,
                          "observation_until": None, "accelerated_on": None})
    return state


def _backdated_base(loan: Loan, paid_on: dt.date) -> tuple[list[Repayment], int | None] | None:
    """Where a back-dated repayment's replay starts: the state recorded before the last repayment applied by
    `paid_on` - 1 (its index in the live repayments), else the opening. None where it cannot: a written-off loan, or
    the opening when a restructuring or the acceleration came before the first repayment (the opening schedule is
    read from the first repayment's state)."""
    if loan.status == Loan.Status.WRITTEN_OFF:
        return None
    before = paid_on - dt.timedelta(days=1)
    active = list(loan.repayments.filter(reversed_at__isnull=True).exclude(state_before={}).order_by("paid_on", "id"))
    k = next((k for k in range(len(active) - 1, -1, -1) if _applied_through(active[k]) <= before), None)
    events = _structural_events(loan)
    if k is None and events and (not active or any(_event_before(e, active[0]) for e in events)):
        return None
    return active, k


def _backdated_apply(*, loan: Loan, amount: Decimal, paid_on: dt.date, reference: str, by, channel: str,
                     batch=None) -> Repayment:
    """A repayment whose value date is before the loan's last closed date (回溯入账): recorded, then the loan replayed
    from that value date with it (allocation, accruals, penalty, days past due, later repayments re-allocated,
    restructurings and the acceleration re-applied on their dates), as a reversal replays; the differences, with the
    cash, posted in one entry on the business date: no closed date changes. The replay starts from the state
    recorded before the last repayment applied by `paid_on` - 1, else from opening."""
    today, through = business_date(), loan.accrued_through
    before = paid_on - dt.timedelta(days=1)
    active, k = _backdated_base(loan, paid_on)
    base = active[k].state_before if k is not None else _opening_state(loan)
    replayed = active[k:] if k is not None else active
    try:
        with transaction.atomic():
            repayment = Repayment.objects.create(loan=loan, amount=amount, paid_on=paid_on, reference=reference, channel=channel,
                                                 batch=batch, recorded_by=by, allocation={})
    except IntegrityError:
        raise Conflict(_("重复的流水号 / Duplicate reference."), state=loan.status) from None
    reps = [(rep, _applied_through(rep)) for rep in replayed if rep.paid_on <= paid_on]
    reps.append((repayment, max(before, _applied_through(reps[-1][0]) if reps else before)))
    reps += [(rep, _applied_through(rep)) for rep in replayed if rep.paid_on > paid_on]
    events = _replay_events(loan, reps, base=active[k] if k is not None else None)
    _replay(loan, base=base, events=events, through=through, history_key="before_replay")
    repayment.refresh_from_db()
    repayment.allocation = {k: v for k, v in repayment.allocation.items() if k != "before_replay"}
    repayment.allocation["backdated"] = {"recorded_on": today.isoformat(), "replayed": [r.pk for r in replayed]}
    repayment.save(update_fields=["allocation"])
    lines = _differences_post(loan, today=today, key=f"repayment:{repayment.pk}:replay", by=by, cash=amount)
    if loan.status == Loan.Status.ACTIVE:
        loan_refresh_delinquency(loan=loan, today=through)
    stage_event(loan, by=by)
    audit_record(actor=by, action="loan.repayment", obj=loan, to_state=loan.status,
                 data={"reference": reference, "amount": str(amount), "channel": channel, "paid_on": paid_on.isoformat(),
                       "backdated": True, "replayed": [r.pk for r in replayed],
                       "crossed": [kind for kind, _obj, _on in events if kind != "repayment"],
                       "differences": {k: str(v) for k, v in lines.items()}})
    return repayment


def _net_debit(code: str, on: dt.date, reference: str) -> Decimal:
    sums = JournalLine.objects.filter(account__code=code, entry__value_date__lte=on, entry__reference=reference).aggregate(
        d=Sum("debit"), c=Sum("credit"))
    return (sums["d"] or ZERO) - (sums["c"] or ZERO)


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
        Loan.objects.filter(pk=task.loan_id, recall_requested_on__isnull=True).update(recall_requested_on=business_date())
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
    today = today or business_date()
    policy = policy_in_force(today)
    reasons = []

    def no(code, zh, en):
        reasons.append({"code": code, "message": f"{zh} / {en}"})

    if loan.status != Loan.Status.ACTIVE:
        no("not_active", "贷款不在存续状态", "The loan is not active")
    if loan.disbursement.kind == DisbursementOrder.Kind.DRAWDOWN:
        no("credit_line_drawdown", "循环额度项下的用信随借随还，额度续期须重新申请",
           "A credit-line drawdown is repaid at will; the line is renewed by a new application")
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
        today = business_date()
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
                                                                                              offered_on=business_date())
        offer.application, offer.amount, offer.requested_at = application, amount, timezone.now()
        offer.save()
        audit_record(actor=by, action=f"loan.{kind}.request", obj=loan, data={"application": application.pk, "amount": str(amount)})
    return offer


def renewal_offers_make(*, today: dt.date | None = None, limit: int = 2000) -> dict:
    """Nightly: offer renewal to the eligible loans whose renewal window is open and that have no offer yet.
    Per loan: the admission data is gathered (pulled where stale) without a lock, then the loan is locked,
    checked again on that data, and offered."""
    today = today or business_date()
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


# ---------------------------------------------------------------- the calendar: provisional due dates recomputed
@transaction.atomic
def schedules_recompute_for_years(*, years, by=None) -> dict:
    """When a year's official holidays are loaded (admin, `seed_calendar`, the `due_dates_recompute` command): each
    unpaid installment of an active loan due that year and not yet due on the business date takes its due date again
    from its nominal date by the contract's holiday rule (until then it was moved by weekends only: provisional); the
    loan's maturity follows its last installment. One audit event for the lot, naming every date moved."""
    from_years = sorted({int(y) for y in years})
    business_calendar_changed()
    cal = business_calendar()
    known = [y for y in from_years if y in cal.known_years]
    if not known:
        return {"years": from_years, "moved": 0, "loans": []}
    today = business_date()
    rows = list(Installment.objects.select_for_update(of=("self",)).select_related("loan")
                .filter(loan__status=Loan.Status.ACTIVE, loan__accelerated_on__isnull=True, settled_on__isnull=True,
                        superseded=False, due_date__gt=today)
                .filter(Q(nominal_due_date__year__in=known) | Q(due_date__year__in=known)).order_by("loan_id", "n"))
    adjusters: dict[str, object] = {}
    moved, changed = [], []
    for inst in rows:
        rule = inst.loan.due_date_rule or "none"
        if rule not in adjusters:
            adjusters[rule] = due_date_adjuster(rule)
        adjust = adjusters[rule]
        nominal = inst.nominal_due_date or inst.due_date
        new = adjust(nominal) if adjust else nominal
        if new != inst.due_date and new > today:
            moved.append({"loan": inst.loan_id, "n": inst.n, "from": inst.due_date.isoformat(), "to": new.isoformat()})
            inst.due_date = new
            changed.append(inst)
    Installment.objects.bulk_update(changed, ["due_date"], batch_size=1000)
    loan_ids = sorted({m["loan"] for m in moved})
    for loan in Loan.objects.filter(pk__in=loan_ids):
        last = loan.installments.filter(superseded=False).order_by("-n").values_list("due_date", flat=True).first()
        if last and last != loan.maturity_date:
            Loan.objects.filter(pk=loan.pk).update(maturity_date=last)
    if moved:
        audit_record(actor=by, action="loan.schedule.calendar_recompute", object_type="postloan.loan",
                     reason=f"holidays loaded: {', '.join(map(str, known))}",
                     data={"years": known, "moved": moved, "loans": loan_ids})
    return {"years": known, "moved": len(moved), "loans": loan_ids}
