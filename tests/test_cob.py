"""Close of business (日终): the business date, daily accrual into the ledger, exactly once per loan and date,
partitions that resume after a crash, inline catch-up before a repayment, and the API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from ledger.models import JournalEntry
from ledger.selectors import account_balance, trial_balance
from loanservice.business_date import business_date, business_date_set
from loanservice.errors import ApplicationError, Conflict
from postloan import services
from postloan.cob import cob_partition_run, cob_start
from postloan.models import CobPartition, CobRun, Loan
from postloan.services import interest_receivable, repayment_record
from tests.conftest import client_for
from tests.factories import ApplicantFactory, FastTrackLoanFactory

D = Decimal


@pytest.fixture
def simulated(settings):
    settings.ALLOW_SIMULATED_BUSINESS_DATE = True


@pytest.fixture
def loan(products, org):
    return FastTrackLoanFactory(owner=ApplicantFactory(username="cob_owner"), seed=72, amount="300000.00")


def _receivable_gl(loan: Loan, on: dt.date) -> Decimal:
    return account_balance(account="1132", on=on, reference=f"loan:{loan.pk}")


def _receivable_sub(loan: Loan) -> Decimal:
    return interest_receivable(loan.installments.filter(settled_on__isnull=True))


def _close(until: dt.date, by=None) -> CobRun:
    """Start a run and work its partitions here (a `db` test never fires on-commit tasks)."""
    run = cob_start(until=until, by=by)
    for part in run.partitions.all():
        cob_partition_run(partition_id=part.pk)
    run.refresh_from_db()
    return run


def test_close_of_business_accrues_to_the_due_date_and_moves_the_business_date(loan, simulated):
    Loan.objects.filter(pk=loan.pk).update(tax_class="")  # a borrower outside the small and micro VAT exemption
    loan.refresh_from_db()
    first = loan.installments.order_by("n").first()
    until = first.due_date + dt.timedelta(days=14)
    run = _close(until)
    assert run.status == "done" and run.total == 1
    assert business_date() == until + dt.timedelta(days=1)
    loan.refresh_from_db()
    first.refresh_from_db()
    assert loan.accrued_through == until
    assert first.interest_accrued == first.interest  # on its due date the period stands at its scheduled interest
    second = loan.installments.get(n=2)
    expected = (loan.outstanding_principal - first.principal) * loan.annual_rate * 14 / 360
    assert abs(second.interest_accrued - expected) <= D("0.01")
    assert _receivable_gl(loan, until) == _receivable_sub(loan) == first.interest + second.interest_accrued
    ref = f"loan:{loan.pk}"
    # income is split from its output VAT (价税分离): income + VAT = what accrued (interest, penalty, compound)
    earned = sum((account_balance(account=a, on=until, reference=ref) for a in ("6011", "601102", "601103", "2221")), D(0))
    assert earned == _receivable_sub(loan) + sum((account_balance(account=a, on=until, reference=ref) for a in ("1133", "1134")), D(0))
    assert account_balance(account="2221", on=until, reference=ref) > 0
    # days past due move on the business date: the first installment is 14 days overdue
    assert loan.dpd == 14 and loan.bucket == "M1" and loan.classification == "special_mention"
    assert trial_balance(on=until).balanced


def test_each_date_is_closed_once_even_when_the_run_is_repeated(loan, simulated):
    until = loan.disbursed_on + dt.timedelta(days=10)
    run = _close(until)
    entries = JournalEntry.objects.filter(reference=f"loan:{loan.pk}").count()
    for part in run.partitions.all():
        assert cob_partition_run(partition_id=part.pk)["skipped"]
    services.loan_close_through(loan=Loan.objects.get(pk=loan.pk), through=until)
    assert JournalEntry.objects.filter(reference=f"loan:{loan.pk}").count() == entries
    with pytest.raises(ApplicationError):  # the business date has moved past it
        cob_start(until=until, by=None)


def test_a_partition_resumes_after_a_crash_without_closing_a_loan_twice(products, org, simulated, settings, monkeypatch):
    settings.COB_PARTITION_SIZE = 10
    loans = [FastTrackLoanFactory(owner=ApplicantFactory(username=f"cob_p{k}"), seed=90 + k, amount="200000.00") for k in range(3)]
    until = timezone.localdate() + dt.timedelta(days=5)
    run = cob_start(until=until, by=None)
    part = run.partitions.get()
    real, calls = services.loans_close_through, []

    def dies_on_the_second(*, loans, through, by=None, delinquency=True):
        calls.append([x.pk for x in loans])
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real(loans=loans, through=through, by=by, delinquency=delinquency)

    monkeypatch.setattr("postloan.cob.CHUNK", 1)  # each loan its own transaction, so the crash lands between two

    monkeypatch.setattr("postloan.cob.loans_close_through", dies_on_the_second)
    with pytest.raises(RuntimeError):
        cob_partition_run(partition_id=part.pk)
    part.refresh_from_db()
    assert part.done == 1 and part.last_loan == loans[0].pk and not part.finished_at
    monkeypatch.setattr("postloan.cob.loans_close_through", real)
    cob_partition_run(partition_id=part.pk)
    run.refresh_from_db()
    assert run.status == "done" and run.partitions.get().done == 3
    for one in loans:
        one.refresh_from_db()
        assert one.accrued_through == until
        assert JournalEntry.objects.filter(reference=f"loan:{one.pk}", kind="accrual").count() == 1


def test_progress_counts_only_the_runs_loans_though_the_range_holds_others(products, org, simulated, settings, monkeypatch):
    """A partition is an id range: a loan closed before the run lies inside it and is not one of the run's loans.
    Progress never counts past the partition's total, and a finished partition shows all of it done."""
    settings.COB_PARTITION_SIZE = 10
    loans = [FastTrackLoanFactory(owner=ApplicantFactory(username=f"cob_r{k}"), seed=95 + k, amount="200000.00") for k in range(3)]
    Loan.objects.filter(pk=loans[1].pk).update(status=Loan.Status.CLOSED)
    monkeypatch.setattr("postloan.cob.CHUNK", 1)
    seen = []
    real = services.loans_close_through

    def watched(*, loans, through, by=None, delinquency=True):
        seen.append(CobPartition.objects.get().done)
        return real(loans=loans, through=through, by=by, delinquency=delinquency)

    monkeypatch.setattr("postloan.cob.loans_close_through", watched)
    run = cob_start(until=timezone.localdate() + dt.timedelta(days=2), by=None)
    part = run.partitions.get()
    assert run.total == part.total == 2  # the closed loan is not the run's, though its id lies between the other two
    cob_partition_run(partition_id=part.pk)
    part.refresh_from_db()
    assert max(seen) <= 2 and part.done == part.total == 2


