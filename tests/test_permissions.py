"""Permissions in one place: every named permission (each app's rules.py) against every role, the object rules
(four eyes, the case's RM, the branch, the owner), the FSM transition permission, and every page and API
view declaring the permission it needs. The access matrix (test_access_matrix.py) holds the answers of the
routes; this module holds the rules those routes read."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import rules
from django.contrib.auth.models import AnonymousUser, Group
from django.http import Http404, HttpResponse
from django.urls import URLPattern, URLResolver, get_resolver
from django_fsm import has_transition_perm

from loanservice import roles
from loanservice.api import RulePermission, rule_permission
from loanservice.errors import ApplicationError
from tests.approvals_support import fast_passwords, staff_user  # noqa: F401
from tests.factories import ApplicantFactory, FastTrackLoanFactory, PendingApprovalFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

ROLES = ["anon", "applicant", "rm", "branch_approver", "head_approver", "committee", "operations", "risk", "admin", "integration"]
STAFF = ["rm", "branch_approver", "head_approver", "committee", "operations", "risk", "admin"]
APPROVERS = ["branch_approver", "head_approver", "committee"]
SIGNED_IN = [r for r in ROLES if r != "anon"]

# Who holds each permission that depends on the role alone: the specification, written out.
ROLE_TABLE = {
    "loanservice.signed_in": SIGNED_IN,
    "loanservice.staff": STAFF,
    "loanservice.administer": ["admin"],
    "applications.maintain_policy": ["risk"],
    "applications.apply": ["applicant"],
    "applications.reassign_rm": ["rm", "branch_approver", "admin"],
    "applications.download_document": STAFF,
    "applications.review_identity": ["operations"],
    "underwriting.pull_data": ["integration", "risk"],
    "underwriting.case_file": ["rm", *APPROVERS, "risk"],
    "underwriting.due_diligence": ["rm"],
    "underwriting.request_info": ["rm", *APPROVERS],
    "approvals.review": APPROVERS,
    "approvals.resolve": ["committee"],
    "approvals.reason_codes": STAFF,
    "contracts.operate": ["operations"],
    "contracts.sign": ["applicant", "operations"],
    "contracts.sign_as_bank": ["operations"],
    "postloan.loan_page": STAFF,
    "postloan.act_on_loan": ["risk", "rm", "operations"],
    "postloan.downgrade": ["risk"],
    "postloan.request_upgrade": ["risk", "rm"],
    "postloan.request_restructure": ["rm", "risk"],
    "postloan.request_write_off": ["risk"],
    "postloan.record_collateral": ["risk", "rm", "operations"],
    "postloan.decide_request": ["risk", *APPROVERS],
    "postloan.risk_overview": ["risk", "admin"],
    "postloan.warning_board": ["risk", "admin", "head_approver", "branch_approver", "rm"],
    "postloan.view_warnings": STAFF,
    "postloan.follow_up": ["rm", "risk"],
    "postloan.record_repayment": ["operations", "integration"],
    "postloan.import_repayments": ["operations"],
    "postloan.view_business_date": [*STAFF, "integration"],
    "postloan.run_cob": ["operations", "admin"],
    "postloan.view_book": STAFF,
    "postloan.quote": ["applicant", *STAFF],
    "postloan.prepay": ["applicant", "operations"],
    "postloan.accelerate": ["risk", "operations"],
    "postloan.record_recovery": ["risk", "operations"],
    "postloan.request_reversal": ["operations"],
    "postloan.set_auto_debit": ["applicant", "operations"],
    "ledger.trial_balance": ["operations", "risk", "admin"],
    "ledger.core_files": ["operations", "risk", "integration", "admin"],
    "ledger.upload_core_file": ["operations", "integration", "admin"],
    "postloan.finance": ["operations", "risk", "admin"],
    "postloan.reconciliation": ["operations", "risk", "admin"],
    "postloan.asset_quality": ["risk", "admin"],
    "postloan.provisions": ["risk", "admin"],
    "postloan.submit_overlay": ["risk"],
    "postloan.decide_overlay": ["risk", *APPROVERS],
    "analytics.view": ["risk", "admin", *APPROVERS],
    "analytics.summary": STAFF,
    "analytics.all_branches": ["risk", "admin", "head_approver", "committee"],
    "marketing.work": ["rm", "risk", "admin", "branch_approver"],
    "marketing.import_list": ["rm", "risk", "admin"],
    "marketing.derive": ["risk", "admin"],
    "casework.case_page": STAFF,
    "casework.case_action": ["rm", *APPROVERS],
    "casework.what_if": ["risk", "admin"],
    "casework.personal_data_reveal": STAFF,  # may ask; PERSONAL_DATA_CLEAR_ROLES decides (test_personal_data.py)
    "creditlines.view": STAFF,
    "creditlines.draw": ["applicant"],
    "creditlines.manage": ["risk"],
    "creditlines.change": ["risk", "rm"],
    "creditlines.request_change": ["rm"],
    "creditlines.decide_change": ["risk", *APPROVERS],
    "creditlines.review": ["rm", "risk", "admin"],
}
# The permissions about one object, each tested below.
OBJECT_PERMS = {
    "applications.reassign_rm_of", "underwriting.work_on_case", "approvals.decide_case", "approvals.request_info_on_case",
    "contracts.sign_as_customer", "postloan.decide_request_of", "postloan.decide_overlay_of", "postloan.complete_task", "marketing.own_prospect",
    "creditlines.decide_change_of", "postloan.set_auto_debit_of",
}
PROJECT_APPS = ("loanservice", "ledger", "applications", "underwriting", "approvals", "contracts", "postloan", "creditlines",
                "analytics", "marketing", "casework")


@pytest.fixture
def people(org):
    from django.contrib.auth import get_user_model

    integration = get_user_model().objects.create_user(username="perm_integration", password="x")
    integration.groups.add(Group.objects.get_or_create(name=roles.INTEGRATION)[0])
    return {"anon": AnonymousUser(), "applicant": ApplicantFactory(username="perm_owner"), "rm": org["demo_rm"],
            "branch_approver": org["demo_branch_approver"], "head_approver": org["demo_head_approver"],
            "committee": org["demo_committee_1"], "operations": org["demo_ops"], "risk": org["demo_risk"],
            "admin": org["demo_admin"], "integration": integration}


def project_permissions() -> set[str]:
    return {name for name in rules.permissions.permissions if name.split(".")[0] in PROJECT_APPS}


def test_every_named_permission_is_in_the_tables():
    assert project_permissions() == set(ROLE_TABLE) | OBJECT_PERMS


def test_no_named_permission_is_also_a_model_permission():
    """The rules backend answers user.has_perm too, so a name like "postloan.view_loan" would open Django's admin."""
    from django.contrib.auth.models import Permission

    model_perms = {f"{app}.{code}" for app, code in Permission.objects.values_list("content_type__app_label", "codename")}
    assert project_permissions() & model_perms == set()


