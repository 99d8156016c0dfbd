"""The case API: the application as one object across stages, and the actions that move it.

These views call the lifecycle conductor, which composes the stage services; they stay thin.
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from applications.api import own_application, own_application_pk
from applications.models import LoanApplication
from applications.selectors import applicable_checklist, application_status, applications_visible_to
from approvals.models import ReasonCode
from approvals.selectors import decisions_of, routing_of
from approvals.serializers import DecisionSerializer
from casework import lifecycle
from casework.exposure import exposure_shown
from contracts import services as contracts_services
from contracts.models import Contract
from contracts.services import offer_annualised_rate
from creditlines.models import CreditLine
from loanservice import roles
from loanservice.api import client_ip, rule_permission
from loanservice.audit import audit_trail
from loanservice.business_date import business_date
from loanservice.errors import ApplicationError, Conflict
from loanservice.models import SlaClock
from loanservice.money import money_text
from loanservice.sla import sla_clock_remaining
from loanservice.text import phone_masked
from postloan.models import Loan
from underwriting.selectors import application_score_of, questionnaire_for
from underwriting.serializers import InfoRequestSerializer, SiteVisitSerializer
from underwriting.services import site_visit_record

IsApplicant = rule_permission("applications.apply")
IsRM = rule_permission("underwriting.due_diligence")
IsApprover = rule_permission("approvals.review")
IsOperations = rule_permission("contracts.operate")
IsSigner = rule_permission("contracts.sign")


def rate(value) -> str | None:
    return None if value is None else f"{value.normalize():f}" if value == value.to_integral() else f"{value:.6f}".rstrip("0")


def application_detail(application: LoanApplication, *, user) -> dict:
    staff = roles.can(user, "loanservice.staff")
    score = application_score_of(application)
    rm = application.relationship_manager
    package = list(application.contracts.exclude(status=Contract.Status.VOIDED).order_by("id"))
    contract = next((c for c in package if c.kind == "loan"), None)
    loan = Loan.objects.filter(application=application, disbursement__kind="loan").only("id").first()
    data = {
        "id": application.pk,
        "status": application.status,
        "product": application.product.code,
        "enterprise": {"id": application.enterprise_id, "name": application.enterprise.name, "uscc": application.enterprise.uscc},
        "amount": money_text(application.amount),
        "term_months": application.term_months,
        "repayment_method": application.repayment_method,
        "purpose": application.purpose,
        "channel": application.channel,
        "created_at": application.created_at,
        "submitted_at": application.submitted_at,
        "relationship_manager": None if rm is None else {
            "username": rm.username,
            "name": getattr(getattr(rm, "profile", None), "display_name", "") or rm.get_full_name() or rm.username,
            "phone": getattr(getattr(rm, "profile", None), "phone", ""),
        },
        "prescreen": {"passed": application.prescreen.get("passed"), "reasons": application.prescreen.get("reasons", [])}
        if application.prescreen else None,
        "score": None if score is None else {
            "grade": score.grade, "points": score.points, "pd": f"{score.pd:.4f}",
            "reasons": [{"code": r["code"], "message": r["message"], "message_en": r.get("message_en", "")} for r in score.reasons],
        },
        "route": application.route or None,
        "offer": None if application.offer_amount is None else {
            "amount": money_text(application.offer_amount), "annual_rate": f"{application.offer_rate:.4f}",
            "term_months": application.offer_term_months, "repayment_method": application.offer_repayment_method,
            "valid_until": application.offer_valid_until,
            # The rate basis (DESIGN.md "Rates"): annual_rate = lpr_rate + spread_bp / 10000.
            "lpr_tenor": application.offer_lpr_tenor or None,
            "lpr_rate": None if application.offer_lpr_rate is None else f"{application.offer_lpr_rate:.4f}",
            "lpr_date": application.offer_lpr_date,
            "spread_bp": None if application.offer_spread_bp is None else f"{application.offer_spread_bp:.2f}",
            "rate_type": application.offer_rate_type or "fixed",
            "repricing_months": application.offer_repricing_months,
            "annualised_rate": f"{offer_annualised_rate(application, start_date=business_date()):.4f}",
        },
        "contract": contract.pk if contract else None,
        "contracts": [{"id": c.pk, "kind": c.kind, "number": c.number, "version": c.version, "status": c.status,
                       "customer_party": c.customer_party, "sha256": c.sha256} for c in package],
        "loan": loan.pk if loan else None,
        "credit_line": CreditLine.objects.filter(application=application).values_list("pk", flat=True).first(),
        "documents": [{"id": d.pk, "requirement": d.requirement.code, "name": d.original_name, "size": d.size,
                       "uploaded_at": d.uploaded_at} for d in application.documents.select_related("requirement")],
        "checklist": [{"code": r.code, "name": r.name, "required": r.required, "satisfied_by_source": r.satisfied_by_source}
                      for r in applicable_checklist(application.product, amount=application.amount,
                                                    legal_form=application.enterprise.legal_form)],
        "consents": sorted(application.consents.values_list("source", flat=True)),
        "info_requests": [{"id": r.pk, "message": r.message, "due_on": r.due_on, "response": r.response,
                           "responded_at": r.responded_at,
                           "items": [{"id": i.pk, "kind": i.kind, "requirement": i.requirement.code if i.requirement else None,
                                      "question": i.question, "answer": i.answer, "fulfilled": i.fulfilled_at is not None}
                                     for i in r.items.all()]}
                          for r in application.info_requests.prefetch_related("items__requirement")],
        "decline_reasons": _decline_reasons(application, score),
        "timeline": [{"at": e.at, "action": e.action, "from": e.from_state, "to": e.to_state,
                      "actor": (e.actor_label if staff else ("银行 / bank" if e.actor_id != application.applicant_id else "您 / you")),
                      **({"reason": e.reason} if staff else {})}
                     for e in audit_trail(application)],
        "sla": [{"stage": c.stage, "due_at": c.due_at, "breached": c.breached_at is not None,
                 "remaining_hours": round(sla_clock_remaining(c).total_seconds() / 3600, 1)}
                for c in SlaClock.objects.filter(case_id=application.pk, stopped_at__isnull=True)],
    }
    if staff:
        data["questionnaire"] = [{"code": q.code, "question": q.question, "question_en": q.question_en, "type": q.qtype,
                                  "required": q.required, "choices": q.choices} for q in questionnaire_for(application.product)]
        data["prescreen_rules"] = application.prescreen.get("rules", [])
        data["recommendation"] = application.recommendation
        routing = routing_of(application)
        data["routing"] = None if routing is None else {
            "route": routing.route, "matrix_version": routing.matrix_version, "rule": routing.rule_note,
            "model_version": routing.model_version, "referrals": routing.referrals}
        data["referrals"] = routing.referrals if routing else []
        data["exposure"] = exposure_shown(application, routing)  # the borrower's total: what routing and authority see
        data["decisions"] = [{"tier": d.tier, "decision": d.decision, "automatic": d.automatic,
                              "approver": d.approver.username if d.approver else "system", "reason_codes": d.reason_codes,
                              "comment": d.comment, "at": d.created_at} for d in decisions_of(application)]
        if score:
            data["score"].update({"model_version": score.model.version, "dimensions": score.dimensions,
                                  "features": score.features, "missing_sources": score.missing_sources,
                                  "data_gaps": score.data_gaps, "limit_basis": score.limit_basis,
                                  "decision_seconds": None if score.decision_seconds is None else f"{score.decision_seconds:.3f}",
                                  "recommended_limit": money_text(score.recommended_limit),
                                  "recommended_rate": None if score.recommended_rate is None else f"{score.recommended_rate:.4f}",
                                  "recommended_spread_bp": None if score.recommended_spread_bp is None
                                  else f"{score.recommended_spread_bp:.2f}"})
    return data


def _decline_reasons(application, score) -> list[dict]:
    if application.status not in (LoanApplication.Status.DECLINED, LoanApplication.Status.PRESCREEN_DECLINED):
        return []
    if application.status == LoanApplication.Status.PRESCREEN_DECLINED:
        return application.prescreen.get("reasons", [])
    codes = []
    for d in application.decisions.all():
        codes.extend(d.reason_codes)
    catalogue = {rc.code: rc for rc in ReasonCode.objects.filter(code__in=codes)}
    score_reasons = {r["code"]: r for r in (score.reasons if score else [])}
    out = []
    for code in dict.fromkeys(codes):
        if code in catalogue:
            out.append({"code": code, "message": catalogue[code].text, "message_en": catalogue[code].text_en})
        elif code in score_reasons:
            out.append({"code": code, "message": score_reasons[code]["message"], "message_en": score_reasons[code].get("message_en", "")})
    return out


def visible_application(request, pk) -> LoanApplication:
    return get_object_or_404(applications_visible_to(request.user), pk=pk)


Detail = inline_serializer("ApplicationDetail", {
    "id": serializers.IntegerField(), "status": serializers.CharField(), "amount": serializers.CharField(),
    "relationship_manager": serializers.DictField(allow_null=True), "score": serializers.DictField(allow_null=True),
    "route": serializers.CharField(allow_null=True), "offer": serializers.DictField(allow_null=True),
    "contract": serializers.IntegerField(allow_null=True), "loan": serializers.IntegerField(allow_null=True),
    "credit_line": serializers.IntegerField(allow_null=True),
    "timeline": serializers.ListField(child=serializers.DictField()),
    "exposure": serializers.DictField(required=False, help_text="Staff only: the borrower's total exposure and its parts "
                                      "(request, term_loans, offers_not_taken, credit_lines, related_parties, existing, "
                                      "total, related[], basis)"),
})


class ApplicationDetailView(APIView):
    permission_classes = [rule_permission("loanservice.signed_in")]

    @extend_schema(responses=Detail)
    def get(self, request, pk):
        return Response(application_detail(visible_application(request, pk), user=request.user))


class SubmitView(APIView):
    permission_classes = [IsApplicant]

    @extend_schema(request=None, responses={200: inline_serializer("SubmitOut", {"status": serializers.CharField(), "prescreen": serializers.DictField()})})
    def post(self, request, pk):
        application = lifecycle.application_submit(application_id=own_application_pk(request, pk), user=request.user,
                                                   ip=client_ip(request))
        # The status now: scoring may already have moved the case on (a worker, or eager Celery).
        status = application_status(application.pk)
        return Response({"id": application.pk, "status": status,
                         "prescreen": {"passed": application.prescreen["passed"], "reasons": application.prescreen["reasons"]}})


def rm_case(request, pk) -> LoanApplication:
    application = visible_application(request, pk)
    roles.permission_check(request.user, "underwriting.work_on_case", application,
                           message="只有本案客户经理可以操作 / Only the case's RM can do this.")
    return application


class RequestInfoView(APIView):
    permission_classes = [rule_permission("underwriting.request_info")]

    @extend_schema(request=InfoRequestSerializer, responses={201: inline_serializer("InfoRequestOut", {"id": serializers.IntegerField(), "status": serializers.CharField()})})
    def post(self, request, pk):
        application = rm_case(request, pk)
        ser = InfoRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        req = lifecycle.case_request_info(application_id=application.pk, user=request.user, **ser.validated_data)
        return Response({"id": req.pk, "status": LoanApplication.Status.AWAITING_INFO}, status=status.HTTP_201_CREATED)


class RespondView(APIView):
    permission_classes = [IsApplicant]

    @extend_schema(request=inline_serializer("RespondIn", {"response": serializers.CharField(),
                                                           "answers": serializers.DictField(required=False)}), responses=Detail)
    def post(self, request, pk):
        application = own_application(request, pk)
        answers = request.data.get("answers")
        lifecycle.case_respond(application_id=application.pk, user=request.user, response=str(request.data.get("response", "")),
                               answers=answers if isinstance(answers, dict) else None)
        application.refresh_from_db()
        return Response(application_detail(application, user=request.user))


class SiteVisitView(APIView):
    permission_classes = [IsRM]

    @extend_schema(request=SiteVisitSerializer, responses={201: inline_serializer("VisitOut", {"id": serializers.IntegerField(), "mode": serializers.CharField()})})
    def post(self, request, pk):
        application = rm_case(request, pk)
        ser = SiteVisitSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        visit = site_visit_record(application=application, by=request.user, **ser.validated_data)
        return Response({"id": visit.pk, "mode": visit.mode}, status=status.HTTP_201_CREATED)


class SendToApprovalView(APIView):
    permission_classes = [IsRM]

    @extend_schema(request=inline_serializer("SendIn", {"recommendation": serializers.CharField()}), responses=Detail)
    def post(self, request, pk):
        application = rm_case(request, pk)
        lifecycle.case_send_to_approval(application_id=application.pk, user=request.user,
                                        recommendation=str(request.data.get("recommendation", "")))
        application.refresh_from_db()
        return Response(application_detail(application, user=request.user))


class DecideView(APIView):
    permission_classes = [IsApprover]

    @extend_schema(request=DecisionSerializer, responses=Detail)
    def post(self, request, pk):
        application = visible_application(request, pk)
        ser = DecisionSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        lifecycle.case_decide(application_id=application.pk, user=request.user, **ser.validated_data)
        application.refresh_from_db()
        return Response(application_detail(application, user=request.user))


class ResolutionView(APIView):
    """The credit committee's chair records the resolution once a quorum has voted (or the deadline passed)."""

    permission_classes = [rule_permission("approvals.resolve")]

    @extend_schema(request=inline_serializer("ResolutionIn", {"text": serializers.CharField()}), responses=Detail)
    def post(self, request, pk):
        application = visible_application(request, pk)
        lifecycle.case_resolve(application_id=application.pk, user=request.user, text=str(request.data.get("text", "")))
        application.refresh_from_db()
        return Response(application_detail(application, user=request.user))


