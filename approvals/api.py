from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from loanservice.api import rule_permission

from .models import ReasonCode


class ReasonCodeListView(APIView):
    permission_classes = [rule_permission("approvals.reason_codes")]

    @extend_schema(responses=inline_serializer("ReasonCode", {"code": serializers.CharField(), "kind": serializers.CharField(),
                                                             "text": serializers.CharField()}, many=True))
    def get(self, request):
        return Response([{"code": rc.code, "kind": rc.kind, "text": rc.text, "text_en": rc.text_en}
                         for rc in ReasonCode.objects.order_by("kind", "code")])
