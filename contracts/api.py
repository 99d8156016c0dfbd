"""Contract API: the contract, its PDF and schedule (audited downloads), verification, corrections, and
the check-off of conditions precedent. Signing and disbursement are in casework.case_api (they move
the case through the conductor)."""

from __future__ import annotations

from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from applications.selectors import applications_visible_to
from loanservice import roles
from loanservice.api import client_ip, rule_permission
from loanservice.drf import ObjectJSONParser
from loanservice.errors import ApplicationError, Conflict
from loanservice.masking import mask_personal

from . import services
from .models import Contract, DisbursementOrder

IsOperations = rule_permission("contracts.operate")
SignedIn = rule_permission("loanservice.signed_in")
MAX_VERIFY_UPLOAD = 20 * 1024 * 1024


def visible_contract(request, pk) -> Contract:
    return get_object_or_404(Contract.objects.filter(application__in=applications_visible_to(request.user))
                             .select_related("application"), pk=pk)


def contract_data(c: Contract, *, staff: bool) -> dict:
    data = {
        "id": c.pk, "number": c.number, "kind": c.kind, "title": c.title, "version": c.version, "status": c.status,
        "customer_party": c.customer_party, "application": c.application_id, "sha256": c.sha256,
        "signed_sha256": c.signed_sha256 or None, "borrower_signed_sha256": c.borrower_signed_sha256 or None,
        "created_at": c.created_at,
        # staff read the parties' ID numbers masked (docs/security.md "Personal data"); the PDF keeps them whole
        "terms": mask_personal(c.terms) if staff else c.terms,
        "supersedes": c.supersedes_id, "voided_at": c.voided_at, "void_reason": c.void_reason or None,
        "signatures": [{"party": s.party, "party_name": s.party_name, "signer": s.signer_label, "signed_at": s.signed_at,
                        "document_sha256": s.document_sha256, "result_sha256": s.result_sha256 or None,
                        "verified_by": s.verification_method or None, "verification": s.verification_id,
                        "certificate": s.certificate.serial if s.certificate_id else None,
                        **({"ip": s.ip, "user_agent": s.user_agent} if staff else {})}
                       for s in c.signatures.all()],
    }
    order = DisbursementOrder.objects.filter(application_id=c.application_id, kind="loan").first() if c.kind == "loan" else None
    if order is not None:
        data["disbursement"] = {"status": order.status, "amount": f"{order.amount:.2f}", "account": order.account,
                                "released_at": order.released_at,
                                "conditions": [{k: cond.get(k) for k in ("code", "text", "met", "evidence", "by", "at")}
                                               for cond in order.conditions]}
    return data


class ContractDetailView(APIView):
    permission_classes = [SignedIn]

    @extend_schema(responses=inline_serializer("ContractOut", {
        "id": serializers.IntegerField(), "number": serializers.CharField(), "kind": serializers.CharField(),
        "status": serializers.CharField(), "sha256": serializers.CharField(), "terms": serializers.DictField(),
        "signatures": serializers.ListField(child=serializers.DictField())}))
    def get(self, request, pk):
        return Response(contract_data(visible_contract(request, pk), staff=roles.can(request.user, "loanservice.staff")))


class PdfQuery(serializers.Serializer):
    original = serializers.BooleanField(required=False, default=False,
                                        help_text="the PDF as issued (whose SHA-256 is `sha256`), not the sealed one")


