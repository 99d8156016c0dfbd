"""Helpers for tests and demos: a borrower's loan made through the real services and the lifecycle
conductor (the fast track: apply, pre-screen, score, auto-approve, accept, sign, system release)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from postloan.models import Loan


def fast_track_loan(*, owner, seed: int = 1, amount: str = "300000.00", term: int = 12, method: str = "equal_installment",
                    product: str = "xinmiaodai") -> Loan:
    from applications.models import DATA_SOURCES, LoanProduct
    from applications.services import application_create, consent_grant, enterprise_create
    from casework import lifecycle
    from casework.demo import _demo_uscc
    from underwriting.providers import make_resident_id

    today = timezone.localdate()
    enterprise = enterprise_create(
        owner=owner, name=f"测试贷后企业{seed}有限公司", uscc=_demo_uscc(seed, "prime", "AB"), legal_form="llc", legal_rep_name="王贷后",
        legal_rep_id_number=make_resident_id(seed, birth_year=1980), industry_code="C3399",
        founded_on=today - dt.timedelta(days=365 * 6), employees=40, annual_revenue=Decimal("8000000.00"))
    application = application_create(applicant=owner, enterprise=enterprise, product=LoanProduct.objects.get(code=product),
                                     amount=Decimal(amount), term_months=term, repayment_method=method, purpose="采购原材料")
    consent_grant(application=application, user=owner, scopes=[s for s, _label in DATA_SOURCES])
    lifecycle.application_submit(application_id=application.pk, user=owner)
    application.refresh_from_db()
    if application.status == "under_review" and not application.route:
        lifecycle.score_and_route(application.pk)
        application.refresh_from_db()
    assert application.status == "approved", (application.status, application.route)
    lifecycle.offer_accept(application_id=application.pk, user=owner)
    contract = application.contracts.get()
    lifecycle.contract_sign(contract_id=contract.pk, user=owner, party="borrower")
    lifecycle.fast_track_complete(contract.pk)
    return Loan.objects.get(application=application)
