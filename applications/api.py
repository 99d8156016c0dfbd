"""Intake API: products, enterprises, drafts, documents, consent (DESIGN.md's public contract)."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from loanservice import roles
from loanservice.api import client_ip, form_input, rule_permission
from loanservice.drf import ArrayLimitOffset
from loanservice.masking import personal_shown
from loanservice.text import in_language

from . import services
from .forms import (
    UPLOAD_INCOMPLETE,
    ApplicationCreateForm,
    ConsentForm,
    ConsentWithdrawForm,
    DocumentUploadForm,
    EnterpriseForm,
    IdentityVerificationForm,
    PhoneForm,
)
from .models import (
    AdmissionCriterion,
    DocumentRequirement,
    Enterprise,
    IdentityVerification,
    LoanApplication,
    LoanProduct,
)
from .selectors import (
    application_applicant_id,
    applications_visible_to,
    authorisation_text_current,
    enterprises_visible_to,
    identity_reviews_pending,
    products_published,
    verified_identity,
)

IsApplicant = rule_permission("applications.apply")
SignedIn = rule_permission("loanservice.signed_in")


class ChecklistItemSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()

    class Meta:
        model = DocumentRequirement
        fields = ["code", "name", "name_en", "help_text", "help_text_en", "required", "min_amount", "legal_forms",
                  "accepted_types", "max_size_mb", "satisfied_by_source"]

    def get_name(self, obj) -> str:
        return obj.name


class ProductSerializer(serializers.ModelSerializer):
    checklist = ChecklistItemSerializer(many=True, read_only=True)
    admission_criteria = serializers.SerializerMethodField()

    class Meta:
        model = LoanProduct
        fields = ["code", "name", "name_en", "description", "description_en", "customers", "customers_en", "min_amount",
                  "max_amount", "min_term_months", "max_term_months", "repayment_methods", "fast_track", "secured",
                  "rate_floor", "rate_cap", "checklist", "admission_criteria", "kind", "line_terms"]

    line_terms = serializers.SerializerMethodField()

    def get_line_terms(self, obj) -> dict | None:
        """A credit line's drawdown terms (null for a term loan): the application's amount is the limit and its term
        the validity in months; each drawdown within these."""
        if not obj.is_credit_line:
            return None
        return {"validity_months": [obj.min_term_months, obj.max_term_months],
                "drawdown_min_amount": f"{obj.drawdown_min_amount:.2f}",
                "drawdown_max_amount": None if obj.drawdown_max_amount is None else f"{obj.drawdown_max_amount:.2f}",
                "drawdown_term_months": [obj.drawdown_min_term_months, obj.drawdown_max_term_months],
                "drawdown_methods": obj.drawdown_method_list, "maturity_cap_months": obj.drawdown_maturity_cap_months,
                "self_payment_limit": f"{obj.self_payment_limit:.2f}"}

    def get_admission_criteria(self, obj) -> list[dict]:
        criteria = self.context["criteria"]
        return [{"code": c.code, "kind": c.kind, "name": c.name, "name_en": c.name_en, "message": c.message,
                 "message_en": c.message_en}
                for c in criteria if not c.product_ids or obj.pk in c.product_ids]


class ProductListView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses=ProductSerializer(many=True))
    def get(self, request):
        criteria = list(AdmissionCriterion.objects.filter(is_active=True).prefetch_related("products"))
        for c in criteria:
            c.product_ids = {p.pk for p in c.products.all()}
        products = products_published()
        return Response(ProductSerializer(products, many=True, context={"criteria": criteria}).data)


class EnterpriseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Enterprise
        fields = ["id", "name", "uscc", "legal_form", "legal_rep_name", "legal_rep_id_number", "industry_code", "founded_on",
                  "employees", "annual_revenue", "region_code"]
        read_only_fields = ["id", "region_code"]
        extra_kwargs = {"uscc": {"validators": []}}

    def to_representation(self, instance):
        """The legal representative's ID number whole to the enterprise's owner, masked to everyone else (staff
        reveal it through `POST /api/v1/personal-data/reveal/`, audited)."""
        data = super().to_representation(instance)
        user = getattr(self.context.get("request"), "user", None)
        data["legal_rep_id_number"] = personal_shown(data.get("legal_rep_id_number"), kind="id_number", user=user,
                                                     owner_id=instance.owner_id)
        return data


class EnterprisePages(ArrayLimitOffset):
    default_limit = 200  # what the list answered before it paged: clients that read it whole keep doing so


class EnterpriseListCreateView(GenericAPIView):
    permission_classes = [SignedIn]
    serializer_class = EnterpriseSerializer
    pagination_class = EnterprisePages

    def get_permissions(self):
        return [IsApplicant()] if self.request.method == "POST" else super().get_permissions()

    def get_queryset(self):
        return enterprises_visible_to(self.request.user).order_by("id")

    @extend_schema(responses=EnterpriseSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(EnterpriseSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(request=EnterpriseSerializer, responses={201: EnterpriseSerializer})
    def post(self, request):
        data = form_input(EnterpriseForm, request.data, message=_("企业信息有误 / The enterprise details are not valid."))
        enterprise = services.enterprise_create(owner=request.user, **data, ip=client_ip(request))
        return Response(EnterpriseSerializer(enterprise, context={"request": request}).data, status=status.HTTP_201_CREATED)


class ApplicationCreateSerializer(serializers.Serializer):
    """The body of `POST /api/v1/applications/` as the schema shows it; `ApplicationCreateForm` checks it."""

    enterprise = serializers.IntegerField()
    product = serializers.CharField(help_text="product code")
    amount = serializers.DecimalField(max_digits=16, decimal_places=2)
    term_months = serializers.IntegerField()
    repayment_method = serializers.CharField()
    purpose = serializers.CharField(max_length=300)
    channel = serializers.CharField(required=False, default="api")


class ApplicationSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    product = serializers.CharField(source="product.code")
    enterprise = serializers.IntegerField(source="enterprise_id")
    enterprise_name = serializers.CharField(source="enterprise.name")
    amount = serializers.DecimalField(max_digits=16, decimal_places=2)
    term_months = serializers.IntegerField()
    repayment_method = serializers.CharField()
    route = serializers.CharField()
    created_at = serializers.DateTimeField()


class ApplicationFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=LoanApplication.Status.choices, required=False, allow_blank=True,
                                     help_text="only the applications in this status")


class ApplicationListCreateView(GenericAPIView):
    permission_classes = [SignedIn]
    pagination_class = ArrayLimitOffset

    def get_serializer_class(self):
        return ApplicationCreateSerializer if self.request.method == "POST" else ApplicationSummarySerializer

    def get_queryset(self):
        filters = ApplicationFilter(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        qs = applications_visible_to(self.request.user).order_by("-created_at", "-id")
        return qs.filter(status=filters.validated_data["status"]) if filters.validated_data.get("status") else qs

    def get_permissions(self):
        return [IsApplicant()] if self.request.method == "POST" else super().get_permissions()

    @extend_schema(parameters=[ApplicationFilter], responses=ApplicationSummarySerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ApplicationSummarySerializer(page, many=True).data)

    @extend_schema(request=ApplicationCreateSerializer, responses={201: ApplicationSummarySerializer})
    def post(self, request):
        data = form_input(ApplicationCreateForm, request.data,
                          message=_("申请信息有误 / The application details are not valid."))
        application = services.application_create(applicant=request.user, **data)
        return Response(ApplicationSummarySerializer(application).data, status=status.HTTP_201_CREATED)


def own_application(request, pk):
    """The applicant's own application, else 404 (whether it exists or not)."""
    return get_object_or_404(applications_visible_to(request.user).filter(applicant=request.user), pk=pk)


