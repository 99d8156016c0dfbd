"""Helpers for the approvals and SLA tests: cases made through the real services and the conductor."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.conftest import TINY_PDF, enterprise_payload, new_applicant, uscc_for


@pytest.fixture
def fast_passwords(settings):
    # Demo users are created with real password hashing; a cheap hasher keeps setup in milliseconds.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def staff_user(username: str, role: str, branch_code: str, *, supervisor=None):
    """Another member of staff (there is no self-service for staff accounts: admins create them)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from loanservice.models import Branch, Profile

    user = get_user_model().objects.create_user(username=username, password="x", email=f"{username}@bank.example")
    Profile.objects.create(user=user, branch=Branch.objects.get(code=branch_code), display_name=username, supervisor=supervisor)
    user.groups.add(Group.objects.get(name=role))
    return user


def draft_case(owner, *, product: str = "secured-operating", amount: str = "2000000.00", term: int = 24,
               grades: str = "ABC", tier: str = "good", seed: int = 7, method: str = "equal_installment"):
    """A draft with its documents and consent, for an enterprise in the default branch's region."""
    from applications.models import DATA_SOURCES, LoanProduct
    from applications.services import application_create, consent_grant, document_upload, enterprise_create

    data = enterprise_payload(uscc_for(grades, seed=seed, tier=tier), seed=seed)
    enterprise = enterprise_create(owner=owner, **data)
    product_obj = LoanProduct.objects.get(code=product)
    application = application_create(applicant=owner, enterprise=enterprise, product=product_obj, amount=Decimal(amount),
                                     term_months=term, repayment_method=method, purpose="扩大经营", channel="web")
    for req in product_obj.checklist.all():
        if req.required and not req.satisfied_by_source and (req.min_amount is None or Decimal(amount) >= req.min_amount):
            document_upload(application=application, user=owner, requirement_code=req.code, name=f"{req.code}.pdf",
                            content=TINY_PDF)
    consent_grant(application=application, user=owner, scopes=[code for code, _label in DATA_SOURCES])
    return application


def submit_and_route(application, owner):
    """Submit, then run the worker's step (score and route) as the conductor would on commit."""
    from applications.models import LoanApplication
    from casework import lifecycle

    lifecycle.application_submit(application_id=application.pk, user=owner)
    lifecycle.score_and_route(application.pk)
    return LoanApplication.objects.get(pk=application.pk)


def to_approval(application):
    from applications.models import LoanApplication
    from casework import lifecycle
    from underwriting.services import site_visit_record

    rm = application.relationship_manager
    site_visit_record(application=application, by=rm, mode="onsite", notes="现场核实经营正常",
                      answers={"premises_verified": True, "operating_normally": True, "main_customers": "中 medium",
                               "monthly_sales": "650000"})
    lifecycle.case_send_to_approval(application_id=application.pk, user=rm, recommendation="经营稳定，建议批准。")
    return LoanApplication.objects.get(pk=application.pk)


def pending_case(*, username: str = "owner1", related_party: bool = False, **kwargs):
    """A case pending approval (at the branch tier first), through the real services."""
    from approvals.services import related_party_add

    owner = new_applicant(username)
    application = draft_case(owner, **kwargs)
    if related_party:
        related_party_add(by=None, name=application.enterprise.name, relation="staff_relative",
                          uscc=application.enterprise.uscc, note="客户经理配偶持股")
    application = submit_and_route(application, owner)
    assert application.status == "under_review", application.status
    return to_approval(application), owner
