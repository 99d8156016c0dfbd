from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from loanservice.admin import AuditedAdmin, CalendarDayAdmin, CalendarYearAdmin, ReadOnlyAdmin
from loanservice.admin_base import ModelAdmin, TabularInline
from loanservice.models import CalendarDay, CalendarYear

from .models import (
    ApprovalRequest,
    AutoDebitAttempt,
    ClassificationChange,
    ClassificationFloor,
    CobReconciliation,
    Collateral,
    DelinquencyBucket,
    EarlyWarning,
    Installment,
    Loan,
    LoanProvision,
    MonitoringRun,
    PostloanPolicy,
    PrepaymentRule,
    ProvisionOverlay,
    ProvisionPolicy,
    RateChange,
    RenewalOffer,
    Repayment,
    RepaymentImport,
    SurveyResponse,
    WarningRule,
    WarningTask,
)
from .services import schedules_recompute_for_years


class InstallmentInline(TabularInline):
    model = Installment
    extra = 0
    can_delete = False
    readonly_fields = ["n", "due_date", "principal", "interest", "paid_principal", "paid_interest", "penalty_accrued",
                       "paid_penalty", "settled_on", "superseded"]
    exclude = ["penalty_through"]


class RateChangeInline(TabularInline):
    """The loan's rate history (利率调整记录): written only by close of business."""

    model = RateChange
    extra = 0
    can_delete = False
    readonly_fields = ["effective_on", "old_rate", "new_rate", "lpr_tenor", "lpr_rate", "lpr_date", "spread_bp", "created_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Loan)
class LoanAdmin(ModelAdmin):
    list_display = ["id", "enterprise", "principal", "outstanding_principal", "annual_rate", "rate_type", "dpd", "bucket",
                    "classification", "status"]
    list_filter = ["status", "classification", "bucket", "branch", "rate_type"]
    list_select_related = ["enterprise"]
    search_fields = ["enterprise__name", "enterprise__uscc"]
    readonly_fields = [f.name for f in Loan._meta.fields]
    inlines = [InstallmentInline, RateChangeInline]


# Policy as data: every change audited.
@admin.register(PostloanPolicy)
class PostloanPolicyAdmin(AuditedAdmin):
    list_display = ["effective_from", "penalty_rate_markup", "holiday_rollover", "renewal_window_days", "restructure_min_category"]


@admin.register(DelinquencyBucket)
class DelinquencyBucketAdmin(AuditedAdmin):
    list_display = ["code", "min_dpd", "max_dpd"]


@admin.register(ClassificationFloor)
class ClassificationFloorAdmin(AuditedAdmin):
    list_display = ["category", "dpd_over"]


@admin.register(PrepaymentRule)
class PrepaymentRuleAdmin(AuditedAdmin):
    list_display = ["product_code", "allowed", "lock_in_months", "fee_rate", "fee_free_after_months", "mode"]


@admin.register(WarningRule)
class WarningRuleAdmin(AuditedAdmin):
    list_display = ["code", "name", "source", "kind", "field", "threshold", "severity", "freezes_credit_line", "is_active"]
    list_filter = ["severity", "source", "is_active"]
    readonly_fields = ["evaluated_through"]


@admin.register(EarlyWarning)
class EarlyWarningAdmin(ModelAdmin):
    list_display = ["id", "loan", "rule", "severity", "status", "branch", "detected_on"]
    list_filter = ["severity", "status", "branch", "rule"]
    list_select_related = ["loan", "rule", "branch"]


@admin.register(WarningTask)
class WarningTaskAdmin(ModelAdmin):
    list_display = ["id", "loan", "assigned_to", "status", "due_at", "breached_at", "action"]
    list_filter = ["status", "action"]
    list_select_related = ["loan", "assigned_to"]


@admin.register(MonitoringRun)
class MonitoringRunAdmin(ModelAdmin):
    list_display = ["run_date", "status", "step", "attempts", "started_at", "finished_at"]


admin.site.register([Repayment, ClassificationChange, RepaymentImport, ApprovalRequest, RenewalOffer, SurveyResponse, Collateral],
                    ModelAdmin)


# Provisions and reconciliation (issue #17): the policy is data edited here; measurements, overlays and reconciliations
# are evidence (an overlay is decided on the provisions page, with four eyes).

@admin.register(ProvisionPolicy)
class ProvisionPolicyAdmin(AuditedAdmin):
    list_display = ["effective_from", "forward_looking_factor", "stage2_dpd", "lgd_credit", "ratio_special_mention",
                    "ratio_substandard", "ratio_doubtful", "ratio_loss"]


@admin.register(LoanProvision)
class LoanProvisionAdmin(ReadOnlyAdmin):
    list_display = ["loan", "on", "stage", "category", "grade", "security_type", "pd", "lgd", "ead", "ecl", "change", "reason"]
    list_filter = ["stage", "reason"]
    search_fields = ["loan__id"]


@admin.register(ProvisionOverlay)
class ProvisionOverlayAdmin(ReadOnlyAdmin):
    list_display = ["on", "required", "ecl_total", "amount", "status", "requested_by", "decided_by"]


@admin.register(CobReconciliation)
class CobReconciliationAdmin(ReadOnlyAdmin):
    list_display = ["on", "run", "balanced", "difference_count", "checked_at"]
    list_filter = ["balanced"]


@admin.register(AutoDebitAttempt)
class AutoDebitAttemptAdmin(ReadOnlyAdmin):
    list_display = ["on", "loan", "requested", "debited", "status", "core_reference", "error"]
    list_filter = ["status", "on"]
    search_fields = ["loan__id", "reference", "core_reference"]


# ---------------------------------------------------------------- the official calendar (the kernel's models)
# Loading a year's holidays (or changing a day) moves that year's provisional due dates by each contract's holiday
# rule: an explicit call of the post-loan service here, after the save, not a signal on the kernel's models (the
# kernel's admin cannot call a stage; this one replaces it). The command `due_dates_recompute YEAR` does the same.
def _due_dates_recompute(modeladmin, request, years) -> None:
    result = schedules_recompute_for_years(years=sorted(set(years)), by=request.user)
    if result["moved"]:
        modeladmin.message_user(request, _("已按节假日重算 %(moved)s 个还款日（%(loans)s 笔贷款） / %(moved)s due dates moved on %(loans)s loans.")
                                % {"moved": result["moved"], "loans": len(result["loans"])}, messages.SUCCESS)


@admin.action(description=_("重算所选年份的暂定还款日 / Recompute the provisional due dates of the selected years"))
def recompute_year_due_dates(modeladmin, request, queryset):
    _due_dates_recompute(modeladmin, request, queryset.values_list("year", flat=True))


@admin.action(description=_("重算所选日期所在年份的暂定还款日 / Recompute the provisional due dates of the selected days' years"))
def recompute_day_due_dates(modeladmin, request, queryset):
    _due_dates_recompute(modeladmin, request, (d.year for d in queryset.values_list("date", flat=True)))


admin.site.unregister(CalendarYear)
admin.site.unregister(CalendarDay)


@admin.register(CalendarYear)
class CalendarYearDueDatesAdmin(CalendarYearAdmin):
    actions = [recompute_year_due_dates]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        _due_dates_recompute(self, request, [obj.year])


@admin.register(CalendarDay)
class CalendarDayDueDatesAdmin(CalendarDayAdmin):
    actions = [recompute_day_due_dates]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)  # the cached calendar is dropped first (the kernel's admin)
        _due_dates_recompute(self, request, [obj.date.year])  # nothing moves while the year is not loaded
