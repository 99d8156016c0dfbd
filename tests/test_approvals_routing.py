"""The authority matrix: the routing table for every band and grade, delegation to branches, customer
rating, the fast track's blockers, and versioning (drafts, activation, frozen versions, audit)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from tests.approvals_support import fast_passwords  # noqa: F401
from tests.factories import ApplicantFactory, ApprovalsCaseFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

BANDS = ["500000.00", "1000000.00", "1000000.01", "3000000.00", "3000000.01", "10000000.00", "10000000.01"]
# DESIGN.md's routing, written out by hand: rows are amounts (BANDS), columns grades A-E.
EXPECTED = {
    "500000.00":   {"A": "auto", "B": "auto", "C": "branch", "D": "committee", "E": "auto_decline"},
    "1000000.00":  {"A": "auto", "B": "auto", "C": "branch", "D": "committee", "E": "auto_decline"},
    "1000000.01":  {"A": "branch", "B": "branch", "C": "branch", "D": "committee", "E": "auto_decline"},
    "3000000.00":  {"A": "branch", "B": "branch", "C": "branch", "D": "committee", "E": "auto_decline"},
    "3000000.01":  {"A": "head_office", "B": "head_office", "C": "head_office", "D": "committee", "E": "auto_decline"},
    "10000000.00": {"A": "head_office", "B": "head_office", "C": "head_office", "D": "committee", "E": "auto_decline"},
    "10000000.01": {"A": "committee", "B": "committee", "C": "committee", "D": "committee", "E": "auto_decline"},
}
BLOCKER = [{"code": "DATA_MISSING_TAX", "message": "数据源缺失：tax", "message_en": "Data source missing: tax"}]


def facts(amount: str, grade: str, *, related=False, rating="A", product_id=1, branch_id=None):
    from approvals.services import RouteFacts

    return RouteFacts(product_id=product_id, branch_id=branch_id, amount=Decimal(amount), grade=grade,
                      customer_rating=rating, related_party=related)


def active_rules():
    from approvals.services import authority_matrix_active

    return list(authority_matrix_active().rules.order_by("priority", "id"))


@pytest.mark.parametrize("amount", BANDS)
@pytest.mark.parametrize("grade", ["A", "B", "C", "D", "E"])
def test_routing_table_for_every_band_and_grade(amount, grade):
    from approvals.services import route_evaluate

    route, rule, referrals = route_evaluate(rules=active_rules(), facts=facts(amount, grade), blockers=[])
    assert route == EXPECTED[amount][grade]
    assert rule is not None and rule.route == route
    # With anything blocking the fast track, the auto rows never apply: a person takes it, with the reason named.
    blocked, _rule, named = route_evaluate(rules=active_rules(), facts=facts(amount, grade), blockers=BLOCKER)
    assert blocked == ("branch" if route == "auto" else route)
    if blocked not in ("auto", "auto_decline"):
        assert {"code": "DATA_MISSING_TAX", "message": "数据源缺失：tax", "message_en": "Data source missing: tax"} in named


@pytest.mark.parametrize("grade,expected", [("A", "committee"), ("C", "committee"), ("D", "committee"), ("E", "auto_decline")])
def test_a_related_party_goes_to_the_committee_at_any_amount(grade, expected):
    from approvals.services import route_evaluate

    for amount in ("100000.00", "2000000.00"):
        route, _rule, _referrals = route_evaluate(rules=active_rules(), facts=facts(amount, grade, related=True), blockers=[])
        assert route == expected


def test_referrals_name_the_matrix_limits_of_the_fast_track():
    from approvals.services import route_evaluate

    route, _rule, referrals = route_evaluate(rules=active_rules(), facts=facts("2000000.00", "C"), blockers=[])
    assert route == "branch"
    codes = {r["code"]: r for r in referrals}
    assert set(codes) == {"AMOUNT_ABOVE_FAST_TRACK", "GRADE_NOT_FAST_TRACK"}
    assert "1,000,000.00" in codes["AMOUNT_ABOVE_FAST_TRACK"]["message"]


def _draft_with(*rows, by=None):
    from approvals.services import authority_rule_save, matrix_version_draft_create

    draft = matrix_version_draft_create(by=by)
    for fields in rows:
        authority_rule_save(version=draft, by=by, **fields)
    return draft


def test_delegation_a_branch_may_hold_a_higher_or_a_lower_limit(org):
    from approvals.services import route_evaluate
    from loanservice.models import Branch

    sh, bj = Branch.objects.get(code="SH01"), Branch.objects.get(code="BJ01")
    draft = _draft_with(
        {"priority": 55, "branch": sh, "min_amount": Decimal("3000000"), "max_amount": Decimal("5000000"),
         "grades": ["A", "B", "C"], "route": "branch", "note": "上海分行授权至500万"},
        {"priority": 56, "branch": bj, "min_amount": Decimal("1000000"), "max_amount": Decimal("3000000"),
         "grades": ["A", "B", "C"], "route": "head_office", "note": "北京分行授权仅至100万"},
        by=org["demo_risk"])
    rules = list(draft.rules.order_by("priority", "id"))
    route = lambda amount, branch: route_evaluate(rules=rules, facts=facts(amount, "B", branch_id=branch.pk), blockers=[])[0]  # noqa: E731
    assert route("4000000.00", sh) == "branch"
    assert route("4000000.00", bj) == "head_office"
    assert route("2000000.00", sh) == "branch"
    assert route("2000000.00", bj) == "head_office"
    assert route("6000000.00", sh) == "head_office"
    assert route("800000.00", bj) == "auto"


def test_customer_rating_and_product_rows(products, org):
    from approvals.services import route_evaluate

    secured = products["secured-operating"]
    draft = _draft_with(
        {"priority": 45, "customer_ratings": ["M"], "max_amount": Decimal("1000000"), "route": "branch",
         "note": "纳税信用M级不走自动审批"},
        {"priority": 46, "product": secured, "min_amount": Decimal("3000000"), "max_amount": Decimal("10000000"),
         "grades": ["A", "B"], "route": "branch", "note": "抵押经营贷A/B级分行可批至1000万"},
        by=org["demo_risk"])
    rules = list(draft.rules.order_by("priority", "id"))
    assert route_evaluate(rules=rules, facts=facts("500000.00", "A", rating="M"), blockers=[])[0] == "branch"
    assert route_evaluate(rules=rules, facts=facts("500000.00", "A", rating="A"), blockers=[])[0] == "auto"
    assert route_evaluate(rules=rules, facts=facts("8000000.00", "B", product_id=secured.pk), blockers=[])[0] == "branch"
    assert route_evaluate(rules=rules, facts=facts("8000000.00", "C", product_id=secured.pk), blockers=[])[0] == "head_office"


def test_versions_draft_activate_retire_and_frozen_with_audit(org):
    from approvals.models import AuthorityMatrixVersion, AuthorityRule
    from approvals.services import (
        authority_matrix_active,
        authority_rule_delete,
        authority_rule_save,
        matrix_version_activate,
        matrix_version_draft_create,
    )
    from loanservice.errors import ApplicationError, Conflict
    from loanservice.models import AuditEvent

    risk = org["demo_risk"]
    v1 = authority_matrix_active()
    assert v1.number == 1 and v1.state == "active"
    draft = matrix_version_draft_create(by=risk, note="降低自动审批上限")
    assert draft.state == "draft" and draft.number == 2 and draft.rules.count() == v1.rules.count()
    auto = draft.rules.get(route="auto")
    authority_rule_save(version=draft, by=risk, rule=auto, max_amount=Decimal("500000"))
    with pytest.raises(ApplicationError) as bad:
        authority_rule_save(version=draft, by=risk, grades=["F"], route="branch")
    assert "grades" in bad.value.errors
    authority_rule_delete(version=draft, by=risk, rule=draft.rules.get(note="grade D"))

    # The active version is frozen: no service and no model save can change it.
    with pytest.raises(Conflict):
        authority_rule_save(version=v1, by=risk, rule=v1.rules.get(route="auto"), max_amount=Decimal("1"))
    with pytest.raises(ValidationError):
        AuthorityRule.objects.create(version=v1, priority=1, route="auto")
    assert v1.rules.get(route="auto").max_amount == Decimal("1000000")

    matrix_version_activate(version=draft, by=risk, reason="回测通过")
    v1.refresh_from_db()
    draft.refresh_from_db()
    assert authority_matrix_active() == draft and draft.activated_by == risk
    assert v1.state == "retired" and v1.retired_at is not None
    with pytest.raises(Conflict):
        matrix_version_activate(version=draft, by=risk)
    assert AuthorityMatrixVersion.objects.filter(is_active=True).count() == 1

    actions = list(AuditEvent.objects.filter(object_type="approvals.authoritymatrixversion").values_list("action", "object_id"))
    assert ("authority_matrix.draft", str(draft.pk)) in actions
    assert ("authority_matrix.rule_change", str(draft.pk)) in actions
    assert ("authority_matrix.rule_delete", str(draft.pk)) in actions
    assert ("authority_matrix.retire", str(v1.pk)) in actions
    activate = AuditEvent.objects.get(action="authority_matrix.activate")
    assert activate.actor == risk and activate.data["replaces"] == 1 and activate.reason == "回测通过"
    change = AuditEvent.objects.get(action="authority_matrix.rule_change")
    assert change.data["before"]["max_amount"] == "1000000.00" and change.data["after"]["max_amount"] == "500000.00"


def test_each_case_records_the_version_that_routed_it(products, org):
    """Auto decisions carry the model and matrix versions; after a new version is activated, new cases
    are routed by it and name its limit, while earlier records keep theirs."""
    from approvals.models import Decision, RoutingRecord
    from approvals.services import authority_rule_save, matrix_version_activate, matrix_version_draft_create

    owner = ApplicantFactory(username="owner1")
    first = ApprovalsCaseFactory(applicant=owner, product="xinmiaodai", amount="300000.00", term_months=12, grades="AB",
                                 tier="prime", seed=1, stage="submitted")
    assert first.status == "approved" and first.route == "auto"
    decision = Decision.objects.get(application=first)
    assert decision.automatic and decision.matrix_version == 1 and decision.model_version is not None
    assert decision.reason_codes == ["AUTO_APPROVE"]
    assert RoutingRecord.objects.get(application=first).matrix_version == 1

    draft = matrix_version_draft_create(by=org["demo_risk"])
    authority_rule_save(version=draft, by=org["demo_risk"], rule=draft.rules.get(route="auto"), max_amount=Decimal("200000"))
    matrix_version_activate(version=draft, by=org["demo_risk"])

    second = ApprovalsCaseFactory(applicant=owner, product="xinmiaodai", amount="300000.00", term_months=12, grades="AB",
                                  tier="prime", seed=2, stage="submitted")
    assert second.status == "under_review" and second.route == "branch"
    record = RoutingRecord.objects.get(application=second)
    assert record.matrix_version == 2
    above = next(r for r in record.referrals if r["code"] == "AMOUNT_ABOVE_FAST_TRACK")
    assert "200,000.00" in above["message"]
    assert RoutingRecord.objects.get(application=first).matrix_version == 1


def test_fast_track_refers_a_warning_a_related_party_and_a_late_negative_list_hit_with_reasons(products, org):
    from applications.services import negative_list_add
    from approvals.models import ReferralRule, RoutingRecord
    from approvals.services import related_party_add

    owner = ApplicantFactory(username="owner1")
    kw = dict(product="xinmiaodai", amount="300000.00", term_months=12, grades="AB", tier="prime")

    # A warning rule (data, editable in admin) that this firm's data trips.
    ReferralRule.objects.create(code="YOUNG_FIRM", field="years_in_business", operator="lt", threshold=Decimal("50"),
                                message="成立不满50年（测试）", message_en="Younger than 50 years (test)")
    warned = ApprovalsCaseFactory(applicant=owner, seed=3, **kw, stage="submitted")
    assert warned.route == "branch" and warned.status == "under_review"
    assert "WARNING_YOUNG_FIRM" in {r["code"] for r in RoutingRecord.objects.get(application=warned).referrals}
    ReferralRule.objects.filter(code="YOUNG_FIRM").update(is_active=False)

    related = ApprovalsCaseFactory(applicant=owner, seed=4, **kw)
    related_party_add(by=org["demo_risk"], name="员工亲属", relation="staff_relative", uscc=related.enterprise.uscc)
    related = ApprovalsCaseFactory.advance(related, to="submitted")
    record = RoutingRecord.objects.get(application=related)
    assert related.route == "committee" and record.facts["related_party"] is True
    assert "RELATED_PARTY" in {r["code"] for r in record.referrals}

    late = ApprovalsCaseFactory(applicant=owner, seed=5, **kw)
    from casework import lifecycle

    lifecycle.application_submit(application_id=late.pk, user=owner)
    negative_list_add(by=org["demo_risk"], reason="涉嫌骗贷", uscc=late.enterprise.uscc)
    lifecycle.score_and_route(late.pk)
    late.refresh_from_db()
    assert late.route != "auto" and late.status == "under_review"
    hit = next(r for r in RoutingRecord.objects.get(application=late).referrals if r["code"] == "NEGATIVE_LIST_HIT")
    assert "涉嫌骗贷" in hit["message"]


def test_admin_freezes_active_versions_and_activates_drafts_by_an_explicit_action(client, org):
    from approvals.models import AuthorityMatrixVersion
    from approvals.services import matrix_version_draft_create
    from loanservice.models import AuditEvent

    admin = org["demo_admin"]
    client.force_login(admin)
    v1 = AuthorityMatrixVersion.objects.get(number=1)
    page = client.get(f"/admin/approvals/authoritymatrixversion/{v1.pk}/change/")
    assert page.status_code == 200 and b'name="rules-0-max_amount"' not in page.content  # read-only
    draft = matrix_version_draft_create(by=admin)
    page = client.get(f"/admin/approvals/authoritymatrixversion/{draft.pk}/change/")
    assert b'name="rules-0-max_amount"' in page.content
    r = client.post("/admin/approvals/authoritymatrixversion/", {"action": "activate", "_selected_action": [draft.pk]})
    assert r.status_code == 302
    draft.refresh_from_db()
    assert draft.is_active and AuditEvent.objects.filter(action="authority_matrix.activate", actor=admin).exists()


def test_related_party_reasons_read_the_insider_list_and_conflicts_in_one_statement(products, org,
                                                                                     django_assert_num_queries):
    """The insider list (by the firm's USCC or its representative's ID number) and the declared conflicts in one
    statement, parties first then conflicts, each in the order entered; a clean borrower too."""
    from approvals.models import RelatedParty
    from approvals.services import conflict_declare, related_party_add, related_party_reasons

    case = ApprovalsCaseFactory(applicant=ApplicantFactory(username="checks_owner"), seed=6, product="xinmiaodai",
                                amount="300000.00", term_months=12, grades="AB", tier="prime")
    enterprise = case.enterprise
    with django_assert_num_queries(1):
        assert related_party_reasons(enterprise=enterprise) == []

    related_party_add(by=org["demo_risk"], name="本行董事", relation="director", id_number=enterprise.legal_rep_id_number)
    related_party_add(by=org["demo_risk"], name="员工亲属", relation="staff_relative", uscc=enterprise.uscc)
    related_party_add(by=org["demo_risk"], name="别家", relation="staff", uscc="91110000000000000X")  # not this firm
    gone = related_party_add(by=org["demo_risk"], name="已撤销", relation="other", uscc=enterprise.uscc)
    RelatedParty.objects.filter(pk=gone.pk).update(is_active=False)
    conflict_declare(user=org["demo_rm"], enterprise=enterprise, reason="同学")

    with django_assert_num_queries(1):
        reasons = related_party_reasons(enterprise=enterprise)
    assert [r["code"] for r in reasons] == ["RELATED_PARTY", "RELATED_PARTY", "CONFLICT_OF_INTEREST"]
    assert reasons[0]["message"] == f"关联方：本行董事（{RelatedParty(relation='director').get_relation_display()}）"
    assert reasons[0]["message_en"] == "Related party: 本行董事 (director)"
    assert reasons[1]["message_en"] == "Related party: 员工亲属 (staff_relative)"
    assert reasons[2]["message"] == f"{org['demo_rm'].username} 申报了利益冲突：同学"
    # a firm with no legal representative's ID number on file: by its USCC alone
    enterprise.legal_rep_id_number = ""
    assert [r["message_en"] for r in related_party_reasons(enterprise=enterprise)][:1] == ["Related party: 员工亲属 (staff_relative)"]


def test_a_referral_rule_on_a_snapshot_field_reads_the_payload_the_score_was_made_on(products, org):
    """The routing of a new score takes the snapshots' payloads from the score (kept by application_score), a score
    read back from the database reads them: the same warning either way."""
    from approvals.models import ReferralRule, RoutingRecord
    from approvals.services import referral_warnings
    from underwriting.models import Score

    ReferralRule.objects.create(code="BIG_REVENUE", source="tax", field="revenue_12m", operator="gt", threshold=Decimal("0"),
                                message="纳税收入为正（测试）", message_en="Revenue above zero (test)")
    case = ApprovalsCaseFactory(applicant=ApplicantFactory(username="payload_owner"), seed=7, product="xinmiaodai",
                                amount="300000.00", term_months=12, grades="AB", tier="prime", stage="submitted")
    record = RoutingRecord.objects.get(application=case)
    assert case.route != "auto" and "WARNING_BIG_REVENUE" in {r["code"] for r in record.referrals}
    score = Score.objects.get(application=case, is_shadow=False)
    tax = score.snapshots.get(source="tax").payload
    assert referral_warnings(score=score) == [{"code": "WARNING_BIG_REVENUE", "message": "纳税收入为正（测试）",
                                               "message_en": "Revenue above zero (test)", "value": tax["revenue_12m"]}]

    # scored before: application_score returns that score and writes nothing (the cheap check finds it)
    from underwriting.services import application_score

    count = Score.objects.filter(application=case).count()
    again = application_score(application=case)
    assert again.pk == score.pk and again.model.version == score.model.version
    assert Score.objects.filter(application=case).count() == count
