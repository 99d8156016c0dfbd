"""Auto-debit (自动扣款), close of business's first step (issue #17): the sandbox answers deterministically; what is
due is debited exactly once per loan and date even when a partition runs again; partial and failed debits; the
contract's allocation order; core banking is never asked while a loan's row is locked."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection

from ledger.core_banking import DebitResult, HttpCoreBanking, SandboxCoreBanking, core_banking
from ledger.selectors import trial_balance
from postloan.autodebit import amounts_due, autodebit_reference, autodebit_summary
from postloan.cob import cob_partition_run, cob_start
from postloan.models import AutoDebitAttempt, CobPartition, Loan, Repayment
from postloan.reconciliation import reconcile
from tests.concurrency import lockable_elsewhere
from tests.factories import ApplicantFactory, FastTrackLoanFactory

D = Decimal


@pytest.fixture
def simulated(settings):
    settings.ALLOW_SIMULATED_BUSINESS_DATE = True


@pytest.fixture
def loan(products, org):
    return FastTrackLoanFactory(owner=ApplicantFactory(username="ad_owner"), seed=171, amount="120000.00")


def _close(until: dt.date):
    run = cob_start(until=until, by=None)
    for part in run.partitions.all():
        cob_partition_run(partition_id=part.pk)
    run.refresh_from_db()
    return run


def _first(loan: Loan):
    return loan.installments.order_by("n").first()


# ---------------------------------------------------------------- the adapter
def test_the_sandbox_answers_the_same_for_the_same_account_and_date_and_sometimes_short():
    sandbox = SandboxCoreBanking(funds="derived")
    on = dt.date(2027, 3, 20)
    answers = [sandbox.debit(account=f"6222{k:08d}", amount=D("1000.00"), reference=f"r{k}", on=on) for k in range(300)]
    again = [sandbox.debit(account=f"6222{k:08d}", amount=D("1000.00"), reference=f"r{k}", on=on) for k in range(300)]
    assert answers == again  # deterministic
    full = [a for a in answers if a.debited == D("1000.00")]
    partial = [a for a in answers if D("0") < a.debited < D("1000.00")]
    none = [a for a in answers if a.debited == 0]
    assert len(full) > 150 and len(partial) > 15 and len(none) > 15
    assert all(a.core_reference and not a.error for a in full)
    assert all(a.error and not a.core_reference for a in none) and all(a.error for a in partial)
    assert SandboxCoreBanking(funds="empty").debit(account="x", amount=D("5.00"), reference="r", on=on).debited == 0
    assert SandboxCoreBanking(funds="full").debit(account="x", amount=D("5.00"), reference="r", on=on).debited == D("5.00")


def test_the_setting_chooses_the_adapter_and_http_has_a_timeout(settings):
    settings.CORE_BANKING_BACKEND = "http"
    settings.CORE_BANKING_URL = "https://core.bank.example/api"
    settings.CORE_BANKING_TIMEOUT = 2.5
    adapter = core_banking()
    assert isinstance(adapter, HttpCoreBanking) and adapter.timeout == 2.5
    settings.CORE_BANKING_BACKEND = "sandbox"
    assert isinstance(core_banking(), SandboxCoreBanking)


def test_the_http_adapter_sends_the_reference_and_reads_the_answer():
    import io
    import json

    seen = {}

    class Answer(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def opener(request, timeout):
        seen.update(url=request.full_url, body=json.loads(request.data), timeout=timeout)
        return Answer(json.dumps({"debited": "40.00", "reference": "CORE-1", "error": "insufficient funds"}).encode())

    adapter = HttpCoreBanking("https://core.example/", timeout=1.5, opener=opener)
    answer = adapter.debit(account="6222", amount=D("100.00"), reference="AD-1-20270320", on=dt.date(2027, 3, 20))
    assert answer == DebitResult(debited=D("40.00"), core_reference="CORE-1", error="insufficient funds")
    assert seen == {"url": "https://core.example/debits", "timeout": 1.5,
                    "body": {"account": "6222", "amount": "100.00", "reference": "AD-1-20270320", "date": "2027-03-20"}}


# ---------------------------------------------------------------- in close of business
def test_what_is_due_is_debited_on_the_due_date_exactly_once(loan, simulated, settings):
    settings.CORE_BANKING_SANDBOX_FUNDS = "full"
    first = _first(loan)
    _close(first.due_date)
    attempt = AutoDebitAttempt.objects.get(loan=loan)
    assert attempt.on == first.due_date and attempt.status == "debited"
    assert attempt.requested == attempt.debited == first.total
    assert attempt.reference == autodebit_reference(loan.pk, first.due_date)
    repayment = Repayment.objects.get(loan=loan)
    assert repayment.channel == "auto_debit" and repayment.reference == attempt.reference and attempt.repayment == repayment
    assert repayment.interest_paid == first.interest and repayment.principal_paid == first.principal
    first.refresh_from_db()
    loan.refresh_from_db()
    assert first.settled_on == first.due_date and loan.dpd == 0 and loan.accrued_through == first.due_date
    # the following days ask for nothing more: the installment is paid
    _close(first.due_date + dt.timedelta(days=3))
    assert AutoDebitAttempt.objects.filter(loan=loan).count() == 1 and Repayment.objects.filter(loan=loan).count() == 1
    assert trial_balance(on=first.due_date + dt.timedelta(days=3)).balanced
    assert reconcile(on=first.due_date + dt.timedelta(days=3)).balanced


def test_a_loan_without_the_authorisation_is_not_debited(loan, simulated, settings):
    settings.CORE_BANKING_SANDBOX_FUNDS = "full"
    Loan.objects.filter(pk=loan.pk).update(auto_debit=False)
    first = _first(loan)
    _close(first.due_date + dt.timedelta(days=2))
    assert not AutoDebitAttempt.objects.exists() and not Repayment.objects.exists()
    loan.refresh_from_db()
    assert loan.dpd == 2


def test_new_contracts_authorise_auto_debit_by_the_policy(loan):
    from postloan.models import PostloanPolicy

    assert loan.auto_debit is True
    PostloanPolicy.objects.update(auto_debit_new_contracts=False)
    other = FastTrackLoanFactory(owner=ApplicantFactory(username="ad_other"), seed=172, amount="50000.00")
    assert other.auto_debit is False


def test_a_failed_debit_leaves_the_installment_overdue_and_is_tried_again_the_next_day(loan, simulated, settings):
    first = _first(loan)
    _close(first.due_date + dt.timedelta(days=1))  # the accounts are empty (the tests' default)
    attempts = list(AutoDebitAttempt.objects.filter(loan=loan).order_by("on"))
    assert [(a.on, a.status, a.debited) for a in attempts] == [
        (first.due_date, "failed", D("0.00")), (first.due_date + dt.timedelta(days=1), "failed", D("0.00"))]
    assert attempts[0].requested == first.total and "Insufficient funds" in attempts[0].error
    assert not Repayment.objects.exists()
    loan.refresh_from_db()
    assert loan.dpd == 1 and loan.overdue_since == first.due_date
    # the next day it comes: what is due now includes the penalty and compound interest of the day
    settings.CORE_BANKING_SANDBOX_FUNDS = "full"
    on = first.due_date + dt.timedelta(days=5)
    _close(on)
    paid = AutoDebitAttempt.objects.get(loan=loan, on=first.due_date + dt.timedelta(days=2))
    assert paid.status == "debited" and paid.debited > first.total
    repayment = paid.repayment
    assert repayment.penalty_paid + repayment.compound_paid == paid.debited - first.total
    loan.refresh_from_db()
    assert loan.dpd == 0 and AutoDebitAttempt.objects.filter(loan=loan).count() == 3
    assert reconcile(on=on).balanced and trial_balance(on=on).balanced


def test_a_partial_debit_allocates_what_came_in_the_contracts_order(loan, simulated, monkeypatch):
    first = _first(loan)
    half = (first.interest + D("10.00"))  # covers the interest and a little principal

    def partly(self, *, account, amount, reference, on):
        return DebitResult(debited=half, core_reference="CORE-P", error="余额不足 / Insufficient funds")

    monkeypatch.setattr(SandboxCoreBanking, "debit", partly)
    _close(first.due_date)
    attempt = AutoDebitAttempt.objects.get(loan=loan)
    assert attempt.status == "partial" and attempt.debited == half and attempt.core_reference == "CORE-P"
    repayment = attempt.repayment
    assert repayment.amount == half
    assert repayment.interest_paid == first.interest and repayment.principal_paid == D("10.00")  # interest before principal
    assert [x["part"] for x in repayment.allocation["lines"]] == ["interest", "principal"]
    first.refresh_from_db()
    assert first.settled_on is None and first.due_remaining == first.total - half
    assert reconcile(on=first.due_date).balanced


def test_an_overdue_loan_pays_penalty_and_oldest_first(loan, simulated, settings, monkeypatch):
    """Two installments overdue, a debit that covers the first with its penalty and part of the second."""
    second = loan.installments.get(n=2)
    Loan.objects.filter(pk=loan.pk).update(auto_debit=False)
    _close(second.due_date + dt.timedelta(days=3))
    Loan.objects.filter(pk=loan.pk).update(auto_debit=True)
    loan.refresh_from_db()
    first = _first(loan)
    on = second.due_date + dt.timedelta(days=4)
    due = amounts_due([loan], on)[loan.pk]
    assert due > first.total + second.total  # with penalty and compound interest
    taken = first.total + D("100.00")

    def some(self, *, account, amount, reference, on):
        assert amount == due
        return DebitResult(debited=taken, core_reference="CORE-S")

    monkeypatch.setattr(SandboxCoreBanking, "debit", some)
    _close(on)
    repayment = AutoDebitAttempt.objects.get(loan=loan, on=on).repayment
    parts = [(x["n"], x["part"]) for x in repayment.allocation["lines"]]
    order = ["penalty", "compound", "interest", "principal"]
    assert parts[:4] == [(1, p) for p in order]  # the first installment whole, costs before interest before principal
    assert parts[4:] and all(n == 2 for n, _p in parts[4:])
    assert [order.index(p) for _n, p in parts[4:]] == sorted(order.index(p) for _n, p in parts[4:])
    assert reconcile(on=on).balanced


def test_a_partition_run_again_after_a_crash_never_debits_twice(loan, simulated, settings, monkeypatch):
    """A worker dies after the debits were applied and before the chunk closed; then after the core answered and
    before anything was applied. Run again: each loan and date is debited once, under the same reference."""
    settings.CORE_BANKING_SANDBOX_FUNDS = "full"
    first = _first(loan)
    calls = []
    debit = SandboxCoreBanking.debit

    def counting(self, **kwargs):
        calls.append(kwargs["reference"])
        return debit(self, **kwargs)

    monkeypatch.setattr(SandboxCoreBanking, "debit", counting)
    from postloan import cob

    close = cob.loans_close_through
    crash = {"on": True}

    def dying(**kwargs):
        if crash["on"] and kwargs.get("through") == first.due_date:
            raise RuntimeError("worker killed")
        return close(**kwargs)

    monkeypatch.setattr(cob, "loans_close_through", dying)
    run = cob_start(until=first.due_date, by=None)
    part = CobPartition.objects.get(run=run)
    with pytest.raises(RuntimeError):
        cob_partition_run(partition_id=part.pk)
    assert AutoDebitAttempt.objects.get(loan=loan).status == "debited" and Repayment.objects.count() == 1
    crash["on"] = False
    cob_partition_run(partition_id=part.pk)
    assert calls == [autodebit_reference(loan.pk, first.due_date)]
    assert Repayment.objects.count() == 1 and AutoDebitAttempt.objects.count() == 1
    loan.refresh_from_db()
    assert loan.accrued_through == first.due_date


def test_an_answer_lost_in_a_crash_is_asked_again_under_the_same_reference(loan, simulated, settings, monkeypatch):
    settings.CORE_BANKING_SANDBOX_FUNDS = "full"
    first = _first(loan)
    from postloan import autodebit

    asked = []
    ask = autodebit._ask

    def ask_then_die(attempts):
        asked.append([(a.reference, a.requested) for a in attempts])
        answers = ask(attempts)
        if len(asked) == 1:
            raise RuntimeError("worker killed after the core answered")
        return answers

    monkeypatch.setattr(autodebit, "_ask", ask_then_die)
    run = cob_start(until=first.due_date, by=None)
    part = CobPartition.objects.get(run=run)
    with pytest.raises(RuntimeError):
        cob_partition_run(partition_id=part.pk)
    assert AutoDebitAttempt.objects.get(loan=loan).status == "requested" and not Repayment.objects.exists()
    cob_partition_run(partition_id=part.pk)
    assert asked[0] == asked[1] == [(autodebit_reference(loan.pk, first.due_date), first.total)]
    assert Repayment.objects.count() == 1 and AutoDebitAttempt.objects.get(loan=loan).status == "debited"


def test_a_core_banking_outage_is_recorded_and_the_installment_falls_overdue(loan, simulated, monkeypatch):
    from ledger.core_banking import CoreBankingError

    def down(self, **kwargs):
        raise CoreBankingError("core banking unreachable: timed out")

    monkeypatch.setattr(SandboxCoreBanking, "debit", down)
    first = _first(loan)
    _close(first.due_date + dt.timedelta(days=1))
    attempt = AutoDebitAttempt.objects.filter(loan=loan).order_by("on").first()
    assert attempt.status == "error" and "timed out" in attempt.error and not Repayment.objects.exists()
    loan.refresh_from_db()
    assert loan.dpd == 1


def test_an_unanswered_debit_is_asked_again_the_next_day_and_booked_then(loan, simulated, settings, monkeypatch):
    """The core went silent after it took the money: the next close asks under the same reference, books what it
    says it took on that day, then debits what is still due under that day's reference."""
    from ledger.core_banking import CoreBankingError

    settings.CORE_BANKING_SANDBOX_FUNDS = "full"
    first = _first(loan)
    debit = SandboxCoreBanking.debit
    asked = []

    def silent_once(self, **kwargs):
        asked.append((kwargs["reference"], kwargs["amount"]))
        if len(asked) == 1:
            raise CoreBankingError("core banking unreachable: timed out")
        return debit(self, **kwargs)

    monkeypatch.setattr(SandboxCoreBanking, "debit", silent_once)
    _close(first.due_date)
    assert AutoDebitAttempt.objects.get(loan=loan).status == "error" and not Repayment.objects.exists()
    nxt = first.due_date + dt.timedelta(days=1)
    _close(nxt)
    first_try = AutoDebitAttempt.objects.get(loan=loan, on=first.due_date)
    assert asked[1] == (first_try.reference, first_try.requested)  # asked again as first asked
    assert first_try.status == "debited" and first_try.repayment.paid_on == nxt
    # the installment paid late by a day: its day of penalty is due under the new date's reference, and paid
    later = AutoDebitAttempt.objects.filter(loan=loan, on=nxt).first()
    assert later is None or later.status == "debited"
    first.refresh_from_db()
    assert first.settled_on is not None
    assert reconcile(on=nxt).balanced and trial_balance(on=nxt).balanced


