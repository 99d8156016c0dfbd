"""`{% personal_value obj "guarantor" "id_number" %}`: a natural person's ID number or phone as a staff page shows it,
masked, with a "show" form (an audited reveal, casework.personal_data) for the roles that may see it whole."""

from __future__ import annotations

from django import template

from loanservice.masking import mask_value, may_reveal, personal_kind

register = template.Library()


@register.inclusion_tag("staff/_personal_value.html", takes_context=True)
def personal_value(context, obj, kind: str, field: str):
    request = context.get("request")
    user = getattr(request, "user", None)
    rule = personal_kind(field)
    value = getattr(obj, field, "") or ""
    return {"kind": kind, "pk": obj.pk, "field": field, "masked": mask_value(value, rule),
            "can_reveal": bool(value) and user is not None and may_reveal(user, rule)}
