"""The "show" of a masked ID number or phone: a staff page's small form (htmx swaps the value in) and
`POST /api/v1/personal-data/reveal/`. Both call casework.personal_data.personal_data_reveal (audited)."""

from __future__ import annotations

from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from loanservice.api import client_ip, rule_permission
from loanservice.errors import ApplicationError
from loanservice.masking import mask_value, personal_kind
from loanservice.roles import permission_required
from loanservice.text import in_language

from .personal_data import REVEALABLE, personal_data_reveal

CanAsk = rule_permission("casework.personal_data_reveal")


class RevealIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=sorted(REVEALABLE), help_text="the record: enterprise, guarantor, prospect")
    id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    field = serializers.CharField(max_length=40, help_text="legal_rep_id_number, id_number or contact_phone")
    reason = serializers.CharField(max_length=300, allow_blank=True, help_text="why the full value is needed (audited)")


class RevealView(APIView):
    """`POST /api/v1/personal-data/reveal/` `{kind, id, field, reason}` → `{value}`: the clear value, for the roles of
    settings.PERSONAL_DATA_CLEAR_ROLES (403 for others, 404 for a row the caller cannot see); audited."""

    permission_classes = [CanAsk]

    @extend_schema(request=RevealIn, responses=inline_serializer("RevealOut", {
        "kind": serializers.CharField(), "id": serializers.IntegerField(), "field": serializers.CharField(),
        "value": serializers.CharField()}))
    def post(self, request):
        data = RevealIn(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        value = personal_data_reveal(user=request.user, kind=d["kind"], pk=d["id"], field=d["field"], reason=d["reason"],
                                     ip=client_ip(request))
        return Response({"kind": d["kind"], "id": d["id"], "field": d["field"], "value": value})


@permission_required("casework.personal_data_reveal")
@require_POST
def reveal_fragment(request):
    """`POST /staff/personal-data/reveal/` `kind, id, field, reason` (the page's "show"): the value's fragment."""
    form = RevealIn(data=request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(", ".join(f"{name}: {' '.join(map(str, msgs))}" for name, msgs in form.errors.items()))
    kind, pk, field = form.validated_data["kind"], form.validated_data["id"], form.validated_data["field"]
    ctx = {"kind": kind, "pk": pk, "field": field}
    try:
        value = personal_data_reveal(user=request.user, kind=kind, pk=pk, field=field,
                                     reason=form.validated_data["reason"], ip=client_ip(request))
    except ApplicationError as exc:
        if exc.code == "forbidden":
            return render(request, "staff/_personal_value.html", {**ctx, "masked": in_language(exc.message)}, status=403)
        # no reason given: the masked value and the form again, with the message (htmx swaps only a 2xx answer)
        obj = REVEALABLE[kind].rows(request.user).filter(pk=pk).first()
        return render(request, "staff/_personal_value.html", {
            **ctx, "masked": mask_value(getattr(obj, field, ""), personal_kind(field)), "can_reveal": True,
            "error": in_language(exc.message)})
    return render(request, "staff/_personal_value.html", {**ctx, "value_clear": value or "—"})
