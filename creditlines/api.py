"""Credit-line API (DESIGN.md: the /credit-lines/ rows): the line, drawdowns (Idempotency-Key), freeze / unfreeze /
adjust (risk at once; an RM's request waits for a second person), the decision on such a request, the receipt PDF."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from loanservice.api import rule_permission
from loanservice.money import money_text

from .models import CreditLine, Drawdown, LineChangeRequest
from .receipt import receipt_pdf
from .selectors import line_detail, lines_visible_to
from .serializers import (
    DrawdownSerializer,
    LineAdjustSerializer,
    LineChangeDecideSerializer,
    LineReasonSerializer,
)
from .services import change_request_decide, drawdown_create, line_change

LineOut = inline_serializer("CreditLineOut", {
    "id": serializers.IntegerField(), "limit": serializers.CharField(), "available": serializers.CharField(),
    "used": serializers.CharField(), "valid_from": serializers.DateField(), "valid_until": serializers.DateField(),
    "status": serializers.CharField(), "business_date": serializers.DateField(),
    "drawdowns": serializers.ListField(child=serializers.IntegerField())})
DrawdownOut = inline_serializer("DrawdownOut", {
    "id": serializers.IntegerField(), "loan": serializers.IntegerField(), "amount": serializers.CharField(),
    "term_months": serializers.IntegerField(), "repayment_method": serializers.CharField(),
    "receipt_number": serializers.CharField(), "entrusted": serializers.BooleanField(), "available": serializers.CharField()})
ChangeOut = inline_serializer("CreditLineChangeOut", {
    "line": serializers.DictField(), "request": serializers.DictField(allow_null=True)})


def _visible(request, pk) -> CreditLine:
    return get_object_or_404(lines_visible_to(request.user).select_related("product", "enterprise"), pk=pk)


def drawdown_out(drawdown: Drawdown) -> dict:
    line = drawdown.line
    return {"id": drawdown.pk, "line": line.pk, "loan": drawdown.loan_id, "amount": money_text(drawdown.amount),
            "term_months": drawdown.term_months, "repayment_method": drawdown.repayment_method,
            "receipt_number": drawdown.receipt_number, "entrusted": drawdown.entrusted,
            "payee": {"name": drawdown.payee_name, "account": drawdown.payee_account} if drawdown.entrusted else None,
            "disbursed_on": drawdown.loan.disbursed_on, "maturity_date": drawdown.loan.maturity_date}


class CreditLineDetailView(APIView):
    permission_classes = [rule_permission("loanservice.signed_in")]

    @extend_schema(responses=LineOut)
    def get(self, request, pk):
        return Response(line_detail(_visible(request, pk)))


class DrawdownView(APIView):
    """Draw on the line: funded at once, exactly once per Idempotency-Key (the same key and body: the same result)."""

    permission_classes = [rule_permission("creditlines.draw")]

    @extend_schema(request=DrawdownSerializer, parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=True)],
                   responses={201: DrawdownOut})
    def post(self, request, pk):
        line = _visible(request, pk)
        ser = DrawdownSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        drawdown, _created = drawdown_create(line_id=line.pk, user=request.user,
                                             idempotency_key=(request.headers.get("Idempotency-Key") or "")[:200],
                                             **ser.to_service())
        return Response(drawdown_out(drawdown), status=status.HTTP_201_CREATED)


def _change_response(line: CreditLine, change: LineChangeRequest | None) -> Response:
    line.refresh_from_db()
    body = {"line": line_detail(line), "request": None if change is None else {
        "id": change.pk, "kind": change.kind, "status": change.status,
        "limit": money_text(change.limit) if change.limit is not None else None}}
    return Response(body, status=status.HTTP_202_ACCEPTED if change is not None else status.HTTP_200_OK)


class _ChangeView(APIView):
    permission_classes = [rule_permission("creditlines.change")]
    kind = ""
    serializer = LineReasonSerializer

    def post(self, request, pk):
        line = _visible(request, pk)
        ser = self.serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        line, change = line_change(line=line, kind=self.kind, by=request.user, **ser.validated_data)
        return _change_response(line, change)


class FreezeView(_ChangeView):
    """Risk freezes at once (200); an RM's request waits for a second person (202 with the request)."""

    kind = LineChangeRequest.Kind.FREEZE

    @extend_schema(request=LineReasonSerializer, responses={200: ChangeOut, 202: ChangeOut})
    def post(self, request, pk):
        return super().post(request, pk)


class UnfreezeView(_ChangeView):
    kind = LineChangeRequest.Kind.UNFREEZE

    @extend_schema(request=LineReasonSerializer, responses={200: ChangeOut, 202: ChangeOut})
    def post(self, request, pk):
        return super().post(request, pk)


class AdjustView(_ChangeView):
    """Lower the limit (an increase is a new application)."""

    kind = LineChangeRequest.Kind.ADJUST
    serializer = LineAdjustSerializer

    @extend_schema(request=LineAdjustSerializer, responses={200: ChangeOut, 202: ChangeOut})
    def post(self, request, pk):
        return super().post(request, pk)


class ChangeDecideView(APIView):
    """Approve or reject an RM's request (risk or an approver, never the requester)."""

    permission_classes = [rule_permission("creditlines.decide_change")]
    approve = True

    @extend_schema(request=LineChangeDecideSerializer, responses={200: ChangeOut})
    def post(self, request, pk):
        change = get_object_or_404(LineChangeRequest.objects.filter(line__in=lines_visible_to(request.user)), pk=pk)
        ser = LineChangeDecideSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        change = change_request_decide(request=change, approve=self.approve, by=request.user,
                                       comment=ser.validated_data.get("comment", ""))
        line = CreditLine.objects.get(pk=change.line_id)
        return Response({"line": line_detail(line), "request": {"id": change.pk, "kind": change.kind, "status": change.status}})


class ChangeRejectView(ChangeDecideView):
    approve = False

    @extend_schema(request=LineChangeDecideSerializer, responses={200: ChangeOut})
    def post(self, request, pk):
        return super().post(request, pk)


class DrawdownReceiptView(APIView):
    """The drawdown's receipt (借据), a PDF: the borrower's own, staff per the visibility rule."""

    permission_classes = [rule_permission("loanservice.signed_in")]

    @extend_schema(responses={(200, "application/pdf"): bytes})
    def get(self, request, pk):
        drawdown = get_object_or_404(Drawdown.objects.filter(line__in=lines_visible_to(request.user))
                                     .select_related("line__enterprise", "line__contract", "loan"), pk=pk)
        response = HttpResponse(receipt_pdf(drawdown), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{drawdown.receipt_number}.pdf"'
        return response

