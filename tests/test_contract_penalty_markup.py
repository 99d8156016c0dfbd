"""The penalty markup (罚息上浮) a contract states is the one its loan charges: recorded in the contract's terms and
printed in its PDF when the contract is issued (the post-loan policy's in force, within 30 %-50 %), charged by the loan
and by every drawdown of a credit line whatever the policy says by then; a contract issued before contracts stated it
keeps the policy's markup on the disbursement day."""

from __future__ import annotations

from decimal import Decimal

import pytest

from postloan.models import Loan, PostloanPolicy
from tests.factories import (
    ApplicantFactory,
    ApplicationFactory,
    FastTrackApplicationFactory,
    owner_view,
    sign_as_borrower,
)

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture(autouse=True)
def _outbound(settings, tmp_path):
    settings.CORE_BANKING_OUTBOUND_DIR = tmp_path / "outbound"


def policy_markup(markup: str) -> None:
    """What an admin does: the post-loan policy's penalty markup (every version, so the one in force has it)."""
    assert PostloanPolicy.objects.update(penalty_rate_markup=D(markup))


def pdf_text(contract) -> str:
    from contracts.pdf import pdf_text

    return "".join(pdf_text(contract.pdf.open("rb").read()).split())  # pypdf; Chinese lines wrap anywhere


def fast_track_contract(seed: int, **kwargs):
    application = FastTrackApplicationFactory(seed=seed, stage="contracting", documents=False, **kwargs)
    return application, application.contracts.get(kind="loan")


def release(application, contract) -> Loan:
    from casework import lifecycle

    sign_as_borrower(contract, application.applicant)
    assert lifecycle.fast_track_complete(contract.pk) == "disbursed"
    return Loan.objects.get(application=application)


@pytest.mark.parametrize("markup, percent, other", [("0.30", "30", "0.50"), ("0.50", "50", "0.30"), ("0.35", "35", "0.45")])
def test_the_contract_states_the_policys_markup_and_the_loan_charges_it(products, org, markup, percent, other):
    from postloan.quotes import penalty_rate
    from postloan.services import policy_in_force

    policy_markup(markup)
    application, contract = fast_track_contract(seed=61)
    assert contract.terms["penalty_markup"] == f"{D(markup):.4f}" and contract.terms["penalty_markup_percent"] == percent
    text = pdf_text(contract)
    assert f"按合同利率上浮{percent}%计收罚息" in text and text.count("上浮") == 1  # no other markup printed

    policy_markup(other)  # the admin changes the policy between signing and release: the contract binds
    loan = release(application, contract)
    assert loan.penalty_markup == D(markup)
    assert penalty_rate(loan, policy_in_force()) == min(loan.annual_rate * (1 + D(markup)), policy_in_force().overdue_charge_cap)
    assert penalty_rate(loan, policy_in_force()) < loan.annual_rate * D("1.51")  # the rate is small: no cap in the way


@pytest.mark.parametrize("policy, stated", [("0.20", "0.30"), ("0.80", "0.50"), ("0.4250", "0.425")])
def test_the_markup_is_clamped_to_the_legal_band_in_the_contract_and_the_loan(products, org, policy, stated):
    from postloan.services import contract_penalty_markup

    policy_markup(policy)
    assert contract_penalty_markup() == D(stated)
    application, contract = fast_track_contract(seed=62)
    assert D(contract.terms["penalty_markup"]) == D(stated)
    percent = f"{D(stated) * 100:.2f}".rstrip("0").rstrip(".")
    assert f"上浮{percent}%计收罚息" in pdf_text(contract)
    assert release(application, contract).penalty_markup == D(stated)