class AcceptOfferView(APIView):
    permission_classes = [IsApplicant]

    @extend_schema(request=None, responses=Detail)
    def post(self, request, pk):
        application = own_application(request, pk)
        lifecycle.offer_accept(application_id=application.pk, user=request.user)
        application.refresh_from_db()
        return Response(application_detail(application, user=request.user))


class WithdrawView(APIView):
    permission_classes = [IsApplicant]

    @extend_schema(request=inline_serializer("WithdrawIn", {"reason": serializers.CharField(required=False)}), responses=Detail)
    def post(self, request, pk):
        application = own_application(request, pk)
        lifecycle.application_withdraw(application_id=application.pk, user=request.user, reason=str(request.data.get("reason", "")))
        application.refresh_from_db()
        return Response(application_detail(application, user=request.user))


def contract_for_signer(request, pk) -> tuple[Contract, str]:
    contract = get_object_or_404(Contract.objects.select_related("application"), pk=pk)
    if roles.can(request.user, "contracts.sign_as_customer", contract):
        return contract, contract.customer_party  # borrower, or guarantor for a guarantee contract
    if roles.can(request.user, "contracts.sign_as_bank", contract):
        return contract, "bank"
    raise Http404


class ContractSignView(APIView):
    """`POST /api/v1/contracts/{id}/sign/` `{agree, sha256?, sms_code}`: the borrower signs as its verified legal
    representative or agent, with the code `POST .../sign/code/` sent to the verified phone (409 when the user is
    not verified for the enterprise, 400 naming `sms_code` when the code is wrong); the bank seals."""

    permission_classes = [IsSigner]

    @extend_schema(request=inline_serializer("SignIn", {"agree": serializers.BooleanField(),
                                                        "sha256": serializers.CharField(required=False),
                                                        "sms_code": serializers.CharField(required=False, help_text=(
                                                            "the borrower's signing code (POST .../sign/code/)"))}),
                   responses=inline_serializer("SignOut", {"id": serializers.IntegerField(), "status": serializers.CharField(),
                                                          "application_status": serializers.CharField()}))
    def post(self, request, pk):
        contract, party = contract_for_signer(request, pk)
        if request.data.get("agree") is not True:
            raise ApplicationError("请阅读并同意合同条款 / Read and agree to the contract terms.",
                                   errors={"agree": ["须为 true / Must be true."]})
        contract = lifecycle.contract_sign(contract_id=contract.pk, user=request.user, party=party, ip=client_ip(request),
                                           user_agent=request.META.get("HTTP_USER_AGENT", ""),
                                           expected_sha256=str(request.data.get("sha256") or ""),
                                           sms_code=str(request.data.get("sms_code") or ""))
        contract.refresh_from_db()
        return Response({"id": contract.pk, "status": contract.status,
                         "application_status": LoanApplication.objects.get(pk=contract.application_id).status})


