"""Servicing to the contract (#17): the payoff quote charges interest to the day, prepayment quote and prepayment
keep the contract's repayment day, holiday rule and maturity, restructuring too, the penalty markup is the
contract's and never above the 24 % cap; figures checked against plain formulas and numpy-financial."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import numpy_financial as npf
import pytest
import time_machine

from ledger.selectors import account_balance
from loanservice.business_date import business_date_set
from loanservice.errors import ApplicationError, Conflict
from postloan.models import Loan, PostloanPolicy
from postloan.quotes import payoff_quote, penalty_rate, prepayment_quote
from postloan.services import compound_receivable, interest_receivable, penalty_receivable, repayment_record
from tests.conftest import client_for
from tests.factories import ApplicantFactory, FastTrackLoanFactory

pytestmark = pytest.mark.django_db
D = Decimal
DISBURSED = dt.date(2025, 12, 31)


def r2(x) -> Decimal:
    return D(str(x)).quantize(D("0.01"), rounding=ROUND_HALF_UP)


def at(day: dt.date):
    return time_machine.travel(dt.datetime.combine(day, dt.time(12)), tick=False)


@pytest.fixture
def owner(db):
    return ApplicantFactory(username="svc_owner")


@pytest.fixture
def loan(products, org, owner):
    """300,000 over 12 months, equal installments, value date 31 Dec 2025: due on month ends, following rule."""
    with time_machine.travel(dt.datetime.combine(DISBURSED, dt.time(2)), tick=False):
        return FastTrackLoanFactory(owner=owner, seed=41)


@pytest.fixture
def day20_loan(products, org, owner):
    """The contract says: repayment day 20 (a broken first period), due dates on a holiday move to the next business
    day. The product is edited after signing: the loan keeps the contract's terms."""
    products["xinmiaodai"].repayment_day = 20
    products["xinmiaodai"].save()
    with time_machine.travel(dt.datetime.combine(DISBURSED, dt.time(2)), tick=False):
        loan = FastTrackLoanFactory(owner=owner, seed=42)
    products["xinmiaodai"].repayment_day = 5
    products["xinmiaodai"].due_date_rule = "none"
    products["xinmiaodai"].save()
    return loan


def pay(loan, amount, on, ref, by):
    business_date_set(max(on, loan.accrued_through or on))
    with at(on):
        return repayment_record(loan=loan, amount=amount, paid_on=on, reference=ref, by=by)[0]


def book_agrees(loan: Loan, on: dt.date) -> None:
    """The loan's sub-ledger equals its GL control accounts to the cent."""
    ref = f"loan:{loan.pk}"
    loan.refresh_from_db()
    rows = list(loan.installments.all())
    unpaid = (interest_receivable(rows), penalty_receivable(rows), compound_receivable(rows))
    on_balance = (D("0.00"),) * 3 if loan.non_accrual_since else unpaid
    if loan.status == "active":
        assert account_balance(account="1301", on=on, reference=ref) == loan.outstanding_principal
        assert [account_balance(account=a, on=on, reference=ref) for a in ("1132", "1133", "1134")] == list(on_balance)
        assert account_balance(account="7001", on=on, reference=ref) == (sum(unpaid) if loan.non_accrual_since else 0)
    live = [r for r in rows if not r.superseded]
    assert sum((r.principal - r.paid_principal for r in live), D(0)) == loan.outstanding_principal


# ---------------------------------------------------------------- payoff
def test_paying_off_mid_period_charges_the_days_elapsed_not_the_whole_period(loan, org):
    on = dt.date(2026, 1, 15)
    business_date_set(on)
    first = loan.installments.get(n=1)
    quote = payoff_quote(loan=loan, on=on)
    expected = r2(D("300000.00") * loan.annual_rate * 15 / 360)  # actual days / 360 since the value date
    assert quote["interest"] == expected < first.interest
    assert (quote["overdue"], quote["principal"], quote["penalty"], quote["compound"], quote["fee"]) == (
        0, D("300000.00"), 0, 0, 0)
    assert quote["total"] == D("300000.00") + expected

    rep = pay(loan, quote["total"], on, "PAYOFF-1", org["demo_ops"])
    loan.refresh_from_db()
    assert loan.status == "closed" and loan.closed_on == on and rep.unapplied == 0
    assert rep.interest_paid == expected and rep.prepaid_principal == D("300000.00")
    # interest income + its output VAT (价税分离) = the interest charged to the day
    assert sum((account_balance(account=a, on=on, reference=f"loan:{loan.pk}") for a in ("6011", "2221")), D(0)) == expected
    book_agrees(loan, on)
    assert loan.installments.filter(superseded=True).count() == 11  # the rest kept as history, nothing deleted