def test_a_credit_line_drawdown_charges_its_line_contracts_markup(products, org):
    from casework import lifecycle
    from creditlines.services import drawdown_create

    policy_markup("0.30")
    owner = ApplicantFactory()
    application = FastTrackApplicationFactory(applicant=owner, seed=63, product="xinyidai-line", amount="500000.00",
                                              term_months=12, stage="contracting", documents=False)
    contract = application.contracts.get(kind="loan")
    assert contract.template.kind == "credit_line" and contract.terms["penalty_markup"] == "0.3000"
    assert "按合同利率上浮30%计收罚息" in pdf_text(contract)
    sign_as_borrower(contract, owner)
    assert lifecycle.fast_track_complete(contract.pk) == "signed"

    policy_markup("0.50")  # the policy moves on; the line's contract still says 30 %
    application.refresh_from_db()
    drawdown, _ = drawdown_create(line_id=application.credit_line.pk, user=owner, idempotency_key="mk-1",
                                  amount=D("100000.00"), term_months=6, repayment_method="equal_installment",
                                  payee_name="", payee_account="")
    assert drawdown.loan.penalty_markup == D("0.30")


def test_a_contract_issued_before_contracts_stated_the_markup_keeps_the_policys_at_disbursement(products, org):
    from contracts.models import Contract

    policy_markup("0.30")
    application, contract = fast_track_contract(seed=64)
    terms = {k: v for k, v in contract.terms.items() if not k.startswith("penalty_markup")}
    Contract.objects.filter(pk=contract.pk).update(terms=terms)  # as issued before the term existed
    policy_markup("0.40")
    assert release(application, Contract.objects.get(pk=contract.pk)).penalty_markup == D("0.40")


def test_a_correction_states_the_markup_of_the_version_it_replaces(products, org):
    from tests.conftest import client_for
    from tests.contracts_support import accept, contracts_of

    policy_markup("0.30")
    pk, owner, client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=65))
    accept(client, pk)
    loan_contract = next(c for c in contracts_of(pk) if c.kind == "loan")
    policy_markup("0.50")
    r = client_for(org["demo_ops"]).post(f"/api/v1/contracts/{loan_contract.pk}/correct/",
                                         {"reason": "账户更正", "account": {"number": "6222000011112222"}}, format="json")
    assert r.status_code == 201, r.content
    new = next(c for c in contracts_of(pk) if c.pk == r.json()["id"])
    assert new.terms["penalty_markup"] == "0.3000" and "上浮30%计收罚息" in pdf_text(new)


def test_a_contract_that_states_no_markup_does_not_print_a_fixed_one(products, org):
    """Only a correction of a contract issued before the term existed renders without one: it then says what the loan
    will charge (the bank's markup on the day of disbursement, 30 %-50 %), not a figure it may not charge."""
    from contracts.models import ContractTemplate
    from contracts.pdf import pdf_text as text_of
    from contracts.services import contract_render

    template = ContractTemplate.objects.get(kind="loan", product__isnull=True, is_active=True)
    application, contract = fast_track_contract(seed=66)
    terms = {k: v for k, v in contract.terms.items() if not k.startswith("penalty_markup")}
    text = "".join(text_of(contract_render(template=template, number=contract.number, terms=terms)).split())
    assert "按合同利率上浮30%-50%（具体比例以放款之日贷款人执行的罚息上浮比例为准）计收罚息" in text


@pytest.mark.parametrize("kind", ["loan", "credit_line"])
def test_a_seeded_template_with_the_fixed_50_percent_gives_way_to_one_that_prints_the_contracts_markup(db, kind):
    from casework.reference_data import seed_contract_templates
    from contracts.models import ContractTemplate

    seeded = ContractTemplate.objects.get(kind=kind, product=None, is_active=True)
    start = seeded.html.index("上浮 {% if penalty_markup_percent %}")
    old_html = seeded.html[:start] + "上浮 50%" + seeded.html[seeded.html.index("{% endif %} 计收罚息", start) + 11:]
    assert "按合同利率上浮 50% 计收罚息" in old_html and "penalty_markup" not in old_html
    ContractTemplate.objects.filter(pk=seeded.pk).update(html=old_html)  # as installed before contracts stated it
    seed_contract_templates()
    active = ContractTemplate.objects.get(kind=kind, product=None, is_active=True)
    assert active.version == seeded.version + 1 and "{{ penalty_markup_percent }}%" in active.html
