from django.contrib import admin

from loanservice.admin import AuditedAdmin

from .models import DataSnapshot, DataSourceConfig, PricingPolicy, QuestionnaireQuestion, Score, ScorecardModel, SiteVisit


@admin.register(DataSourceConfig)
class DataSourceConfigAdmin(AuditedAdmin):
    list_display = ["source", "provider", "base_url", "freshness_days", "is_active"]


@admin.register(ScorecardModel)
class ScorecardModelAdmin(AuditedAdmin):
    list_display = ["version", "name", "is_active", "is_challenger", "created_at", "metrics"]
    readonly_fields = ["version", "spec", "metrics", "created_at"]


@admin.register(PricingPolicy)
class PricingPolicyAdmin(AuditedAdmin):
    list_display = ["effective_on", "lpr_1y", "spreads", "revenue_share", "tax_multiple"]


@admin.register(QuestionnaireQuestion)
class QuestionnaireQuestionAdmin(AuditedAdmin):
    list_display = ["code", "product", "question", "qtype", "required", "order"]


@admin.register(DataSnapshot)
class DataSnapshotAdmin(admin.ModelAdmin):
    list_display = ["enterprise", "source", "as_of", "provider", "status", "fetched_at"]
    list_filter = ["source", "status", "provider"]
    list_select_related = ["enterprise"]


admin.site.register([Score, SiteVisit], admin.ModelAdmin)
