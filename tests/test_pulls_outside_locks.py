"""No network wait under a row lock (issue #15): the data pulls of a submission, of a renewal request and of the
nightly renewal offers run before the row is locked. While the provider is being asked, another connection
locks the same row at once (NOWAIT on Postgres; on SQLite the write lock, with a short busy timeout), and the
pulling connection is in no transaction."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection

from tests.approvals_support import fast_passwords  # noqa: F401
from tests.concurrency import lockable_elsewhere, run_together
from tests.factories import ApplicantFactory, ApplicationFactory, FastTrackLoanFactory
from tests.test_postloan_repayments import DISBURSED

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords")]


@pytest.fixture
def pulls_probe(monkeypatch):
    """Every provider fetch first records (in a transaction?, row lockable from elsewhere?) for `target`."""
    from underwriting.providers import SandboxProvider

    seen: list[tuple[bool, bool]] = []
    target: dict = {}
    fetch = SandboxProvider.fetch

    def probing_fetch(self, *args, **kwargs):
        if target:
            seen.append((connection.in_atomic_block, lockable_elsewhere(target["model"], target["pk"])))
        return fetch(self, *args, **kwargs)

    monkeypatch.setattr(SandboxProvider, "fetch", probing_fetch)
    return seen, target


def test_a_submission_pulls_before_it_locks_the_draft(products, org, pulls_probe):
    from applications.models import LoanApplication
    from casework import lifecycle

    seen, target = pulls_probe
    draft = ApplicationFactory(stage="draft", seed=61)
    owner = draft.applicant
    target.update(model=LoanApplication, pk=draft.pk)
    application = lifecycle.application_submit(application_id=draft.pk, user=owner)
    assert application.status == LoanApplication.Status.UNDER_REVIEW
    assert len(seen) == 7  # every source pulled, none on file yet
    assert seen == [(False, True)] * 7, seen


def test_a_submission_rechecks_the_draft_under_the_lock(products, org, monkeypatch):
    """A withdrawal landing while the data is pulled wins: the submission then finds no draft and says so."""
    from applications.models import LoanApplication
    from applications.services import application_withdraw
    from casework import lifecycle
    from loanservice.errors import Conflict
    from underwriting.providers import SandboxProvider

    draft = ApplicationFactory(stage="draft", seed=62)
    owner = draft.applicant
    fetch = SandboxProvider.fetch
    withdrawn = []

    def fetch_then_withdraw(self, *args, **kwargs):
        if not withdrawn:
            def withdraw():
                application_withdraw(application=LoanApplication.objects.get(pk=draft.pk), user=owner, reason="不需要了")
                withdrawn.append(True)

            run_together([withdraw], timeout=30, what="the withdrawal")
        return fetch(self, *args, **kwargs)

    monkeypatch.setattr(SandboxProvider, "fetch", fetch_then_withdraw)
    with pytest.raises(Conflict):
        lifecycle.application_submit(application_id=draft.pk, user=owner)
    assert withdrawn == [True]
    assert LoanApplication.objects.get(pk=draft.pk).status == LoanApplication.Status.WITHDRAWN


def _during_the_pulls(monkeypatch, change):
    """Run `change` once, on another connection, while the submission's data is being pulled (before its lock)."""
    from underwriting.providers import SandboxProvider

    fetch = SandboxProvider.fetch
    done = []

    def fetch_then_change(self, *args, **kwargs):
        if not done:
            done.append(True)
            run_together([change], timeout=30, what="the change during the pulls")
        return fetch(self, *args, **kwargs)

    monkeypatch.setattr(SandboxProvider, "fetch", fetch_then_change)
    return done


def test_a_consent_withdrawn_during_the_pulls_refuses_the_submission(products, org, monkeypatch):
    """The consents read before the pulls are read again under the lock: one withdrawn meanwhile refuses."""
    from applications.models import LoanApplication
    from applications.services import consent_withdraw
    from casework import lifecycle
    from loanservice.errors import ApplicationError

    draft = ApplicationFactory(stage="draft", seed=64)
    owner = draft.applicant
    done = _during_the_pulls(monkeypatch, lambda: consent_withdraw(
        application=LoanApplication.objects.get(pk=draft.pk), user=owner, scopes=["judicial"]))
    with pytest.raises(ApplicationError) as refused:
        lifecycle.application_submit(application_id=draft.pk, user=owner)
    assert done == [True]
    assert list(refused.value.errors) == ["consent"], refused.value.errors
    assert LoanApplication.objects.get(pk=draft.pk).status == LoanApplication.Status.DRAFT