def test_payoff_quote_for_a_later_date_with_arrears_penalty_and_compound(loan, org):
    first = loan.installments.get(n=1)
    today = first.due_date + dt.timedelta(days=3)
    business_date_set(today)
    on = first.due_date + dt.timedelta(days=10)
    quote = payoff_quote(loan=loan, on=on)
    rate = loan.annual_rate * (1 + loan.penalty_markup)
    days = (on - first.due_date).days
    nominal = first.nominal_due_date
    assert nominal == dt.date(2026, 1, 31) and first.due_date == dt.date(2026, 2, 2)  # Saturday → Monday
    not_due = D("300000.00") - first.principal
    assert quote["overdue"] == first.total
    assert quote["penalty"] == r2(first.principal * rate * days / 360)
    assert quote["compound"] == r2(first.interest * rate * days / 360)
    assert quote["principal"] == not_due
    assert quote["interest"] == r2(not_due * loan.annual_rate * (on - nominal).days / 360)
    assert quote["total"] == sum(quote[k] for k in ("overdue", "principal", "interest", "penalty", "compound", "fee"))

    # the API: the borrower and staff see it, another applicant does not, a date before the business date is refused
    url = f"/api/v1/loans/{loan.pk}/payoff-quote/"
    with at(today):
        mine = client_for(loan.borrower).get(url, {"on": on.isoformat()})
        ops = client_for(org["demo_ops"]).get(url, {"on": on.isoformat()})
        other = client_for(ApplicantFactory(username="svc_other")).get(url)
        early = client_for(loan.borrower).get(url, {"on": (today - dt.timedelta(days=1)).isoformat()})
        bad = client_for(loan.borrower).get(url, {"on": "tomorrow"})
        anon = client_for(None).get(url)
    assert mine.status_code == ops.status_code == 200
    assert mine.json() == {**ops.json(), "on": on.isoformat()}
    assert mine.json()["total"] == f"{quote['total']:.2f}" and mine.json()["penalty"] == f"{quote['penalty']:.2f}"
    assert set(mine.json()) >= {"on", "overdue", "principal", "interest", "penalty", "fee", "total"}
    assert other.status_code == 404 and anon.status_code in (401, 403)
    assert early.status_code == 400 and "on" in early.json()["errors"]
    assert bad.status_code == 400 and "on" in bad.json()["errors"]

    # paying the quote on its date pays the loan off to the cent
    pay(loan, quote["total"], on, "PAYOFF-2", org["demo_ops"])
    loan.refresh_from_db()
    assert loan.status == "closed"
    book_agrees(loan, on)


def test_a_closed_loan_has_no_quote(loan, org):
    on = dt.date(2026, 1, 10)
    business_date_set(on)
    pay(loan, payoff_quote(loan=loan, on=on)["total"], on, "P", org["demo_ops"])
    loan.refresh_from_db()
    with pytest.raises(Conflict):
        payoff_quote(loan=loan, on=on)


# ---------------------------------------------------------------- prepayment
def _pay_first_two(loan, org):
    for n in (1, 2):
        inst = loan.installments.get(n=n)
        pay(loan, inst.total, inst.due_date, f"R{n}", org["demo_ops"])