def test_only_one_run_at_a_time_and_production_closes_no_future_day(loan, simulated, settings):
    cob_start(until=timezone.localdate() + dt.timedelta(days=3), by=None)  # its tasks wait for the commit
    with pytest.raises(Conflict):
        cob_start(until=timezone.localdate() + dt.timedelta(days=4), by=None)
    CobRun.objects.update(status="failed")
    settings.ALLOW_SIMULATED_BUSINESS_DATE = False
    with pytest.raises(ApplicationError) as err:
        cob_start(until=timezone.localdate(), by=None)
    assert "until" in err.value.errors


def test_a_repayment_catches_the_loan_up_and_clears_the_receivable(loan, simulated, users):
    first = loan.installments.order_by("n").first()
    # close of business ran for the first days only; then time passes without it
    _close(loan.disbursed_on + dt.timedelta(days=3))
    business_date_set(first.due_date + dt.timedelta(days=6))
    with time_machine.travel(dt.datetime.combine(first.due_date + dt.timedelta(days=6), dt.time(12)), tick=False):
        repayment, _ = repayment_record(loan=loan, amount=first.total, paid_on=timezone.localdate(), reference="COB-1",
                                        by=users["demo_ops"])
    loan.refresh_from_db()
    assert loan.accrued_through == first.due_date + dt.timedelta(days=5)  # caught up through the last closed date
    assert repayment.interest_paid == first.interest
    on = first.due_date + dt.timedelta(days=6)
    assert _receivable_gl(loan, on) == _receivable_sub(loan) > 0  # the second period's accrual stays receivable
    assert account_balance(account="1301", on=on, reference=f"loan:{loan.pk}") == loan.outstanding_principal
    assert trial_balance(on=on).balanced


def test_paying_ahead_of_accrual_accrues_what_is_paid_then_stops(loan, users):
    first = loan.installments.order_by("n").first()
    repayment_record(loan=loan, amount=first.total, paid_on=loan.disbursed_on, reference="COB-2", by=users["demo_ops"])
    first.refresh_from_db()
    assert first.interest_accrued == first.paid_interest == first.interest
    assert _receivable_gl(loan, loan.disbursed_on) == D("0.00")
    income = sum((account_balance(account=a, on=loan.disbursed_on, reference=f"loan:{loan.pk}") for a in ("6011", "2221")), D(0))
    assert income == first.interest  # net income + output VAT (价税分离)