class ContractSignCodeView(APIView):
    """`POST /api/v1/contracts/{id}/sign/code/`: the SMS code for the borrower's signature, sent to the phone
    verified with the signer's identity (409 when the user is not the enterprise's verified representative)."""

    permission_classes = [IsSigner]

    @extend_schema(request=None, responses={202: inline_serializer("SignCodeOut", {"sent": serializers.BooleanField(),
                                                                                  "phone": serializers.CharField()})})
    def post(self, request, pk):
        contract, party = contract_for_signer(request, pk)
        if party != "borrower" or contract.status != Contract.Status.ISSUED:
            raise Conflict("该合同当前无需借款人签署 / This contract is not waiting for the borrower's signature.",
                           state=contract.status)
        verification, _code = contracts_services.signing_code_send(application=contract.application, user=request.user,
                                                            ip=client_ip(request))
        return Response({"sent": True, "phone": phone_masked(verification.phone)}, status=status.HTTP_202_ACCEPTED)


class DisburseView(APIView):
    """Release with an Idempotency-Key: the same key gives the same loan; any other key after a release is a 409."""

    permission_classes = [IsOperations]

    @extend_schema(request=None, parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=True)],
                   responses={201: inline_serializer("DisburseOut", {"loan": serializers.IntegerField(), "amount": serializers.CharField()})})
    def post(self, request, pk):
        contract = get_object_or_404(Contract.objects.select_related("application"), pk=pk)
        key = (request.headers.get("Idempotency-Key") or "").strip()
        if not key or len(key) > 200:
            raise ApplicationError("缺少 Idempotency-Key 请求头 / The Idempotency-Key header is required.",
                                   errors={"Idempotency-Key": ["必填，最长200字符 / Required, at most 200 characters."]})
        try:
            loan = lifecycle.disbursement_release(application_id=contract.application_id, user=request.user, idempotency_key=key)
        except Conflict:
            loan = Loan.objects.select_related("disbursement").filter(application_id=contract.application_id).first()
            if loan is None or loan.disbursement.idempotency_key != key:
                raise
        return Response({"loan": loan.pk, "amount": money_text(loan.principal)}, status=status.HTTP_201_CREATED)
