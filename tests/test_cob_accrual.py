"""The ordinary loan-day closed in SQL (`postloan.accrual`) posts exactly what the Python path posts.

One book — equal installments, equal principal and 随借随还 (daily interest), rates with six decimals, upfront
interest after a prepayment, VAT split and VAT-exempt borrowers, a VAT-exempt product, a product with its own income
account, two branches, a loan left overdue, a key posted before — is closed day by day across due dates. Each day it
is closed once by the Python path (`set_based=False`, then rolled back) and once as close of business does
(`set_based=True`), and every journal entry, line, installment and loan is compared to the cent. Postgres only: on
SQLite the Python path closes every loan (its decimals are floating-point numbers)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction

from ledger.models import Account, AccountMapping, JournalEntry, JournalLine, VatRule
from ledger.services import Cr, Dr, Entry, entries_post, period_close
from loanservice.business_date import business_date_set
from loanservice.errors import Conflict
from loanservice.models import Branch
from postloan import accrual, services
from postloan.models import Installment, Loan
from postloan.services import loans_close_through, prepayment_make, repayment_record
from tests.factories import ApplicantFactory, FastTrackLoanFactory

pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif(connection.vendor != "postgresql", reason="the set-based accrual runs on Postgres only")]
D = Decimal
DISBURSED = dt.date(2026, 1, 6)


class Rollback(Exception):
    pass


def at(day: dt.date):
    return time_machine.travel(dt.datetime.combine(day, dt.time(12)), tick=False)


@pytest.fixture
def book(products, org):
    """Seven loans disbursed on 6 Jan 2026, closed by the Python path through 26 Jan, one prepaid on 27 Jan."""
    xin = products["xinmiaodai"]
    xin.repayment_methods = [*xin.repayment_methods, "daily_interest"]
    xin.save()
    specs = [(72, "300000.00", "equal_installment"), (3, "240000.00", "equal_principal"), (61, "400000.00", "daily_interest"),
             (140, "120000.00", "equal_installment"), (73, "500000.00", "equal_installment"),
             (71, "300000.00", "interest_only"), (141, "120000.00", "equal_installment")]
    with at(DISBURSED):
        loans = [FastTrackLoanFactory(owner=ApplicantFactory(username=f"acc{seed}"), seed=seed, amount=amount, method=method)
                 for seed, amount, method in specs]
    other = Branch.objects.exclude(pk=loans[0].branch_id).order_by("code").first()
    # varied rates (six decimals), VAT-exempt borrower classes and not, two branches, two more products
    changes = [{"annual_rate": D("0.043517"), "tax_class": ""}, {"annual_rate": D("0.061250"), "tax_class": "micro"},
               {"annual_rate": D("0.052000"), "tax_class": ""}, {"annual_rate": D("0.039999"), "tax_class": "small", "branch": other},
               {"annual_rate": D("0.071300"), "tax_class": "", "product_code": "secured-operating", "branch": other},
               {"annual_rate": D("0.045000"), "tax_class": "", "product_code": "supply-chain-order"},
               {"annual_rate": D("0.058800"), "tax_class": "individual"}]
    for loan, change in zip(loans, changes, strict=True):
        Loan.objects.filter(pk=loan.pk).update(**change)
    VatRule.objects.filter(income_account__code="6011").update(exempt_products=["supply-chain-order"])
    income = Account.objects.get(code="601102")  # the secured product's interest to an income account of its own
    AccountMapping.objects.create(role="interest_income", product="secured-operating", account=income)
    loans_close_through(loans=list(Loan.objects.filter(pk__in=[x.pk for x in loans]).order_by("pk")),
                        through=dt.date(2026, 1, 26), set_based=False)
    on = dt.date(2026, 1, 27)
    business_date_set(on)
    with at(on):  # interest charged upfront in the current period (it also closes the loan through 26 Jan inline)
        prepayment_make(loan=Loan.objects.get(pk=loans[0].pk), amount=D("50000.00"), mode="lower_installment", key="acc-pp",
                        by=loans[0].borrower)
        repayment_record(loan=Loan.objects.get(pk=loans[2].pk), amount=D("100000.00"), paid_on=on, reference="acc-daily",
                         by=loans[2].borrower)  # 随借随还: principal repaid at will lowers the interest from today
    assert Installment.objects.filter(loan_id=loans[0].pk, superseded=False, settled_on__isnull=True,
                                      interest_upfront__gt=0).exists()
    return [x.pk for x in loans]


def _state(ids: list[int], after_entry: int) -> dict:
    entries = {}
    for e in JournalEntry.objects.filter(pk__gt=after_entry).order_by("pk").values():
        e.pop("posted_at")
        pk = e.pop("id")
        e["lines"] = list(JournalLine.objects.filter(entry_id=pk).order_by("pk").values_list("account__code", "debit", "credit"))
        entries[e["key"]] = e
    installments = {(r["loan_id"], r["n"]): r for r in Installment.objects.filter(loan_id__in=ids).values()}
    loans = {r["id"]: r for r in Loan.objects.filter(pk__in=ids).values()}
    return {"entries": entries, "installments": installments, "loans": loans}


def _close(ids: list[int], on: dt.date, *, set_based: bool) -> None:
    loans = list(Loan.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    loans_close_through(loans=loans, through=on, set_based=set_based)
    with connection.cursor() as cur:  # the deferred balance trigger checks every entry now, not at a commit never made
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("SET CONSTRAINTS ALL DEFERRED")


def test_the_set_based_day_posts_what_the_python_path_posts(book, monkeypatch, org):
    ids = book
    closed_in_sql: list[int] = []
    real = services.ordinary_days_close

    def spy(**kwargs):
        done, posted = real(**kwargs)
        closed_in_sql.extend(done)
        return done, posted

    monkeypatch.setattr(services, "ordinary_days_close", spy)
    # a key posted before the day is closed is left out by both paths (the installment is still brought to the day)
    first = Loan.objects.get(pk=ids[1])
    entries_post([Entry(kind="accrual", value_date=dt.date(2026, 2, 3), key=f"loan:{first.pk}:accrual:2026-02-03",
                        reference=f"loan:{first.pk}", product=first.product_code, branch_id=first.branch_id,
                        lines=(Dr("1132", D("1.00")), Cr("6011", D("1.00"))))])
    python_days = 0
    day = dt.date(2026, 1, 27)
    while day <= dt.date(2026, 3, 24):  # across the due dates of 6 Feb and 6 Mar
        # the installments due today are paid today, except the last loan's: it falls overdue and accrues penalty
        for inst in Installment.objects.filter(loan_id__in=ids[:-1], due_date=day, settled_on__isnull=True, superseded=False):
            business_date_set(day)
            with at(day):
                repayment_record(loan=Loan.objects.get(pk=inst.loan_id), amount=inst.due_remaining, paid_on=day,
                                 reference=f"acc-{inst.pk}", by=org["demo_ops"])
        before = JournalEntry.objects.order_by("-pk").values_list("pk", flat=True).first()
        try:
            with transaction.atomic():
                _close(ids, day, set_based=False)
                expected = _state(ids, before)
                raise Rollback
        except Rollback:
            pass
        sql_before = len(closed_in_sql)
        _close(ids, day, set_based=True)
        assert _state(ids, before) == expected, day
        python_days += len(ids) - (len(closed_in_sql) - sql_before)
        day += dt.timedelta(days=1)
    # most loan-days were closed in SQL; the overdue loan, the due dates and the first days after them in Python
    assert len(closed_in_sql) > 5 * python_days > 0
    assert ids[-1] not in closed_in_sql[-len(ids):]
    overdue = Loan.objects.get(pk=ids[-1])
    assert overdue.dpd > 0 and Installment.objects.filter(loan=overdue, penalty_accrued__gt=0).exists()
    # the VAT split: a taxed loan's accrual has an output VAT line, an exempt class's and an exempt product's none
    vat = {ref: codes for ref, codes in ((e.reference, {x.account.code for x in e.lines.all()})
                                         for e in JournalEntry.objects.filter(kind="accrual", value_date=dt.date(2026, 3, 24)))}
    assert "2221" in vat[f"loan:{ids[0]}"] and "2221" not in vat[f"loan:{ids[1]}"] and "2221" not in vat[f"loan:{ids[5]}"]
    assert "601102" in vat[f"loan:{ids[4]}"]


def test_a_closed_period_refuses_the_set_based_day_as_it_refuses_the_python_path(book):
    ids = book
    loans = list(Loan.objects.filter(pk__in=ids).order_by("pk"))
    loans_close_through(loans=loans, through=dt.date(2026, 1, 31))
    period_close(year=2026, month=2, by=None)
    loans = list(Loan.objects.filter(pk__in=ids).order_by("pk"))
    assert all(accrual.ordinary(x, dt.date(2026, 2, 1)) for x in loans)
    with pytest.raises(Conflict):
        loans_close_through(loans=loans, through=dt.date(2026, 2, 1))
    assert not JournalEntry.objects.filter(value_date=dt.date(2026, 2, 1)).exists()


def test_the_database_refuses_an_unbalanced_entry_from_the_set_based_day(book, monkeypatch):
    """The deferred balance trigger checks the statement's lines like any other: a plan that debited both sides (a
    mistake this test makes on purpose) is refused when the transaction's constraints are checked."""
    ids = book
    real = accrual.entry_plan

    def both_debits(sides, **kwargs):
        return [replace(line, debit=True) for line in real(sides, **kwargs)]

    monkeypatch.setattr(accrual, "entry_plan", both_debits)
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        _close(ids, dt.date(2026, 1, 27), set_based=True)
