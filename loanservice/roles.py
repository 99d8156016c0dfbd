"""Roles are Django groups; these are their names, the predicates built on them, and the one way to ask a rule.

A user's branch and supervisor live on their Profile. The named permissions live in each app's rules.py
(`rules.add_perm("approvals.review", is_approver)`), built on these role predicates and on object predicates of
their own ("is the case's owner", "did not prepare this case"). Every face asks the same registry: pages
through `permission_required`, the API through `loanservice.api.rule_permission`, services through
`permission_check`, templates through `can.<app>.<name>` (`PermissionLookup`), FSM transitions through
their `permission=` (read by `has_transition_perm`).

The registry is asked directly (`can`), not through `user.has_perm`: Django lets an active superuser past
every `has_perm`, and a superuser here holds the admin role, no more.
"""

from __future__ import annotations

import functools

import rules
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404

from .errors import ApplicationError
from .prepared import PreparedRows

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


def _groups_of(pk):
    from django.contrib.auth.models import Group

    return Group.objects.filter(user__id=pk).values_list("name")


# The names of a user's groups (the roles), compiled once per process: every request asks.
_GROUPS = PreparedRows(_groups_of, int)


def _group_names(user) -> list[str]:
    return [name for (name,) in _GROUPS.rows(user.pk)]


def user_roles(user) -> frozenset[str]:
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_loanservice_roles", None)
    if cached is None:
        cached = frozenset(_group_names(user))
        if user.is_superuser:
            cached = cached | {ADMIN}
        user._loanservice_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


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


def role_predicate(*names: str) -> rules.Predicate:
    """The predicate "has any of these roles"."""
    return rules.predicate(lambda user: has_role(user, *names), name=f"has_role({', '.join(names)})")


is_applicant = role_predicate(APPLICANT)
is_rm = role_predicate(RM)
is_branch_approver = role_predicate(BRANCH_APPROVER)
is_head_approver = role_predicate(HEAD_APPROVER)
is_committee = role_predicate(COMMITTEE)
is_approver = role_predicate(*APPROVER_ROLES)
is_operations = role_predicate(OPERATIONS)
is_risk = role_predicate(RISK)
is_admin = role_predicate(ADMIN)
is_integration = role_predicate(INTEGRATION)
is_staff = role_predicate(*STAFF_ROLES)
is_signed_in = rules.is_authenticated


def can(user, perm: str, obj=None) -> bool:
    """Does the named permission let this user do this (to this object)?"""
    return rules.has_perm(perm, user, obj)


def permission_check(user, perm: str, obj=None, *, message: str, errors: dict | None = None) -> None:
    """The services' check: the named permission, or the domain's forbidden error (403 in the API, a
    message on a page) with the caller's words for what was refused."""
    if not can(user, perm, obj):
        raise ApplicationError(message, errors=errors, code="forbidden")


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


class PermissionLookup:
    """The named permissions in a template: `{% if can.approvals.review %}` asks `can(user, "approvals.review")`."""

    def __init__(self, user, app: str = ""):
        self.user, self.app = user, app

    def __getitem__(self, name: str):
        if not self.app:
            return PermissionLookup(self.user, name)
        return can(self.user, f"{self.app}.{name}")


def permission_required(perm: str):
    """A page that needs the named permission; to anyone else signed in it does not exist (404). The name
    is kept on the view (`view.permission`) so a test can hold every page to having one."""

    def decorator(view):
        @login_required
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if not can(request.user, perm):
                raise Http404
            return view(request, *args, **kwargs)

        wrapper.permission = perm
        return wrapper

    return decorator
