"""The servicing rules of #17 still missing before: servicing on the business date (not the wall clock), the borrower
as one for classification (2023 rules), provisions re-measured at once when a servicing event moves a loan's stage,
back-dated repayments replayed, the cure period before an upgrade and the restructuring observation period, extension
within 贷款通则's limits with the guarantor's consent, provisional due dates on years whose holidays are not loaded."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from applications.models import Enterprise
from ledger.models import JournalEntry
from ledger.selectors import account_balance, account_for
from loanservice.models import AuditEvent
from loanservice.business_date import business_date_set
from postloan.models import ClassificationChange, Loan, LoanProvision, PostloanPolicy
from postloan.monitoring import delinquency_refresh
from postloan.provisions import provisions_measure
from postloan.services import (
    approval_request_decide,
    classification_downgrade,
    restructure_request,
    write_off_request,
)
from tests.factories import ApplicantFactory, FastTrackLoanFactory

pytestmark = pytest.mark.django_db
D = Decimal
DISBURSED = dt.date(2025, 12, 31)


def at(day: dt.date):
    return time_machine.travel(dt.datetime.combine(day, dt.time(12)), tick=False)


def _loan(seed: int, name: str) -> Loan:
    with time_machine.travel(dt.datetime.combine(DISBURSED, dt.time(2)), tick=False):
        return FastTrackLoanFactory(owner=ApplicantFactory(username=name), seed=seed)


@pytest.fixture
def loan(products, org):
    return _loan(61, "rules_a")


def _allowance(loan: Loan, on: dt.date) -> Decimal:
    return account_balance(account=account_for("allowance", loan.product_code), on=on, reference=f"loan:{loan.pk}")


# ---------------------------------------------------------------- 1. the business date, not the wall clock
def test_write_off_and_restructuring_are_dated_on_the_business_date_not_the_wall_clock(products, org):
    written, restructured = _loan(61, "bd_w"), _loan(62, "bd_r")
    business = dt.date(2026, 6, 1)
    business_date_set(business)
    with at(dt.date(2026, 5, 20)):  # the wall clock is behind the simulated business date
        classification_downgrade(loan=written, to_category="doubtful", reason="经营停止", by=org["demo_risk"])
        request = write_off_request(loan=written, reason="核销", by=org["demo_risk"])
        approval_request_decide(request=request, approve=True, by=org["demo_branch_approver"])
        request = restructure_request(loan=restructured, kind="reschedule", term_months=12, reason="困难",
                                      by=org["demo_rm"])
        approval_request_decide(request=request, approve=True, by=org["demo_risk"])
    written.refresh_from_db()
    restructured.refresh_from_db()
    assert written.closed_on == business
    assert set(JournalEntry.objects.filter(reference=f"loan:{written.pk}", kind="write_off")
               .values_list("value_date", flat=True)) == {business}
    assert restructured.restructured_on == business
    assert set(JournalEntry.objects.filter(reference=f"loan:{restructured.pk}", kind="restructure")
               .values_list("value_date", flat=True)) <= {business}


# ---------------------------------------------------------------- 3. the borrower as one (2023 rules)
@pytest.fixture
def siblings(products, org):
    """Two loans of one enterprise (the second moved onto the first's borrower)."""
    a, b = _loan(61, "sib_a"), _loan(62, "sib_b")
    Loan.objects.filter(pk=b.pk).update(enterprise=a.enterprise)
    b.refresh_from_db()
    return a, b


def test_a_non_performing_share_above_the_policy_floors_all_the_borrowers_loans(siblings, org):
    a, b = siblings
    business_date_set(dt.date(2026, 2, 10))
    with at(dt.date(2026, 2, 10)):
        classification_downgrade(loan=a, to_category="substandard", reason="经营恶化", by=org["demo_risk"])
    b.refresh_from_db()
    assert b.classification == "substandard"  # a's principal is half of the borrower's claims: > 10 %
    change = ClassificationChange.objects.get(loan=b, kind="borrower")
    assert change.from_category == "normal" and "10.00%" in change.reason
    event = AuditEvent.objects.filter(action="loan.classification.borrower_floor").latest("id")
    assert event.data["rule"] == "borrower_npl_share" and b.pk in event.data["loans"]


def test_the_borrower_floor_in_close_of_business_respects_the_threshold_and_retail(siblings, org):
    a, b = siblings
    today = dt.date(2026, 2, 10)
    Loan.objects.filter(pk=a.pk).update(classification="doubtful")  # as the DPD floors left it
    PostloanPolicy.objects.create(effective_from=DISBURSED, borrower_npl_share=D("0.60"))
    delinquency_refresh(today=today, loan_ids=[a.pk])
    b.refresh_from_db()
    assert b.classification == "normal"  # 50 % is not above 60 %
    PostloanPolicy.objects.filter(effective_from=DISBURSED).update(borrower_npl_share=D("0.10"))
    Enterprise.objects.filter(pk=a.enterprise_id).update(legal_form="individual")
    counts = delinquency_refresh(today=today, loan_ids=[a.pk])
    b.refresh_from_db()
    assert b.classification == "normal" and counts["borrower_floor"] == 0  # 个体工商户: retail, loan by loan
    Enterprise.objects.filter(pk=a.enterprise_id).update(legal_form="llc")
    counts = delinquency_refresh(today=today, loan_ids=[a.pk])  # COB's delinquency step, for a's chunk only
    b.refresh_from_db()
    assert b.classification == "substandard" and counts["borrower_floor"] == 1


# ---------------------------------------------------------------- 6. provisions at once on a stage change
def test_a_downgrade_or_a_restructuring_re_measures_the_provision_at_once(products, org):
    downgraded, restructured = _loan(61, "prov_d"), _loan(62, "prov_r")
    on = dt.date(2026, 1, 31)
    provisions_measure(loan_ids=[downgraded.pk, restructured.pk], on=on, month_end=True)
    stage1 = _allowance(downgraded, on)
    assert stage1 > 0
    day = dt.date(2026, 2, 10)
    business_date_set(day)
    with at(day):
        classification_downgrade(loan=downgraded, to_category="substandard", reason="经营恶化", by=org["demo_risk"])
    last = LoanProvision.objects.filter(loan=downgraded).latest("on", "id")
    assert (last.on, last.stage, last.reason) == (day, 3, "stage")
    assert _allowance(downgraded, day) == last.ecl > stage1  # the ledger holds the new figure right after the event
    with at(day):
        request = restructure_request(loan=restructured, kind="reschedule", term_months=12, reason="困难", by=org["demo_rm"])
        approval_request_decide(request=request, approve=True, by=org["demo_risk"])
    last = LoanProvision.objects.filter(loan=restructured).latest("on", "id")
    assert (last.on, last.stage) == (day, 2)  # restructured: at least special mention, lifetime ECL
    assert _allowance(restructured, day) == last.ecl