@pytest.mark.parametrize("perm", sorted(ROLE_TABLE))
def test_each_permission_for_each_role(perm, people):
    held = {role for role, user in people.items() if roles.can(user, perm)}
    assert held == set(ROLE_TABLE[perm])


def test_a_superuser_holds_the_admin_role_and_no_more(people, rf):
    """Django's has_perm lets an active superuser past everything; every adapter asks the rules directly."""
    admin = people["admin"]
    assert admin.is_superuser and admin.has_perm("approvals.review")
    assert not roles.can(admin, "approvals.review")
    request = rf.get("/")
    request.user = admin
    assert not rule_permission("approvals.review")().has_permission(request, None)
    assert rule_permission("analytics.view")().has_permission(request, None)

    page = roles.permission_required("approvals.review")(lambda request: HttpResponse("the queue"))
    with pytest.raises(Http404):
        page(request)
    with pytest.raises(ApplicationError) as refused:
        roles.permission_check(admin, "postloan.downgrade", message="无权 / Not allowed.")
    assert refused.value.code == "forbidden"


# ---------------------------------------------------------------- object rules
def test_only_the_cases_rm_or_an_approver_works_on_the_case(people):
    other_rm = staff_user("perm_rm2", roles.RM, "SH01")
    case = SimpleNamespace(relationship_manager_id=people["rm"].pk)
    assert roles.can(people["rm"], "underwriting.work_on_case", case)
    assert not roles.can(other_rm, "underwriting.work_on_case", case)
    assert all(roles.can(people[a], "underwriting.work_on_case", case) for a in APPROVERS)
    assert not roles.can(people["risk"], "underwriting.work_on_case", case)


def test_the_customers_rm_is_reassigned_by_a_supervisor_the_branch_approver_or_an_admin(people):
    from loanservice.models import Branch

    boss = staff_user("perm_boss", roles.RM, "SH01")
    rm = staff_user("perm_rm3", roles.RM, "SH01", supervisor=boss)
    other_branch_approver = staff_user("perm_bj_approver", roles.BRANCH_APPROVER, "BJ01")
    sh01 = Branch.objects.get(code="SH01")
    enterprise = SimpleNamespace(branch_id=sh01.pk, relationship_manager_id=rm.pk)
    allowed = {name for name, user in {**people, "boss": boss, "rm3": rm, "bj_approver": other_branch_approver}.items()
               if roles.can(user, "applications.reassign_rm_of", enterprise)}
    assert allowed == {"boss", "branch_approver", "admin"}


