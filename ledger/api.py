"""Ledger API: the trial balance for a date (operations, risk); the core's daily file, uploaded and reconciled."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from loanservice.api import rule_permission
from loanservice.money import money_text
from loanservice.roles import can, permission_check

from .models import CoreFile
from .selectors import trial_balance
from .services import core_file_import


class TrialBalanceQuery(serializers.Serializer):
    on = serializers.DateField(required=False, help_text="默认今天 / today when omitted")


class TrialBalanceView(APIView):
    """试算平衡表: each account's balance at the end of `on`; debits and credits always total the same."""

    permission_classes = [rule_permission("ledger.trial_balance")]

    @extend_schema(
        parameters=[OpenApiParameter("on", str, description="YYYY-MM-DD; today when omitted")],
        responses=inline_serializer("TrialBalance", {
            "on": serializers.DateField(),
            "lines": inline_serializer("TrialBalanceLine", {
                "account": serializers.CharField(), "name": serializers.CharField(),
                "debit": serializers.CharField(), "credit": serializers.CharField()}, many=True),
            "total_debit": serializers.CharField(), "total_credit": serializers.CharField()}))
    def get(self, request):
        query = TrialBalanceQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        report = trial_balance(on=query.validated_data.get("on") or timezone.localdate())
        english = (request.LANGUAGE_CODE or "").startswith("en")
        return Response({
            "on": report.on,
            "lines": [{"account": x.account, "name": (x.name_en if english and x.name_en else x.name),
                       "debit": money_text(x.debit), "credit": money_text(x.credit)} for x in report.lines],
            "total_debit": money_text(report.total_debit), "total_credit": money_text(report.total_credit),
        })


class CoreFileSerializer(serializers.Serializer):
    """A core daily file and its reconciliation against the vouchers of its business date."""

    id = serializers.IntegerField()
    business_date = serializers.DateField()
    source = serializers.CharField()
    name = serializers.CharField()
    lines = serializers.IntegerField(help_text="文件行数 / lines in the file")
    vouchers = serializers.IntegerField(help_text="我方凭证行数 / voucher lines of the date")
    matched = serializers.IntegerField()
    balanced = serializers.BooleanField()
    difference_count = serializers.IntegerField()
    differences = serializers.ListField(child=serializers.DictField(), help_text=(
        "[{kind: missing_in_core|missing_in_ledger|amount|line|duplicate, reference, date, branch, account, debit, "
        "credit, core_debit, core_credit}]"))
    totals = serializers.DictField(help_text="{debit, credit, core_debit, core_credit}")
    created_at = serializers.DateTimeField()


class CoreFileUpload(serializers.Serializer):
    business_date = serializers.DateField(help_text="YYYY-MM-DD: the business date the file is for")
    file = serializers.FileField(help_text="CSV: date,branch,account,debit,credit,voucher_reference (docs/ledger.md)")


def _visible(request):
    qs = CoreFile.objects.all()
    if not can(request.user, "ledger.upload_core_file") or can(request.user, "ledger.trial_balance"):
        return qs
    return qs.filter(uploaded_by=request.user)  # the integration account sees what it uploaded


class CoreFileListView(APIView):
    """对账文件: upload the core's daily file (operations, integration) and list the reconciliations."""

    permission_classes = [rule_permission("ledger.core_files")]  # and, to upload, ledger.upload_core_file

    @extend_schema(responses=CoreFileSerializer(many=True))
    def get(self, request):
        rows = _visible(request).order_by("-id")[:50]
        return Response(CoreFileSerializer(rows, many=True).data)

    @extend_schema(request={"multipart/form-data": CoreFileUpload}, responses={201: CoreFileSerializer})
    def post(self, request):
        permission_check(request.user, "ledger.upload_core_file",
                         message=_("只有运营或系统对接账户可以上传对账文件 / Only operations or the integration account upload "
                                   "the core's daily file."))
        upload = CoreFileUpload(data=request.data)
        upload.is_valid(raise_exception=True)
        handle = upload.validated_data["file"]
        record = core_file_import(content=handle.read(), business_date=upload.validated_data["business_date"],
                                  by=request.user, name=getattr(handle, "name", "") or "")
        return Response(CoreFileSerializer(record).data, status=201)


class CoreFileDetailView(APIView):
    """One core daily file's reconciliation: matched, and each difference."""

    permission_classes = [rule_permission("ledger.core_files")]

    @extend_schema(responses=CoreFileSerializer)
    def get(self, request, pk: int):
        record = get_object_or_404(_visible(request), pk=pk)
        return Response(CoreFileSerializer(record).data)
