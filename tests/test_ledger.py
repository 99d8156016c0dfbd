"""The general ledger: balanced entries only, exactly once by key, reversals, closed periods, the trial balance,
the database's own refusal of unbalanced or edited rows (Postgres), and the loan's book through the API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from django.db.utils import DatabaseError
from django.utils import timezone

from ledger.models import Account, JournalEntry, JournalLine
from ledger.selectors import account_balance, trial_balance, vouchers
from ledger.services import Cr, Dr, Line, entry_post, entry_reverse, period_close
from loanservice.errors import ApplicationError, Conflict
from postloan.services import repayment_record
from tests.conftest import client_for, using_postgres
from tests.factories import ApplicantFactory, FastTrackLoanFactory

D = Decimal
TODAY = dt.date(2026, 12, 7)


def _disburse(amount="1000.00", *, key=None, on=TODAY, reference="loan:x"):
    return entry_post(kind="disbursement", value_date=on, lines=[Dr("1301", D(amount)), Cr("2011", D(amount))],
                      reference=reference, key=key)


def test_a_balanced_entry_posts_with_its_lines(db):
    entry = entry_post(kind="repayment", value_date=TODAY, reference="loan:1", lines=[
        Dr("3001", D("1050.00")), Cr("6011", D("50.00")), Cr("1301", D("1000.00")), Cr("601102", D("0"))])
    assert [(x.account_id and x.account.code, x.debit, x.credit) for x in entry.lines.all()] == [
        ("3001", D("1050.00"), D("0.00")), ("6011", D("0.00"), D("50.00")), ("1301", D("0.00"), D("1000.00"))]


@pytest.mark.parametrize("lines, field", [
    ([Dr("1301", D("100.00")), Cr("2011", D("99.99"))], "lines"),                 # does not balance
    ([Line("1301", debit=D("10"), credit=D("10")), Cr("2011", D("0"))], "lines"),  # both sides on one line
    ([Dr("1301", D("-5.00")), Cr("2011", D("-5.00"))], "lines"),                   # negative
    ([Dr("1301", D("1.005")), Cr("2011", D("1.005"))], "lines"),                   # not in cents
    ([Dr("9999", D("1.00")), Cr("2011", D("1.00"))], "lines"),                     # no such account
    ([], "lines"),                                                                  # nothing to post
])
def test_what_cannot_be_posted_is_refused_and_nothing_is_written(db, lines, field):
    with pytest.raises(ApplicationError) as err:
        entry_post(kind="x", value_date=TODAY, lines=lines)
    assert field in err.value.errors
    assert not JournalEntry.objects.exists() and not JournalLine.objects.exists()


def test_an_inactive_account_takes_no_posting(db):
    Account.objects.filter(code="2011").update(active=False)
    with pytest.raises(ApplicationError):
        _disburse()


def test_the_same_key_posts_once(db):
    first = _disburse(key="loan:1:disbursement")
    again = _disburse(key="loan:1:disbursement")
    assert again.pk == first.pk and JournalEntry.objects.count() == 1


def test_a_reversal_posts_the_opposite_once_and_is_never_reversed_itself(db, django_user_model):
    clerk = django_user_model.objects.create(username="clerk")
    entry = _disburse()
    reversal = entry_reverse(entry=entry, value_date=TODAY + dt.timedelta(days=3), reason="录入错误", by=clerk)
    assert reversal.reverses_id == entry.pk and reversal.kind == "reversal"
    assert {(x.account.code, x.debit, x.credit) for x in reversal.lines.all()} == {
        ("1301", D("0.00"), D("1000.00")), ("2011", D("1000.00"), D("0.00"))}
    with pytest.raises(Conflict):
        entry_reverse(entry=entry, value_date=TODAY, reason="again", by=clerk)
    with pytest.raises(Conflict):
        entry_reverse(entry=reversal, value_date=TODAY, reason="reverse the reversal", by=clerk)
    assert account_balance(account="1301", on=TODAY + dt.timedelta(days=3)) == D("0.00")
    assert account_balance(account="1301", on=TODAY) == D("1000.00")  # the original date is not changed


def test_a_closed_month_takes_no_posting_and_closes_once(db):
    period_close(year=2026, month=11, by=None)
    with pytest.raises(Conflict):
        _disburse(on=dt.date(2026, 11, 30))
    _disburse(on=dt.date(2026, 12, 1))
    with pytest.raises(Conflict):
        period_close(year=2026, month=11, by=None)
    period_close(year=2025, month=None, by=None)
    with pytest.raises(Conflict):
        _disburse(on=dt.date(2025, 6, 1))


def test_trial_balance_balances_and_reads_balances_as_of_the_date(db, django_assert_num_queries):
    _disburse("1000.00", on=TODAY)
    entry_post(kind="repayment", value_date=TODAY + dt.timedelta(days=30),
               lines=[Dr("3001", D("120.00")), Cr("1301", D("100.00")), Cr("6011", D("20.00"))])
    with django_assert_num_queries(2):
        report = trial_balance(on=TODAY + dt.timedelta(days=30))
    rows = {x.account: (x.debit, x.credit) for x in report.lines}
    assert rows == {"1301": (D("900.00"), D("0.00")), "2011": (D("0.00"), D("1000.00")),
                    "3001": (D("120.00"), D("0.00")), "6011": (D("0.00"), D("20.00"))}
    assert report.balanced and report.total_debit == D("1020.00")
    assert {x.account for x in trial_balance(on=TODAY).lines} == {"1301", "2011"}
    assert {(v["account"], v["debit"], v["credit"]) for v in vouchers(on=TODAY)} == {
        ("1301", D("1000.00"), D("0.00")), ("2011", D("0.00"), D("1000.00"))}


# ---------------------------------------------------------------- the database's own guard (Postgres)
postgres_only = pytest.mark.skipif(not using_postgres(), reason="the balance trigger is Postgres's (CI runs it)")


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_postgres_refuses_an_unbalanced_entry_at_commit():
    from casework.reference_data import seed_reference_data

    seed_reference_data()
    loans = Account.objects.get(code="1301")
    with pytest.raises((IntegrityError, InternalError, DatabaseError)), transaction.atomic():
        entry = JournalEntry.objects.create(kind="forged", value_date=TODAY)
        JournalLine.objects.create(entry=entry, account=loans, debit=D("500.00"))
        with connection.cursor() as cursor:  # deferred constraints are checked here, as at COMMIT
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert not JournalEntry.objects.filter(kind="forged").exists()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_postgres_refuses_to_change_or_delete_a_posted_line():
    from casework.reference_data import seed_reference_data

    seed_reference_data()
    entry = _disburse()
    for change in (lambda: JournalLine.objects.filter(entry=entry).update(debit=D("1.00")),
                   lambda: JournalLine.objects.filter(entry=entry).delete(),
                   lambda: JournalEntry.objects.filter(pk=entry.pk).update(memo="edited")):
        with pytest.raises(DatabaseError), transaction.atomic():
            change()
    assert account_balance(account="1301", on=TODAY) == D("1000.00")


# ---------------------------------------------------------------- the loan's book
@pytest.fixture
def loan(products, org):
    return FastTrackLoanFactory(owner=ApplicantFactory(username="ledger_owner"), seed=71, amount="300000.00")


def test_disbursement_and_repayment_post_balanced_entries_that_match_the_loan(loan, users):
    ops = users["demo_ops"]
    assert account_balance(account="1301", on=loan.disbursed_on, reference=f"loan:{loan.pk}") == D("300000.00")
    first = loan.installments.order_by("n").first()
    on = loan.disbursed_on  # paid early, the same day (a payment date is never in the future)
    repayment, _created = repayment_record(loan=loan, amount=first.total, paid_on=on, reference="LEDG-1", by=ops)
    loan.refresh_from_db()
    ref = f"loan:{loan.pk}"
    assert loan.outstanding_principal < D("300000.00")
    assert account_balance(account="1301", on=on, reference=ref) == loan.outstanding_principal
    # the interest income net of its output VAT (价税分离), and the VAT payable
    assert account_balance(account="6011", on=on, reference=ref) + account_balance(account="2221", on=on, reference=ref) == (
        repayment.interest_paid)
    assert account_balance(account="3001", on=on, reference=ref) == first.total
    # the same repayment again changes nothing in the book
    entries = JournalEntry.objects.filter(reference=ref).count()
    repayment_record(loan=loan, amount=first.total, paid_on=on, reference="LEDG-1", by=ops)
    assert JournalEntry.objects.filter(reference=ref).count() == entries
    assert trial_balance(on=on).balanced


def test_the_loan_transactions_api_shows_staff_the_lines_and_the_borrower_the_money(loan, users):
    first = loan.installments.order_by("n").first()
    repayment_record(loan=loan, amount=first.total, paid_on=loan.disbursed_on, reference="LEDG-2", by=users["demo_ops"])
    url = f"/api/v1/loans/{loan.pk}/transactions/"
    staff = client_for(users["demo_ops"]).get(url)
    assert staff.status_code == 200
    kinds = [t["type"] for t in staff.json()]
    assert kinds == ["disbursement", "accrual", "repayment"]  # interest paid ahead of accrual is accrued at payment
    disbursement, accrual, paid = staff.json()
    assert accrual["parts"]["interest"] == paid["parts"]["interest"]
    assert disbursement["amount"] == "300000.00" and disbursement["parts"]["principal"] == "300000.00"
    assert {(e["account"], e["debit"], e["credit"]) for e in disbursement["entries"]} == {
        ("1301", "300000.00", "0.00"), ("2011", "0.00", "300000.00")}
    assert paid["amount"] == f"{first.total:.2f}"
    assert D(paid["parts"]["principal"]) + D(paid["parts"]["interest"]) == first.total
    borrower = client_for(loan.borrower).get(url)
    assert borrower.status_code == 200 and all("entries" not in t for t in borrower.json())
    assert [t["type"] for t in borrower.json()] == ["disbursement", "repayment"]
    assert client_for(ApplicantFactory(username="someone_else")).get(url).status_code == 404
    assert client_for(None).get(url).status_code in (401, 403)


def test_trial_balance_api(loan, users):
    url = "/api/v1/ledger/trial-balance/"
    body = client_for(users["demo_risk"]).get(url, {"on": timezone.localdate().isoformat()}).json()
    assert body["total_debit"] == body["total_credit"] and D(body["total_debit"]) >= D("300000.00")
    assert {"account", "name", "debit", "credit"} <= set(body["lines"][0])
    assert client_for(users["demo_ops"]).get(url).status_code == 200
    bad = client_for(users["demo_ops"]).get(url, {"on": "not-a-date"})
    assert bad.status_code == 400 and "on" in bad.json()["errors"]
    assert client_for(loan.borrower).get(url).status_code == 403
    assert client_for(users["demo_rm"]).get(url).status_code == 403
