from django.contrib import admin

from loanservice.admin_base import ModelAdmin, TabularInline

from .models import ContactAttempt, MarketingDataPolicy, MarketingSettings, Prospect, ProspectList


@admin.register(MarketingDataPolicy)
class MarketingDataPolicyAdmin(ModelAdmin):
    list_display = ("source", "allowed", "basis")
    list_editable = ("allowed",)


@admin.register(MarketingSettings)
class MarketingSettingsAdmin(ModelAdmin):
    list_display = ("effective_on", "product", "lgd", "revenue_from_inflow")


@admin.register(ProspectList)
class ProspectListAdmin(ModelAdmin):
    list_display = ("imported_at", "kind", "partner_name", "rows_total", "rows_imported", "rows_duplicate", "rows_rejected")
    readonly_fields = ("sha256", "errors", "imported_by")


class ContactInline(TabularInline):
    model = ContactAttempt
    extra = 0
    readonly_fields = ("by", "at", "channel", "outcome", "note", "next_action_on")


@admin.register(Prospect)
class ProspectAdmin(ModelAdmin):
    list_display = ("name", "uscc", "source_kind", "status", "grade", "indicative_limit", "expected_value", "relationship_manager")
    list_filter = ("source_kind", "status", "grade")
    search_fields = ("name", "uscc")
    list_select_related = ("relationship_manager",)
    raw_id_fields = ("enterprise", "relationship_manager", "prospect_list")
    inlines = [ContactInline]