def test_the_days_summary_counts_amounts_and_failures(products, org, simulated, settings):
    settings.CORE_BANKING_SANDBOX_FUNDS = "full"
    loans = [FastTrackLoanFactory(owner=ApplicantFactory(username=f"ad_sum{k}"), seed=180 + k, amount="60000.00")
             for k in range(2)]
    due = _first(loans[0]).due_date
    assert _first(loans[1]).due_date == due
    settings.CORE_BANKING_SANDBOX_FUNDS = "derived"
    _close(due)
    summary = autodebit_summary(on=due)
    assert summary["count"] == 2
    assert summary["requested"] == _first(loans[0]).total + _first(loans[1]).total
    assert summary["debited"] == sum((a.debited for a in AutoDebitAttempt.objects.all()), D(0))
    assert sum(x["count"] for x in summary["by_status"]) == 2
    assert len(summary["failures"]) == AutoDebitAttempt.objects.exclude(status="debited").count()


def test_the_ops_page_shows_the_days_results_in_words_and_the_borrower_sees_the_debit(products, org, simulated,
                                                                                    settings, client):
    from django.urls import reverse

    loans = [FastTrackLoanFactory(owner=ApplicantFactory(username=f"ad_page{k}"), seed=190 + k, amount="60000.00")
             for k in range(2)]
    due = _first(loans[0]).due_date
    from postloan.autodebit import autodebit_loans

    run = cob_start(until=due, by=None)
    settings.CORE_BANKING_SANDBOX_FUNDS = "full"  # the first borrower's account has the money, the second's not
    autodebit_loans(loan_ids=[loans[0].pk], on=due)
    settings.CORE_BANKING_SANDBOX_FUNDS = "empty"
    for part in run.partitions.all():
        cob_partition_run(partition_id=part.pk)
    client.force_login(org["demo_ops"])
    html = client.get(reverse("finance:core_banking") + f"?on={due.isoformat()}").content.decode()
    assert "全额扣款" in html and "扣款失败" in html and "debited in full" not in html  # the results in words, in Chinese
    assert "余额不足" in html and loans[1].enterprise.name in html
    assert f"{_first(loans[0]).total:,.2f}" in html
    client.force_login(loans[0].borrower)
    page = client.get(reverse("portal:loan", args=[loans[0].pk])).content.decode()
    assert "自动扣款" in page and autodebit_reference(loans[0].pk, due) in page


# ---------------------------------------------------------------- no network wait under a row lock
@pytest.mark.django_db(transaction=True)
def test_core_banking_is_asked_with_no_transaction_open_and_the_loan_unlocked(products, org, settings, monkeypatch):
    settings.ALLOW_SIMULATED_BUSINESS_DATE = True
    settings.CORE_BANKING_SANDBOX_FUNDS = "full"
    loan = FastTrackLoanFactory(owner=ApplicantFactory(username="ad_lock"), seed=173, amount="80000.00")
    seen = []
    debit = SandboxCoreBanking.debit

    def probing(self, **kwargs):
        seen.append((connection.in_atomic_block, lockable_elsewhere(Loan, loan.pk)))
        return debit(self, **kwargs)

    monkeypatch.setattr(SandboxCoreBanking, "debit", probing)
    first = _first(loan)
    _close(first.due_date)
    assert seen == [(False, True)]
    assert AutoDebitAttempt.objects.get(loan=loan).status == "debited"
