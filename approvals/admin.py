"""Admin for approval policy. The authority matrix is versioned: a draft's rows are edited here (each
change audited); activating a draft or copying a version to a new draft are explicit, audited actions."""

from django.contrib import admin, messages
from django.forms.models import model_to_dict
from django.utils.translation import gettext_lazy as _

from loanservice.admin import AuditedAdmin
from loanservice.admin_base import ModelAdmin, TabularInline
from loanservice.audit import audit_record
from loanservice.errors import ApplicationError, Conflict

from . import services
from .models import (
    ApprovalCase,
    AuthorityMatrixVersion,
    AuthorityRule,
    CommitteeResolution,
    ConflictOfInterest,
    CreditCommittee,
    Decision,
    ReasonCode,
    ReferralRule,
    RelatedParty,
    RoutingRecord,
)

RULE_FIELDS = ["priority", "product", "branch", "min_amount", "max_amount", "grades", "customer_ratings", "related_party",
               "route", "note"]


def _row(obj) -> dict:
    return {k: (v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else str(v))
            for k, v in model_to_dict(obj, fields=RULE_FIELDS).items()}


class AuthorityRuleInline(TabularInline):
    model = AuthorityRule
    fields = RULE_FIELDS
    extra = 0

    def _editable(self, obj) -> bool:
        return obj is None or obj.is_draft

    def has_add_permission(self, request, obj=None):
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(obj) and super().has_delete_permission(request, obj)


@admin.register(AuthorityMatrixVersion)
class AuthorityMatrixVersionAdmin(ModelAdmin):
    list_display = ["number", "state_label", "note", "based_on", "created_by", "created_at", "activated_at", "activated_by"]
    readonly_fields = ["number", "is_active", "based_on", "created_by", "created_at", "activated_at", "activated_by", "retired_at"]
    fields = ["number", "note", "is_active", "based_on", "created_by", "created_at", "activated_at", "activated_by", "retired_at"]
    inlines = [AuthorityRuleInline]
    actions = ["copy_to_draft", "activate"]

    @admin.display(description=_("状态 state"))
    def state_label(self, obj):
        return {"draft": "草稿 draft", "active": "生效 active", "retired": "已停用 retired"}[obj.state]

    def has_change_permission(self, request, obj=None):
        # An activated version is frozen: it can be viewed and copied, never edited.
        return (obj is None or obj.is_draft) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return (obj is None or obj.is_draft) and super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if not change:  # a new version from the add form is a copy of the active one
            draft = services.matrix_version_draft_create(by=request.user, note=obj.note)
            obj.pk, obj.number = draft.pk, draft.number
            obj.created_by, obj.based_on, obj.created_at = draft.created_by, draft.based_on, draft.created_at
            return
        before = model_to_dict(AuthorityMatrixVersion.objects.get(pk=obj.pk), fields=["note"])
        super().save_model(request, obj, form, change)
        audit_record(actor=request.user, action="admin.change", obj=obj, data={"before": before, "after": {"note": obj.note}},
                     ip=request.META.get("REMOTE_ADDR"))

    def save_formset(self, request, form, formset, change):
        # Every added, changed or deleted row of a draft is audited with its before and after.
        version = form.instance
        befores = {f.instance.pk: _row(AuthorityRule.objects.get(pk=f.instance.pk))
                   for f in formset.forms if f.instance.pk and f.has_changed()}
        deleted = [_row(f.instance) for f in formset.deleted_forms if f.instance.pk]
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            audit_record(actor=request.user, action="authority_matrix.rule_add", obj=version, data={"rule": obj.pk, "after": _row(obj)})
        for obj, _fields in formset.changed_objects:
            audit_record(actor=request.user, action="authority_matrix.rule_change", obj=version,
                         data={"rule": obj.pk, "before": befores.get(obj.pk, {}), "after": _row(obj)})
        for row in deleted:
            audit_record(actor=request.user, action="authority_matrix.rule_delete", obj=version, data={"before": row})

    def delete_model(self, request, obj):
        audit_record(actor=request.user, action="admin.delete", obj=obj, data={"number": obj.number},
                     ip=request.META.get("REMOTE_ADDR"))
        super().delete_model(request, obj)

    @admin.action(description=_("复制为新草稿 copy to a new draft"))
    def copy_to_draft(self, request, queryset):
        for version in queryset.order_by("number"):
            draft = services.matrix_version_draft_create(by=request.user, based_on=version)
            self.message_user(request, f"v{draft.number} ← v{version.number}", messages.SUCCESS)

    @admin.action(description=_("启用所选草稿 activate the selected draft"))
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("请只选择一个草稿 / Select exactly one draft."), messages.ERROR)
            return
        try:
            version = services.matrix_version_activate(version=queryset.get(), by=request.user, reason="admin")
        except (ApplicationError, Conflict) as exc:
            detail = "; ".join(f"{k}: {', '.join(v)}" for k, v in getattr(exc, "errors", {}).items())
            self.message_user(request, f"{exc.message} {detail}".strip(), messages.ERROR)
            return
        self.message_user(request, _("v%(n)s 已生效 / v%(n)s is now active.") % {"n": version.number}, messages.SUCCESS)


@admin.register(ReasonCode)
class ReasonCodeAdmin(AuditedAdmin):
    list_display = ["code", "kind", "text", "text_en"]
    list_filter = ["kind"]


@admin.register(ReferralRule)
class ReferralRuleAdmin(AuditedAdmin):
    list_display = ["code", "source", "field", "operator", "threshold", "message", "is_active", "order"]
    list_filter = ["is_active", "source"]


@admin.register(CreditCommittee)
class CreditCommitteeAdmin(AuditedAdmin):
    list_display = ["name", "chair", "secretary", "quorum", "resolution_recorders", "resolution_reminder_hours", "is_active"]


@admin.register(RelatedParty)
class RelatedPartyAdmin(AuditedAdmin):
    list_display = ["name", "relation", "uscc", "id_number", "is_active", "created_at"]
    list_filter = ["relation", "is_active"]
    search_fields = ["name", "uscc", "=id_number"]


@admin.register(ConflictOfInterest)
class ConflictOfInterestAdmin(AuditedAdmin):
    list_display = ["user", "enterprise", "reason", "is_active", "declared_at"]
    list_select_related = ["user", "enterprise"]
    raw_id_fields = ["enterprise"]


@admin.register(ApprovalCase)
class ApprovalCaseAdmin(ModelAdmin):
    list_display = ["id", "application", "route", "tier", "status", "matrix_version", "prepared_by", "created_at"]
    list_filter = ["status", "tier"]
    list_select_related = ["application__enterprise", "matrix_version", "prepared_by"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Decision)
class DecisionAdmin(ModelAdmin):
    list_display = ["created_at", "application", "tier", "decision", "approver", "automatic", "reason_codes", "matrix_version"]
    list_filter = ["decision", "automatic"]
    list_select_related = ["application__enterprise", "approver"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CommitteeResolution)
class CommitteeResolutionAdmin(ModelAdmin):
    list_display = ["recorded_at", "case", "outcome", "votes_for", "votes_against", "quorum", "chair"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RoutingRecord)
class RoutingRecordAdmin(ModelAdmin):
    list_display = ["created_at", "application", "route", "matrix_version", "rule_note", "model_version"]
    list_filter = ["route", "matrix_version"]

    def has_change_permission(self, request, obj=None):
        return False
