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
from contracts.schedules import add_months
from ledger.models import JournalEntry, VatRule
from ledger.selectors import account_balance, account_for
from loanservice.business_date import business_date_set
from loanservice.errors import ApplicationError
from loanservice.models import AuditEvent
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


# ---------------------------------------------------------------- 2. a back-dated repayment is replayed
def _state(loan: Loan):
    loan.refresh_from_db()
    rows = [(r.n, r.paid_principal, r.paid_interest, r.paid_penalty, r.paid_compound, r.penalty_accrued,
             r.compound_accrued, r.interest_accrued, r.settled_on, r.due_date)
            for r in loan.installments.filter(superseded=False).order_by("n")]
    return loan.outstanding_principal, loan.dpd, loan.bucket, loan.status, loan.accrued_through, rows


def _book(loan: Loan, on: dt.date) -> dict:
    from ledger.models import Account

    out = {code: account_balance(account=code, on=on, reference=f"loan:{loan.pk}")
           for code in Account.objects.values_list("code", flat=True)}
    return {code: v for code, v in out.items() if v}


def _pay_on_time(loan: Loan, amount: Decimal, on: dt.date, ref: str, by):
    from postloan.services import repayment_record

    business_date_set(on)
    with at(on):
        return repayment_record(loan=loan, amount=amount, paid_on=on, reference=ref, by=by)[0]


def test_a_back_dated_repayment_is_replayed_to_the_same_end_state_as_on_time(products, org):
    from postloan.services import loan_catch_up, repayment_record

    a, b = _loan(51, "bd_on_time"), _loan(53, "bd_late")
    if (a.annual_rate, a.principal, a.disbursed_on) != (b.annual_rate, b.principal, b.disbursed_on):
        pytest.skip("the twin loan was priced differently")
    ops = org["demo_ops"]
    first, second = a.installments.get(n=1), a.installments.get(n=2)
    late = second.due_date + dt.timedelta(days=5)
    _pay_on_time(a, first.total, first.due_date, "R1", ops)                    # on time
    _pay_on_time(a, second.total, late, "R2", ops)                             # a little late
    _pay_on_time(b, second.total, late, "R2", ops)                             # b's R1 is not booked yet: R2 pays arrears
    today = second.due_date + dt.timedelta(days=20)
    business_date_set(today)
    for x in (a, b):
        loan_catch_up(loan=x)
    closed = set(JournalEntry.objects.filter(reference=f"loan:{b.pk}").values_list("pk", flat=True))
    assert _state(a) != _state(b)
    with at(today):
        r1, created = repayment_record(loan=b, amount=first.total, paid_on=first.due_date, reference="R1", by=ops)
    assert created and r1.allocation["backdated"]["replayed"]  # R2 was re-allocated after it
    assert _state(a) == _state(b)
    # every account of the loan to the cent, but for how output VAT (价税分离) rounds: per entry on time, on the
    # differences at once when back-dated; income gross of its VAT is the same to the cent
    income = {account_for(role, a.product_code) for role in ("interest_income", "penalty_income", "compound_income")}
    income |= set(VatRule.objects.values_list("payable_account__code", flat=True))
    book_a, book_b = _book(a, today), _book(b, today)
    assert {k: v for k, v in book_a.items() if k not in income} == {k: v for k, v in book_b.items() if k not in income}
    assert sum(v for k, v in book_a.items() if k in income) == sum(v for k, v in book_b.items() if k in income)
    assert all(abs(book_a.get(k, 0) - book_b.get(k, 0)) <= D("0.05") for k in income)
    new = JournalEntry.objects.filter(reference=f"loan:{b.pk}").exclude(pk__in=closed)
    assert new.exists() and set(new.values_list("value_date", flat=True)) == {today}  # no closed date changes
    with at(today):  # idempotent by reference
        again, created = repayment_record(loan=b, amount=first.total, paid_on=first.due_date, reference="R1", by=ops)
    assert not created and again.pk == r1.pk


# ---------------------------------------------------------------- 4. cure period, restructuring observation period
def test_an_upgrade_waits_for_the_cure_period_current(loan, org):
    from postloan.services import classification_upgrade_request, upgrade_cure_until

    risk, approver = org["demo_risk"], org["demo_branch_approver"]
    downgraded_on = dt.date(2026, 1, 10)
    business_date_set(downgraded_on)
    with at(downgraded_on):
        classification_downgrade(loan=loan, to_category="special_mention", reason="行业下行", by=risk)
        request = classification_upgrade_request(loan=loan, to_category="normal", reason="经营恢复", by=risk)  # may wait
    for n in (1, 2, 3):  # three installments paid on their due dates
        inst = loan.installments.get(n=n)
        _pay_on_time(loan, inst.total, inst.due_date, f"CURE-{n}", org["demo_ops"])
    day = dt.date(2026, 4, 9)
    business_date_set(day)
    loan.refresh_from_db()
    assert upgrade_cure_until(loan, today=day) == dt.date(2026, 4, 10)  # three months from the downgrade
    with at(day), pytest.raises(ApplicationError) as exc:
        approval_request_decide(request=request, approve=True, by=approver)
    assert "2026-04-10" in str(exc.value.errors["to_category"])
    business_date_set(dt.date(2026, 4, 10))
    with at(dt.date(2026, 4, 10)):
        approval_request_decide(request=request, approve=True, by=approver)
    loan.refresh_from_db()
    assert loan.classification == "normal"


