"""The borrower's total exposure for routing and authority (#18, DESIGN.md "Revolving credit lines"): term loans
outstanding, offers approved but not taken, credit lines (registered by their app) and related enterprises', added
to the request. The authority matrix compares its amount bands with the total, so a top-up cannot stay on the fast
track by its own amount; the figure is kept on the routing record and shown to staff, never to the borrower."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from applications.models import Enterprise, LoanApplication
from approvals.models import ApprovalCase, RoutingRecord
from approvals.services import RouteFacts, authority_matrix_active, route_decide, route_evaluate
from casework import lifecycle
from casework.exposure import application_exposure
from loanservice.audit import audit_trail
from loanservice.errors import ApplicationError
from postloan.models import Loan
from tests.conftest import client_for
from tests.factories import (
    ApplicantFactory,
    FastTrackApplicationFactory,
    FastTrackLoanFactory,
    PendingApprovalFactory,
)
from underwriting.models import Score

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def borrower(products, org):
    """An enterprise with a 300,000 fast-track loan outstanding."""
    owner = ApplicantFactory(username="exposure_owner")
    with time_machine.travel(timezone.now() - dt.timedelta(days=40)):
        loan = FastTrackLoanFactory(owner=owner, seed=71)
    return owner, loan.enterprise, loan


def same_rep(enterprise_id: int, as_of: Enterprise) -> None:
    """Another enterprise gets the same legal representative: saved, so its blind index follows (an encrypted ID
    number is matched by its HMAC, which QuerySet.update would not recompute)."""
    other = Enterprise.objects.get(pk=enterprise_id)
    other.legal_rep_id_number = as_of.legal_rep_id_number
    other.save(update_fields=["legal_rep_id_number", "legal_rep_id_number_bidx"])


def top_up(owner, enterprise, amount: str, stage: str = "submitted", **kw) -> LoanApplication:
    return FastTrackApplicationFactory(applicant=owner, enterprise=enterprise, amount=amount, stage=stage, **kw)


def test_the_parts_term_loans_offers_not_taken_related_parties_and_credit_lines(borrower, org):
    owner, enterprise, loan = borrower
    # an offer approved and not yet taken (the system approved it; the borrower has not accepted)
    offer = top_up(owner, enterprise, "100000.00", stage="approved", seed=71)
    assert offer.status == "approved" and offer.offer_amount == D("100000.00")
    # a related enterprise: another firm whose legal representative is the same person, with its own loan
    other_owner = ApplicantFactory(username="exposure_related")
    with time_machine.travel(timezone.now() - dt.timedelta(days=40)):
        related_loan = FastTrackLoanFactory(owner=other_owner, seed=72, amount="200000.00")
    same_rep(related_loan.enterprise_id, enterprise)
    # an unrelated firm's loan counts nowhere
    with time_machine.travel(timezone.now() - dt.timedelta(days=40)):
        FastTrackLoanFactory(owner=ApplicantFactory(username="exposure_stranger"), seed=73, amount="500000.00")

    request = FastTrackApplicationFactory(applicant=owner, enterprise=enterprise, amount="150000.00", stage="draft", seed=71)
    exposure = application_exposure(request)
    outstanding = Loan.objects.get(pk=loan.pk).outstanding_principal
    related_outstanding = Loan.objects.get(pk=related_loan.pk).outstanding_principal
    assert exposure.request == D("150000.00")
    assert exposure.term_loans == outstanding == D("300000.00")
    assert exposure.offers_not_taken == D("100000.00")  # the request itself is not an offer not taken
    assert exposure.related_parties == related_outstanding
    assert exposure.related == [{"id": related_loan.enterprise_id, "name": related_loan.enterprise.name,
                                 "amount": related_outstanding}]
    assert exposure.credit_lines == 0
    assert exposure.existing == outstanding + D("100000.00") + related_outstanding
    assert exposure.total == D("150000.00") + exposure.existing
    assert exposure.as_json()["total"] == f"{exposure.total:.2f}"

    # once repaid or taken, a part is gone: a closed loan is no exposure, an expired offer neither
    LoanApplication.objects.filter(pk=offer.pk).update(status="expired")
    Loan.objects.filter(pk=loan.pk).update(status="closed")
    assert application_exposure(request).existing == related_outstanding


def test_a_top_up_leaves_the_fast_track_when_the_total_is_above_the_auto_rows_limit(borrower, org):
    owner, enterprise, loan = borrower
    amount = "800000.00"  # alone within the auto row (≤ 1,000,000); with 300,000 outstanding, not
    application = top_up(owner, enterprise, amount, seed=71)
    assert application.status == "under_review" and application.route == "branch"
    record = RoutingRecord.objects.get(application=application)
    assert record.facts["amount"] == amount and record.facts["exposure"] == "1100000.00"
    assert record.facts["exposure_parts"]["term_loans"] == "300000.00"
    referral = next(r for r in record.referrals if r["code"] == "AMOUNT_ABOVE_FAST_TRACK")
    assert "1,100,000.00" in referral["message"] and "300,000.00" in referral["message_en"]
    event = next(e for e in audit_trail(application) if e.action == "application.route")
    assert event.data["exposure"]["total"] == "1100000.00"

    # the same case and score routed on its own amount would have gone through with no human touch
    score = Score.objects.get(application=application, is_shadow=False)
    rules = list(authority_matrix_active().rules.order_by("priority", "id"))
    facts = RouteFacts.from_json(record.facts)
    alone = RouteFacts(**{**facts.__dict__, "exposure": None})
    assert route_evaluate(rules=rules, facts=alone, blockers=[])[0] == "auto"
    assert route_evaluate(rules=rules, facts=facts, blockers=[])[0] == "branch"
    # route_decide without an exposure routes the request alone (what older callers and the what-if replay did)
    assert route_decide(application=application, score=score).facts.exposure == D(amount)


def test_a_small_request_stays_on_the_fast_track_when_the_total_fits(borrower, org):
    owner, enterprise, _loan = borrower
    application = top_up(owner, enterprise, "100000.00", stage="approved", seed=71)
    assert application.status == "approved" and application.route == "auto"
    record = RoutingRecord.objects.get(application=application)
    assert record.facts["exposure"] == "400000.00" and record.route == "auto"
    decision = application.decisions.get(automatic=True)
    assert decision.decision == "approve"
    event = next(e for e in audit_trail(application) if e.action == "application.approve")
    assert event.data["exposure"] == "400000.00"


def test_an_authority_rows_maximum_is_compared_with_the_exposure_and_approvers_follow_it(borrower, org):
    """2,800,000 alone is a branch case (≤ 3,000,000); with 300,000 outstanding it is the head office's: the branch
    approver's approval is only a recommendation and the branch cannot decide at the head-office tier."""
    owner, enterprise, _loan = borrower
    case = PendingApprovalFactory(applicant=owner, enterprise=enterprise, amount="2800000.00", seed=71)
    assert case.route == "head_office"
    record = RoutingRecord.objects.get(application=case)
    assert record.facts["exposure"] == "3100000.00" and record.rule.max_amount == D("10000000.00")
    branch, head = org["demo_branch_approver"], org["demo_head_approver"]
    lifecycle.case_decide(application_id=case.pk, user=branch, decision="approve", comment="同意，报总行")
    pending = ApprovalCase.objects.get(application=case, status="pending")
    assert pending.tier == "head_office"
    case.refresh_from_db()
    assert case.status == "pending_approval"  # the branch's approval did not decide it
    with pytest.raises(ApplicationError):
        lifecycle.case_decide(application_id=case.pk, user=branch, decision="approve", comment="再批")
    lifecycle.case_decide(application_id=case.pk, user=head, decision="approve", comment="同意")
    case.refresh_from_db()
    assert case.status == "approved"


