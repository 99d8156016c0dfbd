"""factory_boy factories for the tests: every object is made by the real services and the lifecycle conductor
(STYLE.md: tests set up data by calling the real services, not by poking models), so a case brought to a stage
has been through every step a real one takes.

    ApplicantFactory()                                     an SME owner who signed up
    EnterpriseFactory(owner=..., seed=3, grades="ABC")     an enterprise the sandbox grades from its USCC
    ApplicationFactory(stage="pending_approval")           a case at a stage: draft, submitted, pending_approval,
                                                           approved, contracting, borrower_signed
    PendingApprovalFactory(seed=11)                        visited and sent to approval (the approvals tests' case)
    FastTrackApplicationFactory(stage="disbursed")         信秒贷: approved by the system at submission
    FastTrackLoanFactory(owner=...)                        the loan of a disbursed 信秒贷 case
    verify_representative(owner, enterprise)               the owner verified as its legal representative
    consent_given(application)                             verified, then every source authorised
    sign_as_borrower(contract, owner)                      the verified borrower signs (services)

A case at a stage works both inside a test transaction (where on-commit Celery dispatch never fires: the worker's
step is run here) and in a transactional test with eager Celery (where it already ran: the steps are idempotent).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from applications.models import DATA_SOURCES, Enterprise, LoanApplication, LoanProduct
from applications.services import application_create, consent_grant, document_upload, enterprise_create
from approvals.services import related_party_add
from casework import lifecycle
from casework.demo.cases import _demo_uscc, sign_as_borrower, verify_representative
from loanservice.api import applicant_register
from postloan.models import Loan
from tests.conftest import TINY_PDF, client_for
from underwriting.providers import make_resident_id
from underwriting.selectors import questionnaire_for
from underwriting.services import site_visit_record

STAGES = ["draft", "submitted", "pending_approval", "approved", "contracting", "borrower_signed", "disbursed"]
STAGE_OF_STATUS = {"draft": "draft", "under_review": "submitted", "pending_approval": "pending_approval",
                   "approved": "approved", "contracting": "contracting", "disbursed": "disbursed"}
CHOICES = ["documents", "consent", "related_party", "visit_notes", "answers", "recommendation", "approver", "approval_comment",
           "conditions", "fast_track"]


def consent_given(application: LoanApplication, scopes=None) -> None:
    """The applicant verified as the enterprise's legal representative, then `scopes` (all) authorised."""
    verify_representative(application.applicant, application.enterprise)
    consent_grant(application=application, user=application.applicant,
                  scopes=list(scopes or [code for code, _label in DATA_SOURCES]))


def uscc_for(grades: str = "AB", seed: int = 1, tier: str = "prime") -> str:
    """A USCC the sandbox provider grades within `grades` (tier: prime, good, bad)."""
    return _demo_uscc(seed, tier, grades)


def enterprise_payload(uscc: str, *, seed: int = 1, **overrides) -> dict:
    """An enterprise's details, typed: what EnterpriseForm hands enterprise_create (and, serialised, an API body)."""
    data = {
        "name": "上海测试制造有限公司", "uscc": uscc, "legal_rep_name": "张三",
        "legal_rep_id_number": make_resident_id(seed, birth_year=1980), "industry_code": "C3399",
        "founded_on": dt.date.today() - dt.timedelta(days=365 * 6), "employees": 40,
        "annual_revenue": Decimal("8000000.00"),
    }
    data.update(overrides)
    return data


def owner_view(application: LoanApplication):
    """(pk, owner, the owner's API client): what a test that acts as the applicant starts from."""
    return application.pk, application.applicant, client_for(application.applicant)


def visit_answers(application: LoanApplication, *, text: str = "正常经营") -> dict:
    """Answers to the product's questionnaire: yes, the first choice, 600000, `text`."""
    answers = {}
    for q in questionnaire_for(application.product):
        if q.qtype == "yes_no":
            answers[q.code] = True
        elif q.choices:
            answers[q.code] = q.choices[0]
        else:
            answers[q.code] = "600000" if q.qtype == "number" else text
    return answers


