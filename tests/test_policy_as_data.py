"""Policy that used to be constants in the services is data: the offer's validity and the visit waiver on the
product, the committee's quorum on the credit committee, the overdue buckets and classification floors in their
tables. Changing the data changes what the services do; missing data is an error, never a silent default."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from tests.approvals_support import fast_passwords  # noqa: F401
from tests.conftest import client_for
from tests.factories import FastTrackApplicationFactory, PendingApprovalFactory, owner_view

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


def test_the_offer_is_valid_for_the_products_days(products, org):
    from applications.models import LoanApplication, LoanProduct

    assert products["xinmiaodai"].offer_valid_days == 30  # DESIGN.md's default, kept by the migration
    LoanProduct.objects.filter(code="xinmiaodai").update(offer_valid_days=10)
    pk, _owner, _client = owner_view(FastTrackApplicationFactory(seed=1))
    application = LoanApplication.objects.get(pk=pk)
    assert application.offer_valid_until == timezone.localdate() + dt.timedelta(days=10)


def test_the_visit_waiver_is_the_products_grades_and_amount(products):
    from applications.models import LoanApplication
    from underwriting.models import Score
    from underwriting.services import visit_waivable

    product = products["supply-chain-order"]
    assert (product.visit_waiver_grades, product.visit_waiver_below) == (["A"], Decimal("1000000.00"))

    def waivable(grade: str, amount: str) -> bool:
        application = LoanApplication(product=product, amount=Decimal(amount), route="branch")
        return visit_waivable(application=application, score=Score(grade=grade))

    assert waivable("A", "800000") and not waivable("B", "800000") and not waivable("A", "1000000")
    product.visit_waiver_grades, product.visit_waiver_below = ["A", "B"], Decimal("2000000")
    assert waivable("B", "800000") and waivable("A", "1500000") and not waivable("C", "800000")
    product.visit_waiver_grades = []
    assert not waivable("A", "800000")


def test_the_visit_waiver_grades_are_checked(products):
    from django.core.exceptions import ValidationError

    product = products["supply-chain-order"]
    product.visit_waiver_grades = ["A", "F"]
    with pytest.raises(ValidationError) as bad:
        product.full_clean()
    assert "visit_waiver_grades" in bad.value.message_dict


def test_the_quorum_is_the_active_committees_and_there_is_no_default(products, org):
    from approvals.models import CreditCommittee
    from approvals.services import committee_configure, committee_tally
    from loanservice.errors import ApplicationError

    committee_configure(by=org["demo_admin"], chair=org["demo_committee_1"], quorum=3)
    application = PendingApprovalFactory(related_party=True, seed=19)
    assert client_for(org["demo_branch_approver"]).post(f"/api/v1/applications/{application.pk}/decide/",
                                                        {"decision": "approve"}, format="json").status_code == 200
    committee_configure(by=org["demo_admin"], chair=org["demo_committee_1"], quorum=4)
    for member in ("demo_committee_1", "demo_committee_2", "demo_committee_3"):
        r = client_for(org[member]).post(f"/api/v1/applications/{application.pk}/decide/", {"decision": "approve"}, format="json")
        assert r.status_code == 200, r.content
    case = application.approval_cases.get()
    tally = committee_tally(case)
    assert (tally["cast"], tally["quorum"], tally["outcome"]) == (3, 4, None)
    r = client_for(org["demo_committee_1"]).post(f"/api/v1/applications/{application.pk}/resolution/",
                                                 {"text": "按表决结果形成决议"}, format="json")
    assert r.status_code == 400 and "resolution" in r.json()["errors"]  # 3 of a quorum of 4

    CreditCommittee.objects.update(is_active=False)
    with pytest.raises(ApplicationError) as missing:
        committee_tally(case)  # no committee in force: said so, not a quorum of 3 made up here
    assert "committee" in missing.value.errors


def test_buckets_and_floors_have_no_default_table(db):
    from postloan.models import ClassificationFloor, DelinquencyBucket
    from postloan.policy import bucket_for, classification_floor

    DelinquencyBucket.objects.all().delete()
    with pytest.raises(ImproperlyConfigured):
        bucket_for(45)
    ClassificationFloor.objects.all().delete()
    with pytest.raises(ImproperlyConfigured):
        classification_floor(100)