def test_a_contract_is_signed_as_customer_only_by_its_applicant(people):
    contract = SimpleNamespace(application=SimpleNamespace(applicant_id=people["applicant"].pk))
    assert roles.can(people["applicant"], "contracts.sign_as_customer", contract)
    assert not roles.can(ApplicantFactory(username="perm_other"), "contracts.sign_as_customer", contract)
    assert not roles.can(people["operations"], "contracts.sign_as_customer", contract)


def test_a_warning_task_is_completed_by_its_assignee_or_risk(people):
    task = SimpleNamespace(assigned_to_id=people["rm"].pk)
    assert {r for r, u in people.items() if roles.can(u, "postloan.complete_task", task)} == {"rm", "risk"}


def test_a_loans_auto_debit_is_changed_by_its_borrower_or_operations(people):
    loan = SimpleNamespace(borrower_id=people["applicant"].pk)
    assert {r for r, u in people.items() if roles.can(u, "postloan.set_auto_debit_of", loan)} == {"applicant", "operations"}
    assert not roles.can(ApplicantFactory(username="perm_other_borrower"), "postloan.set_auto_debit_of", loan)


def test_a_credit_line_change_is_decided_by_another_person_and_drawn_by_its_borrower(people):
    request = SimpleNamespace(requested_by_id=people["rm"].pk)
    assert {r for r, u in people.items() if roles.can(u, "creditlines.decide_change_of", request)} == {"risk", *APPROVERS}
    mine = SimpleNamespace(requested_by_id=people["risk"].pk)
    assert not roles.can(people["risk"], "creditlines.decide_change_of", mine)
    line = SimpleNamespace(borrower_id=people["applicant"].pk)
    assert roles.can(people["applicant"], "creditlines.draw", line)
    assert not roles.can(ApplicantFactory(username="perm_stranger"), "creditlines.draw", line)


def test_a_prospect_is_worked_by_its_rm_or_an_admin(people):
    prospect = SimpleNamespace(relationship_manager_id=people["rm"].pk)
    assert {r for r, u in people.items() if roles.can(u, "marketing.own_prospect", prospect)} == {"rm", "admin"}


def test_four_eyes_tier_branch_and_conflict_on_an_approval_case(products, people):
    from approvals.services import conflict_declare

    application = PendingApprovalFactory(applicant__username="perm_case_owner")
    case = application.approval_cases.get()
    assert case.tier == "branch" and application.branch.code == "SH01"
    approver, rm = people["branch_approver"], application.relationship_manager

    assert roles.can(approver, "approvals.decide_case", case)
    assert roles.can(approver, "approvals.request_info_on_case", case)
    # The tier's role, no other approver's.
    assert not roles.can(people["head_approver"], "approvals.decide_case", case)
    assert not roles.can(people["committee"], "approvals.decide_case", case)
    # Four eyes: the case's RM never decides it, even holding the tier's role; asking for information is not deciding.
    rm.groups.add(Group.objects.get(name=roles.BRANCH_APPROVER))
    rm._loanservice_roles = None
    assert roles.can(rm, "approvals.review")
    assert not roles.can(rm, "approvals.decide_case", case)
    assert roles.can(rm, "approvals.request_info_on_case", case)
    # At the branch tier, the branch's own cases only.
    elsewhere = staff_user("perm_bj_approver2", roles.BRANCH_APPROVER, "BJ01")
    assert not roles.can(elsewhere, "approvals.decide_case", case)
    assert not roles.can(elsewhere, "approvals.request_info_on_case", case)
    # A declared conflict of interest bars both.
    conflict_declare(user=approver, enterprise=application.enterprise, reason="亲属")
    assert not roles.can(approver, "approvals.decide_case", case)
    assert not roles.can(approver, "approvals.request_info_on_case", case)


def test_one_decision_each_on_a_committee_case(products, people):
    from approvals.services import committee_configure
    from casework import lifecycle

    committee_configure(by=people["admin"], chair=people["committee"], quorum=3)
    application = PendingApprovalFactory(applicant__username="perm_committee_owner", related_party=True)
    lifecycle.case_decide(application_id=application.pk, user=people["branch_approver"], decision="approve", comment="同意上报贷审会")
    case = application.approval_cases.get()
    assert case.tier == "committee"
    member = people["committee"]
    assert roles.can(member, "approvals.decide_case", case)
    lifecycle.case_decide(application_id=application.pk, user=member, decision="approve", comment="同意")
    assert not roles.can(member, "approvals.decide_case", case)
    assert roles.can(staff_user("perm_committee_2", roles.COMMITTEE, "HO"), "approvals.decide_case", case)