def test_related_parties_count_in_routing(borrower, org):
    owner, enterprise, _loan = borrower
    other_owner = ApplicantFactory(username="exposure_related2")
    with time_machine.travel(timezone.now() - dt.timedelta(days=40)):
        related_loan = FastTrackLoanFactory(owner=other_owner, seed=74, amount="600000.00")
    same_rep(related_loan.enterprise_id, enterprise)
    Loan.objects.filter(enterprise=enterprise).update(status="closed")  # the borrower's own loan repaid
    application = top_up(owner, enterprise, "500000.00", seed=71)  # 500,000 + the related firm's 600,000
    record = RoutingRecord.objects.get(application=application)
    assert record.facts["exposure_parts"]["related_parties"] == "600000.00"
    assert record.facts["exposure_parts"]["term_loans"] == "0.00"
    assert record.facts["exposure"] == "1100000.00" and application.route == "branch"


def test_the_case_api_shows_the_exposure_to_staff_not_to_the_borrower(borrower, org):
    owner, enterprise, _loan = borrower
    application = top_up(owner, enterprise, "800000.00", seed=71)
    url = f"/api/v1/applications/{application.pk}/"
    staff = client_for(org["demo_rm"]).get(url)
    mine = client_for(owner).get(url)
    assert staff.status_code == mine.status_code == 200
    exposure = staff.json()["exposure"]
    assert exposure["basis"] == "routing" and exposure["total"] == "1100000.00" and exposure["request"] == "800000.00"
    assert {"term_loans", "offers_not_taken", "credit_lines", "related_parties", "existing", "related"} <= set(exposure)
    assert "exposure" not in mine.json()
    # the review page says it in words and figures (a line in the routing card)
    from django.test import Client

    browser = Client()
    browser.force_login(org["demo_branch_approver"])
    page = browser.get(f"/staff/approvals/{application.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="exposure"' in html and "1,100,000.00" in html and "300,000.00" in html


def test_a_borrower_with_nothing_is_read_in_one_statement(products, org, django_assert_num_queries):
    """No line, loan or offer in the borrower's group: one statement, every part zero."""
    owner = ApplicantFactory(username="exposure_new")
    request = FastTrackApplicationFactory(applicant=owner, amount="150000.00", stage="draft", seed=75)
    request = LoanApplication.objects.select_related("enterprise").get(pk=request.pk)  # as routing holds it
    with django_assert_num_queries(1):
        exposure = application_exposure(request)
    assert (exposure.term_loans, exposure.offers_not_taken, exposure.credit_lines, exposure.related_parties) == (0, 0, 0, 0)
    assert exposure.related == [] and exposure.total == D("150000.00")


def test_a_related_enterprises_active_line_counts_as_before(products, org, settings, tmp_path):
    """A borrower with nothing of its own whose related enterprise (same legal representative) has an active credit
    line and a drawdown: the line counts for the related enterprise at its limit, the drawdown not twice, and the
    parts are those the sums give (the check that lets a clean group skip them must not skip this one)."""
    from casework.exposure import _parts
    from tests.test_creditlines import draw, make_line

    settings.CORE_BANKING_OUTBOUND_DIR = tmp_path / "outbound"
    settings.CORE_BANKING_BACKEND = "sandbox"
    line = make_line(seed=76, limit="400000.00")
    draw(line, "100000.00", key="rel1")
    owner = ApplicantFactory(username="exposure_line_related")
    request = FastTrackApplicationFactory(applicant=owner, amount="150000.00", stage="draft", seed=77)
    same_rep(line.enterprise_id, request.enterprise)

    exposure = application_exposure(request)
    assert (exposure.term_loans, exposure.offers_not_taken, exposure.credit_lines) == (0, 0, 0)
    assert exposure.related_parties == D("400000.00")
    assert exposure.related == [{"id": line.enterprise_id, "name": line.enterprise.name, "amount": D("400000.00")}]
    parts = _parts([request.enterprise_id, line.enterprise_id], exclude_application_ids=[request.pk])
    assert parts[line.enterprise_id] == {"term_loans": 0, "offers_not_taken": 0, "credit_lines": D("400000.00")}
    assert exposure.as_json()["related_parties"] == "400000.00" and exposure.as_json()["total"] == "550000.00"



def test_a_related_enterprises_offer_alone_counts(products, org):
    """Nothing but an offer approved and not taken, in a related firm: the group check sees it, the offer counts."""
    other_owner = ApplicantFactory(username="exposure_offer_related")
    offer = FastTrackApplicationFactory(applicant=other_owner, amount="120000.00", stage="approved", seed=78)
    assert offer.status == "approved" and offer.offer_amount == D("120000.00")
    request = FastTrackApplicationFactory(applicant=ApplicantFactory(username="exposure_offer_owner"),
                                          amount="150000.00", stage="draft", seed=79)
    assert application_exposure(request).existing == 0
    same_rep(offer.enterprise_id, request.enterprise)
    exposure = application_exposure(request)
    assert exposure.related_parties == D("120000.00") and exposure.offers_not_taken == 0
    assert exposure.related == [{"id": offer.enterprise_id, "name": offer.enterprise.name, "amount": D("120000.00")}]
