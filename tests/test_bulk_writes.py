"""The kernel's set-based writes (`loanservice.bulk`) close of business relies on: `rows_update` writes exactly the
fields named, each row its own values (decimals, dates, NULLs, booleans), and nothing else; `rows_insert` returns the
new pks in the order of the rows and gives the columns not named their model defaults."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ledger.models import JournalEntry, JournalLine
from ledger.services import Cr, Dr, Entry, entries_post
from loanservice.bulk import rows_insert, rows_update
from postloan.models import Installment
from tests.factories import ApplicantFactory, FastTrackLoanFactory

pytestmark = pytest.mark.django_db


def test_rows_update_writes_each_row_its_own_values_and_only_the_fields_named(products, org):
    loan = FastTrackLoanFactory(owner=ApplicantFactory(username="bulk_owner"), seed=31, amount="100000.00")
    rows = list(Installment.objects.filter(loan=loan).order_by("n"))
    before = {r.pk: (r.principal, r.due_date) for r in rows}
    for k, row in enumerate(rows):
        row.interest_accrued = Decimal("10.01") * (k + 1)
        row.penalty_exact = Decimal("0.123456789012") if k % 2 else None
        row.penalty_through = row.due_date + dt.timedelta(days=k) if k % 2 else None
        row.superseded = k == 1
        row.principal = Decimal("1.00")  # not named: must not be written
    assert rows_update(Installment, rows, ["interest_accrued", "penalty_exact", "penalty_through", "superseded"]) == len(rows)
    for k, row in enumerate(Installment.objects.filter(loan=loan).order_by("n")):
        assert row.interest_accrued == Decimal("10.01") * (k + 1)
        assert row.penalty_exact == (Decimal("0.123456789012") if k % 2 else None)
        assert row.penalty_through == (row.due_date + dt.timedelta(days=k) if k % 2 else None)
        assert row.superseded is (k == 1)
        assert (row.principal, row.due_date) == before[row.pk]
    assert rows_update(Installment, [], ["interest_accrued"]) == 0


def test_rows_insert_returns_the_pks_in_order_and_fills_the_defaults():
    pks = rows_insert(JournalEntry, ["kind", "value_date", "reference", "key"],
                      [("manual", dt.date(2026, 1, k + 1), f"bulk:{k}", f"bulk-insert-{k}") for k in range(5)], returning=True)
    entries = {e.pk: e for e in JournalEntry.objects.filter(pk__in=pks)}
    assert [entries[pk].reference for pk in pks] == [f"bulk:{k}" for k in range(5)]
    assert all(e.currency == "CNY" and e.posted_at is not None and e.memo == "" for e in entries.values())


def test_entries_post_posts_each_key_once_even_twice_in_the_lot():
    entry = Entry(kind="manual", value_date=dt.date(2026, 1, 5), lines=(Dr("3001", Decimal("5.00")), Cr("2011", Decimal("5.00"))),
                  reference="bulk:twice", key="bulk-twice")
    assert entries_post([entry, entry]) == 1
    assert entries_post([entry]) == 0
    posted = JournalEntry.objects.get(key="bulk-twice")
    assert sorted((x.debit, x.credit) for x in JournalLine.objects.filter(entry=posted)) == [
        (Decimal("0.00"), Decimal("5.00")), (Decimal("5.00"), Decimal("0.00"))]