# ---------------------------------------------------------------- the FSM transition permission
def test_post_loan_approval_transitions_carry_four_eyes(products, people):
    from postloan.models import ApprovalRequest
    from postloan.services import approval_request_decide, restructure_request

    loan = FastTrackLoanFactory(owner=ApplicantFactory(username="perm_borrower"), seed=73)
    request = restructure_request(loan=loan, kind="extension", reason="经营周转", by=people["risk"], extra_months=3)
    requester, other = people["risk"], people["branch_approver"]

    assert roles.can(requester, "postloan.decide_request")
    assert not has_transition_perm(request.approve, requester)
    assert not has_transition_perm(request.reject, requester)
    assert has_transition_perm(request.reject, other)
    assert not has_transition_perm(request.reject, people["rm"])  # no decider's role
    with pytest.raises(ApplicationError) as refused:
        approval_request_decide(request=request, approve=False, by=requester)
    assert refused.value.code == "forbidden"

    decided = approval_request_decide(request=request, approve=False, by=other, comment="不同意")
    assert decided.status == ApprovalRequest.Status.REJECTED
    assert not has_transition_perm(decided.approve, other)  # the state now says no


@pytest.mark.parametrize("label", ["postloan.ApprovalRequest", "postloan.ProvisionOverlay", "creditlines.LineChangeRequest"])
def test_every_four_eyes_request_carries_the_shared_transitions_and_guard(people, label):
    """The kernel's FourEyesRequest: each concrete request's approve/reject carry its own decide permission (a
    decider's role, never the requester), move only from pending, and stamp the decision time."""
    from django.apps import apps

    from loanservice.four_eyes import FourEyesRequest

    model = apps.get_model(label)
    assert issubclass(model, FourEyesRequest) and model.decide_permission.endswith("_of")
    requester, other = people["risk"], people["branch_approver"]
    request = model(requested_by=requester, status="pending")  # transitions touch only the object in memory
    assert not has_transition_perm(request.approve, requester)
    assert not has_transition_perm(request.reject, requester)
    assert not has_transition_perm(request.approve, people["rm"])  # no decider's role
    assert has_transition_perm(request.approve, other) and has_transition_perm(request.reject, other)
    request.reject()
    assert request.status == "rejected" and request.decided_at is not None
    assert not has_transition_perm(request.approve, other)  # the state now says no
    assert {t.name for t in model(status="pending").get_available_status_transitions()} >= {"approve", "reject"}


# ---------------------------------------------------------------- every route declares its permission
# Open to everyone, deliberately: the landing and product pages, pre-qualification, help, sign-in and sign-up.
PUBLIC_ROUTES = {"home", "product_list", "product_detail", "prequalify", "help", "login", "logout", "register", "set_language",
                 "schema", "api-docs", "api:register", "api:token", "api:products", "api:prequalify", "api:help",
                 "api:authorisation-text"}


def _routes(resolver=None, namespace=""):
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.app_name == "admin":
                continue  # Django's admin checks is_staff and the model permissions itself
            yield from _routes(pattern, pattern.namespace or namespace)
        elif isinstance(pattern, URLPattern):
            yield namespace, pattern


def test_every_page_and_api_view_declares_a_registered_permission():
    undeclared = []
    for namespace, pattern in _routes():
        view = pattern.callback
        name = f"{namespace}:{pattern.name}" if namespace else pattern.name
        cls = getattr(view, "cls", None)
        if name in PUBLIC_ROUTES:
            continue
        if cls is not None:
            perms = [p.perm for p in cls.permission_classes if isinstance(p, type) and issubclass(p, RulePermission)]
        else:
            perms = [view.permission] if getattr(view, "permission", None) else []
        if not perms or not all(rules.perm_exists(p) for p in perms):
            undeclared.append(name)
    assert undeclared == []



def test_every_permission_a_template_asks_for_exists():
    """`{% if can.app.name %}` of an unknown name is silently false: the link would vanish for everyone."""
    import re
    from pathlib import Path

    from django.conf import settings

    asked = {f"{app}.{name}" for path in Path(settings.BASE_DIR).glob("**/templates/**/*.html") if ".venv" not in path.parts
             for app, name in re.findall(r"\bcan\.(\w+)\.(\w+)", path.read_text(encoding="utf-8"))}
    assert "approvals.review" in asked
    assert {perm for perm in asked if not rules.perm_exists(perm)} == set()
