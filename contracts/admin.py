from django.contrib import admin

from loanservice.admin import AuditedAdmin

from .models import Contract, ContractTemplate, DisbursementOrder, Signature


@admin.register(ContractTemplate)
class ContractTemplateAdmin(AuditedAdmin):
    list_display = ["kind", "product", "version", "is_active", "created_at"]


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    list_display = ["number", "application", "status", "version", "sha256", "created_at"]

    def has_change_permission(self, request, obj=None):
        return False


admin.site.register([Signature, DisbursementOrder], admin.ModelAdmin)
