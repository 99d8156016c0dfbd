"""Intake API: products, enterprises, drafts, documents, consent (DESIGN.md's public contract)."""

from __future__ import annotations

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

from loanservice.api import client_ip, form_input, rule_permission
from loanservice.drf import ArrayLimitOffset
from loanservice.text import in_language

from . import services
from .forms import UPLOAD_INCOMPLETE, ApplicationCreateForm, ConsentForm, DocumentUploadForm, EnterpriseForm
from .models import AdmissionCriterion, DocumentRequirement, Enterprise, LoanApplication, LoanProduct
from .selectors import applications_visible_to, enterprises_visible_to, products_published

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
        return self.get_paginated_response(EnterpriseSerializer(page, many=True).data)

    @extend_schema(request=EnterpriseSerializer, responses={201: EnterpriseSerializer})
    def post(self, request):
        data = form_input(EnterpriseForm, request.data, message=_("企业信息有误 / The enterprise details are not valid."))
        enterprise = services.enterprise_create(owner=request.user, **data, ip=client_ip(request))
        return Response(EnterpriseSerializer(enterprise).data, status=status.HTTP_201_CREATED)


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


class ConsentView(APIView):
    permission_classes = [IsApplicant]

    @extend_schema(request=ConsentSerializer, responses={201: inline_serializer("ConsentOut", {"scopes": serializers.ListField(child=serializers.CharField())})})
    def post(self, request, pk):
        application = own_application(request, pk)
        data = form_input(ConsentForm, request.data, message=_("授权范围无效 / Invalid consent scope."))
        services.consent_grant(application=application, user=request.user, **data, ip=client_ip(request))
        return Response({"scopes": sorted(application.consents.values_list("source", flat=True))}, status=status.HTTP_201_CREATED)


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
