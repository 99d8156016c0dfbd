"""Repayments: allocation penalty → interest → principal oldest first, penalty arithmetic, partial and
early repayment under the product's prepayment rule, idempotence by reference."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from loanservice.errors import ApplicationError
from tests.conftest import client_for

pytestmark = pytest.mark.django_db



# Disbursed on a 31st, so the due dates fall on month ends (31 Jan, 28 Feb, 31 Mar ...), across the 2026 Spring
# Festival and its make-up workdays. A fixed day, not one derived from today: the official calendar, the sandbox's
# data (which ages with the date) and so the tests' outcomes would otherwise depend on the day the suite runs.
DISBURSED = dt.date(2025, 12, 31)


@pytest.fixture
def owner(db):
    from tests.factories import ApplicantFactory

    return ApplicantFactory(username="pl_owner")


@pytest.fixture
def loan(products, org, owner):
    from tests.factories import FastTrackLoanFactory

    with time_machine.travel(dt.datetime.combine(DISBURSED, dt.time(2)), tick=False):
        return FastTrackLoanFactory(owner=owner, seed=31)


def pay(loan, amount, on, ref, by):
    from postloan.services import repayment_record

    with time_machine.travel(dt.datetime.combine(on, dt.time(12)), tick=False):
        return repayment_record(loan=loan, amount=amount, paid_on=on, reference=ref, by=by)[0]




def _ops(org):
    return org["demo_ops"]


def _rate(loan):
    return loan.annual_rate * (1 + loan.penalty_markup)  # the contract's markup, fixed at signing


def _r(x):
    return x.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")


def test_penalty_then_interest_then_principal_oldest_first(loan, org):
    assert loan.disbursed_on == DISBURSED and loan.product_code == "xinmiaodai"
    first = loan.installments.get(n=1)
    late = first.due_date + dt.timedelta(days=10)
    # 罚息 on the overdue principal, 复利 on the overdue interest, each at the contract's penalty rate
    penalty = _r(first.principal * _rate(loan) * 10 / 360)
    compound = _r(first.interest * _rate(loan) * 10 / 360)
    assert penalty > 0 and compound > 0
    rep = pay(loan, penalty + compound + first.interest + Decimal("100.00"), late, "R1", _ops(org))
    assert (rep.penalty_paid, rep.compound_paid, rep.interest_paid, rep.principal_paid) == (
        penalty, compound, first.interest, Decimal("100.00"))
    assert [a["part"] for a in rep.allocation["lines"]] == ["penalty", "compound", "interest", "principal"]
    first.refresh_from_db()
    assert first.settled_on is None and first.paid_principal == Decimal("100.00")
    loan.refresh_from_db()
    assert loan.dpd == 10 and loan.bucket == "M1" and loan.classification == "special_mention"
    assert loan.outstanding_principal == Decimal("300000.00") - Decimal("100.00")

    # five days later the penalty has accrued only on the principal still unpaid
    later = late + dt.timedelta(days=5)
    second_penalty = _r((first.principal - Decimal("100.00")) * _rate(loan) * 5 / 360)
    rep2 = pay(loan, second_penalty + first.principal - Decimal("100.00"), later, "R2", _ops(org))
    assert rep2.penalty_paid == second_penalty and rep2.compound_paid == 0 and rep2.unapplied == 0
    first.refresh_from_db()
    assert first.settled_on == later and first.paid_penalty == penalty + second_penalty
    loan.refresh_from_db()
    assert loan.dpd == 0 and loan.bucket == "M0"
    assert loan.classification == "special_mention"  # an upgrade needs an approval, it is never automatic

    # two installments overdue: the oldest is paid first, each penalty → compound → interest → principal
    second, third = loan.installments.get(n=2), loan.installments.get(n=3)
    on = third.due_date + dt.timedelta(days=3)
    days2 = (on - second.due_date).days
    pen2, com2 = _r(second.principal * _rate(loan) * days2 / 360), _r(second.interest * _rate(loan) * days2 / 360)
    pen3, com3 = _r(third.principal * _rate(loan) * 3 / 360), _r(third.interest * _rate(loan) * 3 / 360)
    rep = pay(loan, pen2 + com2 + second.total + pen3 + com3 + Decimal("10.00"), on, "R3", _ops(org))
    second.refresh_from_db()
    third.refresh_from_db()
    assert second.settled_on == on and (second.paid_penalty, second.paid_compound) == (pen2, com2)
    assert (third.paid_penalty, third.paid_compound) == (pen3, com3)
    assert third.paid_interest == Decimal("10.00") and third.paid_principal == 0
    assert [(a["n"], a["part"]) for a in rep.allocation["lines"]] == [
        (2, "penalty"), (2, "compound"), (2, "interest"), (2, "principal"), (3, "penalty"), (3, "compound"), (3, "interest")]
    with pytest.raises(ApplicationError) as exc:  # back-dated after a later payment: refused, naming the field
        pay(loan, Decimal("10.00"), on - dt.timedelta(days=1), "R-old", _ops(org))
    assert "paid_on" in exc.value.errors


def test_early_payment_prepayment_rules_idempotence_and_payoff(loan, org):
    from postloan.models import PrepaymentRule

    first = loan.installments.get(n=1)
    client = client_for(_ops(org))
    body = {"amount": f"{first.total:.2f}", "paid_on": (first.due_date - dt.timedelta(days=3)).isoformat(), "reference": "CB-0001"}
    with time_machine.travel(dt.datetime.combine(first.due_date - dt.timedelta(days=3), dt.time(12)), tick=False):
        r1 = client.post(f"/api/v1/loans/{loan.pk}/repayments/", body, format="json")
        r2 = client.post(f"/api/v1/loans/{loan.pk}/repayments/", body, format="json")
        r3 = client.post(f"/api/v1/loans/{loan.pk}/repayments/", {**body, "amount": "1.00"}, format="json")
        r4 = client.post(f"/api/v1/loans/{loan.pk}/repayments/", {**body, "reference": "CB-2", "amount": "-5"}, format="json")
        detail = client_for(loan.borrower).get(f"/api/v1/loans/{loan.pk}/").json()
    assert (r1.status_code, r2.status_code, r3.status_code, r4.status_code) == (201, 200, 409, 400)
    assert r1.json()["id"] == r2.json()["id"] and "amount" in r4.json()["errors"]
    # paying the current installment a few days early is not a prepayment
    assert r1.json()["prepaid_principal"] == "0.00" and r1.json()["unapplied"] == "0.00"
    assert detail["schedule"][0]["paid"] == f"{first.total:.2f}" and detail["next_due"]["n"] == 2
    assert {"status", "principal", "annual_rate", "term_months", "repayment_method", "outstanding", "dpd", "bucket",
            "classification", "schedule"} <= set(detail)

    # default rule: prepayment allowed, no fee, the installment is reduced, the term kept
    second = loan.installments.get(n=2)
    before = loan.installments.get(n=3).total
    rep = pay(loan, second.total + Decimal("100000.00"), second.due_date, "R-pre", _ops(org))
    assert rep.prepaid_principal == Decimal("100000.00") and rep.prepayment_fee == 0 and rep.unapplied == 0
    loan.refresh_from_db()
    rest = list(loan.installments.filter(n__gt=2).order_by("n"))
    assert len(rest) == 10 and rest[0].total < before
    assert sum(i.principal for i in rest) == loan.outstanding_principal

    # a product rule changed after signing does not change the contract: still no fee, the installment lowered
    PrepaymentRule.objects.create(product_code="xinmiaodai", fee_rate=Decimal("0.0100"), fee_free_after_months=12,
                                  mode="reduce_term", allowed=False)
    third = loan.installments.get(n=3)
    rep = pay(loan, third.total + Decimal("50500.00"), third.due_date, "R-fee", _ops(org))
    assert rep.prepaid_principal == Decimal("50500.00") and rep.prepayment_fee == 0 and rep.unapplied == 0

    # paying everything off closes the loan
    loan.refresh_from_db()
    fifth = loan.installments.get(n=4)
    rep = pay(loan, fifth.interest + loan.outstanding_principal + Decimal("7.00"), fifth.due_date, "R-all", _ops(org))
    loan.refresh_from_db()
    assert loan.status == "closed" and loan.outstanding_principal == 0 and rep.unapplied == Decimal("7.00")


@pytest.fixture
def fee_loan(products, org, owner):
    """A loan signed while the product's rule named a 1 % fee in the first year and a shortened term."""
    from postloan.models import PrepaymentRule
    from tests.factories import FastTrackLoanFactory

    PrepaymentRule.objects.create(product_code="xinmiaodai", fee_rate=Decimal("0.0100"), fee_free_after_months=12,
                                  mode="reduce_term")
    with time_machine.travel(dt.datetime.combine(DISBURSED, dt.time(2)), tick=False):
        loan = FastTrackLoanFactory(owner=owner, seed=32)
    PrepaymentRule.objects.filter(product_code="xinmiaodai").update(allowed=False)  # later edits: not the contract's
    return loan


def test_the_contracts_prepayment_fee_and_mode(fee_loan, org):
    loan = fee_loan
    assert loan.prepayment_terms["fee_rate"] == "0.0100" and loan.prepayment_terms["mode"] == "reduce_term"
    third = loan.installments.get(n=3)
    for n in (1, 2, 3):
        inst = loan.installments.get(n=n)
        pay(loan, inst.total + (Decimal("50500.00") if n == 3 else 0), inst.due_date, f"R{n}", _ops(org))
    rep = loan.repayments.get(reference="R3")
    assert rep.prepaid_principal == Decimal("50000.00") and rep.prepayment_fee == Decimal("500.00") and rep.unapplied == 0
    loan.refresh_from_db()
    rest = list(loan.installments.filter(n__gt=3, superseded=False).order_by("n"))
    assert len(rest) < 9 and sum(i.principal for i in rest) == loan.outstanding_principal
    assert loan.maturity_date == rest[-1].due_date
    assert loan.installments.filter(superseded=True).count() == 9 - len(rest)  # kept, not deleted
    assert third.due_date < rest[0].due_date
