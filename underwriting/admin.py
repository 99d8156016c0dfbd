from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from loanservice.admin import AuditedAdmin
from loanservice.admin_base import ModelAdmin
from loanservice.errors import ApplicationError, Conflict

from . import services
from .models import (
    CaseNote,
    Collateral,
    DataSnapshot,
    DataSourceConfig,
    Guarantor,
    LoanPrimeRate,
    ModelRiskPolicy,
    PDTermStructure,
    PricingPolicy,
    QuestionnaireQuestion,
    Score,
    ScorecardModel,
    SiteVisit,
)


@admin.register(DataSourceConfig)
class DataSourceConfigAdmin(AuditedAdmin):
    list_display = ["source", "provider", "base_url", "timeout_seconds", "retries", "breaker_threshold", "freshness_days", "is_active"]


@admin.register(ScorecardModel)
class ScorecardModelAdmin(AuditedAdmin):
    """Models are versioned and never edited; the champion and the challenger are chosen by the actions,
    which go through the services (one champion at a time, audited)."""

    list_display = ["version", "name", "is_active", "is_challenger", "created_at", "auc", "has_development"]
    readonly_fields = ["version", "spec", "metrics", "development", "is_active", "is_challenger", "created_at"]
    actions = ["make_champion", "make_challenger", "clear_challenger"]

    @admin.display(description="AUC")
    def auc(self, obj):
        value = (obj.metrics or {}).get("auc")
        return "—" if value is None else f"{value:.4f}"

    @admin.display(description=_("有PSI基准 PSI baseline"), boolean=True)
    def has_development(self, obj):
        return bool(obj.development)

    @admin.action(description=_("设为冠军模型（启用）/ Activate as champion"))
    def make_champion(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("请只选择一个版本 / Choose exactly one version."), messages.ERROR)
            return
        model = services.scorecard_activate(model=queryset.get(), by=request.user)
        self.message_user(request, _("v%(v)s 已成为冠军模型 / v%(v)s is now the champion.") % {"v": model.version})

    @admin.action(description=_("设为挑战者（影子评分）/ Score in shadow as challenger"))
    def make_challenger(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("请只选择一个版本 / Choose exactly one version."), messages.ERROR)
            return
        try:
            model = services.scorecard_challenger_set(model=queryset.get(), by=request.user)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, _("v%(v)s 将在影子模式下评分 / v%(v)s scores in shadow.") % {"v": model.version})

    @admin.action(description=_("取消挑战者 / Stop the shadow scoring"))
    def clear_challenger(self, request, queryset):
        services.scorecard_challenger_set(model=None, by=request.user)
        self.message_user(request, _("已取消挑战者 / No challenger now."))


@admin.register(ModelRiskPolicy)
class ModelRiskPolicyAdmin(AuditedAdmin):
    list_display = ["effective_from", "forward_looking_factor", "pd_min_loans", "pd_min_defaults", "drift_min_sample",
                    "drift_watch", "drift_shift", "backtest_yellow", "backtest_red"]


@admin.register(PDTermStructure)
class PDTermStructureAdmin(ModelAdmin):
    """Versions are made by `manage.py estimate_pd_term_structure` and never edited; approving one (another
    person than its creator) puts it in force from its effective date."""

    list_display = ["version", "name", "effective_from", "as_of", "horizon_months", "basis", "created_by", "approved_by",
                    "approved_at"]
    readonly_fields = ["version", "name", "effective_from", "as_of", "horizon_months", "curves", "basis", "sample",
                       "created_by", "created_at", "approved_by", "approved_at"]
    actions = ["approve"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("批准所选版本 / Approve the version"))
    def approve(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("请只选择一个版本 / Choose exactly one version."), messages.ERROR)
            return
        try:
            structure = services.pd_term_structure_approve(structure=queryset.get(), by=request.user)
        except (ApplicationError, Conflict) as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, _("v%(v)s 已批准 / v%(v)s is approved.") % {"v": structure.version})


@admin.register(PricingPolicy)
class PricingPolicyAdmin(AuditedAdmin):
    list_display = ["effective_on", "lpr_1y", "spreads", "revenue_share", "tax_multiple", "debt_share", "collateral_ltv"]


@admin.register(LoanPrimeRate)
class LoanPrimeRateAdmin(AuditedAdmin):
    """运营每月20日（遇节假日顺延）录入当月公布的LPR / Operations enter each month's publication."""

    list_display = ["published_on", "tenor", "rate"]
    list_filter = ["tenor"]
    date_hierarchy = "published_on"
    ordering = ["-published_on", "tenor"]


@admin.register(QuestionnaireQuestion)
class QuestionnaireQuestionAdmin(AuditedAdmin):
    list_display = ["code", "product", "question", "qtype", "required", "order"]


@admin.register(DataSnapshot)
class DataSnapshotAdmin(ModelAdmin):
    list_display = ["enterprise", "source", "as_of", "provider", "status", "error_code", "fetched_at"]
    list_filter = ["source", "status", "provider", "error_code"]
    list_select_related = ["enterprise"]


@admin.register(Collateral)
class CollateralAdmin(ModelAdmin):
    list_display = ["application", "kind", "valuation", "ltv", "appraiser", "appraised_on"]
    list_select_related = ["application__enterprise"]


@admin.register(Guarantor)
class GuarantorAdmin(ModelAdmin):
    list_display = ["application", "kind", "name", "prescreen_passed", "created_at"]
    list_select_related = ["application__enterprise"]


admin.site.register([Score, SiteVisit, CaseNote], ModelAdmin)
