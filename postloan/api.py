"""Loan API: the loan with its schedule, repayments (idempotent by reference), early warnings (staff),
renewal (无还本续贷) and the satisfaction survey. The fields of DESIGN.md are a contract: only added to."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from loanservice import roles
from loanservice.api import role_permission

from .models import SEVERITIES, Loan
from .selectors import loans_visible_to, warnings_open
from .services import loan_position, renewal_eligibility, renewal_request, repayment_record, survey_answer

__all__ = ["loans_visible_to", "loan_detail"]


def _m(value) -> str:
    return f"{value:.2f}"


def loan_detail(loan: Loan) -> dict:
    installments = [i for i in loan.installments.all() if not i.superseded]
    position = loan_position(loan, installments=installments)
    nxt = position["next_due"]
    repayments = list(loan.repayments.all())
    return {
        "id": loan.pk, "application": loan.application_id, "status": loan.status, "principal": _m(loan.principal),
        "annual_rate": f"{loan.annual_rate:.4f}", "term_months": loan.term_months, "repayment_method": loan.repayment_method,
        "disbursed_on": loan.disbursed_on, "maturity_date": loan.maturity_date, "outstanding": _m(loan.outstanding_principal),
        "dpd": loan.dpd, "bucket": loan.bucket, "classification": loan.classification,
        "schedule": [{"n": i.n, "due_date": i.due_date, "principal": _m(i.principal), "interest": _m(i.interest),
                      "total": _m(i.total), "paid": _m(i.paid), "penalty_paid": _m(i.paid_penalty),
                      "settled_on": i.settled_on} for i in installments],
        "paid_total": _m(sum((r.amount - r.unapplied for r in repayments), 0)),
        "overdue_amount": _m(position["overdue"]), "penalty_due": _m(position["penalty"]),
        "next_due": ({"n": nxt.n, "due_date": nxt.due_date, "amount": _m(nxt.due_remaining)} if nxt else None),
        "repayments": [{"reference": r.reference, "amount": _m(r.amount), "paid_on": r.paid_on, "penalty": _m(r.penalty_paid),
                        "interest": _m(r.interest_paid), "principal": _m(r.principal_paid + r.prepaid_principal),
                        "fee": _m(r.prepayment_fee), "unapplied": _m(r.unapplied)} for r in repayments],
        "restructured_on": loan.restructured_on,
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
        return Response({"id": repayment.pk, "reference": repayment.reference, "amount": _m(repayment.amount),
                         "allocation": repayment.allocation, "penalty": _m(repayment.penalty_paid),
                         "interest": _m(repayment.interest_paid), "principal": _m(repayment.principal_paid),
                         "prepaid_principal": _m(repayment.prepaid_principal), "prepayment_fee": _m(repayment.prepayment_fee),
                         "unapplied": _m(repayment.unapplied)},
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class WarningSerializer(serializers.Serializer):
    def to_representation(self, w):
        task = getattr(w, "task", None)
        return {
            "id": w.pk, "loan": w.loan_id, "enterprise": {"id": w.loan.enterprise_id, "name": w.loan.enterprise.name},
            "branch": w.branch.code if w.branch else None, "rule": w.rule.code, "name": w.rule.name, "severity": w.severity,
            "status": w.status, "evidence": w.evidence, "detected_on": w.detected_on,
            "task": ({"id": task.pk, "assigned_to": task.assigned_to.username if task.assigned_to else None, "status": task.status,
                      "due_at": task.due_at, "breached": bool(task.breached_at or (task.status == "open" and task.due_at < timezone.now()))}
                     if task else None),
        }


class WarningFilter(serializers.Serializer):
    severity = serializers.ChoiceField(choices=SEVERITIES, required=False, allow_blank=True, default="")
    branch = serializers.CharField(required=False, allow_blank=True, default="", max_length=20, help_text="branch code")


class WarningListView(ListAPIView):
    """Open early warnings the caller may see, worst first; filter by `severity` and `branch` (code)."""

    permission_classes = [role_permission(*roles.STAFF_ROLES)]
    serializer_class = WarningSerializer

    def get_queryset(self):
        filters = WarningFilter(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return warnings_open(self.request.user, **filters.validated_data)

    @extend_schema(parameters=[WarningFilter],
                   responses=inline_serializer("WarningOut", {"id": serializers.IntegerField(), "loan": serializers.IntegerField(),
                                                             "rule": serializers.CharField(), "severity": serializers.CharField()}, many=True))
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RenewalView(APIView):
    """GET: eligibility for 无还本续贷; POST (borrower): create the prefilled renewal application."""

    @extend_schema(responses=inline_serializer("RenewalOut", {"eligible": serializers.BooleanField(), "reasons": serializers.ListField()}))
    def get(self, request, pk):
        loan = get_object_or_404(loans_visible_to(request.user), pk=pk)
        result = renewal_eligibility(loan=loan)
        return Response({**result, "amount": _m(result["amount"])})

    @extend_schema(request=inline_serializer("RenewalIn", {"kind": serializers.ChoiceField(["renewal", "top_up"], required=False),
                                                           "amount": serializers.CharField(required=False)}),
                   responses={201: inline_serializer("RenewalCreated", {"application": serializers.IntegerField()})})
    def post(self, request, pk):
        loan = get_object_or_404(loans_visible_to(request.user), pk=pk)
        offer = renewal_request(loan=loan, by=request.user, kind=request.data.get("kind", "renewal"), amount=request.data.get("amount"))
        return Response({"application": offer.application_id, "kind": offer.kind, "amount": _m(offer.amount)}, status=status.HTTP_201_CREATED)


class SurveySerializer(serializers.Serializer):
    score = serializers.IntegerField(min_value=0, max_value=10)
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class SurveyView(APIView):
    """The borrower answers the waiting satisfaction survey: `{score: 0-10, comment}`."""

    @extend_schema(request=SurveySerializer, responses={201: inline_serializer("SurveyOut", {"id": serializers.IntegerField()})})
    def post(self, request, pk):
        loan = get_object_or_404(loans_visible_to(request.user), pk=pk)
        ser = SurveySerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        survey = survey_answer(loan=loan, by=request.user, **ser.validated_data)
        return Response({"id": survey.pk, "trigger": survey.trigger, "score": survey.score}, status=status.HTTP_201_CREATED)