def test_prepayment_lowers_the_installment_on_the_contracts_day_rule_and_maturity(day20_loan, org):
    loan = day20_loan
    assert (loan.repayment_day, loan.due_date_rule) == (20, "following")
    before = {i.n: (i.nominal_due_date, i.due_date) for i in loan.installments.all()}
    assert before[2] == (dt.date(2026, 2, 20), dt.date(2026, 2, 24))  # Spring Festival: moved to the next business day
    maturity = loan.maturity_date
    _pay_first_two(loan, org)
    today = dt.date(2026, 3, 5)
    business_date_set(today)
    loan.refresh_from_db()
    not_due = loan.outstanding_principal
    quote = prepayment_quote(loan=loan, amount=D("100000.00"), on=today, mode="lower_installment")
    # the prepaid principal's interest since the period's nominal start (20 Feb, not the moved 24 Feb) to the day
    assert quote["interest"] == r2(D("100000.00") * loan.annual_rate * 13 / 360)
    assert quote["fee"] == 0 and quote["arrears"] == 0
    assert quote["due_now"] == D("100000.00") + quote["interest"]
    lines = quote["schedule"]
    left = not_due - D("100000.00")
    assert [x["n"] for x in lines] == list(range(3, 13)) and sum(x["principal"] for x in lines) == left
    assert [x["due_date"] for x in lines] == [before[n][1] for n in range(3, 13)]  # the same dates, 20th, moved by the rule
    assert lines[-1]["due_date"] == maturity
    annuity = r2(npf.pmt(float(loan.annual_rate) / 12, 10, -float(left)))
    assert all(x["total"] == annuity for x in lines[:-1]) and abs(lines[-1]["total"] - annuity) <= D("0.05")
    assert lines[0]["interest"] == r2(left * loan.annual_rate / 12)

    url = f"/api/v1/loans/{loan.pk}/prepayments/"
    body = {"amount": "100000.00", "mode": "lower_installment"}
    with at(today):
        api_quote = client_for(loan.borrower).post(f"/api/v1/loans/{loan.pk}/prepayment-quote/",
                                                   {**body, "on": today.isoformat()}, format="json")
        no_key = client_for(loan.borrower).post(url, body, format="json")
        first = client_for(loan.borrower).post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="pp-1")
        again = client_for(loan.borrower).post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="pp-1")
        other_body = client_for(loan.borrower).post(url, {**body, "amount": "5.00"}, format="json",
                                                    HTTP_IDEMPOTENCY_KEY="pp-1")
        stranger = client_for(ApplicantFactory(username="svc_other2")).post(url, body, format="json",
                                                                            HTTP_IDEMPOTENCY_KEY="pp-x")
        rm = client_for(org["demo_rm"]).post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="pp-y")
    assert api_quote.status_code == 200 and api_quote.json()["due_now"] == f"{quote['due_now']:.2f}"
    assert api_quote.json()["schedule"][0] == {"n": 3, "due_date": lines[0]["due_date"].isoformat(),
                                               "principal": f"{lines[0]['principal']:.2f}",
                                               "interest": f"{lines[0]['interest']:.2f}", "total": f"{lines[0]['total']:.2f}"}
    assert no_key.status_code == 400 and "Idempotency-Key" in no_key.json()["errors"]
    assert (first.status_code, again.status_code, other_body.status_code) == (201, 200, 409)
    assert first.json()["id"] == again.json()["id"] and first.json()["amount"] == f"{quote['due_now']:.2f}"
    assert stranger.status_code == 404 and rm.status_code == 403
    loan.refresh_from_db()
    assert loan.outstanding_principal == left and loan.maturity_date == maturity
    rows = list(loan.installments.filter(superseded=False, n__gte=3).order_by("n"))
    assert [(r.due_date, r.principal - r.paid_principal, r.interest - r.paid_interest) for r in rows] == [
        (x["due_date"], x["principal"], x["interest"]) for x in lines]
    assert all(r.nominal_due_date.day == 20 for r in rows)
    book_agrees(loan, today)

    # accrual goes on to the next due date without a jump: the receivable still equals the payoff's interest
    with at(dt.date(2026, 3, 21)):
        business_date_set(dt.date(2026, 3, 21))
        from postloan.services import loan_catch_up

        loan_catch_up(loan=loan)
    book_agrees(loan, dt.date(2026, 3, 20))
    third = loan.installments.get(n=3)
    assert third.interest_accrued == third.interest  # the due date brings the period to its scheduled interest


