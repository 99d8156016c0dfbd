"""Admin for contracts: versioned templates (published, never edited in place), conditions precedent as
data, and read-only views of what was issued, signed, released and sent to core banking."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from loanservice.admin import AuditedAdmin, ReadOnlyAdmin
from loanservice.admin_base import ModelAdmin, TabularInline
from loanservice.audit import audit_record
from loanservice.errors import ApplicationError

from . import services
from .models import (
    ConditionPrecedent,
    Contract,
    ContractTemplate,
    CoreBankingOutbound,
    DisbursementOrder,
    Signature,
)


class ContractTemplateForm(forms.ModelForm):
    class Meta:
        model = ContractTemplate
        fields = ["kind", "product", "title", "html", "note", "is_active"]
        widgets = {"html": forms.Textarea(attrs={"rows": 30, "cols": 120, "style": "font-family:monospace"})}

    def clean(self):
        data = super().clean()
        if self.instance.pk is None:
            try:
                services.contract_template_check(kind=data.get("kind") or "", html=data.get("html") or "")
            except ApplicationError as exc:
                raise ValidationError({k if k in self.fields else None: v for k, v in exc.errors.items()} or exc.message) from None
        return data


@admin.register(ContractTemplate)
class ContractTemplateAdmin(ModelAdmin):
    """Adding a template publishes the next version of its (kind, product) and retires the previous one.
    A published version is read-only (contracts were issued from it); revise it as a new version."""

    form = ContractTemplateForm
    list_display = ["kind", "product", "version", "title", "is_active", "created_by", "created_at"]
    list_filter = ["kind", "is_active", "product"]
    list_select_related = ["product", "created_by"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ["revise_link"]
        return ["kind", "product", "version", "title", "html", "note", "created_by", "created_at", "revise_link"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["kind", "product", "title", "html", "note"]
        return ["revise_link", "kind", "product", "version", "title", "is_active", "note", "created_by", "created_at", "html"]

    @admin.display(description=_("修订 revise"))
    def revise_link(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        url = reverse("admin:contracts_contracttemplate_add") + f"?copy_from={obj.pk}"
        return format_html('<a class="button" href="{}">{}</a>', url, _("基于此版本修订为新版本 / Revise as a new version"))

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        source = ContractTemplate.objects.filter(pk=request.GET.get("copy_from") or 0).first()
        if source is not None:
            initial.update(kind=source.kind, product=source.product_id, title=source.title, html=source.html,
                           note=f"revised from v{source.version}")
        return initial

    def save_model(self, request, obj, form, change):
        if change:  # only is_active is editable on a published version
            super().save_model(request, obj, form, change)
            audit_record(actor=request.user, action="admin.change", obj=obj, data={"is_active": obj.is_active},
                         ip=request.META.get("REMOTE_ADDR"))
            return
        new = services.contract_template_publish(kind=obj.kind, html=obj.html, product=obj.product, title=obj.title,
                                                 note=obj.note, by=request.user)
        obj.pk, obj.version, obj.created_at, obj.created_by = new.pk, new.version, new.created_at, new.created_by
        obj._state.adding = False
        messages.info(request, _("已发布第 %(v)s 版，之前的版本已停用 / Published as version %(v)s; earlier versions retired.")
                      % {"v": new.version})

    def has_delete_permission(self, request, obj=None):
        return obj is None or not obj.contract_set.exists()


@admin.register(ConditionPrecedent)
class ConditionPrecedentAdmin(AuditedAdmin):
    list_display = ["code", "text", "scope", "secured_only", "auto_check", "contract_kind", "is_active", "order"]
    list_filter = ["scope", "auto_check", "is_active"]
    filter_horizontal = ["products"]
    search_fields = ["code", "text"]


class SignatureInline(TabularInline):
    model = Signature
    extra = 0
    can_delete = False
    fields = ["party", "party_name", "signer_label", "signed_at", "ip", "user_agent", "document_sha256", "result_sha256"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Contract)
class ContractAdmin(ReadOnlyAdmin):
    list_display = ["number", "kind", "application", "status", "version", "customer_party", "sha256", "created_at"]
    list_filter = ["kind", "status"]
    list_select_related = ["application__enterprise"]
    search_fields = ["number", "sha256", "application__enterprise__name"]
    inlines = [SignatureInline]
    exclude = ["pdf", "borrower_signed_pdf", "signed_pdf"]  # private storage has no URL to link to (the page was a 500); sha256 identifies them


@admin.register(DisbursementOrder)
class DisbursementOrderAdmin(ReadOnlyAdmin):
    list_display = ["application", "amount", "account", "status", "released_at", "released_by", "core_banking_ref"]
    list_filter = ["status"]
    list_select_related = ["application__enterprise", "released_by"]


@admin.register(CoreBankingOutbound)
class CoreBankingOutboundAdmin(ReadOnlyAdmin):
    list_display = ["order", "status", "attempts", "external_ref", "adapter", "last_error", "created_at", "sent_at"]
    list_filter = ["status"]
    actions = ["resend"]

    @admin.action(description=_("立即重发 / Send now"))
    def resend(self, request, queryset):
        sent = 0
        for outbound in queryset.filter(status=CoreBankingOutbound.Status.PENDING):
            sent += services.core_banking_send(outbound_id=outbound.pk).status == CoreBankingOutbound.Status.SENT
        self.message_user(request, _("已发送 %(n)s 条 / %(n)s sent") % {"n": sent})


@admin.register(Signature)
class SignatureAdmin(ReadOnlyAdmin):
    list_display = ["contract", "party", "party_name", "signer_label", "signed_at", "ip", "document_sha256"]
    list_select_related = ["contract"]