class ContractPdfView(APIView):
    """The sealed PDF when there is one, else the one the enterprise signed (``?original=1``: the PDF as issued,
    whose SHA-256 is ``sha256``)."""

    permission_classes = [SignedIn]

    @extend_schema(parameters=[PdfQuery], responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    def get(self, request, pk):
        c = visible_contract(request, pk)
        query = PdfQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        field = services.contract_latest_file(c, original=query.validated_data["original"])
        signed = field.name != c.pdf.name
        services.contract_download_record(contract=c, by=request.user, what="signed_pdf" if signed else "pdf",
                                          ip=client_ip(request))
        return FileResponse(field.open("rb"), content_type="application/pdf", as_attachment=False,
                            filename=f"{c.number}{'-signed' if signed else ''}.pdf")


class ContractScheduleView(APIView):
    """The repayment schedule annex as CSV (UTF-8 with BOM)."""

    permission_classes = [SignedIn]

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, pk):
        c = visible_contract(request, pk)
        if not c.terms.get("schedule"):
            raise ApplicationError("该合同没有还款计划 / This contract has no schedule.", errors={"schedule": []})
        services.contract_download_record(contract=c, by=request.user, what="schedule", ip=client_ip(request))
        response = HttpResponse(services.schedule_csv(c), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{c.number}-schedule.csv"'
        return response


class ContractVerifyView(APIView):
    """Re-check the stored files, or a copy sent as multipart ``file``, against the recorded hashes and seal."""

    permission_classes = [SignedIn]
    parser_classes = [ObjectJSONParser, FormParser, MultiPartParser]

    @extend_schema(request={"multipart/form-data": inline_serializer("VerifyIn", {"file": serializers.FileField(required=False)})},
                   responses=inline_serializer("VerifyOut", {"ok": serializers.BooleanField(), "altered": serializers.BooleanField(),
                                                             "message": serializers.CharField(),
                                                             "message_en": serializers.CharField()}))
    def post(self, request, pk):
        c = visible_contract(request, pk)
        upload = request.FILES.get("file")
        if upload is not None and upload.size > MAX_VERIFY_UPLOAD:
            raise ApplicationError("文件过大 / The file is too large.", errors={"file": ["≤ 20 MB"]})
        return Response(services.contract_verify(contract=c, by=request.user, ip=client_ip(request),
                                                 upload=upload.read() if upload is not None else None))


class CorrectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)
    guarantor = inline_serializer("CorrectionGuarantorIn", {"name": serializers.CharField(required=False, max_length=100),
                                                  "id_number": serializers.CharField(required=False, max_length=18)},
                                  required=False)
    collateral = inline_serializer("CorrectionCollateralIn", {"description": serializers.CharField(required=False, max_length=500),
                                                    "value": serializers.CharField(required=False, max_length=20)},
                                   required=False)
    account = inline_serializer("CorrectionAccountIn", {"number": serializers.CharField(required=False, max_length=30),
                                              "name": serializers.CharField(required=False, max_length=200)}, required=False)


class ContractCorrectView(APIView):
    """Operations issue a corrected version; the contract is voided (201 with the new version)."""

    permission_classes = [IsOperations]

    @extend_schema(request=CorrectSerializer, responses={201: inline_serializer("CorrectOut", {
        "id": serializers.IntegerField(), "number": serializers.CharField(), "version": serializers.IntegerField(),
        "voided": serializers.IntegerField()})})
    def post(self, request, pk):
        c = visible_contract(request, pk)
        ser = CorrectSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        new = services.contract_correct(contract=c, by=request.user, reason=data.pop("reason"), changes=data,
                                        ip=client_ip(request))
        return Response({"id": new.pk, "number": new.number, "version": new.version, "voided": c.pk,
                         "sha256": new.sha256}, status=status.HTTP_201_CREATED)


class ConditionCheckOffView(APIView):
    """Operations confirm a condition precedent of the case's disbursement order, with the evidence."""

    permission_classes = [IsOperations]

    @extend_schema(request=inline_serializer("ConditionCheckOffIn", {"code": serializers.CharField(), "evidence": serializers.CharField()}),
                   responses=inline_serializer("ConditionsOut", {"conditions": serializers.ListField(child=serializers.DictField())}))
    def post(self, request, pk):
        c = visible_contract(request, pk)
        order = DisbursementOrder.objects.filter(application_id=c.application_id, kind="loan").first()
        if order is None:
            raise Conflict("尚无放款指令（合同未签署完成）/ No disbursement order yet (contracts not fully signed).",
                           state=c.application.status)
        order = services.condition_check_off(order=order, code=str(request.data.get("code", "")), by=request.user,
                                             evidence=str(request.data.get("evidence", "")), ip=client_ip(request))
        return Response({"conditions": order.conditions})
