from django.contrib import admin

from .models import ClassificationChange, Installment, Loan, Repayment


class InstallmentInline(admin.TabularInline):
    model = Installment
    extra = 0
    can_delete = False


@admin.register(Loan)
class LoanAdmin(admin.ModelAdmin):
    list_display = ["id", "enterprise", "principal", "outstanding_principal", "dpd", "bucket", "classification", "status"]
    list_filter = ["status", "classification", "bucket"]
    list_select_related = ["enterprise"]
    inlines = [InstallmentInline]


admin.site.register([Repayment, ClassificationChange], admin.ModelAdmin)