def test_prepayment_shortens_the_term_keeping_the_installment(day20_loan, org):
    loan = day20_loan
    _pay_first_two(loan, org)
    today = dt.date(2026, 3, 5)
    business_date_set(today)
    loan.refresh_from_db()
    old = loan.installments.get(n=4).total
    quote = prepayment_quote(loan=loan, amount=D("100000.00"), on=today, mode="shorten_term")
    lines = quote["schedule"]
    left = loan.outstanding_principal - D("100000.00")
    months = int(npf.nper(float(loan.annual_rate) / 12, -float(old), float(left)) + 0.999999)
    assert len(lines) == months < 10
    # the fewest months whose installment does not exceed the current one: one month fewer would need more
    annuity = r2(npf.pmt(float(loan.annual_rate) / 12, months, -float(left)))
    assert all(x["total"] == annuity <= old for x in lines[:-1]) and abs(lines[-1]["total"] - annuity) <= D("0.05")
    assert r2(npf.pmt(float(loan.annual_rate) / 12, months - 1, -float(left))) > old
    assert all(x["due_date"].day in (20, 21, 22, 23, 24) for x in lines) and lines[-1]["due_date"] < loan.maturity_date
    with at(today):
        r = client_for(org["demo_ops"]).post(f"/api/v1/loans/{loan.pk}/prepayments/", {"amount": "100000.00",
                                             "mode": "shorten_term"}, format="json", HTTP_IDEMPOTENCY_KEY="ops-1")
    assert r.status_code == 201
    loan.refresh_from_db()
    assert loan.maturity_date == lines[-1]["due_date"]
    assert loan.installments.filter(superseded=True).count() == 10 - months
    book_agrees(loan, today)


def test_prepaying_everything_is_a_payoff_and_bad_inputs_are_named(day20_loan, org):
    loan = day20_loan
    today = dt.date(2026, 1, 10)
    business_date_set(today)
    payoff = payoff_quote(loan=loan, on=today)
    quote = prepayment_quote(loan=loan, amount=D("999999.00"), on=today, mode="lower_installment")
    assert quote["payoff"] and quote["due_now"] == payoff["total"] and quote["schedule"] == []
    url = f"/api/v1/loans/{loan.pk}/prepayment-quote/"
    with at(today):
        bad = client_for(loan.borrower).post(url, {"amount": "-1", "mode": "sideways"}, format="json")
        not_object = client_for(loan.borrower).post(url, [1, 2], format="json")
        r = client_for(loan.borrower).post(f"/api/v1/loans/{loan.pk}/prepayments/", {"amount": "999999.00",
                                           "mode": "lower_installment"}, format="json", HTTP_IDEMPOTENCY_KEY="all")
    assert bad.status_code == 400 and {"amount", "mode"} <= set(bad.json()["errors"])
    assert not_object.status_code == 400
    assert r.status_code == 201 and r.json()["loan_status"] == "closed"
    assert r.json()["amount"] == f"{payoff['total']:.2f}"
    book_agrees(loan, today)


# ---------------------------------------------------------------- restructuring keeps the contract's day
def test_an_extension_keeps_the_contracts_repayment_day_and_holiday_rule(day20_loan, org):
    from postloan.services import approval_request_decide, restructure_request

    loan = day20_loan
    on = dt.date(2026, 3, 5)
    business_date_set(on)
    with at(on):
        request = restructure_request(loan=loan, kind="extension", extra_months=3, reason="季节性困难", by=org["demo_rm"])
        approval_request_decide(request=request, approve=True, by=org["demo_risk"])
    loan.refresh_from_db()
    rows = list(loan.installments.filter(superseded=False).order_by("n"))
    assert all(r.nominal_due_date.day == 20 for r in rows)
    assert rows[0].nominal_due_date == dt.date(2026, 4, 20)
    june = next(r for r in rows if r.nominal_due_date == dt.date(2026, 6, 20))
    assert june.due_date == dt.date(2026, 6, 22)  # a Saturday, moved by the contract's rule
    book_agrees(loan, on)


