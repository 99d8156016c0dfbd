"""Reads for approvals: queues per tier with filters, the review page's facts, plain-language reasons."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db.models import BooleanField, Case, Count, Exists, OuterRef, Q, QuerySet, Subquery, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from applications.models import LoanApplication
from loanservice import roles
from loanservice.errors import ApplicationError
from loanservice.models import SlaClock
from underwriting.selectors import questionnaire_for

from .models import (
    TIER_ROLE,
    ApprovalCase,
    AuthorityMatrixVersion,
    CommitteeResolution,
    ConflictOfInterest,
    CreditCommittee,
    Decision,
    ReasonCode,
    RoutingRecord,
)
from .services import authority_check, committee_tally, may_record_resolution, request_info_permission


def approver_tiers(user) -> list[str]:
    return [tier for tier, role in TIER_ROLE.items() if roles.has_role(user, role)]


def _decimal(value) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


def queue_filters_clean(params) -> dict:
    """The queue's filters from a query string; anything unreadable is ignored, not an error."""
    out = {"tier": params.get("tier") or "", "product": params.get("product") or "", "branch": None,
           "amount_min": _decimal(params.get("amount_min")), "amount_max": _decimal(params.get("amount_max")),
           "overdue": params.get("overdue") in ("1", "on", "true")}
    try:
        out["branch"] = int(params.get("branch")) if params.get("branch") else None
    except (TypeError, ValueError):
        out["branch"] = None
    return out


def committee_quorum() -> int:
    committee = CreditCommittee.objects.filter(is_active=True).order_by("pk").first()
    return committee.quorum if committee else 3


def approval_queue(user, *, tier: str = "", product: str = "", branch: int | None = None, amount_min=None, amount_max=None,
                   overdue: bool = False, now=None) -> QuerySet[ApprovalCase]:
    """Open cases at the tiers this user decides on (their own branch's at the branch tier), oldest first.
    Each row carries: votes cast, whether this user already decided, a declared conflict, an overdue clock."""
    now = now or timezone.now()
    tiers = approver_tiers(user)
    if tier:
        tiers = [t for t in tiers if t == tier]
    clocks = SlaClock.objects.filter(case_id=OuterRef("application_id"), stopped_at__isnull=True)
    # Votes per row as a subquery, not a join with GROUP BY: the queue is read a page at a time, and a GROUP BY
    # over every pending case would be computed in full before the page's LIMIT.
    committee_votes = (Decision.objects.filter(case_id=OuterRef("pk"), tier="committee").order_by()
                       .values("case_id").annotate(n=Count("pk")).values("n"))
    qs = (ApprovalCase.objects.filter(status=ApprovalCase.Status.PENDING, tier__in=tiers)
          .select_related("application__enterprise", "application__product", "application__relationship_manager",
                          "application__branch", "prepared_by")
          .annotate(votes=Coalesce(Subquery(committee_votes), 0),
                    decided_by_me=Exists(Decision.objects.filter(case=OuterRef("pk"), approver_id=user.pk)),
                    conflict=Exists(ConflictOfInterest.objects.filter(user_id=user.pk, is_active=True,
                                                                      enterprise_id=OuterRef("application__enterprise_id"))),
                    overdue=Exists(clocks.filter(Q(breached_at__isnull=False) | Q(due_at__lt=now, paused_at__isnull=True))))
          .annotate(resolution_due=Case(When(Q(tier="committee", votes__gte=committee_quorum()), then=True),
                                        default=False, output_field=BooleanField()))
          # A committee case whose votes are in leads the queue: its resolution is waiting to be recorded.
          .order_by("-resolution_due", "created_at", "id"))
    if "branch" in tiers and roles.user_branch_id(user) is not None:
        qs = qs.filter(~Q(tier="branch") | Q(application__branch_id=roles.user_branch_id(user)))
    if product:
        qs = qs.filter(application__product__code=product)
    if branch:
        qs = qs.filter(application__branch_id=branch)
    if amount_min is not None:
        qs = qs.filter(application__amount__gte=amount_min)
    if amount_max is not None:
        qs = qs.filter(application__amount__lte=amount_max)
    if overdue:
        qs = qs.filter(overdue=True)
    return qs


def decisions_of(application: LoanApplication) -> QuerySet[Decision]:
    return application.decisions.select_related("approver").order_by("created_at", "id")


def routing_of(application: LoanApplication) -> RoutingRecord | None:
    """How the case was last routed: matrix version, the row that matched, referral reasons."""
    return application.routings.select_related("rule").order_by("-created_at", "-id").first()


def review_context(application: LoanApplication, user) -> dict:
    """Everything the review page shows beyond the case summary: the open case and its tier, how it was
    routed and why it was referred, the committee's tally, and whether this user may decide now."""
    case = application.approval_cases.select_related("matrix_version").order_by("-created_at").first()
    ctx: dict = {"approval_case": case, "routing": routing_of(application), "tally": None, "can_decide": False,
                 "cannot_decide_reason": "", "can_request_info": False, "is_chair": False, "resolution": None,
                 "visit_answers": _visit_answers(application),
                 "codes": {kind: list(ReasonCode.objects.filter(kind=kind)) for kind in ("decline", "return", "condition")}}
    ctx["referrals"] = list(ctx["routing"].referrals) if ctx["routing"] else []
    if case is None:
        return ctx
    ctx["resolution"] = CommitteeResolution.objects.filter(case=case).select_related("chair").first()
    if case.tier == "committee":
        ctx["tally"] = committee_tally(case)
        committee = CreditCommittee.objects.filter(is_active=True).order_by("pk").first()
        # "is_chair": may record the resolution by the committee's rule (the chair, the secretary, or members).
        ctx["is_chair"] = bool(committee and may_record_resolution(user, case, committee))
        ctx["resolution_due"] = ctx["tally"]["outcome"] is not None
    if case.status == ApprovalCase.Status.PENDING and application.status == LoanApplication.Status.PENDING_APPROVAL:
        try:
            authority_check(user=user, case=case, application=application)
            ctx["can_decide"] = True
        except ApplicationError as exc:
            ctx["cannot_decide_reason"] = exc.message
        try:
            request_info_permission(application=application, user=user, case=case)
            ctx["can_request_info"] = True
        except ApplicationError:
            pass
    return ctx


def _visit_answers(application: LoanApplication) -> list[dict]:
    """The latest visit's questionnaire answers with their questions, in the questionnaire's order."""

    visit = application.visits.first()
    if visit is None:
        return []
    questions = {q.code: q for q in questionnaire_for(application.product)}
    order = {code: i for i, code in enumerate(questions)}
    rows = [{"code": code, "question": questions[code].tr("question") if code in questions else code, "value": value,
             "number": code in questions and questions[code].qtype == "number"}
            for code, value in visit.answers.items()]
    return sorted(rows, key=lambda r: order.get(r["code"], len(order)))


def matrix_versions() -> QuerySet[AuthorityMatrixVersion]:
    return AuthorityMatrixVersion.objects.annotate(rule_count=Count("rules")).order_by("-number")
