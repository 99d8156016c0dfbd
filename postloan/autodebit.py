"""Auto-debit (自动扣款), the first step of close of business for each loan and date.

For a date D, each loan whose contract authorises it (`Loan.auto_debit`) and that has something due by D (the unpaid
installments due on or before D, with their penalty and compound interest to D) is debited that amount from the
borrower's settlement account through the core-banking adapter (`ledger.core_banking`). What the core debited is
allocated as a repayment on D in the contract's order (`repayment_record`: costs, interest, principal, oldest first);
a partial debit allocates what came; a failure leaves the installment to become overdue in the next step. Each try is
an `AutoDebitAttempt` (one per loan and date).

No network wait under a row lock: for a chunk of loans the loans are first brought to D − 1 (a short transaction
under their locks), the attempts are recorded, the core is asked with no transaction open, and only then the loans are
locked again and the debits applied, each checked again under the lock. Exactly once: an attempt is unique per loan
and date and its reference (`AD-<loan>-<yyyymmdd>`) is the key both core banking and the repayment de-duplicate on,
so a partition run again after a crash asks again only for the attempts it never finished, under the same reference,
and books nothing twice.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections import defaultdict
from contextlib import nullcontext
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from ledger.core_banking import CoreBankingError, DebitResult, core_banking
from ledger.services import entries_post
from loanservice.audit import audit_record_many
from loanservice.errors import ApplicationError, Conflict
from loanservice.sla import business_calendar

from .models import AutoDebitAttempt, Installment, Loan
from .policy import policy_in_force
from .quotes import installment_accrue_penalty, penalty_rate
from .services import delinquency_by_chunk, entries_collected, loans_close_through, repayment_record

log = logging.getLogger(__name__)
ZERO = Decimal("0.00")


def autodebit_reference(loan_id: int, on: dt.date) -> str:
    return f"AD-{loan_id}-{on:%Y%m%d}"


def _candidates(loan_ids: list[int], on: dt.date) -> list[int]:
    """Loans of the list that authorise auto-debit, are not yet closed for `on`, have an unpaid installment due by
    `on` (or an attempt for `on` a crash left unanswered), and have not been debited for `on` yet (a finished attempt
    is never made again)."""
    done = AutoDebitAttempt.objects.filter(on=on, status__in=AutoDebitAttempt.FINAL).values("loan_id")
    unfinished = AutoDebitAttempt.objects.filter(on=on, status=AutoDebitAttempt.Status.REQUESTED).values("loan_id")
    due = Q(installments__superseded=False, installments__settled_on__isnull=True, installments__due_date__lte=on)
    return list(Loan.objects.filter(pk__in=loan_ids, status=Loan.Status.ACTIVE, auto_debit=True)
                .filter(Q(accrued_through__lt=on) | Q(accrued_through__isnull=True))
                .filter(due | Q(pk__in=unfinished))  # an attempt a crash left unanswered is finished whatever was paid since
                .exclude(pk__in=done).order_by("pk").values_list("pk", flat=True).distinct())


def amounts_due(loans: list[Loan], on: dt.date) -> dict[int, Decimal]:
    """loan id → what is due on `on`: the unpaid installments due by then, with penalty and compound interest
    to the day, exactly as a repayment on `on` would allocate them."""
    policy, cal = policy_in_force(on), business_calendar()
    by_id = {x.pk: x for x in loans}
    due: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for inst in (Installment.objects.filter(loan_id__in=by_id, superseded=False, settled_on__isnull=True, due_date__lte=on)
                 .order_by("loan_id", "n")):
        projected = copy.copy(inst)
        installment_accrue_penalty(projected, on=on, rate=penalty_rate(by_id[inst.loan_id], policy), policy=policy, cal=cal)
        due[inst.loan_id] += (inst.due_remaining + projected.penalty_accrued - inst.paid_penalty
                              + projected.compound_accrued - inst.paid_compound)
    return {pk: amount for pk, amount in due.items() if amount > 0}


def _attempts_open(loans: list[Loan], on: dt.date) -> list[AutoDebitAttempt]:
    """The attempts to ask the core for: new ones (what is due now) and any left unfinished by a crash (asked again
    with the amount and reference first asked)."""
    unfinished = {a.loan_id: a for a in AutoDebitAttempt.objects.filter(loan__in=loans, on=on,
                                                                         status=AutoDebitAttempt.Status.REQUESTED)}
    fresh = [x for x in loans if x.pk not in unfinished]
    due = amounts_due(fresh, on) if fresh else {}
    accounts = dict(Loan.objects.filter(pk__in=due).values_list("pk", "disbursement__account"))
    AutoDebitAttempt.objects.bulk_create([
        AutoDebitAttempt(loan_id=pk, on=on, reference=autodebit_reference(pk, on), account=accounts.get(pk) or "",
                         requested=amount) for pk, amount in due.items()], ignore_conflicts=True)
    return list(AutoDebitAttempt.objects.filter(loan__in=loans, on=on, status=AutoDebitAttempt.Status.REQUESTED).order_by("loan_id"))


def _ask(attempts: list[AutoDebitAttempt]) -> dict[int, DebitResult | str]:
    """Ask core banking for each attempt (no transaction, no lock held): attempt id → its answer or the error."""
    adapter = core_banking()
    answers: dict[int, DebitResult | str] = {}
    for attempt in attempts:
        try:
            answers[attempt.pk] = adapter.debit(account=attempt.account, amount=attempt.requested,
                                                reference=attempt.reference, on=attempt.on)
        except CoreBankingError as exc:
            log.warning("auto-debit %s: core banking did not answer", attempt.reference, exc_info=True)
            answers[attempt.pk] = str(exc)[:200]
    return answers


def _apply(attempt: AutoDebitAttempt, loan: Loan, answer: DebitResult | str, *, paid_on: dt.date | None = None,
           entries: list | None = None) -> None:
    """Under the loan's lock: book what came as a repayment (on the attempt's date, or on `paid_on` for an attempt
    the core answers only later) and finish the attempt. With `entries`, the repayment's journal entries are added
    to it for the caller to post with the others of its transaction."""
    attempt.finished_at = timezone.now()
    if isinstance(answer, str):
        attempt.status, attempt.error = AutoDebitAttempt.Status.ERROR, answer
        attempt.save(update_fields=["status", "error", "finished_at"])
        return
    attempt.debited, attempt.core_reference, attempt.error = answer.debited, answer.core_reference, answer.error[:200]
    if answer.debited <= 0:
        attempt.status = AutoDebitAttempt.Status.FAILED
        attempt.error = attempt.error or _("未扣到款项 / Nothing was debited")
    else:
        attempt.status = (AutoDebitAttempt.Status.DEBITED if answer.debited >= attempt.requested
                          else AutoDebitAttempt.Status.PARTIAL)
        try:
            with entries_collected() if entries is not None else nullcontext() as pending, transaction.atomic():
                attempt.repayment, _created = repayment_record(loan=loan, amount=answer.debited, paid_on=paid_on or attempt.on,
                                                               reference=attempt.reference, by=None, channel="auto_debit")
            if entries is not None:
                entries.extend(pending)  # kept only once the repayment is saved
        except (ApplicationError, Conflict) as exc:  # e.g. the loan was paid off meanwhile: the money awaits return
            attempt.error = (_("已扣款但未能入账，待退回：%(e)s / Debited but not applied, to be returned: %(e)s")
                             % {"e": str(getattr(exc, "message", exc))})[:200]
    attempt.save(update_fields=["status", "debited", "core_reference", "error", "repayment", "finished_at"])


def _bring_to_eve(ids: list[int], on: dt.date) -> list[Loan]:
    """Close the loans through the day before `on` (accrual, penalty) so a debit on `on` finds them as a payment
    would: a short transaction under their locks, nothing asked of anyone."""
    with transaction.atomic():
        loans = list(Loan.objects.select_for_update(of=("self",)).filter(pk__in=ids).order_by("pk"))
        loans_close_through(loans=loans, through=on - dt.timedelta(days=1), delinquency=False)
    return loans


def _apply_all(attempts: list[AutoDebitAttempt], answers: dict, *, status: str, on: dt.date) -> None:
    """Lock the loans again, check each attempt is still waiting for this answer, apply it (one transaction). Days
    past due, floors and provisions of the debited loans are left to the partition's pass over each chunk."""
    with transaction.atomic(), delinquency_by_chunk():
        locked = {x.pk: x for x in Loan.objects.select_for_update(of=("self",))
                  .filter(pk__in=[a.loan_id for a in attempts]).order_by("pk")}
        events, entries = [], []
        for attempt in AutoDebitAttempt.objects.select_for_update().filter(
                pk__in=[a.pk for a in attempts], status=status).order_by("loan_id"):
            _apply(attempt, locked[attempt.loan_id], answers[attempt.pk], paid_on=on, entries=entries)
            events.append({"actor": None, "action": "loan.auto_debit", "obj": locked[attempt.loan_id],
                           "to_state": attempt.status,
                           "data": {"on": attempt.on.isoformat(), "booked_on": on.isoformat(), "reference": attempt.reference,
                                    "requested": str(attempt.requested), "debited": str(attempt.debited),
                                    "error": attempt.error}})
        entries_post(entries)  # the debits' entries, in the transaction that booked them
        if events:
            audit_record_many(events)


