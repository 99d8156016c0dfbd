"""Credit lines in admin: read only (every change goes through the services, with its audit event and approval)."""

from django.contrib import admin

from loanservice.admin import ReadOnlyAdmin

from .models import CreditLine, Drawdown, LineChangeRequest, LineReviewTask


@admin.register(CreditLine)
class CreditLineAdmin(ReadOnlyAdmin):
    list_display = ["id", "enterprise", "product", "limit", "valid_from", "valid_until", "status", "branch"]
    list_filter = ["status", "product", "branch"]
    list_select_related = ["enterprise", "product", "branch"]
    search_fields = ["enterprise__name", "enterprise__uscc"]


@admin.register(Drawdown)
class DrawdownAdmin(ReadOnlyAdmin):
    list_display = ["receipt_number", "line", "loan", "amount", "term_months", "repayment_method", "payee_name", "created_at"]
    list_select_related = ["line", "loan"]
    search_fields = ["receipt_number", "line__enterprise__name"]


@admin.register(LineChangeRequest)
class LineChangeRequestAdmin(ReadOnlyAdmin):
    list_display = ["id", "line", "kind", "limit", "status", "requested_by", "decided_by", "requested_at"]
    list_filter = ["kind", "status"]


@admin.register(LineReviewTask)
class LineReviewTaskAdmin(ReadOnlyAdmin):
    list_display = ["id", "line", "due_on", "assigned_to", "status"]
    list_filter = ["status"]
