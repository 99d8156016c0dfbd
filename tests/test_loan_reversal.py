"""Reversal of a repayment (冲正), four eyes: the opposite entries, the loan replayed from the repayment's value date
without it (later repayments re-allocated, penalty, days past due), the differences posted on the business date
(no closed date changes), nothing deleted. Checked against a twin loan that never had the repayment."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from ledger.models import JournalEntry
from ledger.selectors import trial_balance
from loanservice.business_date import business_date_set
from postloan.models import ApprovalRequest, Loan, Repayment
from postloan.services import repayment_record
from tests.conftest import client_for
from tests.factories import ApplicantFactory, FastTrackLoanFactory
from tests.test_loan_servicing import DISBURSED, book_agrees

pytestmark = pytest.mark.django_db
D = Decimal


def _loan(seed, name):
    with time_machine.travel(dt.datetime.combine(DISBURSED, dt.time(2)), tick=False):
        return FastTrackLoanFactory(owner=ApplicantFactory(username=name), seed=seed)


def _pay(loan, amount, on, ref, by):
    business_date_set(on + dt.timedelta(days=1))
    with time_machine.travel(dt.datetime.combine(on + dt.timedelta(days=1), dt.time(12)), tick=False):
        return repayment_record(loan=loan, amount=amount, paid_on=on, reference=ref, by=by)[0]


def _state(loan):
    loan.refresh_from_db()
    rows = [(r.n, r.paid_principal, r.paid_interest, r.paid_penalty, r.paid_compound, r.penalty_accrued,
             r.compound_accrued, r.interest_accrued, r.settled_on) for r in loan.installments.filter(superseded=False)]
    return loan.outstanding_principal, loan.dpd, loan.status, rows


@pytest.fixture
def twins(products, org):
    a, b = _loan(51, "rev_a"), _loan(53, "rev_b")  # two seeds the scorecard prices alike
    if (a.annual_rate, a.principal, a.disbursed_on) != (b.annual_rate, b.principal, b.disbursed_on):
        pytest.skip("the twin loan was priced differently")
    return a, b


def test_reversal_replays_the_loan_as_if_the_repayment_never_was(twins, org):
    loan, twin = twins
    ops, risk = org["demo_ops"], org["demo_risk"]
    first, second = loan.installments.get(n=1), loan.installments.get(n=2)
    r1 = _pay(loan, first.total, first.due_date, "R1", ops)                          # on time: reversed later
    late = second.due_date + dt.timedelta(days=12)
    r2 = _pay(loan, second.total + D("5000.00"), late, "R2", ops)                     # late, with penalty
    _pay(twin, second.total + D("5000.00"), late, "R2", ops)                          # the twin never had R1
    today = late + dt.timedelta(days=20)
    business_date_set(today)
    from postloan.services import loan_catch_up

    for x in (loan, twin):  # close of business has run through yesterday
        loan_catch_up(loan=x)
    url = f"/api/v1/loans/{loan.pk}/repayments/{r1.pk}/reverse/"
    with time_machine.travel(dt.datetime.combine(today, dt.time(12)), tick=False):
        by_rm = client_for(org["demo_rm"]).post(url, {"reason": "错账"}, format="json")
        no_reason = client_for(ops).post(url, {}, format="json")
        wrong_loan = client_for(ops).post(f"/api/v1/loans/{twin.pk}/repayments/{r1.pk}/reverse/", {"reason": "x"}, format="json")
        asked = client_for(ops).post(url, {"reason": "核心系统退票 / returned by core banking"}, format="json")
        twice = client_for(ops).post(url, {"reason": "again"}, format="json")
        pk = asked.json()["id"]
        by_requester = client_for(ops).post(f"/api/v1/reversals/{pk}/approve/")
        by_borrower = client_for(loan.borrower).post(f"/api/v1/reversals/{pk}/approve/")
        before = set(JournalEntry.objects.values_list("pk", flat=True))
        approved = client_for(risk).post(f"/api/v1/reversals/{pk}/approve/")
        again = client_for(org["demo_branch_approver"]).post(f"/api/v1/reversals/{pk}/approve/")
    assert (by_rm.status_code, no_reason.status_code, wrong_loan.status_code) == (403, 400, 404)
    assert asked.status_code == 201 and asked.json()["status"] == "pending" and twice.status_code == 409
    assert by_requester.status_code == 403 and by_borrower.status_code == 403
    assert approved.status_code == 200 and approved.json()["status"] == "approved" and again.status_code == 409
    assert ApprovalRequest.objects.get(pk=pk).kind == "reversal"

    # nothing deleted; the opposite entries and the differences are dated on the business date
    r1.refresh_from_db()
    assert r1.reversed_at is not None and Repayment.objects.filter(pk=r1.pk).exists()
    new = JournalEntry.objects.exclude(pk__in=before)
    assert new.exists() and set(new.values_list("value_date", flat=True)) == {today}
    assert new.filter(reverses__key=f"repayment:{r1.pk}").exists()
    # the loan replayed: exactly the twin that never had R1 (R2 now pays installment 1 first, with its penalty)
    assert _state(loan) == _state(twin)
    r2.refresh_from_db()
    assert r2.allocation["lines"][0]["n"] == 1 and "before_reversal" in r2.allocation
    book_agrees(loan, today)
    assert trial_balance(on=today).balanced
    # the repayment is reversed once
    with time_machine.travel(dt.datetime.combine(today, dt.time(12)), tick=False):
        assert client_for(ops).post(url, {"reason": "again"}, format="json").status_code == 409


def test_reversing_the_payoff_reopens_the_loan(products, org):
    from postloan.quotes import payoff_quote
    from postloan.services import approval_request_decide, reversal_request

    loan = _loan(52, "rev_c")
    on = dt.date(2026, 1, 20)
    business_date_set(on)
    total = payoff_quote(loan=loan, on=on)["total"]
    rep = _pay(loan, total, on, "ALL", org["demo_ops"])
    loan.refresh_from_db()
    assert loan.status == "closed"
    business_date_set(on + dt.timedelta(days=3))
    with time_machine.travel(dt.datetime.combine(on + dt.timedelta(days=3), dt.time(12)), tick=False):
        request = reversal_request(loan=loan, repayment=rep, reason="退票", by=org["demo_ops"])
        approval_request_decide(request=request, approve=True, by=org["demo_risk"])
    loan.refresh_from_db()
    assert loan.status == "active" and loan.closed_on is None and loan.outstanding_principal == loan.principal
    assert loan.installments.filter(superseded=False).count() == 12
    book_agrees(loan, on + dt.timedelta(days=3))


# ---------------------------------------------------------------- a replay across restructuring, acceleration, non-accrual
INCOME = ("6011", "601102", "601103", "2221")  # interest, penalty, compound income and their output VAT (价税分离)


def _books(loan, on):
    """The loan's GL as the replay must leave it: control accounts, the memo, and income with its VAT."""
    from ledger.selectors import account_balance

    ref = f"loan:{loan.pk}"
    accounts = ("1301", "1132", "1133", "1134", "7001", "7002", "2011", "3001")
    out = {a: account_balance(account=a, on=on, reference=ref) for a in accounts}
    out["income"] = sum((account_balance(account=a, on=on, reference=ref) for a in INCOME), D(0))
    return out