def _unanswered(loan_ids: list[int], on: dt.date) -> list[AutoDebitAttempt]:
    """Earlier attempts the core never answered (`error`) of active loans not yet closed for `on`."""
    return list(AutoDebitAttempt.objects.filter(loan_id__in=loan_ids, on__lt=on, status=AutoDebitAttempt.Status.ERROR,
                                                loan__status=Loan.Status.ACTIVE)
                .filter(Q(loan__accrued_through__lt=on) | Q(loan__accrued_through__isnull=True)).order_by("loan_id"))


def autodebit_loans(*, loan_ids: list[int], on: dt.date, chunk: int = 100) -> dict:
    """Auto-debit the loans of the list for `on` (a close-of-business partition, before it closes them); see the
    module. Two queries find the few loans concerned; they are then handled `chunk` at a time. First the earlier
    attempts the core never answered are asked again under their own reference (the core may have debited before it
    went silent): what it says it debited is booked on `on`, the day it became known."""
    asked = 0
    unanswered = _unanswered(loan_ids, on)
    for k in range(0, len(unanswered), chunk):
        part = unanswered[k:k + chunk]
        _bring_to_eve(sorted({a.loan_id for a in part}), on)
        _apply_all(part, _ask(part), status=AutoDebitAttempt.Status.ERROR, on=on)
        asked += len(part)
    ids = _candidates(loan_ids, on)
    for k in range(0, len(ids), chunk):
        loans = _bring_to_eve(ids[k:k + chunk], on)
        attempts = _attempts_open(loans, on)
        answers = _ask(attempts)  # the network: no transaction open, no row locked
        _apply_all(attempts, answers, status=AutoDebitAttempt.Status.REQUESTED, on=on)
        asked += len(attempts)
    return {"on": on, "asked": asked}


def autodebit_summary(*, on: dt.date) -> dict:
    """The day's auto-debits for the finance pages: counts and amounts by result, and the failures."""
    rows = AutoDebitAttempt.objects.filter(on=on)
    by_status = {r["status"]: {"count": r["count"], "requested": r["requested"] or ZERO, "debited": r["debited"] or ZERO}
                 for r in rows.values("status").annotate(count=Count("id"), requested=Sum("requested"),
                                                          debited=Sum("debited")).order_by("status")}
    return {"on": on, "count": sum(x["count"] for x in by_status.values()),
            "requested": sum((x["requested"] for x in by_status.values()), ZERO),
            "debited": sum((x["debited"] for x in by_status.values()), ZERO),
            "by_status": [{"status": status, "label": AutoDebitAttempt.Status(status).label, **by_status[status]}
                          for status in AutoDebitAttempt.Status.values if status in by_status],
            "failures": list(rows.exclude(status=AutoDebitAttempt.Status.DEBITED)
                             .select_related("loan__enterprise").order_by("loan_id")[:100])}
