"""Contracts: templates, issued PDF contracts, signatures, and disbursement orders."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, transition

from applications.models import MONEY, Enterprise, IdentityVerification, LoanApplication, LoanProduct
from loanservice.fsm import ConcurrentTransitionMixin
from loanservice.storage import private_storage


class ContractTemplate(models.Model):
    KINDS = [("loan", _("借款合同 loan contract")), ("guarantee", _("保证合同 guarantee contract")),
             ("mortgage", _("抵押合同 mortgage contract"))]
    # A template may also be the revolving line's 循环借款合同: it is issued as the package's loan contract
    # (Contract.kind "loan") for a product of kind credit_line.
    TEMPLATE_KINDS = [*KINDS, ("credit_line", _("循环借款合同 revolving credit line contract"))]
    kind = models.CharField(max_length=20, choices=TEMPLATE_KINDS, default="loan")
    product = models.ForeignKey(LoanProduct, null=True, blank=True, on_delete=models.CASCADE,
                                help_text=_("为空表示所有产品 / empty: every product"))
    version = models.PositiveIntegerField(editable=False)
    title = models.CharField(_("合同名称 title"), max_length=100, blank=True,
                             help_text=_("为空时按合同类型命名 / empty: named after the kind"))
    html = models.TextField(help_text=_("Django 模板语法，可用字段见文档 / Django template syntax; fields in docs/contracts.md"))
    note = models.CharField(_("版本说明 change note"), max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("合同模板 contract template")
        verbose_name_plural = _("合同模板 contract templates")
        constraints = [models.UniqueConstraint(fields=["kind", "product", "version"], name="uniq_template_version")]

    def __str__(self) -> str:
        return f"{self.kind} v{self.version} {self.product.code if self.product else '*'}"

    @property
    def display_title(self) -> str:
        return self.title or DEFAULT_TITLES.get(self.kind, self.kind)


DEFAULT_TITLES = {"loan": "流动资金借款合同", "guarantee": "保证合同", "mortgage": "抵押合同", "credit_line": "循环借款合同"}


def contract_upload_to(instance, filename: str) -> str:
    return f"contracts/{instance.application_id}/{filename}"


class Contract(ConcurrentTransitionMixin, models.Model):
    """An issued contract: the exact PDF bytes (and their SHA-256) never change once issued. A correction
    voids it and issues the next version (``supersedes`` points back)."""

    class Status(models.TextChoices):
        ISSUED = "issued", _("待客户签署 awaiting customer signature")
        BORROWER_SIGNED = "borrower_signed", _("待银行签章 awaiting bank seal")
        SIGNED = "signed", _("已签署 signed")
        VOIDED = "voided", _("已作废 voided")

    CUSTOMER_PARTIES = [("borrower", _("借款人 borrower")), ("guarantor", _("保证人 guarantor"))]

    application = models.ForeignKey(LoanApplication, on_delete=models.PROTECT, related_name="contracts")
    kind = models.CharField(max_length=20, default="loan", choices=ContractTemplate.KINDS)
    customer_party = models.CharField(_("客户方 customer party"), max_length=10, choices=CUSTOMER_PARTIES, default="borrower",
                                      help_text=_("先签署的一方；银行最后签章 / signs first; the bank seals last"))
    security_ref = models.CharField(_("担保标识 security"), max_length=40, blank=True,
                                    help_text=_("保证合同对应的保证人，如 guarantor:12 / which guarantor a guarantee contract is for"))
    number = models.CharField(max_length=40, unique=True)
    version = models.PositiveSmallIntegerField(default=1)
    supersedes = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by")
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True)
    template = models.ForeignKey(ContractTemplate, on_delete=models.PROTECT)
    status = FSMField(default=Status.ISSUED, choices=Status.choices, protected=True)
    terms = models.JSONField(default=dict)
    pdf = models.FileField(upload_to=contract_upload_to, storage=private_storage, max_length=200)
    sha256 = models.CharField(max_length=64)
    signed_pdf = models.FileField(upload_to=contract_upload_to, storage=private_storage, max_length=200, blank=True)
    signed_sha256 = models.CharField(max_length=64, blank=True)
    # The file with the borrowing enterprise's own PAdES signature (its certificate from the bank's sandbox CA),
    # made when its verified representative signs; the bank's seal is then added to these bytes.
    borrower_signed_pdf = models.FileField(upload_to=contract_upload_to, storage=private_storage, max_length=200,
                                           blank=True)
    borrower_signed_sha256 = models.CharField(max_length=64, blank=True)
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
        self.voided_at = timezone.now()

    @property
    def title(self) -> str:
        return self.terms.get("title") or DEFAULT_TITLES.get(self.kind, self.kind)


class EnterpriseCertificate(models.Model):
    """An enterprise's signing certificate (企业签名证书), issued by the bank's sandbox CA on the enterprise's first
    signature and reused for every later one while valid. Subject: the enterprise's name (CN, O) and its 统一社会信用代码
    (serialNumber). The private key is kept by the bank for the enterprise (loanservice.pki, key ``key_name``): it
    is used only when the enterprise's verified representative signs with the SMS code."""

    enterprise = models.ForeignKey(Enterprise, on_delete=models.PROTECT, related_name="signing_certificates")
    serial = models.CharField(_("证书序列号 serial"), max_length=64, unique=True)
    subject = models.CharField(_("证书主题 subject"), max_length=300)
    issuer = models.CharField(_("签发机构 issuer"), max_length=300)
    certificate_pem = models.TextField()
    fingerprint_sha256 = models.CharField(max_length=64)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    key_name = models.CharField(max_length=80)
    issued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("企业签名证书 enterprise signing certificate")
        verbose_name_plural = _("企业签名证书 enterprise signing certificates")
        ordering = ["-issued_at", "-id"]

    def __str__(self) -> str:
        return f"{self.subject} #{self.serial[:12]}"