def _event(kind, loan, on, org):
    """The same servicing event, on the same business date, for the loan and its twin."""
    from postloan.services import (
        accelerate_request,
        approval_request_decide,
        loan_catch_up,
        restructure_request,
    )

    business_date_set(on)
    with time_machine.travel(dt.datetime.combine(on, dt.time(11)), tick=False):
        loan.refresh_from_db()
        loan_catch_up(loan=loan)
        if kind == "extension":
            request = restructure_request(loan=loan, kind="extension", extra_months=3, reason="季节性困难", by=org["demo_rm"])
        elif kind == "reschedule":
            request = restructure_request(loan=loan, kind="reschedule", term_months=18, reason="困难", by=org["demo_rm"])
        else:
            request, _result = accelerate_request(loan=loan, reason="挪用", by=org["demo_risk"])
        if request is not None:
            approval_request_decide(request=request, approve=True, by=org["demo_branch_approver"])


@pytest.mark.parametrize("event", ["extension", "reschedule", "accelerate", "non_accrual"])
def test_a_reversal_replays_across_restructuring_acceleration_and_non_accrual(twins, org, event):
    """Pay installment 1 on time; then (on the same business dates for both) a restructuring, an acceleration or
    more than 90 days past due (non-accrual), and a later payment; then reverse the first payment. The loan ends
    as its twin that never had the payment: schedule, allocation, accruals, DPD, non-accrual and the GL, with the
    differences dated on the business date and no closed date changed."""
    from postloan.models import PostloanPolicy
    from postloan.services import approval_request_decide, loan_catch_up, reversal_request

    PostloanPolicy.objects.update(accelerate_needs_approval=True)
    loan, twin = twins
    ops, risk = org["demo_ops"], org["demo_risk"]
    first = loan.installments.get(n=1)
    r1 = _pay(loan, first.total, first.due_date, "R1", ops)
    if event == "non_accrual":  # the twin, never paid, passes 90 days past due a month before the loan
        when = first.due_date + dt.timedelta(days=130)
    else:
        when = first.due_date + dt.timedelta(days=45)
        for x in (loan, twin):
            _event(event, x, when, org)
    later = when + dt.timedelta(days=10)
    for x in (loan, twin):
        _pay(x, D("3000.00"), later, "R2", ops)
    today = later + dt.timedelta(days=25)
    business_date_set(today)
    for x in (loan, twin):
        x.refresh_from_db()
        loan_catch_up(loan=x)
    if event == "non_accrual":
        assert loan.non_accrual_since is not None
    before = set(JournalEntry.objects.values_list("pk", flat=True))
    closed = loan.accrued_through
    with time_machine.travel(dt.datetime.combine(today, dt.time(12)), tick=False):
        request = reversal_request(loan=loan, repayment=r1, reason="退票", by=ops)
        approval_request_decide(request=request, approve=True, by=risk)
    loan.refresh_from_db()
    twin.refresh_from_db()
    assert loan.accrued_through == closed == twin.accrued_through  # no closed date changes
    new = JournalEntry.objects.exclude(pk__in=before)
    assert new.exists() and set(new.values_list("value_date", flat=True)) == {today}
    assert _state(loan) == _state(twin)
    assert (loan.non_accrual_since, loan.accelerated_on, loan.restructured_on, loan.maturity_date) == (
        twin.non_accrual_since, twin.accelerated_on, twin.restructured_on, twin.maturity_date)
    assert loan.classification == twin.classification
    assert _books(loan, today) == _books(twin, today)
    book_agrees(loan, today)
    assert trial_balance(on=today).balanced