def own_application_pk(request, pk) -> int:
    """own_application's check where the caller reads the case itself (the conductor does): its id, else 404."""
    user = request.user
    if roles.user_roles(user) & roles.BRANCH_SCOPED:  # branch staff: the visibility rule narrows "their own" further
        found = list(applications_visible_to(user).filter(applicant=user, pk=pk).values_list("pk", flat=True)[:1])
    else:  # anyone else sees exactly the cases they applied for (roles.scope_to): one column of the case
        found = [pk] if user.pk is not None and application_applicant_id(pk) == user.pk else []
    if not found:
        raise Http404
    return found[0]


class DocumentUploadView(APIView):
    permission_classes = [IsApplicant]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": inline_serializer("DocumentUpload", {"requirement": serializers.CharField(), "file": serializers.FileField()})},
        responses={201: inline_serializer("DocumentOut", {"id": serializers.IntegerField(), "requirement": serializers.CharField(),
                                                          "content_type": serializers.CharField(), "size": serializers.IntegerField(),
                                                          "sha256": serializers.CharField()})},
    )
    def post(self, request, pk):
        application = own_application(request, pk)
        data = form_input(DocumentUploadForm, request.data, files=request.FILES, message=UPLOAD_INCOMPLETE)
        doc = services.document_upload(application=application, user=request.user, requirement_code=data["requirement"],
                                       name=data["file"].name, content=data["file"].read(), ip=client_ip(request))
        return Response({"id": doc.pk, "requirement": doc.requirement.code, "content_type": doc.content_type, "size": doc.size,
                         "sha256": doc.sha256}, status=status.HTTP_201_CREATED)


