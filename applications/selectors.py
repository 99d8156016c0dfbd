"""Reads for intake: checklists, visible applications, the negative list."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Q, QuerySet
from django.utils import timezone

from loanservice import roles

from .models import DocumentRequirement, Enterprise, LoanApplication, LoanProduct, NegativeListEntry


def applicable_checklist(product: LoanProduct, *, amount: Decimal | None = None, legal_form: str | None = None) -> list[DocumentRequirement]:
    """Exactly the checklist the application will ask for (conditions on amount and legal form applied)."""
    items = []
    for req in product.checklist.all():
        if req.min_amount is not None and amount is not None and amount < req.min_amount:
            continue
        if req.legal_forms and legal_form and legal_form not in req.legal_forms:
            continue
        items.append(req)
    return items


def manual_negative_hits(*, uscc: str, id_number: str) -> list[str]:
    today = timezone.localdate()
    entries = NegativeListEntry.objects.filter(Q(uscc=uscc) | Q(id_number=id_number, id_number__gt="")).filter(
        Q(expires_on__isnull=True) | Q(expires_on__gte=today)
    )
    return [e.reason for e in entries]


def products_published() -> QuerySet[LoanProduct]:
    return LoanProduct.objects.filter(is_active=True).prefetch_related("checklist", "criteria")


def applications_visible_to(user) -> QuerySet[LoanApplication]:
    """The object rule for cases: an applicant sees its own; staff see their branch (head office roles,
    risk and admin see all)."""
    qs = LoanApplication.objects.select_related("enterprise", "product", "relationship_manager", "branch")
    if not user.is_authenticated:
        return qs.none()
    role_set = roles.user_roles(user)
    if role_set & {roles.HEAD_APPROVER, roles.COMMITTEE, roles.RISK, roles.ADMIN, roles.OPERATIONS}:
        return qs
    if role_set & {roles.RM, roles.BRANCH_APPROVER}:
        branch_id = roles.user_branch_id(user)
        return qs.filter(Q(branch_id=branch_id) | Q(relationship_manager=user)).exclude(status="draft")
    return qs.filter(applicant=user)


def enterprises_visible_to(user) -> QuerySet[Enterprise]:
    qs = Enterprise.objects.all()
    role_set = roles.user_roles(user)
    if role_set & {roles.HEAD_APPROVER, roles.COMMITTEE, roles.RISK, roles.ADMIN, roles.OPERATIONS, roles.INTEGRATION}:
        return qs
    if role_set & {roles.RM, roles.BRANCH_APPROVER}:
        return qs.filter(Q(branch_id=roles.user_branch_id(user)) | Q(relationship_manager=user))
    return qs.filter(owner=user)