# ---------------------------------------------------------------- penalty to the contract, the 24 % cap
def test_the_penalty_markup_is_the_contracts_and_the_cap_holds(loan, org):
    assert loan.penalty_markup == D("0.5000")
    PostloanPolicy.objects.create(effective_from=DISBURSED + dt.timedelta(days=1), penalty_rate_markup=D("3.0"))
    first = loan.installments.get(n=1)
    on = first.due_date + dt.timedelta(days=20)
    business_date_set(on)
    quote = payoff_quote(loan=loan, on=on)
    assert quote["penalty"] == r2(first.principal * loan.annual_rate * D("1.5") * 20 / 360)  # not today's 300 %

    policy = PostloanPolicy(effective_from=on)
    loan.annual_rate = D("0.2000")  # 20 % × 1.5 = 30 %: above 九民纪要 §51's 24 %
    assert penalty_rate(loan, policy) == D("0.2400")
    loan.annual_rate = D("0.1000")
    assert penalty_rate(loan, policy) == D("0.1500")
    with pytest.raises(Exception):  # noqa: B017 - the admin's validation: the contract's markup stays in 30 %-50 %
        loan.penalty_markup = D("0.60")
        loan.full_clean(exclude=["application", "disbursement", "enterprise", "borrower"])


def test_quotes_refuse_a_date_before_the_business_date(loan):
    business_date_set(dt.date(2026, 2, 10))
    with pytest.raises(ApplicationError) as err:
        payoff_quote(loan=loan, on=dt.date(2026, 2, 9))
    assert "on" in err.value.errors


# ---------------------------------------------------------------- non-accrual (非应计) at more than 90 days past due
def test_non_accrual_moves_interest_off_balance_cash_is_income_and_accrual_resumes_when_cured(loan, org):
    from postloan.services import loan_close_through

    first = loan.installments.get(n=1)
    day = first.due_date + dt.timedelta(days=88)
    loan_close_through(loan=loan, through=day)
    loan.refresh_from_db()
    assert loan.non_accrual_since is None
    income_before = account_balance(account="6011", on=day, reference=f"loan:{loan.pk}")
    entered = None
    for _ in range(5):  # day by day across 90 days past due, as close of business runs
        day += dt.timedelta(days=1)
        loan_close_through(loan=loan, through=day)
        loan.refresh_from_db()
        if loan.non_accrual_since and entered is None:
            entered = day
    assert entered is not None and loan.dpd > 90 and (entered - first.due_date).days == 91
    book_agrees(loan, day)
    from postloan.reconciliation import reconcile

    assert reconcile(on=day).balanced  # close of business's sub-ledger ↔ GL check: the unpaid accruals are off balance
    ref = f"loan:{loan.pk}"
    # the interest accrued and unpaid was reversed out of income: what stays in income is only what was paid (nothing)
    # (income and its output VAT together: each day's split rounds to the cent, the reversal splits the total once)
    income = ("6011", "601102", "601103", "2221")
    assert sum((account_balance(account=a, on=day, reference=ref) for a in income), D(0)) == 0 < income_before
    memo = account_balance(account="7001", on=day, reference=ref)
    assert memo > 0 and account_balance(account="7002", on=day, reference=ref) == memo

    # later accruals go only to the memo
    day += dt.timedelta(days=10)
    loan_close_through(loan=loan, through=day)
    assert sum((account_balance(account=a, on=day, reference=ref) for a in income), D(0)) == 0
    assert account_balance(account="7001", on=day, reference=ref) > memo
    book_agrees(loan, day)

    # cash against them is income when it arrives; paying every overdue amount cures the loan
    pay_on = day + dt.timedelta(days=1)
    due = [i for i in loan.installments.filter(superseded=False, settled_on__isnull=True) if i.due_date < pay_on]
    from postloan.services import loan_position

    position = loan_position(loan, on=pay_on)
    amount = position["overdue"] + position["penalty"]
    assert amount > sum(i.total for i in due)
    rep = pay(loan, amount, pay_on, "CURE", org["demo_ops"])
    assert rep.unapplied == 0
    earned = rep.interest_paid + rep.penalty_paid + rep.compound_paid
    assert sum((account_balance(account=a, on=pay_on, reference=ref) for a in income), D(0)) == earned > 0
    book_agrees(loan, pay_on)
    loan_close_through(loan=loan, through=pay_on + dt.timedelta(days=1))
    loan.refresh_from_db()
    assert loan.non_accrual_since is None and loan.dpd == 0
    assert account_balance(account="7001", on=pay_on + dt.timedelta(days=1), reference=ref) == 0
    book_agrees(loan, pay_on + dt.timedelta(days=1))