class ConsentSerializer(serializers.Serializer):
    """The body of `POST .../consent/` as the schema shows it; `ConsentForm` checks it."""

    scopes = serializers.ListField(child=serializers.CharField(), allow_empty=False)


def consent_data(application: LoanApplication) -> dict:
    """The sources in force on an application and the authorisations behind them."""
    consents = list(application.consents.select_related("authorisation").order_by("source"))
    authorisations = {c.authorisation for c in consents if c.authorisation is not None}
    return {
        "scopes": [c.source for c in consents],
        "authorisations": [{"id": a.pk, "scopes": [c.source for c in consents if c.authorisation_id == a.pk],
                            "purpose": a.purpose, "text_version": a.text_version, "granted_at": a.granted_at,
                            "granted_by_verification": a.verification_id}
                           for a in sorted(authorisations, key=lambda a: a.pk)],
    }


AuthorisationOut = inline_serializer("AuthorisationOut", {
    "id": serializers.IntegerField(), "scopes": serializers.ListField(child=serializers.CharField()),
    "purpose": serializers.CharField(), "text_version": serializers.CharField(), "granted_at": serializers.DateTimeField(),
    "granted_by_verification": serializers.IntegerField(allow_null=True)})
ConsentOut = inline_serializer("ConsentOut", {"scopes": serializers.ListField(child=serializers.CharField()),
                                              "authorisations": AuthorisationOut.__class__(many=True)})


class ConsentView(APIView):
    """`POST .../consent/` `{scopes}`: the verified legal representative or agent authorises the sources named, under
    the current authorisation text (`GET /api/v1/authorisation-text/`). 400 naming `verification` when nobody
    has been verified for the enterprise."""

    permission_classes = [IsApplicant]

    @extend_schema(request=ConsentSerializer, responses={201: ConsentOut})
    def post(self, request, pk):
        application = own_application(request, pk)
        data = form_input(ConsentForm, request.data, message=_("授权范围无效 / Invalid consent scope."))
        services.consent_grant(application=application, user=request.user, **data, ip=client_ip(request))
        return Response(consent_data(application), status=status.HTTP_201_CREATED)


class ConsentWithdrawSerializer(serializers.Serializer):
    scopes = serializers.ListField(child=serializers.CharField(), required=False,
                                   help_text="the sources to withdraw; none: all of them")


class ConsentWithdrawView(APIView):
    """`POST .../consent/withdraw/`: no more pulls for those sources; what was fetched stays with its decision."""

    permission_classes = [IsApplicant]

    @extend_schema(request=ConsentWithdrawSerializer, responses={200: inline_serializer("ConsentWithdrawOut", {
        "withdrawn": serializers.ListField(child=serializers.CharField()),
        "scopes": serializers.ListField(child=serializers.CharField())})})
    def post(self, request, pk):
        application = own_application(request, pk)
        data = form_input(ConsentWithdrawForm, request.data, message=_("授权范围无效 / Invalid consent scope."))
        withdrawn = services.consent_withdraw(application=application, user=request.user, scopes=data["scopes"] or None,
                                              ip=client_ip(request))
        return Response({"withdrawn": withdrawn, "scopes": sorted(application.consents.values_list("source", flat=True))})


