"""The chart of accounts and the account mapping are policy data (audited admin); posted entries are read-only."""

from __future__ import annotations

from django.contrib import admin

from loanservice.admin import AuditedAdmin, ReadOnlyAdmin
from loanservice.admin_base import ModelAdmin, TabularInline

from .models import (
    Account,
    AccountMapping,
    CoreFile,
    JournalEntry,
    JournalLine,
    LedgerPeriod,
    VatExemption,
    VatRule,
    VoucherBatch,
)


@admin.register(Account)
class AccountAdmin(AuditedAdmin):
    list_display = ["code", "name", "name_en", "kind", "parent", "active"]
    list_filter = ["kind", "active"]
    search_fields = ["code", "name", "name_en"]


@admin.register(AccountMapping)
class AccountMappingAdmin(AuditedAdmin):
    list_display = ["role", "product", "account"]
    list_filter = ["role"]


class JournalLineInline(TabularInline):
    model = JournalLine
    fields = ["account", "debit", "credit"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "value_date", "kind", "reference", "branch", "product", "memo", "reverses"]
    list_filter = ["kind", "branch"]
    search_fields = ["reference", "memo"]
    date_hierarchy = "value_date"
    inlines = [JournalLineInline]


@admin.register(LedgerPeriod)
class LedgerPeriodAdmin(ModelAdmin):
    list_display = ["__str__", "closed_at", "closed_by"]
    readonly_fields = ["year", "month", "closed_at", "closed_by"]

    def has_add_permission(self, request):
        return False  # closing a period is `ledger.services.period_close` (audited), never a form

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(VatRule)
class VatRuleAdmin(AuditedAdmin):
    list_display = ["income_account", "payable_account", "rate", "effective_from", "exempt_products", "exempt_tax_classes", "active"]
    list_filter = ["active"]


@admin.register(VatExemption)
class VatExemptionAdmin(AuditedAdmin):
    list_display = ("tax_class", "max_credit", "effective_from", "effective_until", "active")
    list_filter = ("tax_class", "active")


@admin.register(VoucherBatch)
class VoucherBatchAdmin(ReadOnlyAdmin):
    list_display = ["business_date", "status", "entries", "total_debit", "total_credit", "created_at", "sent_at",
                    "core_reference", "attempts"]
    list_filter = ["status"]


@admin.register(CoreFile)
class CoreFileAdmin(ReadOnlyAdmin):
    list_display = ["business_date", "source", "lines", "vouchers", "matched", "balanced", "difference_count", "created_at"]
    list_filter = ["balanced", "source"]
