from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from loanservice import roles
from loanservice.api import role_permission

from .models import ReasonCode


class ReasonCodeListView(APIView):
    permission_classes = [role_permission(*roles.STAFF_ROLES)]

    @extend_schema(responses=inline_serializer("ReasonCode", {"code": serializers.CharField(), "kind": serializers.CharField(),
                                                             "text": serializers.CharField()}, many=True))
    def get(self, request):
        return Response([{"code": rc.code, "kind": rc.kind, "text": rc.text, "text_en": rc.text_en}
                         for rc in ReasonCode.objects.order_by("kind", "code")])
