"""Provisions (issue #17): the PD fallback, three-stage expected credit loss measured by close of business (new loans,
stage changes, month ends), the allowance in the GL, the portfolio overlay with four eyes, write-off against the
allowance, and the release of a repaid loan's allowance."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.utils import timezone

from ledger.models import JournalLine
from ledger.selectors import account_balance
from loanservice.errors import ApplicationError, Conflict
from postloan import services
from postloan.cob import cob_partition_run, cob_start
from postloan.models import ApprovalRequest, CobRun, Loan, LoanProvision, ProvisionOverlay, ProvisionPolicy
from postloan.provisions import (
    month_end_within,
    months_left,
    overlay_decide,
    overlay_submit,
    provisions_measure,
    stage_for,
)
from tests.approvals_support import staff_user
from tests.factories import ApplicantFactory, FastTrackLoanFactory
from underwriting.expert_scorecard import expert_spec
from underwriting.models import Score
from underwriting.pd import pd_12m, pd_lifetime

D = Decimal
CENT = D("0.01")
ALLOWANCE, IMPAIRMENT = "1304", "6702"


@pytest.fixture
def simulated(settings):
    settings.ALLOW_SIMULATED_BUSINESS_DATE = True


@pytest.fixture
def loan(products, org):
    return FastTrackLoanFactory(owner=ApplicantFactory(username="prov_owner"), seed=72, amount="300000.00")


def _close(until: dt.date) -> CobRun:
    run = cob_start(until=until, by=None)
    for part in run.partitions.all():
        cob_partition_run(partition_id=part.pk)
    run.refresh_from_db()
    return run


def _grade(loan: Loan) -> str:
    return Score.objects.filter(application=loan.application, is_shadow=False).latest("created_at").grade


def _expected_ecl(loan: Loan, *, pd: Decimal, lgd: Decimal) -> Decimal:
    due = sum((max(i.interest_accrued - i.paid_interest, D(0)) + i.penalty_accrued - i.paid_penalty
               for i in loan.installments.filter(superseded=False)), D(0))
    return (pd * lgd * (loan.outstanding_principal + due)).quantize(CENT, rounding=ROUND_HALF_UP)


def _allowance(loan: Loan) -> Decimal:
    return account_balance(account=ALLOWANCE, on=dt.date.max, reference=f"loan:{loan.pk}")


# ---------------------------------------------------------------- PD fallback and the rules
def test_the_pd_fallback_reads_the_scorecards_grade_calibration(db):
    table = {g["grade"]: D(g["pd"]) for g in expert_spec()["grades"]}
    on = dt.date(2027, 1, 31)
    assert pd_12m("B", on=on) == table["B"]
    assert pd_lifetime("B", months=12, on=on) == table["B"]
    p24 = pd_lifetime("C", months=24, on=on)
    assert abs(p24 - (1 - (1 - table["C"]) ** 2)) < D("1e-7")
    assert pd_lifetime("C", months=6, on=on) < table["C"] < p24
    assert pd_12m("?", on=on) == max(table.values())  # no score: the worst grade
    assert pd_lifetime("A", months=0, on=on) == 0


@pytest.mark.parametrize(("category", "dpd", "stage"), [
    ("normal", 0, 1), ("normal", 30, 1), ("normal", 31, 2), ("special_mention", 0, 2), ("substandard", 95, 3),
    ("doubtful", 0, 3), ("loss", 400, 3)])
def test_stages(category, dpd, stage):
    assert stage_for(category=category, dpd=dpd, policy=ProvisionPolicy(effective_from=dt.date(2027, 1, 1))) == stage


def test_calendar_helpers():
    assert months_left(dt.date(2027, 1, 15), dt.date(2028, 1, 15)) == 12
    assert months_left(dt.date(2027, 1, 15), dt.date(2027, 2, 16)) == 2
    assert months_left(dt.date(2027, 3, 1), dt.date(2027, 2, 1)) == 1
    assert month_end_within(dt.date(2027, 1, 30), dt.date(2027, 1, 31))
    assert month_end_within(dt.date(2027, 1, 30), dt.date(2027, 2, 2))
    assert not month_end_within(dt.date(2027, 2, 1), dt.date(2027, 2, 27))


# ---------------------------------------------------------------- measured by close of business
def test_a_new_loan_is_measured_at_stage_one_and_its_allowance_posted(loan, simulated):
    until = loan.disbursed_on + dt.timedelta(days=1)
    _close(until)
    loan.refresh_from_db()
    row = LoanProvision.objects.get(loan=loan)
    grade = _grade(loan)
    assert (row.stage, row.grade, row.security_type, row.on) == (1, grade, "credit", until)
    assert row.reason in ("new", "month_end")
    assert row.pd == pd_12m(grade, on=until)  # a 12-month loan has 12 months left: the 12-month PD
    assert row.lgd == D("0.4500")
    assert row.ecl == _expected_ecl(loan, pd=row.pd, lgd=row.lgd) > 0
    assert row.ead > loan.outstanding_principal  # a day's interest is receivable
    assert _allowance(loan) == row.ecl == row.change
    assert account_balance(account=IMPAIRMENT, on=until, reference=f"loan:{loan.pk}") == row.ecl


def test_nothing_is_measured_again_while_the_stage_holds_and_not_at_a_month_end(loan, simulated):
    until = loan.disbursed_on + dt.timedelta(days=1)
    _close(until)
    first = LoanProvision.objects.get(loan=loan)
    result = provisions_measure(loan_ids=[loan.pk], on=until + dt.timedelta(days=1), month_end=False)
    assert result == {"measured": 0, "posted": 0}
    result = provisions_measure(loan_ids=[loan.pk], on=until + dt.timedelta(days=1), month_end=True)
    assert result["measured"] == 1
    assert LoanProvision.objects.filter(loan=loan).count() == 2 and first.ecl > 0


def test_more_than_30_days_past_due_moves_to_lifetime_pd_and_tops_up_the_allowance(loan, simulated):
    first = loan.installments.order_by("n").first()
    _close(first.due_date - dt.timedelta(days=1))
    before = LoanProvision.objects.filter(loan=loan).latest("on")
    until = first.due_date + dt.timedelta(days=35)
    _close(until)
    loan.refresh_from_db()
    row = LoanProvision.objects.filter(loan=loan).latest("on")
    assert loan.dpd > 30 and row.stage == 2
    months = months_left(until, loan.maturity_date)
    assert row.pd == pd_lifetime(_grade(loan), months=months, on=until).quantize(D("1e-8"))
    assert row.ecl == _expected_ecl(loan, pd=row.pd, lgd=row.lgd)
    assert row.change == row.ecl - before.ecl
    assert _allowance(loan) == row.ecl


def test_a_non_performing_loan_takes_pd_one_and_the_forward_looking_factor_is_data(loan, simulated):
    ProvisionPolicy.objects.create(effective_from=loan.disbursed_on, forward_looking_factor=D("1.2000"), lgd_credit=D("0.6000"))
    until = loan.disbursed_on + dt.timedelta(days=1)
    _close(until)
    row = LoanProvision.objects.get(loan=loan)
    assert row.pd == (pd_12m(_grade(loan), on=until) * D("1.2")).quantize(D("1e-8")) and row.lgd == D("0.6000")
    Loan.objects.filter(pk=loan.pk).update(classification="doubtful")
    _close(until + dt.timedelta(days=1))
    loan.refresh_from_db()
    row = LoanProvision.objects.filter(loan=loan).latest("on")
    assert (row.stage, row.pd, row.reason) in {(3, D(1), "stage"), (3, D(1), "month_end")}
    assert row.ecl == _expected_ecl(loan, pd=D(1), lgd=D("0.6000"))
    assert _allowance(loan) == row.ecl


def test_a_mortgage_lowers_lgd(loan, simulated, users):
    from underwriting.models import Collateral

    Collateral.objects.create(application=loan.application, kind="real_estate", description="厂房", valuation=D("900000"),
                              appraiser="某评估", appraised_on=loan.disbursed_on, ltv=D("0.7"), added_by=users["demo_rm"])
    _close(loan.disbursed_on + dt.timedelta(days=1))
    row = LoanProvision.objects.get(loan=loan)
    assert (row.security_type, row.lgd) == ("mortgage", D("0.2500"))


# ---------------------------------------------------------------- write-off and repayment
def test_a_write_off_uses_the_allowance_and_charges_only_the_rest(loan, simulated, users):
    Loan.objects.filter(pk=loan.pk).update(classification="doubtful")
    until = loan.disbursed_on + dt.timedelta(days=2)
    _close(until)
    held = _allowance(loan)
    assert held > 0
    loan.refresh_from_db()
    request = services.write_off_request(loan=loan, reason="无法收回", by=users["demo_risk"])
    approver = staff_user("wo_approver", "head_office_approver", "HO")
    services.approval_request_decide(request=request, approve=True, by=approver)
    assert ApprovalRequest.objects.get(pk=request.pk).status == "approved"
    loan.refresh_from_db()
    ref = f"loan:{loan.pk}"
    assert loan.status == "written_off"
    assert _allowance(loan) == D("0.00")
    assert account_balance(account="1301", on=dt.date.max, reference=ref) == D("0.00")
    written = loan.written_off_amount
    charged = account_balance(account=IMPAIRMENT, on=dt.date.max, reference=ref)
    # impairment over the loan's life = what was written off: the allowance charged it before, the write-off the rest
    assert charged == written + _receivables_written(loan)
    entry_lines = {x.account.code: (x.debit, x.credit) for x in JournalLine.objects.filter(
        entry__reference=ref, entry__kind="write_off").select_related("account")}
    assert entry_lines[ALLOWANCE] == (held, D("0.00"))
    assert entry_lines[IMPAIRMENT][0] == written + _receivables_written(loan) - held
    assert LoanProvision.objects.filter(loan=loan).latest("on").reason == "write_off"


def _receivables_written(loan: Loan) -> Decimal:
    lines = JournalLine.objects.filter(entry__reference=f"loan:{loan.pk}", entry__kind="write_off",
                                       account__code__in=["1132", "1133"])
    return sum((x.credit for x in lines), D(0))


def test_a_loan_repaid_in_full_releases_its_allowance_at_the_next_close(loan, simulated, users):
    until = loan.disbursed_on + dt.timedelta(days=1)
    _close(until)
    assert _allowance(loan) > 0
    Loan.objects.filter(pk=loan.pk).update(status="closed", closed_on=until)  # the servicing path repays it
    _close(until + dt.timedelta(days=1))
    assert _allowance(loan) == D("0.00")
    assert LoanProvision.objects.filter(loan=loan).latest("on").ecl == 0


# ---------------------------------------------------------------- the portfolio overlay (four eyes)
def test_a_shortfall_against_the_category_ratios_is_an_overlay_two_people_approve(loan, simulated, users):
    ProvisionPolicy.objects.create(effective_from=loan.disbursed_on, ratio_normal=D("0.0500"))
    month_end = (loan.disbursed_on.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    _close(month_end)
    loan.refresh_from_db()
    overlay = ProvisionOverlay.objects.get()
    ecl = LoanProvision.objects.filter(loan=loan).latest("on").ecl
    required = (loan.outstanding_principal * D("0.05")).quantize(CENT) if loan.classification == "normal" else overlay.required
    assert overlay.status == "proposed" and overlay.required == required
    assert overlay.amount == overlay.required - ecl and overlay.ecl_total == ecl
    risk, other = users["demo_risk"], staff_user("risk_two", "risk", "HO")
    with pytest.raises(ApplicationError):
        overlay_submit(overlay=overlay, reason="", by=risk)
    with pytest.raises(ApplicationError):  # the RM may not
        overlay_submit(overlay=overlay, reason="按比例补提", by=users["demo_rm"])
    overlay = overlay_submit(overlay=overlay, reason="按比例补提", by=risk)
    with pytest.raises(ApplicationError):  # four eyes
        overlay_decide(overlay=overlay, approve=True, by=risk)
    overlay = overlay_decide(overlay=overlay, approve=True, by=other, comment="同意")
    assert overlay.status == "approved"
    with pytest.raises(Conflict):
        overlay_decide(overlay=overlay, approve=True, by=users["demo_head_approver"])
    total = account_balance(account=ALLOWANCE, on=dt.date.max)
    assert total == ecl + overlay.amount == overlay.required
    # the next month end asks for nothing more while the ratios and ECL stand still, so nothing new is proposed
    assert ProvisionOverlay.objects.filter(status="proposed").count() == 0


def test_a_new_proposal_supersedes_the_undecided_one(loan, simulated, users):
    from postloan.provisions import overlay_propose

    ProvisionPolicy.objects.create(effective_from=loan.disbursed_on, ratio_normal=D("0.0500"))
    first = overlay_propose(on=loan.disbursed_on)
    second = overlay_propose(on=loan.disbursed_on + dt.timedelta(days=1))
    first.refresh_from_db()
    assert first.status == "superseded" and second.status == "proposed"


def test_the_provision_posting_is_in_the_day_of_close(loan, simulated):
    until = timezone.localdate() + dt.timedelta(days=1)
    _close(until)
    from ledger.models import JournalEntry

    entry = JournalEntry.objects.get(reference=f"loan:{loan.pk}", kind="provision")
    assert entry.value_date == until and entry.product == loan.product_code