class ApplicantFactory(factory.Factory):
    """An SME owner, signed up as the portal does it."""

    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"applicant{n}")
    password = "S3cure-pass-123"
    phone = "13900000000"
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")

    @classmethod
    def _create(cls, model_class, **kwargs):
        return applicant_register(**kwargs)


class EnterpriseFactory(factory.Factory):
    """An enterprise recorded by its owner; the sandbox's data (and so the grade) follows from the USCC."""

    class Meta:
        model = Enterprise

    class Params:
        seed = factory.Sequence(lambda n: 500 + n)
        grades = "AB"
        tier = "prime"
        uscc = factory.LazyAttribute(lambda o: uscc_for(o.grades, seed=o.seed, tier=o.tier))
        fields = factory.LazyFunction(dict)  # what differs from enterprise_payload's defaults

    owner = factory.SubFactory(ApplicantFactory)
    data = factory.LazyAttribute(lambda o: enterprise_payload(o.uscc, seed=o.seed, **o.fields))

    @classmethod
    def _create(cls, model_class, *, owner, data):
        return enterprise_create(owner=owner, **data)


class ApplicationFactory(factory.Factory):
    """A case brought to `stage` through the services and the conductor. The defaults are a secured 2,000,000
    request of a grade A-C firm in the default branch's region: routed to that branch's RM."""

    class Meta:
        model = LoanApplication

    class Params:
        seed = 7
        grades = "ABC"
        tier = "good"
        enterprise_fields = factory.LazyFunction(dict)

    applicant = factory.SubFactory(ApplicantFactory)
    enterprise = factory.LazyAttribute(lambda o: EnterpriseFactory(owner=o.applicant, seed=o.seed, grades=o.grades,
                                                                   tier=o.tier, fields=o.enterprise_fields))
    product = "secured-operating"
    amount = "2000000.00"
    term_months = 24
    repayment_method = "equal_principal"
    purpose = "采购原材料"
    channel = "web"
    # How far, and the choices made on the way.
    stage = "draft"
    documents = True  # the product's required documents for the amount
    consent = True  # consent to every data source
    related_party = False  # the enterprise is on the related-party list (a committee case)
    visit_notes = "现场核实经营正常"
    answers = None  # the visit questionnaire; None: visit_answers()
    recommendation = "经营稳定，建议批准"
    approver = None  # who approves (stage approved and later)
    approval_comment = "同意"
    conditions = None
    fast_track = False

    @classmethod
    def _create(cls, model_class, *, applicant, enterprise, product, amount, term_months, repayment_method, purpose,
                channel, stage, **choices):
        assert stage in STAGES, stage
        product = product if isinstance(product, LoanProduct) else LoanProduct.objects.get(code=product)
        application = application_create(applicant=applicant, enterprise=enterprise, product=product,
                                         amount=Decimal(amount), term_months=term_months, repayment_method=repayment_method,
                                         purpose=purpose, channel=channel)
        if choices["documents"]:
            for req in product.checklist.all():
                if req.required and not req.satisfied_by_source and req.applies_to(amount=Decimal(amount),
                                                                                    legal_form=enterprise.legal_form):
                    document_upload(application=application, user=applicant, requirement_code=req.code, name=f"{req.code}.pdf",
                                    content=TINY_PDF)
        if choices["consent"]:
            verify_representative(applicant, enterprise)
            consent_grant(application=application, user=applicant, scopes=[code for code, _label in DATA_SOURCES])
        if choices["related_party"]:
            related_party_add(by=None, name=enterprise.name, relation="staff_relative", uscc=enterprise.uscc,
                              note="客户经理配偶持股")
        return cls._advance(application, STAGES[1:STAGES.index(stage) + 1], choices)

    @classmethod
    def advance(cls, application: LoanApplication, *, to: str, **choices) -> LoanApplication:
        """Take a case made earlier (and changed since, by the test) on to stage `to`, with this factory's choices."""
        at = STAGE_OF_STATUS[LoanApplication.objects.get(pk=application.pk).status]
        defaults = {name: cls._meta.declarations[name] for name in CHOICES}
        return cls._advance(application, STAGES[STAGES.index(at) + 1:STAGES.index(to) + 1], {**defaults, **choices})

    @classmethod
    def _advance(cls, application: LoanApplication, steps: list[str], choices: dict) -> LoanApplication:
        if choices["fast_track"]:  # no person on the way: approved at submission, released by the system
            steps = [s for s in steps if s != "pending_approval"]
        for step in steps:
            application = cls._step(step, LoanApplication.objects.get(pk=application.pk), choices)
        return LoanApplication.objects.get(pk=application.pk)

    @classmethod
    def _step(cls, step: str, application: LoanApplication, choices: dict) -> LoanApplication:
        pk, owner = application.pk, application.applicant
        if step == "submitted":
            lifecycle.application_submit(application_id=pk, user=owner)
            application.refresh_from_db()
            if application.status == LoanApplication.Status.UNDER_REVIEW and not application.route:
                lifecycle.score_and_route(pk)  # the worker's step, where no commit dispatched it
        elif step == "pending_approval":
            assert application.status == "under_review" and application.route not in ("", "auto"), (
                application.status, application.route)
            rm = application.relationship_manager
            site_visit_record(application=application, by=rm, mode="onsite", notes=choices["visit_notes"],
                              answers=choices["answers"] if choices["answers"] is not None else visit_answers(application))
            lifecycle.case_send_to_approval(application_id=pk, user=rm, recommendation=choices["recommendation"])
        elif step == "approved":
            if not choices["fast_track"]:
                lifecycle.case_decide(application_id=pk, user=choices["approver"], decision="approve",
                                      comment=choices["approval_comment"], conditions=choices["conditions"] or [])
        elif step == "contracting":
            lifecycle.offer_accept(application_id=pk, user=owner)
        elif step == "borrower_signed":
            sign_as_borrower(application.contracts.get(kind="loan"), owner)
        elif step == "disbursed":
            lifecycle.fast_track_complete(application.contracts.get(kind="loan").pk)
        application = LoanApplication.objects.get(pk=pk)
        expected = {"pending_approval": "pending_approval", "approved": "approved", "contracting": "contracting",
                    "disbursed": "disbursed"}.get(step)
        assert expected is None or application.status == expected, (step, application.status, application.route)
        return application


