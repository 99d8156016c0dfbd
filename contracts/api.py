"""Contract API: the contract, its PDF (audited download) and verification."""

from __future__ import annotations

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from applications.selectors import applications_visible_to
from loanservice.api import client_ip
from loanservice.audit import audit_record

from .models import Contract
from .services import contract_verify


def visible_contract(request, pk) -> Contract:
    return get_object_or_404(Contract.objects.filter(application__in=applications_visible_to(request.user)), pk=pk)


class ContractDetailView(APIView):
    @extend_schema(responses=inline_serializer("ContractOut", {"id": serializers.IntegerField(), "number": serializers.CharField(),
                                                              "status": serializers.CharField(), "sha256": serializers.CharField(),
                                                              "terms": serializers.DictField(), "signatures": serializers.ListField()}))
    def get(self, request, pk):
        c = visible_contract(request, pk)
        return Response({
            "id": c.pk, "number": c.number, "version": c.version, "status": c.status, "application": c.application_id,
            "sha256": c.sha256, "signed_sha256": c.signed_sha256 or None, "terms": c.terms, "created_at": c.created_at,
            "signatures": [{"party": s.party, "signer": s.signer_label, "signed_at": s.signed_at, "document_sha256": s.document_sha256}
                           for s in c.signatures.all()],
        })


class ContractPdfView(APIView):
    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    def get(self, request, pk):
        c = visible_contract(request, pk)
        signed = bool(c.signed_pdf) and request.query_params.get("original") != "1"
        field = c.signed_pdf if signed else c.pdf
        audit_record(actor=request.user, action="contract.download", obj=c, ip=client_ip(request), data={"signed": signed})
        return FileResponse(field.open("rb"), content_type="application/pdf", as_attachment=False,
                            filename=f"{c.number}{'-signed' if signed else ''}.pdf")


class ContractVerifyView(APIView):
    @extend_schema(request=None, responses=inline_serializer("VerifyOut", {"ok": serializers.BooleanField(), "message": serializers.CharField()}))
    def post(self, request, pk):
        return Response(contract_verify(visible_contract(request, pk)))
