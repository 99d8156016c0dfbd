from django.contrib import admin

from loanservice.admin import AuditedAdmin

from .models import AdmissionCriterion, ApplicationDocument, Consent, DocumentRequirement, Enterprise, LoanApplication, LoanProduct, NegativeListEntry


class DocumentRequirementInline(admin.TabularInline):
    model = DocumentRequirement
    extra = 0


@admin.register(LoanProduct)
class LoanProductAdmin(AuditedAdmin):
    list_display = ["code", "name", "min_amount", "max_amount", "fast_track", "secured", "is_active"]
    inlines = [DocumentRequirementInline]


@admin.register(AdmissionCriterion)
class AdmissionCriterionAdmin(AuditedAdmin):
    list_display = ["code", "kind", "rule", "params", "name", "is_active"]
    list_filter = ["kind", "is_active"]
    filter_horizontal = ["products"]


@admin.register(NegativeListEntry)
class NegativeListEntryAdmin(AuditedAdmin):
    list_display = ["uscc", "id_number", "reason", "expires_on", "created_by", "created_at"]
    search_fields = ["uscc", "id_number"]

    def save_model(self, request, obj, form, change):
        if not obj.created_by_id:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Enterprise)
class EnterpriseAdmin(AuditedAdmin):
    list_display = ["name", "uscc", "industry_code", "branch", "relationship_manager"]
    search_fields = ["name", "uscc"]
    list_select_related = ["branch", "relationship_manager"]
    raw_id_fields = ["owner", "relationship_manager"]


@admin.register(LoanApplication)
class LoanApplicationAdmin(admin.ModelAdmin):
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


admin.site.register([ApplicationDocument, Consent], admin.ModelAdmin)