def test_a_back_dated_repayment_replays_across_a_restructuring(twins, org):
    """Both pay installment 1 on time and are extended 45 days later; the twin paid 2,000.00 twenty days after the
    due date, the loan's same payment arrives only after the extension, back-dated: the replay re-applies the
    extension on its date, and the loan ends as the twin, the cash and the differences on the business date."""
    from postloan.services import loan_catch_up

    loan, twin = twins
    ops = org["demo_ops"]
    first = loan.installments.get(n=1)
    for x in (loan, twin):
        _pay(x, first.total, first.due_date, "R1", ops)
    paid_on = first.due_date + dt.timedelta(days=20)
    _pay(twin, D("2000.00"), paid_on, "LATE", ops)
    when = first.due_date + dt.timedelta(days=45)
    for x in (loan, twin):
        _event("extension", x, when, org)
    today = when + dt.timedelta(days=20)
    business_date_set(today)
    for x in (loan, twin):
        x.refresh_from_db()
        loan_catch_up(loan=x)
    closed = Loan.objects.get(pk=loan.pk).accrued_through
    with time_machine.travel(dt.datetime.combine(today, dt.time(12)), tick=False):
        rep, created = repayment_record(loan=loan, amount=D("2000.00"), paid_on=paid_on, reference="LATE", by=ops)
    assert created and rep.allocation["backdated"]["recorded_on"] == today.isoformat()
    loan.refresh_from_db()
    twin.refresh_from_db()
    assert loan.accrued_through == closed
    assert _state(loan) == _state(twin)
    assert (loan.restructured_on, loan.maturity_date, loan.observation_until) == (
        twin.restructured_on, twin.maturity_date, twin.observation_until)
    assert _books(loan, today) == _books(twin, today)
    book_agrees(loan, today)
