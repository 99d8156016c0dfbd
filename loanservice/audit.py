"""Writing to the append-only audit trail. Every service that changes state calls audit_record."""

from __future__ import annotations

from typing import Any

from django.db import models

from .models import AuditEvent


def _actor_label(actor) -> str:
    if actor is None:
        return "system"
    return actor.get_username()


def audit_record(
    *,
    actor,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: Any = "",
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
    data: dict | None = None,
    ip: str | None = None,
) -> AuditEvent:
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=_actor_label(actor),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        from_state=from_state or "",
        to_state=to_state or "",
        reason=reason or "",
        data=data or {},
        ip=ip,
    )


def audit_record_many(events: list[dict]) -> list[AuditEvent]:
    """Several events in one INSERT (e.g. the seven data pulls of a submission); each dict takes the keyword
    arguments of audit_record."""
    rows = []
    for e in events:
        obj = e.get("obj")
        actor = e.get("actor")
        rows.append(AuditEvent(
            actor=actor if getattr(actor, "pk", None) else None, actor_label=_actor_label(actor), action=e["action"],
            object_type=e.get("object_type") or (obj._meta.label_lower if obj is not None else ""),
            object_id=str(e.get("object_id") or (obj.pk if obj is not None else "")),
            from_state=e.get("from_state") or "", to_state=e.get("to_state") or "", reason=e.get("reason") or "",
            data=e.get("data") or {}, ip=e.get("ip")))
    return AuditEvent.objects.bulk_create(rows)


def audit_trail(obj: models.Model):
    return AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk)).select_related(
        "actor"
    )