def test_a_document_deleted_during_the_pulls_refuses_the_submission(products, org, monkeypatch):
    """So are the documents: a required one deleted meanwhile (no source supplies it) refuses, naming it."""
    from applications.models import LoanApplication
    from applications.services import document_delete
    from casework import lifecycle
    from loanservice.errors import ApplicationError

    draft = ApplicationFactory(stage="draft", seed=65)
    owner = draft.applicant
    document = draft.documents.select_related("requirement").filter(requirement__required=True,
                                                                   requirement__satisfied_by_source="").first()
    assert document is not None
    done = _during_the_pulls(monkeypatch, lambda: document_delete(document=document, user=owner))
    with pytest.raises(ApplicationError) as refused:
        lifecycle.application_submit(application_id=draft.pk, user=owner)
    assert done == [True]
    assert refused.value.errors["documents"] == [f"{document.requirement.code}: {document.requirement.tr('name')}"]
    assert LoanApplication.objects.get(pk=draft.pk).status == LoanApplication.Status.DRAFT


@pytest.fixture
def renewable_loan(products, org):
    """A fast-track loan paid on time up to thirty days before maturity (its data by then months old)."""
    from postloan.services import repayment_record

    with time_machine.travel(dt.datetime.combine(DISBURSED, dt.time(2)), tick=False):
        loan = FastTrackLoanFactory(owner=ApplicantFactory(username="pull_renew"), seed=63)
    near = loan.maturity_date - dt.timedelta(days=30)
    for inst in loan.installments.filter(due_date__lt=near).order_by("n"):
        with time_machine.travel(dt.datetime.combine(inst.due_date, dt.time(12)), tick=False):
            repayment_record(loan=loan, amount=inst.total, paid_on=inst.due_date, reference=f"P{inst.n}", by=org["demo_ops"])
    loan.refresh_from_db()
    return loan, near


def test_a_renewal_request_pulls_before_it_locks_the_loan(renewable_loan, pulls_probe):
    from postloan.models import Loan
    from postloan.services import renewal_request

    loan, near = renewable_loan
    seen, target = pulls_probe
    target.update(model=Loan, pk=loan.pk)
    with time_machine.travel(dt.datetime.combine(near, dt.time(12)), tick=False):
        offer = renewal_request(loan=loan, by=loan.borrower)
    assert offer.application.status == "draft" and offer.amount == loan.outstanding_principal
    assert seen and seen == [(False, True)] * len(seen), seen


def test_the_nightly_renewal_offers_pull_before_they_lock_the_loan(renewable_loan, pulls_probe):
    from postloan.models import Loan, RenewalOffer
    from postloan.services import renewal_offers_make

    loan, near = renewable_loan
    seen, target = pulls_probe
    target.update(model=Loan, pk=loan.pk)
    with time_machine.travel(dt.datetime.combine(near, dt.time(12)), tick=False):
        assert renewal_offers_make(today=near)["offered"] == 1
    assert RenewalOffer.objects.filter(loan=loan, kind="renewal").count() == 1
    assert seen and seen == [(False, True)] * len(seen), seen


def test_the_nightly_offer_rechecks_the_loan_after_the_pull(renewable_loan, monkeypatch):
    """A red warning raised while the admission data is being pulled is seen by the check made under the lock."""
    from postloan.models import EarlyWarning, RenewalOffer, WarningRule
    from postloan.services import renewal_offers_make
    from underwriting.providers import SandboxProvider

    loan, near = renewable_loan
    fetch = SandboxProvider.fetch
    raised = []

    def fetch_while_a_warning_lands(self, *args, **kwargs):
        if not raised:
            def warn():
                raised.append(EarlyWarning.objects.create(
                    loan=loan, rule=WarningRule.objects.get(code="enforcement_new"), severity="red",
                    fingerprint="during-pull", detected_on=near))

            run_together([warn], timeout=30, what="the warning")
        return fetch(self, *args, **kwargs)

    monkeypatch.setattr(SandboxProvider, "fetch", fetch_while_a_warning_lands)
    with time_machine.travel(dt.datetime.combine(near, dt.time(12)), tick=False):
        assert renewal_offers_make(today=near)["offered"] == 0
    assert len(raised) == 1
    assert not RenewalOffer.objects.filter(loan=loan).exists()
