"""Roles are Django groups; these are their names and the predicates built on them.

A user's branch and supervisor live on their Profile. Object rules per stage live in each
app's rules.py and build on these predicates.
"""

from __future__ import annotations

import functools

import rules
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404

APPLICANT = "applicant"
RM = "relationship_manager"
BRANCH_APPROVER = "branch_approver"
HEAD_APPROVER = "head_office_approver"
COMMITTEE = "credit_committee"
OPERATIONS = "operations"
RISK = "risk"
ADMIN = "admin"
INTEGRATION = "integration"

STAFF_ROLES = (RM, BRANCH_APPROVER, HEAD_APPROVER, COMMITTEE, OPERATIONS, RISK, ADMIN)
ALL_ROLES = (APPLICANT, *STAFF_ROLES, INTEGRATION)
APPROVER_ROLES = (BRANCH_APPROVER, HEAD_APPROVER, COMMITTEE)

ROLE_LABELS = {
    APPLICANT: "企业客户 / SME owner",
    RM: "客户经理 / Relationship manager",
    BRANCH_APPROVER: "分行审批人 / Branch approver",
    HEAD_APPROVER: "总行审批人 / Head office approver",
    COMMITTEE: "贷审会委员 / Credit committee member",
    OPERATIONS: "运营 / Operations",
    RISK: "风险管理 / Risk officer",
    ADMIN: "系统管理员 / Administrator",
    INTEGRATION: "系统对接 / Integration",
}


def user_roles(user) -> frozenset[str]:
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_loanservice_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached = cached | {ADMIN}
        user._loanservice_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def is_staff_member(user) -> bool:
    return has_role(user, *STAFF_ROLES)


def user_branch_id(user) -> int | None:
    profile = getattr(user, "profile", None)
    return profile.branch_id if profile else None


BANK_WIDE = frozenset({HEAD_APPROVER, COMMITTEE, RISK, ADMIN, OPERATIONS})
BRANCH_SCOPED = frozenset({RM, BRANCH_APPROVER})


def scope_to(qs, user, *, owner: str, bank_wide: frozenset[str] = BANK_WIDE, branch_exclude: dict | None = None):
    """The object rule of cases, customers and loans, in one place: the bank-wide roles see every row; an RM
    or a branch approver the rows of their branch and the customers they manage (less `branch_exclude`, e.g.
    drafts); anyone else only the rows whose `owner` field is them; nobody anonymous sees anything. The rows
    need `branch` and `relationship_manager` fields."""
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    role_set = user_roles(user)
    if role_set & bank_wide:
        return qs
    if role_set & BRANCH_SCOPED:
        qs = qs.filter(Q(branch_id=user_branch_id(user)) | Q(relationship_manager=user))
        return qs.exclude(**branch_exclude) if branch_exclude else qs
    return qs.filter(**{owner: user})


@rules.predicate
def is_applicant(user):
    return has_role(user, APPLICANT)


@rules.predicate
def is_rm(user):
    return has_role(user, RM)


@rules.predicate
def is_approver(user):
    return has_role(user, *APPROVER_ROLES)


@rules.predicate
def is_operations(user):
    return has_role(user, OPERATIONS)


@rules.predicate
def is_risk(user):
    return has_role(user, RISK)


@rules.predicate
def is_admin(user):
    return has_role(user, ADMIN)


@rules.predicate
def is_integration(user):
    return has_role(user, INTEGRATION)


@rules.predicate
def is_staff(user):
    return is_staff_member(user)


def home_url_name(user) -> str:
    """The page a user lands on after login."""
    roles = user_roles(user)
    if ADMIN in roles and len(roles) == 1:
        return "admin:index"
    for role, name in (
        (RM, "staff:rm_queue"),
        (BRANCH_APPROVER, "staff:approver_queue"),
        (HEAD_APPROVER, "staff:approver_queue"),
        (COMMITTEE, "staff:approver_queue"),
        (OPERATIONS, "staff:ops_queue"),
        (RISK, "staff:risk_home"),
    ):
        if role in roles:
            return name
    return "portal:home"


def role_required(*names):
    """A page only these roles may open; to anyone else signed in it does not exist (404)."""

    def decorator(view):
        @login_required
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if not has_role(request.user, *names):
                raise Http404
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
