"""Reads for marketing: the RM's prospect queue (by expected value) and the conversion prospect → application → loan."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Exists, Max, OuterRef, Q
from django.utils import timezone

from applications.models import LoanApplication
from loanservice import roles
from postloan.models import Loan

from .models import LIST_KINDS, Prospect
from .services import CLOSED_STATUSES


def _applied():
    # An application by the same enterprise (USCC) started after the prospect was listed.
    return Exists(LoanApplication.objects.filter(enterprise__uscc=OuterRef("uscc"), created_at__gte=OuterRef("created_at")))


def _disbursed():
    return Exists(Loan.objects.filter(enterprise__uscc=OuterRef("uscc"), application__created_at__gte=OuterRef("created_at")))


def prospects_visible_to(user):
    qs = Prospect.objects.all()
    role_set = roles.user_roles(user)
    if role_set & {roles.RISK, roles.ADMIN}:
        return qs
    if roles.BRANCH_APPROVER in role_set:
        return qs.filter(Q(branch_id=roles.user_branch_id(user)) | Q(relationship_manager=user))
    return qs.filter(relationship_manager=user)


def prospect_queue(user, *, status: str = "", include_closed: bool = False, rm_id: int | None = None):
    """The prospects an RM works, highest expected value first; with their conversion and last contact. 1 query."""
    qs = prospects_visible_to(user)
    if rm_id:
        qs = qs.filter(relationship_manager_id=rm_id)
    if status:
        qs = qs.filter(status=status)
    elif not include_closed:
        qs = qs.exclude(status__in=CLOSED_STATUSES)
    return (qs.select_related("relationship_manager", "product", "branch")
            .annotate(applied=_applied(), disbursed=_disbursed(), last_contact=Max("contacts__at"), contact_count=Count("contacts"))
            .order_by("-expected_value", "id"))


def conversion_summary(*, product: str = "", branch: str = "", date_from: dt.date | None = None,
                       date_to: dt.date | None = None) -> dict:
    """Prospects listed in the period by source: contacted, invited, applied, disbursed. 1 query."""
    qs = Prospect.objects.all()
    if date_from:
        qs = qs.filter(created_at__gte=timezone.make_aware(dt.datetime.combine(date_from, dt.time.min)))
    if date_to:
        qs = qs.filter(created_at__lt=timezone.make_aware(dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min)))
    if product:
        qs = qs.filter(product__code=product)
    if branch:
        qs = qs.filter(branch__code=branch)
    rows = (qs.annotate(applied=_applied(), disbursed=_disbursed()).values("source_kind")
            .annotate(prospects=Count("id"), contacted=Count("id", filter=~Q(status=Prospect.Status.NEW) & ~Q(status=Prospect.Status.DISQUALIFIED)),
                      prequalified=Count("id", filter=Q(prequalified=True)), invited=Count("id", filter=Q(invited_at__isnull=False)),
                      applied_n=Count("id", filter=Q(applied=True)), disbursed_n=Count("id", filter=Q(disbursed=True)))
            .order_by("source_kind"))
    labels = dict(LIST_KINDS)
    out = []
    for r in rows:
        out.append({"source": str(labels.get(r["source_kind"], r["source_kind"])), "kind": r["source_kind"], "prospects": r["prospects"],
                    "prequalified": r["prequalified"], "contacted": r["contacted"], "invited": r["invited"],
                    "applied": r["applied_n"], "disbursed": r["disbursed_n"],
                    "conversion": round(r["disbursed_n"] / r["prospects"], 4) if r["prospects"] else None})
    totals = {k: sum(r[k] for r in out) for k in ("prospects", "prequalified", "contacted", "invited", "applied", "disbursed")}
    return {"by_source": out, "total": totals}
