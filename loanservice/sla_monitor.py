"""The SLA watch: a breach notifies the owner, escalates to the supervisor, and is recorded.

Run by Celery beat (`sla-check`, every few minutes) and by `python manage.py sla_check` for the embedded
default. Each clock is handled once, under a row lock, so two overlapping runs never notify twice.
"""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from . import roles
from .audit import audit_record
from .models import Profile, SlaClock
from .notifications import notify

log = logging.getLogger(__name__)
User = get_user_model()

# A stage without a named owner belongs to a pool: who works it, and whether only the case's branch.
STAGE_POOL = {
    "due_diligence": (roles.RM, True),
    "branch_approval": (roles.BRANCH_APPROVER, True),
    "head_office_approval": (roles.HEAD_APPROVER, False),
    "committee_approval": (roles.COMMITTEE, False),
    "contracting": (roles.OPERATIONS, True),
    "disbursement": (roles.OPERATIONS, True),
}


def sla_clock_owners(clock: SlaClock) -> list:
    """The clock's owner, or the pool that works its stage (the branch's people for branch stages)."""
    if clock.owner_id:
        return [clock.owner]
    role, by_branch = STAGE_POOL.get(clock.stage, (None, False))
    if role is None:
        return []
    qs = User.objects.filter(is_active=True, groups__name=role)
    if by_branch and clock.branch_id:
        qs = qs.filter(profile__branch_id=clock.branch_id)
    return list(qs.distinct().order_by("pk"))


def sla_escalation_targets(owners: list) -> list:
    """The owners' supervisors (Profile.supervisor), each once, never an owner escalating to themselves."""
    owner_ids = {u.pk for u in owners}
    supervisor_ids = (Profile.objects.filter(user_id__in=owner_ids, supervisor__isnull=False)
                      .exclude(supervisor_id__in=owner_ids).values_list("supervisor_id", flat=True).distinct())
    return list(User.objects.filter(pk__in=list(supervisor_ids), is_active=True).order_by("pk"))


def sla_breaches_process(*, now=None) -> dict:
    """Record every clock past its due time (not paused, not stopped), notify its owners and escalate."""
    now = now or timezone.now()
    found = 0
    ids = list(SlaClock.objects.filter(stopped_at__isnull=True, breached_at__isnull=True, paused_at__isnull=True,
                                       due_at__lt=now).values_list("pk", flat=True))
    for pk in ids:
        with transaction.atomic():
            clock = SlaClock.objects.select_for_update(of=("self",)).select_related("owner").get(pk=pk)
            if clock.breached_at or clock.stopped_at or clock.paused_at:
                continue
            owners = sla_clock_owners(clock)
            supervisors = sla_escalation_targets(owners)
            clock.breached_at = now
            clock.escalated_to = supervisors[0] if supervisors else None
            clock.save(update_fields=["breached_at", "escalated_to"])
            stage = clock.get_stage_display()
            url = (reverse("staff:review", args=[clock.case_id]) if clock.stage.endswith("_approval")
                   else reverse("staff:case", args=[clock.case_id]))
            zh, en = f"案件 #{clock.case_id} {stage} 已超时", f"Case #{clock.case_id} breached its SLA ({clock.stage})"
            for owner in owners:
                notify(user=owner, kind="sla_breach", title=f"{zh} / {en}", url=url)
            for supervisor in supervisors:  # each half marked, as a page shows only the reader's half
                notify(user=supervisor, kind="sla_escalation", title=f"[升级] {zh} / [Escalated] {en}", url=url)
            audit_record(actor=None, action="sla.breach", obj=clock, to_state="breached",
                         data={"case": clock.case_id, "stage": clock.stage, "due_at": clock.due_at.isoformat(),
                               "owners": [u.pk for u in owners], "escalated_to": [u.pk for u in supervisors]})
            if not supervisors:
                log.warning("SLA breach on case %s (%s): no supervisor to escalate to", clock.case_id, clock.stage)
            found += 1
    return {"breached": found}
