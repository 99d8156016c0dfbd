"""Demo cases built through the real services and the conductor: an enterprise whose sandbox data scores in the
grades asked, a draft with its documents and consent, the submission, the RM's visit and hand-over to approval.
Used by the demo seeds (each stage's module and the history) and by tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from applications.models import DATA_SOURCES, Enterprise, IdentityVerification, LoanApplication, LoanProduct
from applications.selectors import verified_identity
from applications.services import (
    application_create,
    consent_grant,
    document_upload,
    enterprise_create,
    identity_check_record,
)
from casework import lifecycle
from underwriting.features import derive_features
from underwriting.providers import SandboxProvider, make_resident_id, make_uscc
from underwriting.scorecard import score_one
from underwriting.selectors import scorecard_champion
from underwriting.services import site_visit_record
from underwriting.sources import SOURCES

TINY_PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def _sandbox_grade(uscc: str) -> str:
    """The grade the champion scorecard gives the sandbox's data for this USCC (to pick demo firms)."""

    today = timezone.localdate()
    payloads = {s: SandboxProvider().fetch(s, uscc, as_of=today, hints={"founded_on": (today - dt.timedelta(days=365 * 6)).isoformat()})
                for s in SOURCES}
    return score_one(scorecard_champion().spec, derive_features(payloads, as_of=today)).grade


def _demo_uscc(seed: int, tier: str, grades: str) -> str:
    """A USCC in the default branch's region whose sandbox data scores in `grades`."""
    while True:
        uscc = make_uscc(seed, tier=tier)
        if uscc[2:4] not in ("11", "12", "33") and (not grades or _sandbox_grade(uscc) in grades):
            return uscc
        seed += 1000


def _enterprise(owner, seed: int, tier: str, name: str, *, grades: str = "", industry="C3399", revenue="8000000",
                employees=45) -> Enterprise:
    uscc = _demo_uscc(seed, tier, grades)
    existing = Enterprise.objects.filter(uscc=uscc).first()
    if existing:
        return existing
    today = timezone.localdate()
    return enterprise_create(
        owner=owner, name=name, uscc=uscc, legal_form="llc", legal_rep_name="张小微",
        legal_rep_id_number=make_resident_id(seed, birth_year=1978), industry_code=industry,
        founded_on=today - dt.timedelta(days=365 * 6), employees=employees, annual_revenue=Decimal(revenue),
    )


def demo_phone(enterprise: Enterprise) -> str:
    """A mainland mobile number of the demo's legal representative, one per enterprise."""
    return f"139{enterprise.pk % 10**8:08d}"


def verify_representative(owner, enterprise: Enterprise) -> IdentityVerification:
    """The owner verified as the enterprise's legal representative (the sandbox identity check on the registered
    name and ID number; the seed stands in for the SMS code the person would type)."""
    return verified_identity(user=owner, enterprise=enterprise) or identity_check_record(
        enterprise=enterprise, user=owner, method=IdentityVerification.LEGAL_REP, name=enterprise.legal_rep_name,
        id_number=enterprise.legal_rep_id_number, phone=demo_phone(enterprise), ip="127.0.0.1")


def sign_as_borrower(contract, owner):
    """The borrower's signature by its verified legal representative (the seed stands in for the signing code)."""
    return lifecycle.contract_sign(contract_id=contract.pk, user=owner, party="borrower",
                                   verification=verify_representative(owner, contract.application.enterprise))


def _draft(owner, enterprise, code: str, amount: str, term: int, method: str, purpose="采购原材料", channel="web") -> LoanApplication:
    product = LoanProduct.objects.get(code=code)
    application = application_create(applicant=owner, enterprise=enterprise, product=product, amount=Decimal(amount),
                                     term_months=term, repayment_method=method, purpose=purpose, channel=channel)
    for req in product.checklist.all():
        if req.required and not req.satisfied_by_source:
            document_upload(application=application, user=owner, requirement_code=req.code, name=f"{req.code}.pdf", content=TINY_PDF)
    verify_representative(owner, enterprise)
    consent_grant(application=application, user=owner, scopes=[s for s, _ in DATA_SOURCES])
    return application


def _submit(application, owner) -> LoanApplication:
    lifecycle.application_submit(application_id=application.pk, user=owner)
    application.refresh_from_db()
    if application.status == LoanApplication.Status.UNDER_REVIEW and not application.route:
        lifecycle.score_and_route(application.pk)  # the worker's step, done here when no eager Celery ran it
    application.refresh_from_db()
    return application


def _to_approval(application, users) -> LoanApplication:
    rm = application.relationship_manager
    site_visit_record(application=application, by=rm, mode="onsite", notes="现场核实经营正常，库存与账面相符。",
                      answers={"premises_verified": True, "operating_normally": True, "main_customers": "中 medium", "monthly_sales": "650000"})
    lifecycle.case_send_to_approval(application_id=application.pk, user=rm, recommendation="经营稳定，建议批准。")
    application.refresh_from_db()
    return application
