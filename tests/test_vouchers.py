"""The core-banking outbox (issue #17): entries leave as vouchers aggregated by value date, branch, product and account,
each entry exactly once, the batch built at the end of every close of business."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ledger.models import JournalEntry, VoucherBatch, VoucherEntry
from ledger.services import Cr, Dr, Entry, entries_post, entry_post, voucher_batch_build
from postloan.cob import cob_partition_run, cob_start
from tests.factories import ApplicantFactory, FastTrackLoanFactory

D = Decimal
ON = dt.date(2027, 3, 15)


@pytest.mark.django_db
def test_entries_are_aggregated_by_date_branch_product_and_account_once_each():
    entries_post([Entry(kind="accrual", value_date=ON, product="p1", reference=f"loan:{k}", key=f"v:{k}",
                        lines=(Dr("1132", D("10.60")), Cr("6011", D("10.60")))) for k in range(5)])
    entry_post(kind="accrual", value_date=ON, product="p2", lines=[Dr("1132", D("1.06")), Cr("6011", D("1.06"))])
    batch = voucher_batch_build(business_date=ON)
    assert batch.entries == JournalEntry.objects.count() == 6
    lines = {(x["product"], x["account"]): (x["debit"], x["credit"]) for x in batch.lines}
    assert lines == {("p1", "1132"): ("53.00", "0.00"), ("p1", "6011"): ("0.00", "50.00"), ("p1", "2221"): ("0.00", "3.00"),
                     ("p2", "1132"): ("1.06", "0.00"), ("p2", "6011"): ("0.00", "1.00"), ("p2", "2221"): ("0.00", "0.06")}
    assert batch.total_debit == batch.total_credit == D("54.06")
    assert voucher_batch_build(business_date=ON) is None  # nothing new: nothing leaves twice
    late = entry_post(kind="manual", value_date=ON - dt.timedelta(days=3), lines=[Dr("3001", D("5.00")), Cr("2011", D("5.00"))])
    second = voucher_batch_build(business_date=ON + dt.timedelta(days=1))
    assert second.entries == 1 and VoucherEntry.objects.get(entry=late).batch == second
    assert second.lines[0]["value_date"] == (ON - dt.timedelta(days=3)).isoformat()


@pytest.mark.django_db
def test_close_of_business_leaves_one_batch_with_lines_not_one_voucher_per_loan(products, org, settings):
    settings.ALLOW_SIMULATED_BUSINESS_DATE = True
    loans = [FastTrackLoanFactory(owner=ApplicantFactory(username=f"vouch{k}"), seed=90 + k, amount="200000.00") for k in range(3)]
    voucher_batch_build(business_date=loans[0].disbursed_on)  # the disbursements leave first
    until = loans[0].disbursed_on + dt.timedelta(days=1)
    run = cob_start(until=until, by=None)
    for part in run.partitions.all():
        cob_partition_run(partition_id=part.pk)
    batch = VoucherBatch.objects.order_by("-id").first()
    assert batch.business_date == until and batch.entries >= 6  # an accrual and a provision per loan
    accruals = [x for x in batch.lines if x["account"] == "1132"]
    assert len(accruals) == len({(x["branch"], x["product"]) for x in accruals})  # one line per branch and product
    assert batch.total_debit == batch.total_credit
