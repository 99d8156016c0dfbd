"""Loan API: the loan with its schedule, and repayments (idempotent by reference)."""

from __future__ import annotations

from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from loanservice import roles
from loanservice.api import role_permission

from .models import Loan
from .services import repayment_record


def loans_visible_to(user):
    qs = Loan.objects.all()
    role_set = roles.user_roles(user)
    if role_set & {roles.HEAD_APPROVER, roles.COMMITTEE, roles.RISK, roles.ADMIN, roles.OPERATIONS, roles.INTEGRATION}:
        return qs
    if role_set & {roles.RM, roles.BRANCH_APPROVER}:
        return qs.filter(Q(branch_id=roles.user_branch_id(user)) | Q(relationship_manager=user))
    return qs.filter(borrower=user)


def loan_detail(loan: Loan) -> dict:
    installments = list(loan.installments.all())
    return {
        "id": loan.pk, "application": loan.application_id, "status": loan.status, "principal": f"{loan.principal:.2f}",
        "annual_rate": f"{loan.annual_rate:.4f}", "term_months": loan.term_months, "repayment_method": loan.repayment_method,
        "disbursed_on": loan.disbursed_on, "maturity_date": loan.maturity_date, "outstanding": f"{loan.outstanding_principal:.2f}",
        "dpd": loan.dpd, "bucket": loan.bucket, "classification": loan.classification,
        "schedule": [{"n": i.n, "due_date": i.due_date, "principal": f"{i.principal:.2f}", "interest": f"{i.interest:.2f}",
                      "total": f"{i.total:.2f}", "paid": f"{i.paid:.2f}"} for i in installments],
        "repayments": [{"reference": r.reference, "amount": f"{r.amount:.2f}", "paid_on": r.paid_on} for r in loan.repayments.all()],
    }


class LoanDetailView(APIView):
    @extend_schema(responses=inline_serializer("LoanOut", {"id": serializers.IntegerField(), "status": serializers.CharField(),
                                                          "principal": serializers.CharField(), "schedule": serializers.ListField()}))
    def get(self, request, pk):
        return Response(loan_detail(get_object_or_404(loans_visible_to(request.user), pk=pk)))


class RepaymentSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=16, decimal_places=2)
    paid_on = serializers.DateField()
    reference = serializers.CharField(max_length=80)


class RepaymentView(APIView):
    permission_classes = [role_permission(roles.OPERATIONS, roles.INTEGRATION)]

    @extend_schema(request=RepaymentSerializer, responses={201: inline_serializer("RepaymentOut", {"id": serializers.IntegerField(), "allocation": serializers.DictField()})})
    def post(self, request, pk):
        loan = get_object_or_404(Loan, pk=pk)
        ser = RepaymentSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        repayment, created = repayment_record(loan=loan, by=request.user, **ser.validated_data)
        return Response({"id": repayment.pk, "reference": repayment.reference, "amount": f"{repayment.amount:.2f}",
                         "allocation": repayment.allocation, "unapplied": f"{repayment.unapplied:.2f}"},
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