def test_a_late_payment_restarts_the_cure_period(loan, org):
    from postloan.services import upgrade_cure_until

    business_date_set(dt.date(2026, 1, 10))
    with at(dt.date(2026, 1, 10)):
        classification_downgrade(loan=loan, to_category="special_mention", reason="行业下行", by=org["demo_risk"])
    first = loan.installments.get(n=1)
    paid = first.due_date + dt.timedelta(days=10)  # late
    _pay_on_time(loan, first.total + D("100.00"), paid, "LATE-1", org["demo_ops"])
    loan.refresh_from_db()
    assert upgrade_cure_until(loan, today=dt.date(2026, 4, 10)) == add_months(paid, 3)  # from the late payment


def test_the_restructuring_observation_period_counts_from_the_first_new_due_date(loan, org):
    on = dt.date(2026, 3, 5)
    business_date_set(on)
    with at(on):
        request = restructure_request(loan=loan, kind="reschedule", term_months=12, reason="困难", by=org["demo_rm"])
        approval_request_decide(request=request, approve=True, by=org["demo_risk"])
    loan.refresh_from_db()
    first = loan.installments.filter(superseded=False).order_by("n").first()
    assert loan.restructured_on == on and first.nominal_due_date > on
    assert loan.observation_until == dt.date(first.nominal_due_date.year + 1, first.nominal_due_date.month,
                                             first.nominal_due_date.day)  # 12 months (data) from the first new due date


# ---------------------------------------------------------------- 7. provisional due dates, recomputed when loaded
def test_due_dates_on_a_year_not_loaded_are_provisional_and_recomputed_when_it_is(products, org, client):
    from casework.reference_data import seed_calendar
    from loanservice.models import CalendarDay, CalendarYear
    from loanservice.sla import business_calendar_changed
    from tests.conftest import client_for

    CalendarDay.objects.filter(date__year=2026).delete()  # 2026 as if the State Council had not published it yet
    CalendarYear.objects.filter(year=2026).delete()
    business_calendar_changed()
    loan = _loan(61, "cal_owner")  # month ends, the following rule
    feb = loan.installments.get(n=2)
    assert (feb.nominal_due_date, feb.due_date) == (dt.date(2026, 2, 28), dt.date(2026, 3, 2))  # a Saturday: weekends only
    business_date_set(dt.date(2026, 1, 10))
    lines = client_for(loan.borrower).get(f"/api/v1/loans/{loan.pk}/").json()["schedule"]
    assert all(line["provisional"] for line in lines)
    client.force_login(org["demo_risk"])
    assert "暂定" in client.get(f"/postloan/loans/{loan.pk}/").content.decode()
    seed_calendar(years=[2026])  # loaded: 28 Feb 2026 is a make-up working day (调休)
    feb.refresh_from_db()
    assert feb.due_date == dt.date(2026, 2, 28)
    event = AuditEvent.objects.get(action="loan.schedule.calendar_recompute")
    assert {"loan": loan.pk, "n": 2, "from": "2026-03-02", "to": "2026-02-28"} in event.data["moved"]
    lines = client_for(loan.borrower).get(f"/api/v1/loans/{loan.pk}/").json()["schedule"]
    assert not any(line["provisional"] for line in lines)
    assert "暂定" not in client.get(f"/postloan/loans/{loan.pk}/").content.decode()