class ApprovalsCaseFactory(ApplicationFactory):
    """The approvals tests' case: equal installments, to expand the business, visited with these answers."""

    repayment_method = "equal_installment"
    purpose = "扩大经营"
    answers = {"premises_verified": True, "operating_normally": True, "main_customers": "中 medium", "monthly_sales": "650000"}
    recommendation = "经营稳定，建议批准。"


class PendingApprovalFactory(ApprovalsCaseFactory):
    """Visited by its RM and sent to approval, pending at the branch tier first (`related_party=True`: the
    committee's)."""

    stage = "pending_approval"


class FastTrackApplicationFactory(ApplicationFactory):
    """信秒贷 for a grade A-B prime firm: approved by the system at submission (stage "approved" and later)."""

    class Params:
        seed = 1
        grades = "AB"
        tier = "prime"

    product = "xinmiaodai"
    amount = "300000.00"
    term_months = 12
    repayment_method = "equal_installment"
    stage = "approved"
    fast_track = True


class FastTrackLoanFactory(factory.Factory):
    """The loan of a 信秒贷 case taken all the way (apply, score, auto-approve, accept, sign, system release)."""

    class Meta:
        model = Loan

    class Params:
        seed = 1
        amount = "300000.00"
        term = 12
        method = "equal_installment"
        product = "xinmiaodai"

    owner = factory.SubFactory(ApplicantFactory)
    application = factory.LazyAttribute(lambda o: FastTrackApplicationFactory(
        applicant=o.owner, seed=o.seed, amount=o.amount, term_months=o.term, repayment_method=o.method, product=o.product,
        stage="disbursed", documents=False, enterprise_fields={
            "name": f"测试贷后企业{o.seed}有限公司", "legal_form": "llc", "legal_rep_name": "王贷后",
            "founded_on": timezone.localdate() - dt.timedelta(days=365 * 6)}))

    @classmethod
    def _create(cls, model_class, *, owner, application):
        return Loan.objects.get(application=application)
