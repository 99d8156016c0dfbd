"""The ledger's records. Entries and their lines are written once and never changed: a mistake is corrected
by a reversal (冲正), an entry of its own that points at the one it reverses."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Account(models.Model):
    """A ledger account (会计科目) of the chart of accounts; the chart is data, edited in admin."""

    class Kind(models.TextChoices):
        ASSET = "asset", _("资产 asset")
        CONTRA_ASSET = "contra_asset", _("资产备抵 contra asset")
        LIABILITY = "liability", _("负债 liability")
        EQUITY = "equity", _("所有者权益 equity")
        INCOME = "income", _("损益-收入 income")
        EXPENSE = "expense", _("损益-支出 expense")
        MEMO = "memo", _("表外 off-balance memo")
        MEMO_CONTRA = "memo_contra", _("表外对应 off-balance contra")

    DEBIT_NORMAL = frozenset({Kind.ASSET, Kind.EXPENSE, Kind.MEMO})  # the others carry a credit balance

    code = models.CharField(_("科目代码 code"), max_length=20, unique=True)
    name = models.CharField(_("科目名称 name"), max_length=100)
    name_en = models.CharField(_("英文名称 English name"), max_length=100, blank=True)
    kind = models.CharField(_("类别 kind"), max_length=20, choices=Kind.choices)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    active = models.BooleanField(_("启用 active"), default=True)

    class Meta:
        verbose_name = _("会计科目 account")
        verbose_name_plural = _("会计科目 chart of accounts")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def debit_normal(self) -> bool:
        """Assets, expenses and off-balance memo accounts carry a debit balance; the others a credit one."""
        return self.kind in self.DEBIT_NORMAL


class LedgerPeriod(models.Model):
    """A closed month (月结) or year (年结): nothing can be posted with a value date inside it any more."""

    year = models.PositiveIntegerField(_("年 year"))
    month = models.PositiveSmallIntegerField(_("月 month"), null=True, blank=True,
                                             help_text=_("空表示全年 / empty for the whole year"))
    closed_at = models.DateTimeField(_("关账时间 closed at"), default=timezone.now)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        verbose_name = _("已关账期间 closed period")
        verbose_name_plural = _("已关账期间 closed periods")
        ordering = ["year", "month"]
        constraints = [
            models.UniqueConstraint(fields=["year", "month"], name="ledger_period_once"),
            models.UniqueConstraint(fields=["year"], condition=Q(month__isnull=True), name="ledger_year_once"),
        ]

    def __str__(self) -> str:
        return f"{self.year}" if self.month is None else f"{self.year}-{self.month:02d}"


class JournalEntry(models.Model):
    """A balanced journal entry (会计分录) with its dimensions: value date, branch (机构), product, currency."""

    kind = models.CharField(_("业务类型 kind"), max_length=30, db_index=True)
    value_date = models.DateField(_("起息/记账日 value date"), db_index=True)
    posted_at = models.DateTimeField(_("过账时间 posted at"), default=timezone.now)
    branch = models.ForeignKey("loanservice.Branch", null=True, blank=True, on_delete=models.PROTECT,
                               verbose_name=_("机构 branch"))
    product = models.CharField(_("产品 product"), max_length=50, blank=True)
    currency = models.CharField(_("币种 currency"), max_length=3, default="CNY")
    reference = models.CharField(_("业务参考 reference"), max_length=80, blank=True, db_index=True,
                                 help_text=_("如 loan:12 / e.g. loan:12"))
    key = models.CharField(_("幂等键 idempotency key"), max_length=120, null=True, blank=True, unique=True)
    memo = models.CharField(_("摘要 memo"), max_length=200, blank=True)
    reverses = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="reversal", verbose_name=_("冲正的分录 reverses"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        verbose_name = _("会计分录 journal entry")
        verbose_name_plural = _("会计分录 journal entries")
        ordering = ["value_date", "id"]
        indexes = [models.Index(fields=["reference", "value_date"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.value_date} {self.kind} {self.reference}"


class JournalLine(models.Model):
    """One side of an entry: a debit or a credit (never both, never zero) to one account."""

    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="lines")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="lines")
    debit = models.DecimalField(_("借方 debit"), max_digits=18, decimal_places=2, default=Decimal("0.00"))
    credit = models.DecimalField(_("贷方 credit"), max_digits=18, decimal_places=2, default=Decimal("0.00"))

    class Meta:
        verbose_name = _("分录行 journal line")
        verbose_name_plural = _("分录行 journal lines")
        ordering = ["entry_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(debit__gt=0, credit=0) | Q(debit=0, credit__gt=0)),
                name="ledger_line_one_side",
                violation_error_message=_("每一行只能借或贷一方且大于零 / A line is a debit or a credit, above zero."),
            ),
        ]

    def __str__(self) -> str:
        side = f"Dr {self.debit}" if self.debit else f"Cr {self.credit}"
        return f"{self.account_id} {side}"


class AccountMapping(models.Model):
    """Which account a stage posts to for each role of money (本金, 应收利息, 利息收入, …), per product or for
    every product (product left empty). Data, edited in admin."""

    class Role(models.TextChoices):
        LOAN_PRINCIPAL = "loan_principal", _("贷款本金 loan principal")
        INTEREST_RECEIVABLE = "interest_receivable", _("应收利息 interest receivable")
        PENALTY_RECEIVABLE = "penalty_receivable", _("应收罚息 penalty receivable")
        COMPOUND_RECEIVABLE = "compound_receivable", _("应收复利 compound interest receivable")
        INTEREST_INCOME = "interest_income", _("利息收入 interest income")
        PENALTY_INCOME = "penalty_income", _("罚息收入 penalty income")
        COMPOUND_INCOME = "compound_income", _("复利收入 compound interest income")
        FEE_INCOME = "fee_income", _("手续费收入 fee income")
        VAT_PAYABLE = "vat_payable", _("应交增值税 VAT payable")
        SETTLEMENT = "settlement", _("借款人结算账户 borrower's settlement account")
        CLEARING = "clearing", _("清算往来 clearing")
        ALLOWANCE = "allowance", _("贷款损失准备 loan loss allowance")
        IMPAIRMENT = "impairment", _("信用减值损失 credit impairment loss")
        OFF_BALANCE_INTEREST = "off_balance_interest", _("表外欠息 off-balance interest")
        OFF_BALANCE_CONTRA = "off_balance_contra", _("表外欠息对应 off-balance contra")

    role = models.CharField(_("用途 role"), max_length=30, choices=Role.choices)
    product = models.CharField(_("产品代码 product code"), max_length=50, blank=True,
                               help_text=_("空表示所有产品 / empty for every product"))
    account = models.ForeignKey(Account, on_delete=models.PROTECT, verbose_name=_("会计科目 account"))

    class Meta:
        verbose_name = _("记账科目映射 account mapping")
        verbose_name_plural = _("记账科目映射 account mappings")
        ordering = ["role", "product"]
        constraints = [models.UniqueConstraint(fields=["role", "product"], name="ledger_mapping_once")]

    def __str__(self) -> str:
        return f"{self.get_role_display()} {self.product or '*'} → {self.account_id}"


class VatRule(models.Model):
    """价税分离: a credit to `income_account` (interest is charged VAT-inclusive) posts as income plus output VAT payable,
    VAT = amount × rate / (1 + rate); a debit to it (a reversal, an adjustment) is split the same way. Exempt products
    and exempt counterparty tax classes (the small and micro enterprise exemption, 小微企业免征增值税) take no split.
    Entries without a product (manual journal entries) post as entered. Data, edited in admin."""

    income_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", verbose_name=_("收入科目 income account"))
    payable_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+",
                                        verbose_name=_("销项税额科目 output VAT account"))
    rate = models.DecimalField(_("税率 rate"), max_digits=5, decimal_places=4, default=Decimal("0.0600"))
    effective_from = models.DateField(_("生效日 effective from"))
    exempt_products = models.JSONField(_("免税产品 exempt products"), default=list, blank=True,
                                       help_text=_('产品代码列表 / product codes, e.g. ["xinmiaodai"]'))
    exempt_tax_classes = models.JSONField(_("免税客户类型 exempt borrower classes"), default=list, blank=True,
                                          help_text=_('如 ["micro", "small"] / e.g. ["micro", "small"]'))
    active = models.BooleanField(_("启用 active"), default=True)

    class Meta:
        verbose_name = _("价税分离规则 VAT rule")
        verbose_name_plural = _("价税分离规则 VAT rules")
        ordering = ["income_account", "-effective_from"]
        constraints = [models.UniqueConstraint(fields=["income_account", "effective_from"], name="ledger_vat_rule_once")]

    def __str__(self) -> str:
        return f"VAT {self.rate} on {self.income_account_id} from {self.effective_from}"


class VatExemption(models.Model):
    """小微企业贷款利息免征增值税: interest on loans to borrowers of this class (micro, small enterprises and individual
    businesses, 工信部联企业〔2011〕300号 sizes) whose credit with the bank (单户授信) is at most `max_credit` is exempt
    from VAT while the exemption is in force (财税〔2018〕91号 from 2018-09-01, extended by 财政部 税务总局公告2021年第6号
    and 2023年第16号 to 2027-12-31). An entry whose `tax_class` names a class in force on its value date takes no split.
    The stage that lends decides the class and checks the credit (it knows the borrower). Data, edited in admin."""

    TAX_CLASSES = [("micro", _("微型企业 micro enterprise")), ("small", _("小型企业 small enterprise")),
                   ("individual", _("个体工商户 individual business"))]
    tax_class = models.CharField(_("客户类型 borrower class"), max_length=20, choices=TAX_CLASSES)
    max_credit = models.DecimalField(_("单户授信上限 credit per borrower up to"), max_digits=18, decimal_places=2,
                                     default=Decimal("10000000.00"))
    effective_from = models.DateField(_("生效日 effective from"))
    effective_until = models.DateField(_("截止日 effective until"), null=True, blank=True)
    basis = models.CharField(_("政策依据 basis"), max_length=200, blank=True)
    active = models.BooleanField(_("启用 active"), default=True)

    class Meta:
        verbose_name = _("增值税免税政策 VAT exemption")
        verbose_name_plural = _("增值税免税政策 VAT exemptions")
        ordering = ["tax_class", "-effective_from"]
        constraints = [models.UniqueConstraint(fields=["tax_class", "effective_from"], name="ledger_vat_exemption_once")]

    def __str__(self) -> str:
        return f"VAT exempt {self.tax_class} ≤ {self.max_credit} {self.effective_from}–{self.effective_until or ''}"


class VoucherBatch(models.Model):
    """汇总记账凭证 for core banking: the entries not yet sent, aggregated by value date, branch, product, currency and
    account (not one voucher per loan and day). Each entry leaves in exactly one batch (`VoucherEntry`)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("待发送 pending")
        SENT = "sent", _("已发送 sent")

    business_date = models.DateField(_("营业日期 business date"), db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    entries = models.PositiveIntegerField(_("分录数 entries"), default=0)
    lines = models.JSONField(default=list, help_text="[{value_date, branch, product, currency, account, debit, credit}]")
    total_debit = models.DecimalField(max_digits=18, decimal_places=2, default=Decimal("0.00"))
    total_credit = models.DecimalField(max_digits=18, decimal_places=2, default=Decimal("0.00"))
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    # The outbox: the core's acknowledgement, the tries so far and the last failure (retried by a task).
    core_reference = models.CharField(_("核心流水号 core reference"), max_length=60, blank=True)
    attempts = models.PositiveIntegerField(_("发送次数 attempts"), default=0)
    last_error = models.CharField(_("最近错误 last error"), max_length=300, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True, help_text="a sender holds the batch until then")

    class Meta:
        verbose_name = _("汇总凭证 voucher batch")
        verbose_name_plural = _("汇总凭证 voucher batches")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"vouchers {self.business_date} #{self.pk} ({self.entries} entries)"

    @property
    def reference(self) -> str:
        """The batch's reference to core banking (its idempotency key there)."""
        return f"VB{self.pk:08d}"

    def voucher_lines(self) -> list[dict]:
        """The lines, each with its voucher reference (`VB00000012-0003`), as they leave and come back in the core's
        daily file."""
        return [{**line, "reference": line.get("reference") or f"{self.reference}-{n:04d}"}
                for n, line in enumerate(self.lines, start=1)]


class VoucherEntry(models.Model):
    """The batch that carried an entry to core banking (an entry is in one batch at most)."""

    entry = models.OneToOneField(JournalEntry, primary_key=True, on_delete=models.PROTECT, related_name="voucher")
    batch = models.ForeignKey(VoucherBatch, on_delete=models.PROTECT, related_name="carried")

    def __str__(self) -> str:
        return f"{self.entry_id} in {self.batch_id}"


class CoreFile(models.Model):
    """对账文件: the core's daily file of what it booked (date, branch, account, debit, credit, voucher reference),
    reconciled line by line against the vouchers sent for its business date. A difference is an alarm."""

    class Source(models.TextChoices):
        UPLOAD = "upload", _("上传 uploaded")
        CORE = "core", _("从核心获取 fetched from core banking")

    business_date = models.DateField(_("营业日期 business date"), db_index=True)
    source = models.CharField(_("来源 source"), max_length=10, choices=Source.choices, default=Source.UPLOAD)
    name = models.CharField(_("文件名 file name"), max_length=200, blank=True)
    sha256 = models.CharField(max_length=64)
    content = models.TextField(_("文件内容 content"))
    lines = models.PositiveIntegerField(_("文件行数 lines in the file"), default=0)
    vouchers = models.PositiveIntegerField(_("我方凭证行数 voucher lines sent"), default=0)
    matched = models.PositiveIntegerField(_("相符 matched"), default=0)
    balanced = models.BooleanField(_("一致 balanced"), default=False)
    differences = models.JSONField(default=list, blank=True,
                                   help_text="[{kind: missing_in_core|missing_in_ledger|amount|line, reference, ...}]")
    difference_count = models.PositiveIntegerField(default=0)
    totals = models.JSONField(default=dict, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("核心对账文件 core daily file")
        verbose_name_plural = _("核心对账文件 core daily files")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"core file {self.business_date} #{self.pk}"
