"""Contracts: templates, issued PDF contracts, signatures, and disbursement orders."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from applications.models import MONEY, LoanApplication, LoanProduct
from loanservice.storage import private_storage


class ContractTemplate(models.Model):
    KINDS = [("loan", _("借款合同 loan contract")), ("guarantee", _("保证合同 guarantee contract")),
             ("mortgage", _("抵押合同 mortgage contract"))]
    kind = models.CharField(max_length=20, choices=KINDS, default="loan")
    product = models.ForeignKey(LoanProduct, null=True, blank=True, on_delete=models.CASCADE,
                                help_text=_("为空表示所有产品 / empty: every product"))
    version = models.PositiveIntegerField()
    html = models.TextField(help_text=_("Django 模板语法，可用字段见文档 / Django template syntax; fields in docs/contracts.md"))
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("合同模板 contract template")
        verbose_name_plural = _("合同模板 contract templates")
        constraints = [models.UniqueConstraint(fields=["kind", "product", "version"], name="uniq_template_version")]

    def __str__(self) -> str:
        return f"{self.kind} v{self.version} {self.product.code if self.product else '*'}"


def contract_upload_to(instance, filename: str) -> str:
    return f"contracts/{instance.application_id}/{filename}"


class Contract(ConcurrentTransitionMixin, models.Model):
    class Status(models.TextChoices):
        ISSUED = "issued", _("待借款人签署 awaiting borrower")
        BORROWER_SIGNED = "borrower_signed", _("待银行签章 awaiting bank")
        SIGNED = "signed", _("已签署 signed")
        VOIDED = "voided", _("已作废 voided")

    application = models.ForeignKey(LoanApplication, on_delete=models.PROTECT, related_name="contracts")
    kind = models.CharField(max_length=20, default="loan")
    number = models.CharField(max_length=40, unique=True)
    version = models.PositiveSmallIntegerField(default=1)
    template = models.ForeignKey(ContractTemplate, on_delete=models.PROTECT)
    status = FSMField(default=Status.ISSUED, choices=Status.choices, protected=True)
    terms = models.JSONField(default=dict)
    pdf = models.FileField(upload_to=contract_upload_to, storage=private_storage, max_length=200)
    sha256 = models.CharField(max_length=64)
    signed_pdf = models.FileField(upload_to=contract_upload_to, storage=private_storage, max_length=200, blank=True)
    signed_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("合同 contract")
        verbose_name_plural = _("合同 contracts")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.number

    @transition(field=status, source=Status.ISSUED, target=Status.BORROWER_SIGNED)
    def borrower_sign(self):
        pass

    @transition(field=status, source=Status.BORROWER_SIGNED, target=Status.SIGNED)
    def bank_sign(self):
        pass

    @transition(field=status, source=[Status.ISSUED, Status.BORROWER_SIGNED], target=Status.VOIDED)
    def void(self):
        pass


class Signature(models.Model):
    PARTIES = [("borrower", _("借款人 borrower")), ("guarantor", _("保证人 guarantor")), ("bank", _("贷款人 bank"))]
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="signatures")
    party = models.CharField(max_length=10, choices=PARTIES)
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    signer_label = models.CharField(max_length=150)
    signed_at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    document_sha256 = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("签署记录 signature")
        verbose_name_plural = _("签署记录 signatures")
        ordering = ["signed_at", "id"]
        constraints = [models.UniqueConstraint(fields=["contract", "party"], name="one_signature_per_party")]

    def __str__(self) -> str:
        return f"{self.contract.number} {self.party}"


class DisbursementOrder(ConcurrentTransitionMixin, models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("待放款 pending")
        RELEASED = "released", _("已放款 released")
        CANCELLED = "cancelled", _("已取消 cancelled")

    application = models.OneToOneField(LoanApplication, on_delete=models.PROTECT, related_name="disbursement")
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT)
    amount = models.DecimalField(**MONEY)
    account = models.CharField(_("收款账户 account"), max_length=40)
    status = FSMField(default=Status.PENDING, choices=Status.choices, protected=True)
    conditions = models.JSONField(default=list, blank=True, help_text="conditions precedent [{code, text, met, evidence, by, at}]")
    idempotency_key = models.CharField(max_length=200, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    core_banking_ref = models.CharField(max_length=60, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("放款指令 disbursement order")
        verbose_name_plural = _("放款指令 disbursement orders")

    def __str__(self) -> str:
        return f"disbursement of #{self.application_id}"

    @transition(field=status, source=Status.PENDING, target=Status.RELEASED)
    def release(self):
        self.released_at = timezone.now()
