"""Revealing a natural person's ID number or phone to a staff member who may see it (DESIGN.md "Trust rules",
docs/security.md "Personal data"): pages and the API show these values masked to staff; a role named in
settings.PERSONAL_DATA_CLEAR_ROLES asks for one value of one row it can see, giving why, and the reveal is an audit
event (who, which row and field, why). Refusals are audited too. The registry below says which fields of which
records can be revealed and whose rows each user may see (the same object rules as the pages)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from applications.selectors import applications_visible_to, enterprises_visible_to
from loanservice.audit import audit_record
from loanservice.errors import ApplicationError
from loanservice.masking import may_reveal, personal_kind
from marketing.selectors import prospects_visible_to
from underwriting.models import Guarantor


@dataclass(frozen=True)
class Revealable:
    fields: tuple[str, ...]
    rows: Callable[[object], QuerySet]  # the rows this user may see at all


REVEALABLE: dict[str, Revealable] = {
    "enterprise": Revealable(("legal_rep_id_number",), enterprises_visible_to),
    "guarantor": Revealable(("id_number",),
                            lambda user: Guarantor.objects.filter(application__in=applications_visible_to(user))),
    "prospect": Revealable(("contact_phone",), prospects_visible_to),
}

REASON_REQUIRED = _("请说明用途 / Say why you need the full value.")
NOT_ALLOWED = _("您的角色只能查看脱敏信息 / Your role sees this value masked only.")


def personal_data_reveal(*, user, kind: str, pk: int, field: str, reason: str, ip: str | None = None) -> str:
    """The clear value of `field` of row `pk` of `kind`, for a user whose role may see it; audited. 404 for a row the
    user cannot see (or a kind/field that is not revealable), 403 for a role without the right, 400 without a reason."""
    entry = REVEALABLE.get(kind)
    if entry is None or field not in entry.fields:
        raise Http404
    obj = entry.rows(user).filter(pk=pk).first()
    if obj is None:
        raise Http404
    reason = (reason or "").strip()[:300]
    if not may_reveal(user, personal_kind(field)):
        with transaction.atomic():
            audit_record(actor=user, action="personal_data.reveal_refused", obj=obj, reason=reason,
                         data={"field": field}, ip=ip)
        raise ApplicationError(NOT_ALLOWED, errors={"field": [NOT_ALLOWED]}, code="forbidden")
    if not reason:
        raise ApplicationError(REASON_REQUIRED, errors={"reason": [REASON_REQUIRED]})
    with transaction.atomic():
        audit_record(actor=user, action="personal_data.reveal", obj=obj, reason=reason, data={"field": field}, ip=ip)
    return getattr(obj, field) or ""
