"""Data push API: integrations and risk send a snapshot in the source's normalised schema."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from applications.models import Enterprise
from loanservice import roles
from loanservice.api import client_ip, role_permission

from .services import snapshot_push


class SnapshotPushView(APIView):
    permission_classes = [role_permission(roles.INTEGRATION, roles.RISK)]

    @extend_schema(request=inline_serializer("SnapshotIn", {"as_of": serializers.DateField(), "payload": serializers.DictField()}),
                   responses={201: inline_serializer("SnapshotOut", {"id": serializers.IntegerField(), "source": serializers.CharField(),
                                                                     "as_of": serializers.DateField(), "payload": serializers.DictField()})})
    def put(self, request, pk, source):
        enterprise = get_object_or_404(Enterprise, pk=pk)
        snap = snapshot_push(enterprise=enterprise, source=source, as_of=request.data.get("as_of"),
                             payload=request.data.get("payload"), by=request.user, ip=client_ip(request))
        return Response({"id": snap.pk, "source": snap.source, "as_of": snap.as_of, "payload": snap.payload},
                        status=status.HTTP_201_CREATED)
