"""Ledger API: the trial balance for a date (operations, risk)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from loanservice.api import rule_permission
from loanservice.money import money_text

from .selectors import trial_balance


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
