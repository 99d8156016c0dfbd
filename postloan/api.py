"""Loan API: the loan with its schedule, repayments (idempotent by reference), early warnings (staff),
renewal (无还本续贷) and the satisfaction survey. The fields of DESIGN.md are a contract: only added to."""

from __future__ import annotations

from decimal import Decimal

from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from loanservice import roles
from loanservice.api import rule_permission
from loanservice.business_date import business_date
from loanservice.errors import ApplicationError
from loanservice.money import money_text
from loanservice.sla import business_calendar

from .cob import cob_last, cob_progress, cob_start
from .models import FIVE_CATEGORIES, SEVERITIES, ApprovalRequest, CobRun, Loan
from .quotes import payoff_quote, prepayment_quote
from .reports import asset_quality
from .selectors import due_date_provisional, loan_transactions, loans_visible_to, warnings_open
from .serializers import (
    AutoDebitSerializer,
    ExtensionSerializer,
    PayoffQuoteQuery,
    PrepaymentQuoteSerializer,
    PrepaymentSerializer,
    ReasonSerializer,
    RecoverySerializer,
    RenewalSerializer,
    RepaymentSerializer,
)
from .services import (
    accelerate_request,
    approval_request_decide,
    loan_auto_debit_set,
    loan_position,
    prepayment_make,
    recovery_record,
    renewal_eligibility,
    renewal_request,
    repayment_record,
    restructure_request,
    reversal_request,
    survey_answer,
)

__all__ = ["loans_visible_to", "loan_detail"]


def loan_detail(loan: Loan) -> dict:
    installments = [i for i in loan.installments.all() if not i.superseded]
    position = loan_position(loan, installments=installments)
    cal = business_calendar()
    nxt = position["next_due"]
    repayments = list(loan.repayments.all())
    return {
        "id": loan.pk, "application": loan.application_id, "status": loan.status, "principal": money_text(loan.principal),
        "annual_rate": f"{loan.annual_rate:.4f}", "term_months": loan.term_months, "repayment_method": loan.repayment_method,
        "disbursed_on": loan.disbursed_on, "maturity_date": loan.maturity_date, "outstanding": money_text(loan.outstanding_principal),
        "dpd": loan.dpd, "bucket": loan.bucket, "classification": loan.classification,
        "schedule": [{"n": i.n, "due_date": i.due_date, "principal": money_text(i.principal), "interest": money_text(i.interest),
                      "total": money_text(i.total), "paid": money_text(i.paid), "penalty_paid": money_text(i.paid_penalty),
                      "settled_on": i.settled_on, "provisional": due_date_provisional(i, cal)} for i in installments],
        "paid_total": money_text(sum((r.amount - r.unapplied for r in repayments), 0)),
        "overdue_amount": money_text(position["overdue"]), "penalty_due": money_text(position["penalty"]),
        "next_due": ({"n": nxt.n, "due_date": nxt.due_date, "amount": money_text(nxt.due_remaining)} if nxt else None),
        "repayments": [{"reference": r.reference, "amount": money_text(r.amount), "paid_on": r.paid_on, "penalty": money_text(r.penalty_paid),
                        "interest": money_text(r.interest_paid), "principal": money_text(r.principal_paid + r.prepaid_principal),
                        "fee": money_text(r.prepayment_fee), "unapplied": money_text(r.unapplied), "channel": r.channel}
                       for r in repayments],
        "restructured_on": loan.restructured_on, "auto_debit": loan.auto_debit,
        # The rate basis (DESIGN.md "Rates"): annual_rate = lpr_rate + spread_bp / 10000; floating rates reprice.
        "lpr_tenor": loan.lpr_tenor or None, "lpr_rate": None if loan.lpr_rate is None else f"{loan.lpr_rate:.4f}",
        "lpr_date": loan.lpr_date, "spread_bp": None if loan.spread_bp is None else f"{loan.spread_bp:.2f}",
        "rate_type": loan.rate_type, "repricing_months": loan.repricing_months, "next_repricing_on": loan.next_repricing_on,
        "rate_history": [{"effective_on": c.effective_on, "old_rate": f"{c.old_rate:.4f}", "new_rate": f"{c.new_rate:.4f}",
                          "lpr_rate": f"{c.lpr_rate:.4f}", "lpr_date": c.lpr_date, "spread_bp": f"{c.spread_bp:.2f}"}
                         for c in loan.rate_changes.all()],
    }