class Signature(models.Model):
    PARTIES = [("borrower", _("借款人 borrower")), ("guarantor", _("保证人 guarantor")), ("bank", _("贷款人 bank"))]
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="signatures")
    party = models.CharField(max_length=10, choices=PARTIES)
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    signer_label = models.CharField(max_length=150)
    party_name = models.CharField(_("签署方名称 party name"), max_length=200, blank=True)
    signed_at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    document_sha256 = models.CharField(_("所签文件摘要 SHA-256 of the PDF signed"), max_length=64)
    result_sha256 = models.CharField(_("签章后文件摘要 SHA-256 after sealing"), max_length=64, blank=True)
    # How the signer was verified (DESIGN.md, Trust rules): the identity verification of the borrower's legal
    # representative or agent, and the SMS code at signing; empty for the bank's seal.
    verification = models.ForeignKey(IdentityVerification, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="signatures")
    verification_method = models.CharField(_("签署人核验方式 how the signer was verified"), max_length=40, blank=True)
    # The certificate of the enterprise's PAdES signature in the PDF (empty for click-to-sign records).
    certificate = models.ForeignKey(EnterpriseCertificate, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="signatures")

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

    class Kind(models.TextChoices):
        LOAN = "loan", _("贷款放款 loan disbursement")
        DRAWDOWN = "drawdown", _("额度用信 credit-line drawdown")

    # One order per term-loan case; a credit line's case has one per drawdown under its contract (creditlines).
    application = models.ForeignKey(LoanApplication, on_delete=models.PROTECT, related_name="disbursement_orders")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.LOAN)
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT)
    amount = models.DecimalField(**MONEY)
    account = models.CharField(_("收款账户 account"), max_length=40)
    account_name = models.CharField(_("收款户名 account name"), max_length=200, blank=True)
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
        constraints = [models.UniqueConstraint(fields=["application"], condition=models.Q(kind="loan"),
                                               name="one_loan_disbursement_per_application")]

    def __str__(self) -> str:
        return f"disbursement of #{self.application_id}"

    @transition(field=status, source=Status.PENDING, target=Status.RELEASED)
    def release(self):
        self.released_at = timezone.now()

    @property
    def unmet_conditions(self) -> list[dict]:
        return [c for c in self.conditions if not c.get("met")]


class ConditionPrecedent(models.Model):
    """放款前提条件 as data. ``scope=product``: every disbursement of the products named (all when none);
    ``scope=approval``: only when an approver attaches this code as a condition. ``auto_check`` names a rule that
    proves it from data (contracts.services.CONDITION_CHECKS); empty means operations check it off with
    evidence. ``contract_kind`` makes contract issue add that contract (e.g. a guarantee contract)."""

    SCOPES = [("product", _("产品要求 every case of the product")), ("approval", _("审批附加 when an approver attaches it"))]
    CHECKS = [("", _("人工核实 operations, with evidence")), ("contracts_signed", _("全部合同已签署 all contracts signed")),
              ("guarantee_signed", _("保证合同已签署 guarantee contract signed")),
              ("mortgage_signed", _("抵押合同已签署 mortgage contract signed")),
              ("account_opened", _("行内数据显示已开立结算账户 settlement account proven by internal data"))]
    code = models.SlugField(_("代码 code"), max_length=40, unique=True)
    text = models.CharField(_("条件 condition"), max_length=200)
    text_en = models.CharField(_("英文 condition (en)"), max_length=200, blank=True)
    scope = models.CharField(_("适用 scope"), max_length=10, choices=SCOPES, default="product")
    products = models.ManyToManyField(LoanProduct, blank=True, related_name="conditions_precedent",
                                      help_text=_("为空表示所有产品 / empty: every product"))
    secured_only = models.BooleanField(_("仅限抵押/担保产品 secured products only"), default=False)
    auto_check = models.CharField(_("自动核验规则 automatic check"), max_length=20, choices=CHECKS, blank=True)
    contract_kind = models.CharField(_("需签订的合同 contract it needs"), max_length=20, blank=True,
                                     choices=[("", "—"), *ContractTemplate.KINDS[1:]])
    is_active = models.BooleanField(_("启用 active"), default=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("放款前提条件 condition precedent")
        verbose_name_plural = _("放款前提条件 conditions precedent")
        ordering = ["order", "code"]

    def __str__(self) -> str:
        return self.code


class CoreBankingOutbound(models.Model):
    """The outbound record of a released disbursement (transactional outbox): written in the release's
    transaction, sent to core banking through the adapter after commit, re-sent by the sweeper until sent.
    `adapter` is the core-banking backend that took it (CORE_BANKING_BACKEND: sandbox or http), blank until sent."""

    class Status(models.TextChoices):
        PENDING = "pending", _("待发送 pending")
        SENT = "sent", _("已发送 sent")

    order = models.OneToOneField(DisbursementOrder, on_delete=models.PROTECT, related_name="outbound")
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    external_ref = models.CharField(_("核心系统流水号 core banking reference"), max_length=60, blank=True)
    adapter = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("核心系统报文 core banking record")
        verbose_name_plural = _("核心系统报文 core banking records")

    def __str__(self) -> str:
        return f"outbound {self.order_id} {self.status}"
