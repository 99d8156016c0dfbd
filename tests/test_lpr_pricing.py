"""LPR pricing (DESIGN.md "Rates"): the LPR table as data, rate = LPR + a spread in basis points (negative allowed) on
the offer, the contract and its PDF with the annualised rate, and floating-rate loans repriced in close of business
on their repricing date only, accruing at the old rate before it and the new rate from it (checked to the cent
against an independent computation); fixed-rate loans never change."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import chinese_calendar
import pytest
from django.test import Client

from applications.models import LoanProduct
from contracts.schedules import add_months, annualised_rate, build_schedule
from ledger.selectors import account_balance
from loanservice.errors import ApplicationError
from loanservice.models import AuditEvent
from postloan.cob import cob_partition_run, cob_start
from postloan.models import Loan, RateChange
from postloan.services import interest_receivable
from tests.approvals_support import fast_passwords  # noqa: F401
from tests.conftest import client_for
from tests.contracts_support import accept, contracts_of
from tests.factories import ApplicantFactory, FastTrackApplicationFactory, FastTrackLoanFactory, owner_view
from underwriting.models import LoanPrimeRate, PricingPolicy
from underwriting.reference import PUBLICATIONS
from underwriting.selectors import lpr_on

pytestmark = pytest.mark.django_db
D = Decimal
CENT = D("0.01")


def _r(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def _text(contract) -> str:
    from contracts.pdf import pdf_text

    return "".join(pdf_text(contract.pdf.open("rb").read()).split())


@pytest.fixture
def simulated(settings):
    settings.ALLOW_SIMULATED_BUSINESS_DATE = True


def _close(until: dt.date) -> None:
    run = cob_start(until=until, by=None)
    for part in run.partitions.all():
        cob_partition_run(partition_id=part.pk)


def _floating(code: str = "xinmiaodai", *, months: int = 3, **extra) -> LoanProduct:
    LoanProduct.objects.filter(code=code).update(rate_type="floating", repricing_months=months, lpr_tenor="1y", **extra)
    return LoanProduct.objects.get(code=code)


# ---------------------------------------------------------------- the LPR table
def test_lpr_on_is_the_last_publication_on_or_before_the_date():
    assert lpr_on("1y", dt.date(2025, 5, 20)).rate == D("0.030000")
    assert lpr_on("5y", dt.date(2025, 5, 20)).rate == D("0.035000")
    before = lpr_on("1y", dt.date(2025, 5, 19))
    assert (before.published_on, before.rate) == (dt.date(2025, 4, 21), D("0.031000"))
    # 2024-10-20 was a Sunday: October's LPR was published on Monday the 21st
    sunday = lpr_on("1y", dt.date(2024, 10, 20))
    assert (sunday.published_on, sunday.rate) == (dt.date(2024, 9, 20), D("0.033500"))
    moved = lpr_on("5y", dt.date(2024, 10, 21))
    assert (moved.published_on, moved.rate) == (dt.date(2024, 10, 21), D("0.036000"))
    assert lpr_on("1y", dt.date(2024, 10, 30)).rate == D("0.031000")
    assert lpr_on("1y", dt.date(2019, 8, 20)).rate == D("0.042500")


def test_no_lpr_before_the_first_publication_is_an_error_a_person_understands():
    with pytest.raises(ApplicationError) as exc:
        lpr_on("1y", dt.date(2019, 8, 19))
    assert "2019-08-19" in exc.value.message and "LPR" in exc.value.message
    with pytest.raises(ApplicationError):
        lpr_on("3y", dt.date(2025, 1, 1))


def test_every_seeded_publication_is_the_20th_or_the_business_day_the_calendar_moved_it_to():
    assert LoanPrimeRate.objects.filter(tenor="1y").count() == LoanPrimeRate.objects.filter(tenor="5y").count() == len(PUBLICATIONS)
    for text in PUBLICATIONS:
        on = dt.date.fromisoformat(text)
        assert on.day >= 20 and chinese_calendar.is_workday(on), on
        assert all(not chinese_calendar.is_workday(on.replace(day=d)) for d in range(20, on.day)), on


# ---------------------------------------------------------------- offer, contract, PDF
def test_the_offer_and_the_contract_state_the_rate_basis_and_the_annualised_rate(products, org):
    _floating(months=6)
    pk, owner, client = owner_view(FastTrackApplicationFactory(seed=1, amount="300000.00"))
    offer = client.get(f"/api/v1/applications/{pk}/").json()["offer"]
    lpr = lpr_on("1y", dt.date.today())
    assert offer["lpr_tenor"] == "1y" and offer["lpr_rate"] == f"{lpr.rate:.4f}" and offer["lpr_date"] == lpr.published_on.isoformat()
    assert D(offer["annual_rate"]) == _r4(lpr.rate + D(offer["spread_bp"]) / 10000)
    assert offer["rate_type"] == "floating" and offer["repricing_months"] == 6
    assert offer["annualised_rate"] == offer["annual_rate"]  # no fee: the annualised rate is the nominal rate
    browser = Client()
    browser.force_login(owner)
    page = browser.get(f"/portal/applications/{pk}/").content.decode()
    basis = page[page.index('id="offer-rate-basis"'):]
    assert "一年期LPR" in basis[:200] and "每 6 个月重定价" in basis[:200]
    assert f'id="offer-annualised-rate">{D(offer["annualised_rate"]) * 100:.2f}%<' in page

    accept(client, pk)
    contract = contracts_of(pk)[0]
    terms = contract.terms
    assert (terms["lpr_tenor"], terms["rate_type"], terms["repricing_months"]) == ("1y", "floating", 6)
    assert D(terms["annual_rate"]) == D(terms["lpr_rate"]) + D(terms["spread_bp"]) / 10000
    spread = D(terms["spread_bp"])
    date = f"{lpr.published_on.year}年{lpr.published_on.month}月{lpr.published_on.day}日"
    points = f"{abs(spread):.2f}".rstrip("0").rstrip(".")
    basis = f"贷款年利率为{terms['annual_rate_percent']}%（按{date}一年期LPR{lpr.rate * 100:.2f}%{'减' if spread < 0 else '加'}{points}个基点确定，浮动利率，自放款日起每6个月重定价"
    text = _text(contract)
    assert basis in text
    assert f"年化利率为{terms['annualised_rate_percent']}%" in text and "〔2021〕第3号" in text


def _r4(x: Decimal) -> Decimal:
    return x.quantize(D("0.0001"))


def test_a_spread_below_the_lpr_is_a_negative_spread_the_contract_states_as_a_reduction(products, org):
    LoanProduct.objects.filter(code="xinmiaodai").update(rate_floor=D("0.020000"))
    PricingPolicy.objects.update(spreads={g: "-0.0025" for g in "ABCDE"})
    pk, owner, client = owner_view(FastTrackApplicationFactory(seed=2, amount="200000.00"))
    offer = client.get(f"/api/v1/applications/{pk}/").json()["offer"]
    lpr = lpr_on("1y", dt.date.today())
    assert offer["spread_bp"] == "-25.00" and D(offer["annual_rate"]) == _r4(lpr.rate - D("0.0025"))
    assert offer["rate_type"] == "fixed" and offer["repricing_months"] is None
    accept(client, pk)
    contract = contracts_of(pk)[0]
    assert contract.terms["spread_bp"] == "-25.00"
    text = _text(contract)
    assert f"一年期LPR{lpr.rate * 100:.2f}%减25个基点确定，固定利率" in text


def test_the_annualised_rate_with_a_fee_is_the_irr_of_the_cash_flows():
    start = dt.date(2025, 1, 10)
    lines = build_schedule(principal=D("120000.00"), annual_rate=D("0.06"), term_months=12, method="equal_installment",
                           start_date=start)
    payments = [(line.due_date, line.total) for line in lines]
    assert annualised_rate(principal=D("120000.00"), annual_rate=D("0.06"), start_date=start, payments=payments) == D("0.06")
    apr = annualised_rate(principal=D("120000.00"), annual_rate=D("0.06"), start_date=start, payments=payments,
                          upfront_fees=D("1200.00"))
    # independent: Newton's method on the monthly IRR in floats, × 12
    r = 0.005
    for _ in range(50):
        f = sum(float(t) / (1 + r) ** (n + 1) for n, (_d, t) in enumerate(payments)) - 118800.0
        df = sum(-(n + 1) * float(t) / (1 + r) ** (n + 2) for n, (_d, t) in enumerate(payments))
        r -= f / df
    assert abs(float(apr) - r * 12) < 1e-6 and apr > D("0.075")


# ---------------------------------------------------------------- repricing in close of business
def _new_lpr(on: dt.date, rate: str) -> None:
    LoanPrimeRate.objects.create(tenor="1y", published_on=on, rate=D(rate))


def test_a_floating_loan_reprices_on_its_repricing_date_only_and_accrues_at_each_rate_to_the_cent(products, org, simulated):
    _floating(months=3)
    loan = FastTrackLoanFactory(owner=ApplicantFactory(username="lpr_float"), seed=72, amount="300000.00")
    fixed_product = LoanProduct.objects.get(code="xinmiaodai")
    LoanProduct.objects.filter(pk=fixed_product.pk).update(rate_type="fixed")
    fixed = FastTrackLoanFactory(owner=ApplicantFactory(username="lpr_fixed"), seed=1, amount="300000.00")
    assert loan.rate_type == "floating" and fixed.rate_type == "fixed" and fixed.next_repricing_on is None
    old, spread = loan.annual_rate, loan.spread_bp
    assert old == loan.lpr_rate + spread / 10000
    start = loan.disbursed_on
    repricing = add_months(start, 3)
    assert loan.next_repricing_on == repricing
    _new_lpr(start + dt.timedelta(days=20), "0.028000")
    _new_lpr(repricing, "0.025000")  # published on the repricing day itself: not before it, so not used
    new = D("0.028000") + spread / 10000
    fixed_rows, fixed_rate = {r.n: r.interest for r in fixed.installments.all()}, fixed.annual_rate
    due_dates = [r.due_date for r in loan.installments.order_by("n")]

    _close(repricing - dt.timedelta(days=1))
    loan.refresh_from_db()
    assert loan.annual_rate == old and not RateChange.objects.exists()
    rows = list(loan.installments.order_by("n"))
    third = rows[2]  # the disbursement day's day of month: the repricing date is the 3rd due date
    assert third.nominal == repricing
    not_due_3 = sum((r.principal for r in rows[2:]), D(0))
    assert third.interest_accrued == _r(not_due_3 * old * (repricing - dt.timedelta(days=1) - rows[1].nominal).days / 360)

    _close(repricing)
    loan.refresh_from_db()
    assert loan.annual_rate == new and loan.lpr_rate == D("0.028000") and loan.lpr_date == start + dt.timedelta(days=20)
    assert loan.next_repricing_on == add_months(start, 6)
    change = RateChange.objects.get(loan=loan)
    assert (change.effective_on, change.old_rate, change.new_rate, change.spread_bp) == (repricing, old, new, spread)
    assert AuditEvent.objects.filter(action="loan.reprice", object_id=str(loan.pk)).count() == 1
    rows = list(loan.installments.order_by("n"))
    assert rows[2].interest == rows[2].interest_accrued  # the period that ended on the repricing date: the old rate
    for k in range(3, len(rows)):  # due dates and principal kept, interest at the new rate
        not_due = sum((r.principal for r in rows[k:]), D(0))
        assert rows[k].interest == _r(not_due * new / 12)
    assert [r.due_date for r in rows] == due_dates and loan.maturity_date == due_dates[-1]

    _close(repricing + dt.timedelta(days=10))
    rows = list(loan.installments.order_by("n"))
    not_due_4 = sum((r.principal for r in rows[3:]), D(0))
    assert rows[3].interest_accrued == _r(not_due_4 * new * 10 / 360)
    ref = f"loan:{loan.pk}"
    on = repricing + dt.timedelta(days=10)
    assert account_balance(account="1132", on=on, reference=ref) == interest_receivable(loan.installments.filter(settled_on__isnull=True))

    # the loan's rate history: the API and the borrower's loan page
    detail = client_for(loan.borrower).get(f"/api/v1/loans/{loan.pk}/").json()
    assert detail["rate_type"] == "floating" and detail["next_repricing_on"] == add_months(start, 6).isoformat()
    assert detail["rate_history"] == [{"effective_on": repricing.isoformat(), "old_rate": f"{old:.4f}", "new_rate": f"{new:.4f}",
                                       "lpr_rate": "0.0280", "lpr_date": (start + dt.timedelta(days=20)).isoformat(),
                                       "spread_bp": f"{spread:.2f}"}]
    browser = Client()
    browser.force_login(loan.borrower)
    page = browser.get(f"/portal/loans/{loan.pk}/").content.decode()
    assert "浮动利率，每 3 个月重定价" in page[page.index('id="rate-basis"'):][:300]

    # the fixed-rate loan: no repricing, the same interest on every row
    fixed.refresh_from_db()
    assert fixed.annual_rate == fixed_rate and fixed.accrued_through == on and not fixed.rate_changes.exists()
    assert {r.n: r.interest for r in fixed.installments.all()} == fixed_rows


def test_a_repricing_date_inside_a_period_splits_it_old_rate_before_and_new_rate_from_it(products, org, simulated):
    today = dt.date.today()
    day = 28 if today.day != 28 else 27
    _floating(months=2, repayment_day=day)
    loan = FastTrackLoanFactory(owner=ApplicantFactory(username="lpr_mid"), seed=3, amount="240000.00", method="equal_principal")
    old, spread = loan.annual_rate, loan.spread_bp
    repricing = add_months(loan.disbursed_on, 2)
    assert loan.next_repricing_on == repricing and loan.repayment_day == day
    _new_lpr(loan.disbursed_on + dt.timedelta(days=1), "0.033000")
    new = D("0.033000") + spread / 10000
    rows = list(loan.installments.order_by("n"))
    k = next(j for j, r in enumerate(rows) if r.nominal > repricing)
    start, nominal = rows[k].period_start, rows[k].nominal
    assert start < repricing < nominal
    not_due = sum((r.principal for r in rows[k:]), D(0))
    before = _r(not_due * old * (repricing - start).days / 360)

    _close(repricing)
    loan.refresh_from_db()
    assert loan.annual_rate == new
    row = loan.installments.get(n=rows[k].n)
    assert row.interest_accrued == before and row.interest_upfront == before and row.accrual_start == repricing
    assert row.interest == before + _r(not_due * new * (nominal - repricing).days / 360)
    assert row.due_date == rows[k].due_date and row.principal == rows[k].principal
    later = loan.installments.get(n=rows[k].n + 1)
    assert later.interest == _r((not_due - rows[k].principal) * new / 12)

    days = min(5, (nominal - repricing).days - 1)
    _close(repricing + dt.timedelta(days=days))
    row.refresh_from_db()
    assert row.interest_accrued == before + _r(not_due * new * days / 360)
    # a payoff quote charges the same split interest to the day
    from postloan.quotes import payoff_quote

    quote = payoff_quote(loan=Loan.objects.get(pk=loan.pk), on=repricing + dt.timedelta(days=days + 1))
    assert quote["interest"] == before + _r(not_due * new * (days + 1) / 360)


def test_a_seeded_loan_template_without_the_rate_basis_gives_way_to_the_new_one_an_admins_never(org):
    from casework.reference_data import seed_contract_templates
    from contracts.models import ContractTemplate

    seeded = ContractTemplate.objects.get(kind="loan", product=None, is_active=True)
    old_html = seeded.html.replace("（{{ rate_basis }}）", "").replace("{{ annualised_rate_percent }}", "")
    ContractTemplate.objects.filter(pk=seeded.pk).update(html=old_html)  # as an installation seeded before LPR pricing
    seed_contract_templates()
    active = ContractTemplate.objects.get(kind="loan", product=None, is_active=True)
    assert active.version == seeded.version + 1 and "{{ rate_basis }}" in active.html
    seed_contract_templates()  # idempotent
    assert ContractTemplate.objects.filter(kind="loan", product=None).count() == 2
    ContractTemplate.objects.filter(pk=active.pk).update(html=old_html, created_by=org["demo_admin"] if "demo_admin" in org else
                                                         next(iter(org.values())))
    seed_contract_templates()  # an admin's version is theirs
    assert ContractTemplate.objects.filter(kind="loan", product=None).count() == 2


@pytest.mark.usefixtures("fast_passwords")
def test_an_approver_gives_the_annual_rate_and_the_offer_derives_the_spread_over_the_lpr(client, products, org):
    from tests.factories import PendingApprovalFactory

    application = PendingApprovalFactory(seed=48)
    client.force_login(org["demo_branch_approver"])
    html = client.get(f"/staff/approvals/{application.pk}/").content.decode()
    lpr = lpr_on(application.product.lpr_tenor, dt.date.today())
    score = client_for(org["demo_branch_approver"]).get(f"/api/v1/applications/{application.pk}/").json()["score"]
    assert D(score["recommended_rate"]) == _r4(lpr.rate + D(score["recommended_spread_bp"]) / 10000)
    assert 'id="rate-lpr"' in html and f"{lpr.rate * 100:.2f}%" in html[html.index('id="rate-lpr"'):][:300]
    r = client.post(f"/staff/cases/{application.pk}/action/decide/",
                    {"decision": "approve", "rate_percent": "4.8", "comment": "同意"})
    assert r.status_code == 302
    application.refresh_from_db()
    product = application.product
    assert application.offer_rate == D("0.048000") and application.offer_lpr_rate == lpr.rate
    assert application.offer_lpr_date == lpr.published_on and application.offer_lpr_tenor == product.lpr_tenor
    assert application.offer_spread_bp == (D("0.048") - lpr.rate) * 10000
    assert application.offer_rate_type == product.rate_type
    assert application.offer_repricing_months == (product.repricing_months if product.rate_type == "floating" else None)


def test_the_rate_basis_reads_in_the_readers_language():
    from django.utils import translation

    from loanservice.templatetags.display import rate_basis

    offer = {"lpr_tenor": "5y", "lpr_rate": "0.0350", "lpr_date": dt.date(2025, 5, 20), "spread_bp": "-15.50",
             "rate_type": "floating", "repricing_months": 12}
    with translation.override("zh-hans"):
        assert rate_basis(offer) == "按 2025年5月20日 五年期以上LPR 3.50% 减 15.5 个基点确定，浮动利率，每 12 个月重定价"
    with translation.override("en"):
        assert rate_basis(offer) == "5-year LPR of 20 May 2025 (3.50%) minus 15.5 basis points; floating, repriced every 12 months"
        assert rate_basis({**offer, "rate_type": "fixed", "spread_bp": "40"}).endswith("plus 40 basis points; fixed for the life of the loan")
    assert rate_basis({"annual_rate": "0.04"}) == ""