def test_the_calendar_admin_and_the_command_recompute_provisional_due_dates_explicitly(products, org, client):
    """Loading a year in admin (save, or the action on selected years) calls the service; saving the kernel's
    calendar rows by themselves moves nothing (no signal handler does business steps)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from loanservice.bizcal import calendar_from_chinese_calendar
    from loanservice.models import CalendarDay, CalendarYear
    from loanservice.sla import business_calendar_changed

    CalendarDay.objects.filter(date__year=2026).delete()
    CalendarYear.objects.filter(year=2026).delete()
    business_calendar_changed()
    loan = _loan(61, "cal_admin_owner")
    feb = loan.installments.get(n=2)
    assert feb.due_date == dt.date(2026, 3, 2)  # provisional: weekends only
    business_date_set(dt.date(2026, 1, 10))
    data = calendar_from_chinese_calendar([2026])
    CalendarDay.objects.bulk_create([CalendarDay(date=d, kind=CalendarDay.HOLIDAY) for d in sorted(data.holidays) if d.year == 2026]
                                    + [CalendarDay(date=d, kind=CalendarDay.WORKDAY) for d in sorted(data.workdays) if d.year == 2026])
    year = CalendarYear.objects.create(year=2026)  # through the ORM: nothing recomputed by a signal any more
    feb.refresh_from_db()
    assert feb.due_date == dt.date(2026, 3, 2)
    year.delete()
    admin_user = get_user_model().objects.create_superuser(username="cal_admin", password="x")
    client.force_login(admin_user)
    r = client.post("/admin/loanservice/calendaryear/add/", {"year": "2026", "source": "State Council",
                                                            "loaded_at_0": "2026-01-10", "loaded_at_1": "09:00:00"})
    assert r.status_code == 302, r.content.decode()[:2000]
    feb.refresh_from_db()
    assert feb.due_date == dt.date(2026, 2, 28)  # a make-up working day once the year is loaded
    event = AuditEvent.objects.get(action="loan.schedule.calendar_recompute")
    assert event.actor_id == admin_user.pk and {"loan": loan.pk, "n": 2, "from": "2026-03-02", "to": "2026-02-28"} in event.data["moved"]
    # The action (and the command) on a loaded year with nothing left to move: nothing moves, no second event.
    r = client.post("/admin/loanservice/calendaryear/", {"action": "recompute_year_due_dates",
                                                         "_selected_action": [CalendarYear.objects.get(year=2026).pk]})
    assert r.status_code == 302
    call_command("due_dates_recompute", "2026")
    assert AuditEvent.objects.filter(action="loan.schedule.calendar_recompute").count() == 1


# ---------------------------------------------------------------- 5. extension (展期) within 贷款通则's limits
def test_extension_limits_of_the_loan_general_rules():
    from postloan.services import extension_limit_months

    assert [extension_limit_months(t) for t in (6, 12, 24, 36, 60, 84, 120)] == [6, 12, 12, 18, 30, 36, 36]


def test_an_extension_needs_the_guarantors_consent_stays_within_the_limit_and_happens_once(loan, org):
    from tests.conftest import client_for
    from underwriting.models import Guarantor

    rm, approver = org["demo_rm"], org["demo_branch_approver"]
    guarantor = Guarantor.objects.create(application=loan.application, kind="person", name="李保证", added_by=rm)
    on = dt.date(2026, 3, 5)
    business_date_set(on)
    url = f"/api/v1/loans/{loan.pk}/extension/"
    consent = {"guarantor": guarantor.pk, "consented_on": "2026-03-01", "document": "保证人同意函 2026-017"}
    with at(on):
        borrower = client_for(loan.borrower).post(url, {"extra_months": 3, "reason": "季节性困难"}, format="json")
        too_long = client_for(rm).post(url, {"extra_months": 13, "reason": "困难", "guarantor_consents": [consent]}, format="json")
        no_consent = client_for(rm).post(url, {"extra_months": 3, "reason": "困难"}, format="json")
        future = client_for(rm).post(url, {"extra_months": 3, "reason": "困难", "guarantor_consents": [
            {**consent, "consented_on": "2026-04-01"}]}, format="json")
        asked = client_for(rm).post(url, {"extra_months": 3, "reason": "季节性困难", "guarantor_consents": [consent]},
                                    format="json")
    assert borrower.status_code == 403
    assert too_long.status_code == 400 and "extra_months" in too_long.json()["errors"]
    assert no_consent.status_code == 400 and "李保证" in str(no_consent.json()["errors"]["guarantor_consents"])
    assert future.status_code == 400
    assert asked.status_code == 201 and asked.json()["status"] == "pending"
    assert asked.json()["params"]["guarantor_consents"] == [{"guarantor": guarantor.pk, "name": "李保证",
                                                             "consented_on": "2026-03-01", "document": "保证人同意函 2026-017"}]
    maturity = loan.maturity_date
    pk = asked.json()["id"]
    with at(on):
        by_requester = client_for(rm).post(f"/api/v1/extensions/{pk}/approve/")
        approved = client_for(approver).post(f"/api/v1/extensions/{pk}/approve/")
        again = client_for(rm).post(url, {"extra_months": 1, "reason": "再展期", "guarantor_consents": [consent]}, format="json")
    assert by_requester.status_code == 403 and approved.status_code == 200
    loan.refresh_from_db()
    assert loan.maturity_date > maturity and all(r.nominal_due_date.day == maturity.day or r.nominal_due_date.day >= 28
                                                 for r in loan.installments.filter(superseded=False))
    assert again.status_code == 400 and "extra_months" in again.json()["errors"]  # once (policy data)