class AuthorisationTextView(APIView):
    """`GET /api/v1/authorisation-text/`: the authorisation text in force, to show before anyone ticks a source."""

    permission_classes = [AllowAny]

    @extend_schema(responses=inline_serializer("AuthorisationTextOut", {
        "version": serializers.CharField(), "title": serializers.CharField(), "body": serializers.CharField(),
        "body_en": serializers.CharField()}))
    def get(self, request):
        text = authorisation_text_current()
        if text is None:
            raise Http404
        return Response({"version": text.version, "title": text.title, "body": text.body, "body_en": text.body_en})


def own_enterprise(request, pk) -> Enterprise:
    return get_object_or_404(enterprises_visible_to(request.user).filter(owner=request.user), pk=pk)


def verification_data(record: IdentityVerification | None) -> dict:
    if record is None:
        return {"verified": False, "verification": None}
    return {"verified": record.in_force, "verification": {
        "id": record.pk, "method": record.method, "result": record.result, "name": record.person_name,
        "provider": record.provider, "provider_reference": record.provider_reference, "verified_at": record.created_at,
        "review_status": record.review_status or None}}


VerificationOut = inline_serializer("VerificationOut", {
    "verified": serializers.BooleanField(),
    "verification": inline_serializer("VerificationRecord", {
        "id": serializers.IntegerField(), "method": serializers.CharField(), "result": serializers.CharField(),
        "name": serializers.CharField(), "provider": serializers.CharField(), "provider_reference": serializers.CharField(),
        "verified_at": serializers.DateTimeField(), "review_status": serializers.CharField(allow_null=True)},
        allow_null=True)})


class VerifyCodeView(APIView):
    """`POST /api/v1/enterprises/{id}/verify-representative/code/` `{phone}`: an SMS code to the person's phone."""

    permission_classes = [IsApplicant]

    @extend_schema(request=inline_serializer("VerifyCodeIn", {"phone": serializers.CharField()}),
                   responses={202: inline_serializer("VerifyCodeOut", {"sent": serializers.BooleanField()})})
    def post(self, request, pk):
        enterprise = own_enterprise(request, pk)
        data = form_input(PhoneForm, request.data, message=_("手机号无效 / Invalid mobile number."))
        services.identity_code_send(enterprise=enterprise, user=request.user, phone=data["phone"], ip=client_ip(request))
        return Response({"sent": True}, status=status.HTTP_202_ACCEPTED)


class VerifySerializer(serializers.Serializer):
    """The body of `POST .../verify-representative/` as the schema shows it; `IdentityVerificationForm` checks it."""

    method = serializers.ChoiceField(choices=["legal_rep", "agent"], required=False, help_text="legal_rep (default) or agent")
    name = serializers.CharField()
    id_number = serializers.CharField(help_text="resident ID number (GB 11643)")
    phone = serializers.CharField(help_text="the mobile the SMS code was sent to")
    sms_code = serializers.CharField()


class VerifyAgentSerializer(VerifySerializer):
    power_of_attorney = serializers.FileField(required=False, help_text="an agent's power of attorney (PDF, JPEG, PNG)")


class VerifyRepresentativeView(APIView):
    """`POST /api/v1/enterprises/{id}/verify-representative/` `{method, name, id_number, phone, sms_code}` (an agent
    also sends `power_of_attorney`, multipart): the identity check before any authorisation or signature. 201
    with the record when verified; 400 naming why when not (the failed attempt is kept). `GET`: the
    verification in force for the signed-in user, if any."""

    permission_classes = [IsApplicant]  # JSON, or multipart for an agent's power of attorney (the default parsers)

    @extend_schema(responses=VerificationOut)
    def get(self, request, pk):
        enterprise = own_enterprise(request, pk)
        return Response(verification_data(verified_identity(user=request.user, enterprise=enterprise)))

    @extend_schema(request={"application/json": VerifySerializer, "multipart/form-data": VerifyAgentSerializer},
        responses={201: VerificationOut})
    def post(self, request, pk):
        enterprise = own_enterprise(request, pk)
        data = form_input(IdentityVerificationForm, request.data, files=request.FILES,
                          message=_("身份核验信息有误 / The identity details are not valid."))
        upload = data.pop("power_of_attorney", None)
        record = services.identity_verify(enterprise=enterprise, user=request.user, **data,
                                          power_of_attorney=upload.read() if upload else None, ip=client_ip(request))
        return Response(verification_data(record), status=status.HTTP_201_CREATED)


IsIdentityReviewer = rule_permission("applications.review_identity")