# ---------------------------------------------------------------- API
def test_business_date_and_cob_api(loan, users, simulated):
    ops, risk = client_for(users["demo_ops"]), client_for(users["demo_risk"])
    body = risk.get("/api/v1/business-date/").json()
    assert body["business_date"] == timezone.localdate().isoformat() and body["last_cob"] is None
    assert client_for(loan.borrower).get("/api/v1/business-date/").status_code == 403
    assert risk.post("/api/v1/cob/", {"until": timezone.localdate().isoformat()}, format="json").status_code == 403
    bad = ops.post("/api/v1/cob/", {"until": "someday"}, format="json")
    assert bad.status_code == 400 and "until" in bad.json()["errors"]
    started = ops.post("/api/v1/cob/", {"until": (timezone.localdate() + dt.timedelta(days=2)).isoformat()}, format="json")
    assert started.status_code == 202
    run_id = started.json()["id"]
    for part in CobPartition.objects.filter(run_id=run_id):
        cob_partition_run(partition_id=part.pk)
    progress = risk.get(f"/api/v1/cob/{run_id}/").json()
    assert progress["status"] == "done" and progress["done"] == progress["total"] == 1
    last = risk.get("/api/v1/business-date/").json()
    assert last["business_date"] == (timezone.localdate() + dt.timedelta(days=3)).isoformat()
    assert last["last_cob"]["status"] == "done" and last["last_cob"]["loans"] == 1
    assert ops.get("/api/v1/cob/999999/").status_code == 404


def test_overdue_installments_accrue_penalty_that_a_repayment_clears(loan, simulated, users):
    first = loan.installments.order_by("n").first()
    until = first.due_date + dt.timedelta(days=20)
    _close(until)
    first.refresh_from_db()
    assert first.penalty_accrued > 0 and first.penalty_through == until
    ref = f"loan:{loan.pk}"
    assert account_balance(account="1133", on=until, reference=ref) == first.penalty_accrued
    # nothing paid yet: income (interest, penalty, compound) + output VAT = what stands receivable
    gross = sum((account_balance(account=a, on=until, reference=ref) for a in ("6011", "601102", "601103", "2221")), D(0))
    assert gross == sum((account_balance(account=a, on=until, reference=ref) for a in ("1132", "1133", "1134")), D(0))
    # a second close the next day accrues one more day of penalty only
    _close(until + dt.timedelta(days=1))
    first.refresh_from_db()
    one_day = first.penalty_accrued - account_balance(account="1133", on=until, reference=ref)
    assert D("0") < one_day < first.penalty_accrued / 10
    pay_on = until + dt.timedelta(days=2)
    business_date_set(pay_on)
    with time_machine.travel(dt.datetime.combine(pay_on, dt.time(12)), tick=False):
        repayment, _ = repayment_record(loan=loan, amount=first.total + D("500.00"), paid_on=pay_on, reference="COB-P",
                                        by=users["demo_ops"])
    assert repayment.penalty_paid > 0
    loan.refresh_from_db()
    first.refresh_from_db()
    assert first.settled_on == pay_on
    from postloan.services import penalty_receivable

    assert account_balance(account="1133", on=pay_on, reference=ref) == penalty_receivable(loan.installments.all()) == D("0.00")
    assert _receivable_gl(loan, pay_on) == _receivable_sub(loan)
    assert account_balance(account="1301", on=pay_on, reference=ref) == loan.outstanding_principal
    assert trial_balance(on=pay_on).balanced


def test_a_non_accrual_loan_reconciles_with_its_interest_off_the_balance_sheet(loan, simulated):
    """Past the policy's non-accrual days the unpaid interest and penalty leave the balance sheet for the memo
    account; the run's sub-ledger ↔ GL check leaves them out too (no false alarm after close of business)."""
    from postloan.models import CobReconciliation, PostloanPolicy

    first = loan.installments.order_by("n").first()
    days = PostloanPolicy.objects.order_by("-id").values_list("non_accrual_dpd", flat=True).first() or 90
    run = _close(first.due_date + dt.timedelta(days=days + 5))
    loan.refresh_from_db()
    assert loan.non_accrual_since is not None and _receivable_sub(loan) > 0
    assert _receivable_gl(loan, run.until) == 0
    result = CobReconciliation.objects.get(run=run)
    assert result.balanced, result.differences