# ---------------------------------------------------------------- acceleration and recovery after write-off
def test_acceleration_makes_the_whole_outstanding_due_with_four_eyes(loan, org):
    from postloan.services import approval_request_decide, loan_close_through

    on = dt.date(2026, 3, 10)
    business_date_set(on)
    url = f"/api/v1/loans/{loan.pk}/accelerate/"
    with at(on):
        rm = client_for(org["demo_rm"]).post(url, {"reason": "挪用贷款"}, format="json")
        blank = client_for(org["demo_risk"]).post(url, {"reason": ""}, format="json")
        asked = client_for(org["demo_risk"]).post(url, {"reason": "挪用贷款资金"}, format="json")
        twice = client_for(org["demo_ops"]).post(url, {"reason": "again"}, format="json")
    assert rm.status_code == 403 and blank.status_code == 400 and "reason" in blank.json()["errors"]
    assert asked.status_code == 201 and asked.json()["status"] == "pending" and twice.status_code == 409
    from postloan.models import ApprovalRequest

    request = ApprovalRequest.objects.get(pk=asked.json()["id"])
    with pytest.raises(ApplicationError):  # the requester never approves their own request
        approval_request_decide(request=request, approve=True, by=org["demo_risk"])
    quote = payoff_quote(loan=loan, on=on)
    with at(on):
        approval_request_decide(request=request, approve=True, by=org["demo_branch_approver"])
    loan.refresh_from_db()
    assert loan.accelerated_on == on == loan.maturity_date
    rows = list(loan.installments.filter(superseded=False, settled_on__isnull=True))
    assert len(rows) == 3 and rows[-1].due_date == on  # two overdue (Jan, Feb) and everything else due today
    # what is due is exactly what a payoff today would cost (less the fee, none here)
    assert sum(r.due_remaining for r in rows) == quote["overdue"] + quote["principal"] + quote["interest"]
    loan_close_through(loan=loan, through=on + dt.timedelta(days=5))
    loan.refresh_from_db()
    assert loan.dpd >= 5 and penalty_receivable(loan.installments.all()) > 0
    book_agrees(loan, on + dt.timedelta(days=5))


def test_a_recovery_after_write_off_is_booked_and_posted_as_income(loan, org):
    from postloan.services import approval_request_decide, classification_downgrade, write_off_request

    on = dt.date(2026, 6, 1)
    business_date_set(on)
    with at(on):
        classification_downgrade(loan=loan, to_category="doubtful", reason="经营停止", by=org["demo_risk"])
        request = write_off_request(loan=loan, reason="核销", by=org["demo_risk"])
        approval_request_decide(request=request, approve=True, by=org["demo_branch_approver"])
    loan.refresh_from_db()
    assert loan.status == "written_off"
    ref = f"loan:{loan.pk}"
    assert [account_balance(account=a, on=on, reference=ref) for a in ("1301", "1132", "1133", "1134")] == [0, 0, 0, 0]
    url = f"/api/v1/loans/{loan.pk}/recoveries/"
    body = {"amount": "1234.50", "paid_on": on.isoformat(), "reference": "REC-1"}
    with at(on):
        first = client_for(org["demo_ops"]).post(url, body, format="json")
        again = client_for(org["demo_ops"]).post(url, body, format="json")
        other = client_for(org["demo_ops"]).post(url, {**body, "amount": "1.00"}, format="json")
        early = client_for(org["demo_ops"]).post(url, {**body, "reference": "REC-0", "paid_on": "2026-01-01"}, format="json")
        rm = client_for(org["demo_rm"]).post(url, {**body, "reference": "REC-2"}, format="json")
        borrower = client_for(loan.borrower).post(url, {**body, "reference": "REC-3"}, format="json")
    assert (first.status_code, again.status_code, other.status_code, early.status_code) == (201, 200, 409, 400)
    assert rm.status_code == 403 and borrower.status_code == 403
    assert first.json()["recovered_total"] == "1234.50"
    assert account_balance(account="6302", on=on, reference=ref) == D("1234.50")
    assert account_balance(account="3001", on=on, reference=ref) > 0
    with pytest.raises(Conflict):  # an active loan takes repayments, not recoveries
        from postloan.services import recovery_record

        active = FastTrackLoanFactory(owner=ApplicantFactory(username="svc_rec2"), seed=43)
        recovery_record(loan=active, amount=D("1.00"), paid_on=on, reference="X", by=org["demo_ops"])