def identity_review_data(record: IdentityVerification) -> dict:
    e = record.enterprise
    return {"id": record.pk, "enterprise": {"id": e.pk, "name": e.name, "uscc": e.uscc}, "agent": record.person_name,
            "applicant": record.user.get_username(), "submitted_at": record.created_at,
            "power_of_attorney_sha256": record.power_of_attorney_sha256, "review_status": record.review_status,
            "reviewed_by": record.reviewed_by.get_username() if record.reviewed_by_id else None,
            "reviewed_at": record.reviewed_at, "review_reason": record.review_reason or None}


IDENTITY_REVIEW_FIELDS = {
    "id": serializers.IntegerField(), "enterprise": serializers.DictField(), "agent": serializers.CharField(),
    "applicant": serializers.CharField(), "submitted_at": serializers.DateTimeField(),
    "power_of_attorney_sha256": serializers.CharField(), "review_status": serializers.CharField(),
    "reviewed_by": serializers.CharField(allow_null=True), "reviewed_at": serializers.DateTimeField(allow_null=True),
    "review_reason": serializers.CharField(allow_null=True)}
IdentityReviewOut = inline_serializer("IdentityReviewOut", IDENTITY_REVIEW_FIELDS)


class IdentityReviewListView(APIView):
    """`GET /api/v1/identity-reviews/` (operations): agents' powers of attorney awaiting review, oldest first."""

    permission_classes = [IsIdentityReviewer]

    @extend_schema(responses=inline_serializer("IdentityReviewOut", IDENTITY_REVIEW_FIELDS, many=True))
    def get(self, request):
        return Response([identity_review_data(r) for r in identity_reviews_pending()])


class IdentityReviewDecideIn(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approve", "reject"])
    reason = serializers.CharField(max_length=300)


class IdentityReviewDecideView(APIView):
    """`POST /api/v1/identity-reviews/{id}/` `{decision: approve|reject, reason}` (operations; never the enterprise's
    RM nor the agent: 403): the agent may authorise and sign only once approved. 409 when already reviewed."""

    permission_classes = [IsIdentityReviewer]

    @extend_schema(request=IdentityReviewDecideIn, responses=IdentityReviewOut)
    def post(self, request, pk):
        record = get_object_or_404(IdentityVerification.objects.select_related("enterprise", "user"), pk=pk,
                                   method=IdentityVerification.AGENT)
        ser = IdentityReviewDecideIn(data=request.data)
        ser.is_valid(raise_exception=True)
        record = services.identity_review_decide(verification=record, by=request.user,
                                                 approve=ser.validated_data["decision"] == "approve",
                                                 reason=ser.validated_data["reason"], ip=client_ip(request))
        return Response(identity_review_data(record))


class HelpQuery(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, default="", help_text="the question")


class HelpView(APIView):
    """GET /api/v1/help/?q=... — 智能客服 for other front ends: ranked FAQ answers and, for a signed-in
    applicant asking "where is my application?", their own cases. Unanswered questions are logged."""

    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle]

    @extend_schema(parameters=[HelpQuery], responses=inline_serializer(
        "HelpOut", {"query": serializers.CharField(), "answered": serializers.BooleanField(),
                    "faq": serializers.ListField(child=serializers.DictField()),
                    "cases": serializers.ListField(child=serializers.DictField(), allow_null=True),
                    "login_needed": serializers.BooleanField()}))
    def get(self, request):
        query = HelpQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        result = services.assistant_answer(user=request.user, text=query.validated_data["q"], language=get_language() or "")
        cases = None
        if result["cases"] is not None:
            cases = [{"id": c["application"].pk, "status": c["application"].status,
                      "product": c["application"].product.code,
                      "stage": c["tracker"]["stage"], "holder": in_language(c["tracker"]["holder"]),
                      "expected": in_language(c["tracker"]["expected"]),
                      "relationship_manager": c["tracker"]["relationship_manager"]} for c in result["cases"]]
        return Response({
            "query": result["query"], "answered": result["answered"], "login_needed": result["login_needed"],
            "faq": [{"id": h.entry.pk, "question": h.entry.tr("question"), "answer": h.entry.tr("answer"),
                     "url": h.entry.url, "score": h.score} for h in result["faq"]],
            "cases": cases,
        })
