from django.contrib import admin

from loanservice.admin import AuditedAdmin

from .models import ApprovalCase, AuthorityMatrixVersion, AuthorityRule, Decision, ReasonCode


class AuthorityRuleInline(admin.TabularInline):
    model = AuthorityRule
    extra = 0


@admin.register(AuthorityMatrixVersion)
class AuthorityMatrixVersionAdmin(AuditedAdmin):
    list_display = ["number", "note", "is_active", "created_at"]
    inlines = [AuthorityRuleInline]


@admin.register(ReasonCode)
class ReasonCodeAdmin(AuditedAdmin):
    list_display = ["code", "kind", "text", "text_en"]
    list_filter = ["kind"]


@admin.register(ApprovalCase)
class ApprovalCaseAdmin(admin.ModelAdmin):
    list_display = ["id", "application", "route", "tier", "status", "prepared_by", "created_at"]
    list_filter = ["status", "tier"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "application", "tier", "decision", "approver", "automatic", "reason_codes"]
    list_filter = ["decision", "automatic"]

    def has_change_permission(self, request, obj=None):
        return False
