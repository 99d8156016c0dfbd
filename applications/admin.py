"""Intake policy in admin: products and their checklists, admission criteria and the negative list (risk
maintains these two), the FAQ knowledge base and its unanswered questions. Every change is audited."""

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loanservice import roles
from loanservice.admin import AuditedAdmin, ReadOnlyAdmin
from loanservice.admin_base import ModelAdmin, TabularInline
from loanservice.audit import audit_record

from .models import (
    AdmissionCriterion,
    ApplicationDocument,
    AuthorisationText,
    Consent,
    DataAuthorisation,
    DocumentRequirement,
    Enterprise,
    FaqEntry,
    IdentityVerification,
    LoanApplication,
    LoanProduct,
    NegativeListEntry,
    UnansweredQuestion,
)
from .prescreen import RULES


class DocumentRequirementInline(TabularInline):
    model = DocumentRequirement
    extra = 0


class RiskMaintainedAdmin(AuditedAdmin):
    """Policy that the risk officers maintain themselves (they need staff status to reach the admin)."""

    def _risk(self, request) -> bool:
        return request.user.is_active and request.user.is_staff and roles.can(request.user, "applications.maintain_policy")

    def has_module_permission(self, request):
        return self._risk(request) or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._risk(request) or super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return self._risk(request) or super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return self._risk(request) or super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._risk(request) or super().has_delete_permission(request, obj)


@admin.register(LoanProduct)
class LoanProductAdmin(AuditedAdmin):
    list_display = ["code", "name", "kind", "min_amount", "max_amount", "fast_track", "secured", "is_active"]
    inlines = [DocumentRequirementInline]

    def save_formset(self, request, form, formset, change):
        # Checklist lines are policy too: each added, changed or removed line is audited.
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            audit_record(actor=request.user, action="admin.delete", obj=obj, data={"product": form.instance.code})
            obj.delete()
        for obj in instances:
            created = obj.pk is None
            obj.save()
            audit_record(actor=request.user, action=f"admin.{'add' if created else 'change'}", obj=obj,
                         data={"product": form.instance.code, "code": obj.code, "required": obj.required,
                               "accepted_types": obj.accepted_types, "max_size_mb": obj.max_size_mb})
        formset.save_m2m()


@admin.register(AdmissionCriterion)
class AdmissionCriterionAdmin(RiskMaintainedAdmin):
    list_display = ["code", "kind", "rule", "params", "name", "is_active"]
    list_filter = ["kind", "is_active"]
    filter_horizontal = ["products"]
    search_fields = ["code", "name", "name_en"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.base_fields["rule"].help_text = _("可用规则 / available rules: %(r)s") % {"r": ", ".join(sorted(RULES))}
        return form


@admin.register(NegativeListEntry)
class NegativeListEntryAdmin(RiskMaintainedAdmin):
    list_display = ["uscc", "id_number", "reason", "expires_on", "in_force", "created_by", "created_at"]
    search_fields = ["uscc", "=id_number", "reason"]
    list_filter = ["expires_on"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    list_select_related = ["created_by"]

    @admin.display(boolean=True, description=_("生效中 in force"))
    def in_force(self, obj):
        return obj.is_in_force

    def save_model(self, request, obj, form, change):
        if not obj.created_by_id:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(FaqEntry)
class FaqEntryAdmin(AuditedAdmin):
    list_display = ["question", "question_en", "order", "is_active", "updated_at"]
    list_editable = ["order", "is_active"]
    search_fields = ["question", "question_en", "answer", "answer_en", "keywords"]


@admin.register(UnansweredQuestion)
class UnansweredQuestionAdmin(ModelAdmin):
    """Questions the assistant could not answer, most asked first: write an FAQ entry, then mark them resolved."""

    list_display = ["text", "times_asked", "language", "last_asked_at", "resolved"]
    list_filter = ["resolved", "language"]
    search_fields = ["text"]
    readonly_fields = ["text", "normalized", "language", "asked_by", "times_asked", "first_asked_at", "last_asked_at"]
    actions = ["mark_resolved"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("标记为已处理 / Mark as resolved"))
    def mark_resolved(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        queryset.update(resolved=True)
        audit_record(actor=request.user, action="faq.unanswered_resolved", object_type="applications.unansweredquestion",
                     object_id=",".join(map(str, ids))[:40], data={"ids": ids, "at": timezone.now().isoformat()})
        self.message_user(request, _("已标记 %(n)s 条 / %(n)s marked") % {"n": len(ids)}, messages.SUCCESS)


@admin.register(Enterprise)
class EnterpriseAdmin(AuditedAdmin):
    """The RM is changed through the supervisors' reassignment page (audited, cases and clocks follow)."""

    list_display = ["name", "uscc", "industry_code", "branch", "relationship_manager"]
    search_fields = ["name", "uscc"]
    list_select_related = ["branch", "relationship_manager"]
    raw_id_fields = ["owner"]
    readonly_fields = ["relationship_manager"]


@admin.register(LoanApplication)
class LoanApplicationAdmin(ModelAdmin):
    """Read-only: a case changes only through its services (and the pages and API that call them)."""

    list_display = ["id", "enterprise", "product", "amount", "status", "route", "branch", "relationship_manager", "created_at"]
    list_filter = ["status", "route", "product", "branch"]
    search_fields = ["enterprise__name", "enterprise__uscc"]
    list_select_related = ["enterprise", "product", "branch", "relationship_manager"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False



@admin.register(ApplicationDocument)
class ApplicationDocumentAdmin(ReadOnlyAdmin):
    list_display = ["application", "requirement", "original_name", "content_type", "size", "uploaded_at"]
    list_select_related = ["application__enterprise", "requirement__product"]
    exclude = ["file"]


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin):
    """Every consent line, the withdrawn ones too."""

    list_display = ["application", "source", "granted_by", "granted_at", "text_version", "authorisation", "withdrawn_at"]
    list_select_related = ["application__enterprise", "granted_by"]

    def get_queryset(self, request):
        return Consent.all_objects.select_related(*self.list_select_related)


@admin.register(DataAuthorisation)
class DataAuthorisationAdmin(ReadOnlyAdmin):
    list_display = ["id", "enterprise", "application", "granted_by", "verification", "scopes", "text_version",
                    "granted_at", "withdrawn_at"]
    list_filter = ["purpose", "text_version"]
    search_fields = ["enterprise__name", "enterprise__uscc"]
    list_select_related = ["enterprise", "granted_by", "verification"]


@admin.register(IdentityVerification)
class IdentityVerificationAdmin(ReadOnlyAdmin):
    list_display = ["id", "enterprise", "user", "method", "person_name", "result", "reason", "provider",
                    "provider_reference", "created_at"]
    list_filter = ["method", "result", "provider"]
    search_fields = ["enterprise__name", "enterprise__uscc"]
    list_select_related = ["enterprise", "user"]
    exclude = ["power_of_attorney"]


@admin.register(AuthorisationText)
class AuthorisationTextAdmin(AuditedAdmin):
    """The authorisation text (授权书) as data. A version someone agreed to is never edited: publish a new one."""

    list_display = ["version", "title", "is_current", "published_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and DataAuthorisation.objects.filter(text=obj).exists():
            return ["version", "title", "body", "body_en"]
        return []

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if obj.is_current:  # one version in force
            AuthorisationText.objects.exclude(pk=obj.pk).update(is_current=False)
