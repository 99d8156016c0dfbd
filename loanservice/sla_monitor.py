"""The SLA watch: a breach notifies the owner, escalates to the supervisor, and is recorded."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .audit import audit_record
from .models import SlaClock
from .notifications import notify


def sla_breaches_process(*, now=None) -> dict:
    now = now or timezone.now()
    found = 0
    ids = list(SlaClock.objects.filter(stopped_at__isnull=True, breached_at__isnull=True, paused_at__isnull=True,
                                       due_at__lt=now).values_list("pk", flat=True))
    for pk in ids:
        with transaction.atomic():
            clock = SlaClock.objects.select_for_update().select_related("owner__profile__supervisor").get(pk=pk)
            if clock.breached_at or clock.stopped_at:
                continue
            clock.breached_at = now
            supervisor = getattr(getattr(clock.owner, "profile", None), "supervisor", None)
            clock.escalated_to = supervisor
            clock.save(update_fields=["breached_at", "escalated_to"])
            title = f"案件 #{clock.case_id} {clock.get_stage_display()} 已超时 / Case #{clock.case_id} breached its SLA"
            notify(user=clock.owner, kind="sla_breach", title=title, url=f"/staff/cases/{clock.case_id}/")
            notify(user=supervisor, kind="sla_escalation", title=title, url=f"/staff/cases/{clock.case_id}/")
            audit_record(actor=None, action="sla.breach", obj=clock,
                         data={"case": clock.case_id, "stage": clock.stage, "escalated_to": getattr(supervisor, "pk", None)})
            found += 1
    return {"breached": found}