class LoanDetailView(APIView):
    permission_classes = [rule_permission("loanservice.signed_in")]

    @extend_schema(responses=inline_serializer("LoanOut", {"id": serializers.IntegerField(), "status": serializers.CharField(),
                                                          "principal": serializers.CharField(), "schedule": serializers.ListField()}))
    def get(self, request, pk):
        return Response(loan_detail(get_object_or_404(loans_visible_to(request.user), pk=pk)))


class RepaymentView(APIView):
    permission_classes = [rule_permission("postloan.record_repayment")]

    @extend_schema(request=RepaymentSerializer, responses={201: inline_serializer("RepaymentOut", {"id": serializers.IntegerField(), "allocation": serializers.DictField()})})
    def post(self, request, pk):
        loan = get_object_or_404(Loan, pk=pk)
        ser = RepaymentSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        repayment, created = repayment_record(loan=loan, by=request.user, **ser.validated_data)
        return Response({"id": repayment.pk, "reference": repayment.reference, "amount": money_text(repayment.amount),
                         "allocation": repayment.allocation, "penalty": money_text(repayment.penalty_paid),
                         "interest": money_text(repayment.interest_paid), "principal": money_text(repayment.principal_paid),
                         "prepaid_principal": money_text(repayment.prepaid_principal), "prepayment_fee": money_text(repayment.prepayment_fee),
                         "unapplied": money_text(repayment.unapplied)},
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class LoanTransactionsView(APIView):
    """The loan's book: staff see every type with the journal lines; the borrower sees the money that moved
    (disbursement, repayment, fee, reversal) without the lines."""

    permission_classes = [rule_permission("loanservice.signed_in")]

    @extend_schema(responses=inline_serializer("LoanTransaction", {
        "id": serializers.IntegerField(), "type": serializers.CharField(), "date": serializers.DateField(),
        "amount": serializers.CharField(), "reversed": serializers.BooleanField(), "parts": serializers.DictField(),
        "channel": serializers.CharField(help_text="repayment: api, import, manual or auto_debit (自动扣款); else empty"),
        "entries": serializers.ListField(required=False)}, many=True))
    def get(self, request, pk):
        loan = get_object_or_404(loans_visible_to(request.user), pk=pk)
        return Response(loan_transactions(loan, with_entries=roles.can(request.user, "postloan.view_book")))


class BusinessDateView(APIView):
    """The bank's business date and the last close of business."""

    permission_classes = [rule_permission("postloan.view_business_date")]

    @extend_schema(responses=inline_serializer("BusinessDate", {"business_date": serializers.DateField(),
                                                                "last_cob": serializers.DictField(allow_null=True)}))
    def get(self, request):
        last = cob_last()
        progress = cob_progress(last) if last else None
        return Response({"business_date": business_date(), "last_cob": (
            {"id": last.pk, "date": last.until, "status": last.status, "loans": last.total, "done": progress["done"],
             "seconds": progress["seconds"]} if last else None)})


class CobStartSerializer(serializers.Serializer):
    until = serializers.DateField(help_text="close every calendar day from the business date through this date")


class CobView(APIView):
    """Start close of business (日终) through `until`: 202 with the run's id; its progress at /cob/{id}/."""

    permission_classes = [rule_permission("postloan.run_cob")]

    @extend_schema(request=CobStartSerializer, responses={202: inline_serializer("CobStarted", {"id": serializers.IntegerField(),
                                                                                           "status": serializers.CharField()})})
    def post(self, request):
        ser = CobStartSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        run = cob_start(until=ser.validated_data["until"], by=request.user)
        return Response({"id": run.pk, "status": run.status}, status=status.HTTP_202_ACCEPTED)


class CobDetailView(APIView):
    permission_classes = [rule_permission("postloan.view_business_date")]

    @extend_schema(responses=inline_serializer("CobProgress", {"id": serializers.IntegerField(), "status": serializers.CharField(),
                                                               "done": serializers.IntegerField(), "total": serializers.IntegerField()}))
    def get(self, request, pk):
        return Response(cob_progress(get_object_or_404(CobRun, pk=pk)))


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

    permission_classes = [rule_permission("postloan.view_warnings")]
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

    permission_classes = [rule_permission("loanservice.signed_in")]

    @extend_schema(responses=inline_serializer("RenewalOut", {"eligible": serializers.BooleanField(), "reasons": serializers.ListField()}))
    def get(self, request, pk):
        loan = get_object_or_404(loans_visible_to(request.user), pk=pk)
        result = renewal_eligibility(loan=loan)
        return Response({**result, "amount": money_text(result["amount"])})

    @extend_schema(request=RenewalSerializer,
                   responses={201: inline_serializer("RenewalCreated", {"application": serializers.IntegerField()})})
    def post(self, request, pk):
        loan = get_object_or_404(loans_visible_to(request.user), pk=pk)
        ser = RenewalSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        offer = renewal_request(loan=loan, by=request.user, **ser.validated_data)
        return Response({"application": offer.application_id, "kind": offer.kind, "amount": money_text(offer.amount)}, status=status.HTTP_201_CREATED)


class SurveySerializer(serializers.Serializer):
    score = serializers.IntegerField(min_value=0, max_value=10)
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class SurveyView(APIView):
    """The borrower answers the waiting satisfaction survey: `{score: 0-10, comment}`."""

    permission_classes = [rule_permission("loanservice.signed_in")]

    @extend_schema(request=SurveySerializer, responses={201: inline_serializer("SurveyOut", {"id": serializers.IntegerField()})})
    def post(self, request, pk):
        loan = get_object_or_404(loans_visible_to(request.user), pk=pk)
        ser = SurveySerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        survey = survey_answer(loan=loan, by=request.user, **ser.validated_data)
        return Response({"id": survey.pk, "trigger": survey.trigger, "score": survey.score}, status=status.HTTP_201_CREATED)


# ---------------------------------------------------------------- servicing to the contract: quotes and prepayments
def money_out():
    return serializers.CharField(help_text="money, two decimals")


def quote_lines():
    return inline_serializer("QuoteLine", {"n": serializers.IntegerField(), "due_date": serializers.DateField(),
                                           "principal": money_out(), "interest": money_out(), "total": money_out()}, many=True)


def _money(figures: dict) -> dict:
    return {k: money_text(v) if isinstance(v, Decimal) else v for k, v in figures.items()}


def quote_out(figures: dict) -> dict:
    out = _money(figures)
    if "schedule" in figures:
        out["schedule"] = [_money(line) for line in figures["schedule"]]
    return out


class PayoffQuoteView(APIView):
    """提前结清试算: what paying the loan off on `on` costs — every amount due by then (`overdue`), the principal not yet
    due, interest to the day (actual / 360), penalty and compound interest, and only the fee the contract names."""

    permission_classes = [rule_permission("postloan.quote")]

    @extend_schema(parameters=[PayoffQuoteQuery], responses=inline_serializer("PayoffQuote", {
        "on": serializers.DateField(), "overdue": money_out(), "principal": money_out(), "interest": money_out(),
        "penalty": money_out(), "compound": money_out(), "fee": money_out(), "total": money_out(),
        "allowed": serializers.BooleanField()}))
    def get(self, request, pk):
        loan = get_object_or_404(loans_visible_to(request.user), pk=pk)
        query = PayoffQuoteQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(quote_out(payoff_quote(loan=loan, on=query.validated_data.get("on"))))


class PrepaymentQuoteView(APIView):
    """提前还款试算: prepaying `amount` of principal on `on` (the business date or later): what is due now and the
    schedule as it would become (the contract's repayment day, holiday rule and maturity kept)."""

    permission_classes = [rule_permission("postloan.quote")]

    @extend_schema(request=PrepaymentQuoteSerializer, responses=inline_serializer("PrepaymentQuote", {
        "on": serializers.DateField(), "mode": serializers.CharField(), "principal": money_out(), "interest": money_out(),
        "fee": money_out(), "arrears": money_out(), "due_now": money_out(), "payoff": serializers.BooleanField(),
        "schedule": quote_lines()}))
    def post(self, request, pk):
        loan = get_object_or_404(loans_visible_to(request.user), pk=pk)
        ser = PrepaymentQuoteSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        return Response(quote_out(prepayment_quote(loan=loan, **ser.validated_data)))


class PrepaymentView(APIView):
    """提前还款 on the business date (the borrower of the loan, operations), exactly once per `Idempotency-Key`: 201
    the first time, 200 with the same prepayment for the same key, 409 for the same key with another body."""

    permission_classes = [rule_permission("postloan.prepay")]

    @extend_schema(request=PrepaymentSerializer,
                   parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=True)],
                   responses={201: inline_serializer("PrepaymentOut", {
                       "id": serializers.IntegerField(), "amount": money_out(), "principal": money_out(), "interest": money_out(),
                       "fee": money_out(), "mode": serializers.CharField(), "loan_status": serializers.CharField()})})
    def post(self, request, pk):
        loan = get_object_or_404(loans_visible_to(request.user), pk=pk)
        key = (request.headers.get("Idempotency-Key") or "").strip()
        if not key or len(key) > 72:
            raise ApplicationError(_("缺少 Idempotency-Key 请求头 / The Idempotency-Key header is required."),
                                   errors={"Idempotency-Key": [_("必填，最长72字符 / Required, at most 72 characters.")]})
        ser = PrepaymentSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        repayment, created = prepayment_make(loan=loan, key=key, by=request.user, **ser.validated_data)
        repayment.loan.refresh_from_db(fields=["status"])
        return Response({"id": repayment.pk, "amount": money_text(repayment.amount),
                         "principal": money_text(repayment.principal_paid + repayment.prepaid_principal),
                         "prepaid_principal": money_text(repayment.prepaid_principal),
                         "interest": money_text(repayment.interest_paid), "penalty": money_text(repayment.penalty_paid),
                         "compound": money_text(repayment.compound_paid), "fee": money_text(repayment.prepayment_fee),
                         "mode": repayment.allocation.get("mode", ""), "loan_status": repayment.loan.status},
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class AutoDebitView(APIView):
    """自动扣款授权 `{enabled, reason?}`: the borrower of the loan revokes (false) or grants again (true) the contract's
    auto-debit; operations too. 200 `{id, auto_debit, changed}`; close of business skips a revoked loan. Another
    borrower's loan is 404; a closed loan 409."""

    permission_classes = [rule_permission("postloan.set_auto_debit")]

    @extend_schema(request=AutoDebitSerializer, responses=inline_serializer("AutoDebitOut", {
        "id": serializers.IntegerField(), "auto_debit": serializers.BooleanField(), "changed": serializers.BooleanField()}))
    def post(self, request, pk):
        loan = get_object_or_404(loans_visible_to(request.user), pk=pk)
        ser = AutoDebitSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        loan, changed = loan_auto_debit_set(loan=loan, by=request.user, **ser.validated_data)
        return Response({"id": loan.pk, "auto_debit": loan.auto_debit, "changed": changed})


class AccelerateView(APIView):
    """宣布提前到期 `{reason}` (risk, operations): 201 `{id, status: pending}` when the policy asks for a second person's
    approval (decided like every post-loan request), else 201 `{id: null, status: applied, accelerated_on, due}`."""

    permission_classes = [rule_permission("postloan.accelerate")]

    @extend_schema(request=ReasonSerializer, responses={201: inline_serializer("AccelerateOut", {
        "id": serializers.IntegerField(allow_null=True), "status": serializers.CharField(),
        "accelerated_on": serializers.DateField(required=False), "due": money_out()})})
    def post(self, request, pk):
        loan = get_object_or_404(loans_visible_to(request.user), pk=pk)
        ser = ReasonSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        pending, result = accelerate_request(loan=loan, by=request.user, **ser.validated_data)
        body = {"id": pending.pk, "status": pending.status} if pending else {"id": None, "status": "applied", **result}
        return Response(body, status=status.HTTP_201_CREATED)


class RecoveryView(APIView):
    """核销后收回 `{amount, paid_on, reference}` (risk, operations) on a written-off loan; idempotent by reference."""

    permission_classes = [rule_permission("postloan.record_recovery")]

    @extend_schema(request=RecoverySerializer, responses={201: inline_serializer("RecoveryOut", {
        "id": serializers.IntegerField(), "amount": money_out(), "paid_on": serializers.DateField(),
        "reference": serializers.CharField(), "recovered_total": money_out()})})
    def post(self, request, pk):
        loan = get_object_or_404(loans_visible_to(request.user), pk=pk)
        ser = RecoverySerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        recovery, created = recovery_record(loan=loan, by=request.user, **ser.validated_data)
        loan.refresh_from_db(fields=["recovered_amount"])
        return Response({"id": recovery.pk, "amount": money_text(recovery.amount), "paid_on": recovery.paid_on,
                         "reference": recovery.reference, "recovered_total": money_text(loan.recovered_amount)},
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class RepaymentReverseView(APIView):
    """冲正 a repayment `{reason}` (operations): 201 `{id, status: pending}`; another person approves it at
    `/api/v1/reversals/{id}/approve/`."""

    permission_classes = [rule_permission("postloan.request_reversal")]

    @extend_schema(request=ReasonSerializer, responses={201: inline_serializer("ReversalRequested", {
        "id": serializers.IntegerField(), "status": serializers.CharField()})})
    def post(self, request, pk, rid):
        loan = get_object_or_404(loans_visible_to(request.user), pk=pk)
        repayment = get_object_or_404(loan.repayments.all(), pk=rid)
        ser = ReasonSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        pending = reversal_request(loan=loan, repayment=repayment, by=request.user, **ser.validated_data)
        return Response({"id": pending.pk, "status": pending.status, "repayment": repayment.pk},
                        status=status.HTTP_201_CREATED)


class ReversalApproveView(APIView):
    """Four eyes: someone other than the requester (risk or an approver) approves the reversal, which applies it: the
    opposite entries, the loan replayed without the repayment, the differences posted on the business date."""

    permission_classes = [rule_permission("postloan.decide_request")]

    @extend_schema(request=None, responses=inline_serializer("ReversalApproved", {
        "id": serializers.IntegerField(), "status": serializers.CharField(), "result": serializers.DictField()}))
    def post(self, request, pk):
        pending = get_object_or_404(ApprovalRequest.objects.filter(kind=ApprovalRequest.Kind.REVERSAL,
                                                                   loan__in=loans_visible_to(request.user)), pk=pk)
        decided = approval_request_decide(request=pending, approve=True, by=request.user)
        return Response({"id": decided.pk, "status": decided.status, "result": decided.result})


class ExtensionView(APIView):
    """展期 `{extra_months, reason, guarantor_consents: [{guarantor, consented_on, document}]}` (RM, risk): within
    贷款通则's limits (short-term: the original term; medium-term: half of it; long-term: three years; in all, as often
    as the policy allows), each guarantor's written consent recorded. 201 `{id, status: pending}`; another person
    approves it at `/api/v1/extensions/{id}/approve/`."""

    permission_classes = [rule_permission("postloan.request_restructure")]

    @extend_schema(request=ExtensionSerializer, responses={201: inline_serializer("ExtensionRequested", {
        "id": serializers.IntegerField(), "status": serializers.CharField(), "params": serializers.DictField()})})
    def post(self, request, pk):
        loan = get_object_or_404(loans_visible_to(request.user), pk=pk)
        ser = ExtensionSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        consents = [{**c, "consented_on": c["consented_on"].isoformat()} for c in data["guarantor_consents"]]
        pending = restructure_request(loan=loan, kind=ApprovalRequest.Kind.EXTENSION, reason=data["reason"], by=request.user,
                                      extra_months=data["extra_months"], guarantor_consents=consents)
        return Response({"id": pending.pk, "status": pending.status, "params": pending.params}, status=status.HTTP_201_CREATED)


class ExtensionApproveView(APIView):
    """Four eyes: someone other than the requester (risk or an approver) approves the extension, which applies it: the
    schedule extended on the contract's repayment day and holiday rule."""

    permission_classes = [rule_permission("postloan.decide_request")]

    @extend_schema(request=None, responses=inline_serializer("ExtensionApproved", {
        "id": serializers.IntegerField(), "status": serializers.CharField(), "result": serializers.DictField()}))
    def post(self, request, pk):
        pending = get_object_or_404(ApprovalRequest.objects.filter(kind=ApprovalRequest.Kind.EXTENSION,
                                                                   loan__in=loans_visible_to(request.user)), pk=pk)
        decided = approval_request_decide(request=pending, approve=True, by=request.user)
        return Response({"id": decided.pk, "status": decided.status, "result": decided.result})


class AssetQualityQuery(serializers.Serializer):
    on = serializers.DateField(required=False, help_text="YYYY-MM-DD; the last closed business date when omitted")


def _rate_text(value) -> str | None:
    return None if value is None else f"{value:.4f}"


class AssetQualityView(APIView):
    """资产质量: balances, counts and allowance by the five categories on `on`, the NPL ratio (不良贷款率), provision
    coverage (拨备覆盖率 = allowance / NPL balance) and the loan-provision ratio (贷款拨备率 = allowance / loans).
    Ratios are fractions as text ("0.0123"), null when the denominator is zero."""

    permission_classes = [rule_permission("postloan.asset_quality")]

    @extend_schema(
        parameters=[AssetQualityQuery],
        responses=inline_serializer("AssetQuality", {
            "on": serializers.DateField(),
            "categories": inline_serializer("AssetQualityCategory", {
                "category": serializers.ChoiceField(choices=[c for c, _label in FIVE_CATEGORIES]),
                "count": serializers.IntegerField(), "balance": serializers.CharField(),
                "provision": serializers.CharField()}, many=True),
            "total_balance": serializers.CharField(), "npl_balance": serializers.CharField(),
            "overlay": serializers.CharField(), "allowance": serializers.CharField(),
            "npl_ratio": serializers.CharField(allow_null=True), "provision_coverage": serializers.CharField(allow_null=True),
            "loan_provision_ratio": serializers.CharField(allow_null=True),
            "source": serializers.ChoiceField(choices=["book", "measurements"])}))
    def get(self, request):
        query = AssetQualityQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        report = asset_quality(on=query.validated_data.get("on"))
        return Response({
            "on": report["on"], "source": report["source"],
            "categories": [{"category": row["category"], "count": row["count"], "balance": money_text(row["balance"]),
                            "provision": money_text(row["provision"])} for row in report["categories"]],
            "total_balance": money_text(report["total_balance"]), "npl_balance": money_text(report["npl_balance"]),
            "overlay": money_text(report["overlay"]), "allowance": money_text(report["allowance"]),
            "npl_ratio": _rate_text(report["npl_ratio"]), "provision_coverage": _rate_text(report["provision_coverage"]),
            "loan_provision_ratio": _rate_text(report["loan_provision_ratio"]),
        })
