"""Reads for approvals: queues per tier, the decision history, plain-language reasons."""

from __future__ import annotations

from django.db.models import QuerySet

from applications.models import LoanApplication
from loanservice import roles

from .models import TIER_ROLE, ApprovalCase, Decision, ReasonCode


def approver_tiers(user) -> list[str]:
    return [tier for tier, role in TIER_ROLE.items() if roles.has_role(user, role)]


def approval_queue(user) -> QuerySet[ApprovalCase]:
    tiers = approver_tiers(user)
    qs = (ApprovalCase.objects.filter(status=ApprovalCase.Status.PENDING, tier__in=tiers)
          .select_related("application__enterprise", "application__product", "application__relationship_manager",
                          "application__branch", "prepared_by")
          .order_by("created_at"))
    if tiers == ["branch"]:
        qs = qs.filter(application__branch_id=roles.user_branch_id(user))
    return qs


def decisions_of(application: LoanApplication) -> QuerySet[Decision]:
    return application.decisions.select_related("approver").order_by("created_at", "id")


def reason_texts(codes: list[str]) -> list[dict]:
    by_code = {rc.code: rc for rc in ReasonCode.objects.filter(code__in=codes)}
    return [{"code": c, "message": by_code[c].text if c in by_code else c,
             "message_en": (by_code[c].text_en or by_code[c].text) if c in by_code else c} for c in codes]
