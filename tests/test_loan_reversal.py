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
from postloan.models import ApprovalRequest, Repayment
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
