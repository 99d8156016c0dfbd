"""随借随还 (`daily_interest`): interest by the day on what is outstanding, principal at will or at maturity (#18).

The schedule, the product and the contract texts, and the loan book: close of business accrues by the day, a partial
repayment of principal at any time lowers the period's interest from that day (no fee, no due date moved), the payoff
quote is principal + interest to the day. Every figure is checked against plain formulas computed here."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.template import Context
from django.utils import translation

from contracts.models import ContractTemplate
from contracts.schedules import add_months, build_schedule
from contracts.services import template_engine
from loanservice.business_date import business_date_set
from loanservice.labels import label
from postloan.quotes import payoff_quote, prepayment_quote
from postloan.services import loan_close_through, prepayment_make, repayment_record
from tests.factories import ApplicantFactory, FastTrackLoanFactory
from tests.test_loan_servicing import book_agrees

D = Decimal
DISBURSED = dt.date(2026, 1, 6)


def r2(x) -> Decimal:
    return D(str(x)).quantize(D("0.01"), rounding=ROUND_HALF_UP)


def days_interest(balance, rate, days) -> Decimal:
    """The plain formula: balance × annual rate × actual days / 360, to the cent."""
    return r2(D(balance) * D(rate) * days / 360)


def at(day: dt.date):
    return time_machine.travel(dt.datetime.combine(day, dt.time(12)), tick=False)


# ---------------------------------------------------------------- the schedule
@pytest.mark.parametrize("repayment_day", [None, 20, 31])
def test_schedule_charges_each_periods_actual_days_on_the_full_balance_and_principal_at_maturity(repayment_day):
    start, rate, term = dt.date(2024, 1, 31), D("0.0720"), 7
    lines = build_schedule(principal=D("250000.00"), annual_rate=rate, term_months=term, method="daily_interest",
                           start_date=start, repayment_day=repayment_day)
    day = repayment_day or start.day
    dues = [add_months(start, n, day) for n in range(1, term + 1)]
    assert [x.due_date for x in lines] == dues
    begins = [start, *dues[:-1]]
    assert [x.interest for x in lines] == [days_interest("250000.00", rate, (e - b).days) for b, e in zip(begins, dues, strict=True)]
    assert [x.principal for x in lines] == [D("0.00")] * (term - 1) + [D("250000.00")]
    assert [x.balance for x in lines] == [D("250000.00")] * (term - 1) + [D("0.00")]
    assert all(x.total == x.principal + x.interest for x in lines)
    # a 29-day February and a 31-day March are charged their own days (unlike 先息后本's annual / 12)
    if repayment_day is None:
        assert lines[0].interest == days_interest("250000.00", rate, 29) != lines[1].interest
        monthly = build_schedule(principal=D("250000.00"), annual_rate=rate, term_months=term, method="interest_only",
                                 start_date=start)
        assert {x.interest for x in monthly} == {D("1500.00")}


def test_schedule_adjusted_due_dates_keep_the_nominal_days_and_grace_is_refused():
    monday = lambda d: d + dt.timedelta(days=(7 - d.weekday()) % 7) if d.weekday() >= 5 else d  # noqa: E731
    plain = build_schedule(principal=D("100000.00"), annual_rate=D("0.05"), term_months=12, method="daily_interest",
                           start_date=dt.date(2024, 1, 10))
    moved = build_schedule(principal=D("100000.00"), annual_rate=D("0.05"), term_months=12, method="daily_interest",
                           start_date=dt.date(2024, 1, 10), adjust_due_date=monday)
    assert [x.interest for x in moved] == [x.interest for x in plain]
    assert [x.due_date for x in moved] == [monday(x.due_date) for x in plain]
    assert sum(x.interest for x in plain) == sum(
        (days_interest("100000.00", "0.05", (add_months(dt.date(2024, 1, 10), n) - add_months(dt.date(2024, 1, 10), n - 1)).days)
         for n in range(1, 13)), D(0))
    with pytest.raises(ValueError, match="grace_months"):
        build_schedule(principal=D("1000.00"), annual_rate=D("0.05"), term_months=6, method="daily_interest",
                       start_date=dt.date(2024, 1, 10), grace_months=1)


# ---------------------------------------------------------------- product, labels, contract texts
@pytest.mark.django_db
def test_products_accept_daily_interest_and_refuse_unknown_methods(products):
    product = products["xinmiaodai"]
    product.repayment_methods = ["equal_installment", "daily_interest"]
    product.full_clean()
    for bad in (["monthly_magic"], [], "daily_interest"):
        product.repayment_methods = bad
        with pytest.raises(ValidationError) as err:
            product.full_clean()
        assert "repayment_methods" in err.value.message_dict
    # named in words (the catalogs give each language its half once the lead regenerates them)
    with translation.override("zh-hans"):
        assert label("daily_interest", "repayment_method").startswith("随借随还")
    with translation.override("en"):
        assert "daily interest" in label("daily_interest", "repayment_method").lower()


# ---------------------------------------------------------------- the loan book
@pytest.fixture
def loan(products, org):
    """400,000 over 6 months, 随借随还, repayment day 20 (a broken first period), disbursed 6 Jan 2026."""
    product = products["xinmiaodai"]
    product.repayment_methods = [*product.repayment_methods, "daily_interest"]
    product.repayment_day = 20
    product.save()
    with time_machine.travel(dt.datetime.combine(DISBURSED, dt.time(2)), tick=False):
        return FastTrackLoanFactory(owner=ApplicantFactory(username="daily_owner"), seed=61, amount="400000.00",
                                    term=6, method="daily_interest")


@pytest.mark.django_db
def test_the_loan_and_its_contract_say_daily_interest(loan):
    rows = list(loan.installments.order_by("n"))
    assert loan.repayment_method == "daily_interest" and loan.repayment_day == 20
    starts = [DISBURSED, *[r.nominal_due_date for r in rows[:-1]]]
    assert [r.interest for r in rows] == [days_interest("400000.00", loan.annual_rate, (r.nominal_due_date - s).days)
                                          for r, s in zip(rows, starts, strict=True)]
    assert [r.principal for r in rows] == [D("0.00")] * 5 + [D("400000.00")]
    contract = loan.application.contracts.filter(kind="loan").order_by("-version").first()
    assert contract.terms["repayment_method_label"].startswith("随借随还")
    html = ContractTemplate.objects.filter(kind="loan", is_active=True).first().html
    text = template_engine().from_string(html).render(Context(contract.terms))
    assert "按日计息" in text and "随时提前偿还" in text and "月利率 = 年利率 / 12" not in text


@pytest.mark.django_db
def test_close_of_business_accrues_by_the_day_and_the_due_date_brings_the_scheduled_interest(loan):
    first = loan.installments.get(n=1)
    assert first.nominal_due_date == dt.date(2026, 2, 20)  # a broken first period of 45 days
    for day in (DISBURSED + dt.timedelta(days=n) for n in range(1, 15)):
        loan_close_through(loan=loan, through=day)
        first.refresh_from_db()
        assert first.interest_accrued == days_interest("400000.00", loan.annual_rate, (day - DISBURSED).days)
    book_agrees(loan, DISBURSED + dt.timedelta(days=14))
    loan_close_through(loan=loan, through=dt.date(2026, 2, 20))
    first.refresh_from_db()
    assert first.interest_accrued == first.interest == days_interest("400000.00", loan.annual_rate, 45)
    loan_close_through(loan=loan, through=dt.date(2026, 2, 25))  # the next period, from its own nominal start
    second = loan.installments.get(n=2)
    assert second.interest_accrued == days_interest("400000.00", loan.annual_rate, 5)


@pytest.mark.django_db
def test_principal_repaid_at_will_lowers_the_periods_interest_from_that_day(loan, org):
    """Pay the first bill on its due date (20 Feb, moved past the Spring Festival), then repay 150,000 of principal on
    3 Mar (the prepayment service): interest to the day on what is repaid, the March line on 250,000 for its actual
    days, no fee, no due date moved; the payoff quote on 10 Mar is principal + interest to the day."""
    rate = loan.annual_rate
    dues = [r.due_date for r in loan.installments.order_by("n")]
    first = loan.installments.get(n=1)
    business_date_set(first.due_date)
    with at(first.due_date):
        repayment_record(loan=loan, amount=first.total, paid_on=first.due_date, reference="JAN", by=org["demo_ops"])
    on = dt.date(2026, 3, 3)
    business_date_set(on)
    start = dt.date(2026, 2, 20)
    days_so_far, period_days = (on - start).days, (dt.date(2026, 3, 20) - start).days
    quote = prepayment_quote(loan=loan, amount=D("150000.00"), on=on, mode="lower_installment")
    assert quote["interest"] == days_interest("150000.00", rate, days_so_far) and quote["fee"] == 0
    assert quote["due_now"] == D("150000.00") + quote["interest"]
    feb = quote["schedule"][0]
    assert feb["interest"] == days_interest("250000.00", rate, period_days) and feb["principal"] == 0
    assert quote["schedule"][-1]["principal"] == D("250000.00")
    # the other mode keeps the same dates and amounts: there is no installment to keep or lower
    other = prepayment_quote(loan=loan, amount=D("150000.00"), on=on, mode="shorten_term")
    assert other["schedule"] == quote["schedule"]

    with at(on):
        rep, created = prepayment_make(loan=loan, amount=D("150000.00"), mode="lower_installment", key="d-1",
                                       by=loan.borrower)
    assert created and rep.prepaid_principal == D("150000.00") and rep.prepayment_fee == 0
    loan.refresh_from_db()
    assert loan.outstanding_principal == D("250000.00")
    rows = list(loan.installments.filter(superseded=False).order_by("n"))
    assert [r.due_date for r in rows] == dues  # no due date moved
    # what February charges in all = 400,000 for the days before the repayment + 250,000 for the days after
    assert rows[1].interest == days_interest("150000.00", rate, days_so_far) + days_interest("250000.00", rate, period_days)
    assert abs(rows[1].interest - r2(D("400000") * rate * days_so_far / 360 + D("250000") * rate * (period_days - days_so_far)
                                     / 360)) <= D("0.01")
    book_agrees(loan, on)

    later = dt.date(2026, 3, 10)
    loan_close_through(loan=loan, through=later - dt.timedelta(days=1))
    business_date_set(later)
    payoff = payoff_quote(loan=loan, on=later)
    # the repaid part's interest to 3 Mar was paid with it: what is left is 250,000 to the day
    expected = days_interest("250000.00", rate, (later - start).days)
    assert (payoff["principal"], payoff["interest"], payoff["fee"], payoff["overdue"]) == (
        D("250000.00"), expected, 0, 0)
    assert payoff["total"] == D("250000.00") + expected
    with at(later):
        repayment_record(loan=loan, amount=payoff["total"], paid_on=later, reference="OFF", by=org["demo_ops"])
    loan.refresh_from_db()
    assert loan.status == "closed"
    book_agrees(loan, later)


@pytest.mark.django_db
def test_a_payment_before_anything_is_due_repays_principal_unless_it_is_the_interest_bill(loan, org):
    rate = loan.annual_rate
    on = dt.date(2026, 1, 16)
    business_date_set(on)
    first = loan.installments.get(n=1)
    # a payment above the period's interest repays principal: interest to the day on it, never interest in advance
    with at(on):
        rep = repayment_record(loan=loan, amount=D("50000.00"), paid_on=on, reference="EARLY", by=org["demo_ops"])[0]
    days = (on - DISBURSED).days
    prepaid = rep.prepaid_principal
    assert rep.interest_paid == days_interest(prepaid, rate, days) and rep.prepayment_fee == 0
    assert prepaid + rep.interest_paid + rep.unapplied == D("50000.00") and rep.unapplied < D("0.02")
    # the most principal the cash repays with its interest to the day: one cent more would not fit
    assert prepaid + days_interest(prepaid, rate, days) <= D("50000.00")
    assert prepaid + D("0.01") + days_interest(prepaid + D("0.01"), rate, days) > D("50000.00")
    first.refresh_from_db()
    left = D("400000.00") - prepaid
    assert first.interest - first.paid_interest == days_interest(left, rate, 45)  # the period, on the lower balance
    assert first.interest == days_interest(prepaid, rate, days) + days_interest(left, rate, 45)
    assert first.nominal_due_date == dt.date(2026, 2, 20)
    book_agrees(loan, on)
    # paying the (lower) bill two days early settles it as usual
    bill = first.interest - first.paid_interest
    on2 = dt.date(2026, 1, 18)
    business_date_set(on2)
    with at(on2):
        rep2 = repayment_record(loan=loan, amount=bill, paid_on=on2, reference="BILL", by=org["demo_ops"])[0]
    first.refresh_from_db()
    assert rep2.prepaid_principal == 0 and rep2.interest_paid == bill and first.settled_on == on2
    loan.refresh_from_db()
    assert loan.outstanding_principal == left
    book_agrees(loan, on2)


@pytest.mark.django_db
def test_part_of_the_bill_paid_early_then_most_principal_repaid_never_leaves_interest_below_what_was_paid(loan, org):
    """The interest already paid on a period stays charged (never a negative bill) when a later repayment of principal
    in the same period lowers what the period would charge below it."""
    first = loan.installments.get(n=1)
    on = dt.date(2026, 2, 10)
    business_date_set(on)
    with at(on):
        repayment_record(loan=loan, amount=first.interest - D("100.00"), paid_on=on, reference="PART", by=org["demo_ops"])
        rep, _created = prepayment_make(loan=loan, amount=D("390000.00"), mode="lower_installment", key="most",
                                        by=loan.borrower)
    first.refresh_from_db()
    assert first.interest >= first.paid_interest and first.interest - first.paid_interest >= 0
    loan.refresh_from_db()
    assert loan.outstanding_principal == D("10000.00")
    book_agrees(loan, on)
    # the rest of the loan is paid off to the cent and the loan closes
    later = dt.date(2026, 2, 12)
    loan_close_through(loan=loan, through=later - dt.timedelta(days=1))
    business_date_set(later)
    quote = payoff_quote(loan=loan, on=later)
    with at(later):
        repayment_record(loan=loan, amount=quote["total"], paid_on=later, reference="END", by=org["demo_ops"])
    loan.refresh_from_db()
    assert loan.status == "closed" and loan.outstanding_principal == 0
    book_agrees(loan, later)
