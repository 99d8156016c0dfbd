"""Admin for the kernel. Every admin change of policy data is audited (AuditedAdmin)."""

from __future__ import annotations

from django.contrib import admin
from django.forms.models import model_to_dict

from .admin_base import ModelAdmin
from .audit import audit_record
from .models import (
    AuditEvent,
    Branch,
    CalendarDay,
    CalendarYear,
    Notification,
    Profile,
    RetentionRule,
    SlaClock,
    SlaTarget,
)
from .sla import business_calendar_changed


def _jsonable(obj) -> dict:
    return {k: (v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else str(v)) for k, v in model_to_dict(obj).items()}


class AuditedAdmin(ModelAdmin):
    """Writes an audit event (before and after) for every add, change and delete made in admin."""

    def save_model(self, request, obj, form, change):
        before = _jsonable(type(obj).objects.get(pk=obj.pk)) if change and obj.pk else {}
        super().save_model(request, obj, form, change)
        audit_record(actor=request.user, action=f"admin.{'change' if change else 'add'}", obj=obj,
                     data={"before": before, "after": _jsonable(obj)}, ip=request.META.get("REMOTE_ADDR"))

    def delete_model(self, request, obj):
        audit_record(actor=request.user, action="admin.delete", obj=obj, data={"before": _jsonable(obj)},
                     ip=request.META.get("REMOTE_ADDR"))
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(Branch)
class BranchAdmin(AuditedAdmin):
    list_display = ["code", "name", "parent", "is_head_office", "is_default", "region_prefixes"]


@admin.register(Profile)
class ProfileAdmin(AuditedAdmin):
    list_display = ["user", "display_name", "phone", "branch", "supervisor"]
    list_select_related = ["user", "branch", "supervisor"]
    list_filter = ["branch"]


@admin.register(RetentionRule)
class RetentionRuleAdmin(AuditedAdmin):
    list_display = ["kind", "years", "is_active", "basis"]


@admin.register(SlaTarget)
class SlaTargetAdmin(AuditedAdmin):
    list_display = ["stage", "product_code", "business_days"]


@admin.register(CalendarDay)
class CalendarDayAdmin(AuditedAdmin):
    list_display = ["date", "kind", "name"]
    list_filter = ["kind"]
    date_hierarchy = "date"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        business_calendar_changed()


@admin.register(CalendarYear)
class CalendarYearAdmin(AuditedAdmin):
    list_display = ["year", "source", "loaded_at"]


@admin.register(SlaClock)
class SlaClockAdmin(ModelAdmin):
    list_display = ["case_id", "stage", "owner", "started_at", "due_at", "stopped_at", "breached_at"]
    list_filter = ["stage"]
    list_select_related = ["owner"]

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(ModelAdmin):
    """Records that are evidence (the audit trail, uploads, issued contracts, posted ledger entries): visible in admin,
    never added, changed or deleted there."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor_label", "action", "object_type", "object_id", "from_state", "to_state"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_id", "actor_label", "action"]


@admin.register(Notification)
class NotificationAdmin(ModelAdmin):
    list_display = ["created_at", "user", "kind", "title", "read_at"]
    list_select_related = ["user"]
