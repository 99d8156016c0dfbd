"""Decisions through the public API: four eyes, one decision each, conflicts of interest, multi-level
authority, the committee (quorum, majority, deadline, the chair's resolution), counter-offers, conditions
precedent, decline reasons the applicant reads, return to the RM and requests for information."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.approvals_support import fast_passwords, staff_user  # noqa: F401
from tests.conftest import client_for
from tests.factories import ApprovalsCaseFactory, PendingApprovalFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


def decide(user, pk, **body):
    return client_for(user).post(f"/api/v1/applications/{pk}/decide/", body, format="json")


def resolve(user, pk, text="经贷审会审议，按表决结果形成决议。"):
    return client_for(user).post(f"/api/v1/applications/{pk}/resolution/", {"text": text}, format="json")


def committee_case(org, **kwargs):
    """A related-party case, recommended by the branch, now before the committee (chair: committee_1)."""
    from approvals.services import committee_configure

    committee_configure(by=org["demo_admin"], chair=org["demo_committee_1"], quorum=3)
    application = PendingApprovalFactory(related_party=True, **kwargs)
    owner = application.applicant
    assert application.route == "committee"
    r = decide(org["demo_branch_approver"], application.pk, decision="approve", comment="同意上报贷审会")
    assert r.status_code == 200, r.content
    application.refresh_from_db()
    assert application.approval_cases.get().tier == "committee"
    return application, owner


def test_four_eyes_the_preparer_never_decides_even_with_the_approver_role(products, org):
    from django.contrib.auth.models import Group

    application = PendingApprovalFactory()
    rm = org["demo_rm"]
    rm.groups.add(Group.objects.get(name="branch_approver"))
    rm = type(rm).objects.get(pk=rm.pk)  # fresh role cache
    r = decide(rm, application.pk, decision="approve")
    assert r.status_code == 403 and "decision" in r.json()["errors"]
    application.refresh_from_db()
    assert application.status == "pending_approval" and not application.decisions.exists()


def test_head_office_case_branch_recommends_head_office_decides_and_nobody_decides_twice(products, org):
    from django.contrib.auth.models import Group

    from loanservice.models import SlaClock

    application = PendingApprovalFactory(amount="5000000.00", seed=9)
    assert application.route == "head_office"
    branch = org["demo_branch_approver"]
    r = decide(branch, application.pk, decision="approve", approved_amount="4500000.00", comment="同意上报")
    assert r.status_code == 200 and r.json()["status"] == "pending_approval"
    case = application.approval_cases.get()
    assert case.tier == "head_office" and case.decisions.get().decision == "recommend"
    assert SlaClock.objects.get(case_id=application.pk, stopped_at__isnull=True).stage == "head_office_approval"

    # The branch approver cannot act at head office, and even with that role cannot decide a second time.
    assert decide(branch, application.pk, decision="approve").status_code == 403
    branch.groups.add(Group.objects.get(name="head_office_approver"))
    branch = type(branch).objects.get(pk=branch.pk)
    r = decide(branch, application.pk, decision="approve")
    assert r.status_code == 403 and "不能重复审批" in r.json()["errors"]["decision"][0]

    r = decide(org["demo_head_approver"], application.pk, decision="approve", term_months=18, rate="0.0520")
    assert r.status_code == 200, r.content
    offer = r.json()["offer"]
    # The lower amount recommended below still binds; head office shortened the term and set the rate.
    assert offer["amount"] == "4500000.00" and offer["term_months"] == 18 and offer["annual_rate"] == "0.0520"
    assert r.json()["status"] == "approved"
    assert decide(org["demo_head_approver"], application.pk, decision="approve").status_code == 409


def test_counter_offer_is_validated_field_by_field(products, org):
    application = PendingApprovalFactory(seed=11)
    approver = org["demo_branch_approver"]
    r = decide(approver, application.pk, decision="approve", approved_amount="2500000.00", term_months=36, rate="0.5")
    assert r.status_code == 400
    assert set(r.json()["errors"]) == {"approved_amount", "term_months", "rate"}
    r = decide(approver, application.pk, decision="decline", reason_codes=["HIGH_LEVERAGE"], approved_amount="100000.00")
    assert r.status_code == 400 and "decision" in r.json()["errors"]
    application.refresh_from_db()
    assert application.status == "pending_approval" and not application.decisions.exists()
    r = decide(approver, application.pk, decision="approve", approved_amount="1500000.00", term_months=12, rate="0.045")
    assert r.status_code == 200, r.content
    assert r.json()["offer"] == {**r.json()["offer"], "amount": "1500000.00", "term_months": 12, "annual_rate": "0.0450"}


def test_conditions_become_conditions_precedent_for_disbursement(products, org):
    from contracts.services import conditions_precedent

    application = PendingApprovalFactory(seed=12)
    approver = org["demo_branch_approver"]
    r = decide(approver, application.pk, decision="approve", conditions=["NOT_A_CONDITION"])
    assert r.status_code == 400 and "conditions" in r.json()["errors"]
    r = decide(approver, application.pk, decision="approve",
               conditions=["ADD_GUARANTOR", {"code": "REGISTERED_MORTGAGE", "text": "办妥浦东新区房产抵押登记"}])
    assert r.status_code == 200, r.content
    case = application.approval_cases.get()
    assert [c["code"] for c in case.conditions] == ["ADD_GUARANTOR", "REGISTERED_MORTGAGE"]
    assert case.conditions[1]["text"] == "办妥浦东新区房产抵押登记"
    application.refresh_from_db()
    items = {i["code"]: i for i in conditions_precedent(application, automatic=False)}
    assert {"ADD_GUARANTOR", "REGISTERED_MORTGAGE"} <= set(items)
    assert items["REGISTERED_MORTGAGE"]["text"] == "办妥浦东新区房产抵押登记"


def test_decline_needs_catalogue_decline_codes_and_the_applicant_reads_plain_reasons(products, org):
    application = PendingApprovalFactory(seed=13)
    owner = application.applicant
    approver = org["demo_branch_approver"]
    r = decide(approver, application.pk, decision="decline")
    assert r.status_code == 400 and "reason_codes" in r.json()["errors"]
    r = decide(approver, application.pk, decision="decline", reason_codes=["RECHECK_FINANCIALS"])  # a return code
    assert r.status_code == 400 and "reason_codes" in r.json()["errors"]
    r = decide(approver, application.pk, decision="decline", reason_codes=["NO_SUCH_CODE"])
    assert r.status_code == 400 and "NO_SUCH_CODE" in r.json()["errors"]["reason_codes"][0]
    r = decide(approver, application.pk, decision="decline", reason_codes=["HIGH_LEVERAGE", "INSUFFICIENT_CASHFLOW"],
               comment="内部意见：负债率过高")
    assert r.status_code == 200 and r.json()["status"] == "declined"
    seen = client_for(owner).get(f"/api/v1/applications/{application.pk}/").json()
    assert {x["message"] for x in seen["decline_reasons"]} == {"负债水平过高", "经营现金流不足以覆盖还款"}
    assert "内部意见" not in str(seen)  # the approver's comment stays inside the bank


def test_return_to_the_rm_restarts_due_diligence(products, org):
    from loanservice.models import Notification, SlaClock

    application = PendingApprovalFactory(seed=14)
    r = decide(org["demo_branch_approver"], application.pk, decision="return", reason_codes=["VISIT_REQUIRED"], comment="请补充走访")
    assert r.status_code == 200 and r.json()["status"] == "under_review"
    assert application.approval_cases.get().status == "returned"
    assert SlaClock.objects.get(case_id=application.pk, stopped_at__isnull=True).stage == "due_diligence"
    assert Notification.objects.filter(user=org["demo_rm"], kind="returned").exists()


def test_an_approver_requests_information_and_the_clock_pauses_until_the_applicant_answers(products, org):
    from loanservice.models import AuditEvent, SlaClock

    application = PendingApprovalFactory(seed=15)

    owner = application.applicant
    approver = org["demo_branch_approver"]
    other_branch = org.get("bj01_approver") or staff_user("bj_approver_x", "branch_approver", "BJ01")
    r = client_for(other_branch).post(f"/api/v1/applications/{application.pk}/request-info/", {"message": "?"}, format="json")
    assert r.status_code in (403, 404)
    r = client_for(approver).post(f"/api/v1/applications/{application.pk}/request-info/",
                                  {"message": "请提供近三个月的销售合同"}, format="json")
    assert r.status_code == 201, r.content
    application.refresh_from_db()
    assert application.status == "awaiting_info"
    clock = SlaClock.objects.get(case_id=application.pk, stopped_at__isnull=True)
    assert clock.stage == "branch_approval" and clock.paused_at is not None
    assert AuditEvent.objects.filter(action="approval.request_info", actor=approver).exists()
    r = decide(approver, application.pk, decision="approve")
    assert r.status_code == 409 and r.json()["state"] == "awaiting_info"

    r = client_for(owner).post(f"/api/v1/applications/{application.pk}/respond/", {"response": "已上传销售合同"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "pending_approval"
    clock.refresh_from_db()
    assert clock.paused_at is None and len(clock.pauses) == 1
    assert decide(approver, application.pk, decision="approve").status_code == 200


def test_committee_quorum_majority_one_vote_each_and_the_chair_records_the_resolution(products, org):
    from approvals.models import CommitteeResolution
    from loanservice.models import AuditEvent, SlaClock

    application, owner = committee_case(org, seed=16)
    c1, c2, c3 = org["demo_committee_1"], org["demo_committee_2"], org["demo_committee_3"]
    assert SlaClock.objects.get(case_id=application.pk, stopped_at__isnull=True).stage == "committee_approval"
    assert decide(c2, application.pk, decision="approve", approved_amount="1800000.00").status_code == 200
    assert decide(c2, application.pk, decision="approve").status_code == 403  # one vote each
    r = decide(c3, application.pk, decision="return", reason_codes=["VISIT_REQUIRED"])
    assert r.status_code == 400  # members vote; only a resolution returns a committee case
    assert decide(c3, application.pk, decision="decline").status_code == 400  # a vote against needs its reasons
    assert decide(c3, application.pk, decision="decline", reason_codes=["INDUSTRY_RISK"]).status_code == 200
    r = resolve(c1, application.pk)
    assert r.status_code == 400 and "resolution" in r.json()["errors"]  # 2 of a quorum of 3
    assert decide(c1, application.pk, decision="approve", rate="0.0480").status_code == 200
    assert resolve(c2, application.pk).status_code == 403  # only the chair
    r = resolve(c1, application.pk, text="")
    assert r.status_code == 400 and "text" in r.json()["errors"]
    r = resolve(c1, application.pk)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "approved" and body["offer"]["amount"] == "1800000.00" and body["offer"]["annual_rate"] == "0.0480"
    resolution = CommitteeResolution.objects.get(case__application=application)
    assert (resolution.outcome, resolution.votes_for, resolution.votes_against, resolution.quorum) == ("approved", 2, 1, 3)
    assert AuditEvent.objects.filter(action="committee.resolution", actor=c1).exists()
    assert not SlaClock.objects.filter(case_id=application.pk, stopped_at__isnull=True).exists()
    assert resolve(c1, application.pk).status_code == 409


def test_committee_without_a_majority_declines_with_the_members_reasons(products, org):
    application, owner = committee_case(org, seed=17)
    c4 = staff_user("committee_4", "credit_committee", "HO")
    assert decide(org["demo_committee_1"], application.pk, decision="approve").status_code == 200
    assert decide(org["demo_committee_2"], application.pk, decision="approve").status_code == 200
    assert decide(org["demo_committee_3"], application.pk, decision="decline", reason_codes=["RELATED_PARTY_LIMIT"]).status_code == 200
    assert decide(c4, application.pk, decision="decline", reason_codes=["LITIGATION"]).status_code == 200
    r = resolve(org["demo_committee_1"], application.pk)  # 2 : 2 is no majority for approval
    assert r.status_code == 200 and r.json()["status"] == "declined"
    seen = client_for(owner).get(f"/api/v1/applications/{application.pk}/").json()
    assert {x["code"] for x in seen["decline_reasons"]} == {"RELATED_PARTY_LIMIT", "LITIGATION"}


def test_committee_deadline_refuses_late_votes_and_lapses_without_a_quorum(products, org):
    from loanservice.sla import sla_clock_start, sla_clock_stop

    application, _owner = committee_case(org, seed=18)
    assert decide(org["demo_committee_2"], application.pk, decision="approve").status_code == 200
    # The committee clock as if the case had reached it three weeks ago (5 business days have passed).
    sla_clock_stop(case_id=application.pk, stage="committee_approval")
    sla_clock_start(case_id=application.pk, stage="committee_approval", product_code=application.product.code,
                    now=timezone.now() - dt.timedelta(days=21))
    r = decide(org["demo_committee_3"], application.pk, decision="approve")
    assert r.status_code == 409 and r.json()["state"] == "pending_approval"
    r = resolve(org["demo_committee_1"], application.pk, text="期限内未达法定人数，退回客户经理")
    assert r.status_code == 200 and r.json()["status"] == "under_review"
    case = application.approval_cases.get()
    assert case.status == "returned" and case.resolution.outcome == "lapsed"


def test_a_declared_conflict_of_interest_routes_to_the_committee_and_bars_the_declarant(products, org):
    from approvals.models import RoutingRecord
    from approvals.services import committee_configure, conflict_declare
    from tests.factories import ApplicantFactory

    committee_configure(by=org["demo_admin"], chair=org["demo_committee_1"])
    owner = ApplicantFactory(username="owner1")
    application = ApprovalsCaseFactory(applicant=owner, seed=19)
    conflict_declare(user=org["demo_committee_2"], enterprise=application.enterprise, reason="该企业法定代表人为本人亲属")
    application = ApprovalsCaseFactory.advance(application, to="pending_approval")
    assert application.route == "committee"
    assert "CONFLICT_OF_INTEREST" in {r["code"] for r in RoutingRecord.objects.get(application=application).referrals}
    assert decide(org["demo_branch_approver"], application.pk, decision="approve").status_code == 200
    r = decide(org["demo_committee_2"], application.pk, decision="approve")
    assert r.status_code == 403 and "利益冲突" in r.json()["errors"]["decision"][0]


def test_queue_per_tier_shows_the_committee_case_to_members_only(products, org):
    from approvals.selectors import approval_queue

    application, _owner = committee_case(org, seed=20)
    assert [c.application_id for c in approval_queue(org["demo_committee_3"])] == [application.pk]
    assert application.pk not in [c.application_id for c in approval_queue(org["demo_branch_approver"])]
    assert application.pk not in [c.application_id for c in approval_queue(org["demo_head_approver"])]
    assert decide(org["demo_committee_3"], application.pk, decision="approve").status_code == 200
    row = approval_queue(org["demo_committee_3"]).get(application_id=application.pk)
    assert row.decided_by_me and row.votes == 1 and row.application.amount == Decimal("2000000.00")
