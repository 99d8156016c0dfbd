"""Precision marketing (精准营销): prospect lists from partners and from the bank's own settlement customers,
scored on the data the bank may use for marketing, queued per RM by expected value, contacts tracked."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from applications.models import DATA_SOURCES, MONEY, Enterprise, LoanProduct
from loanservice.fields import EncryptedCharField
from loanservice.models import Branch

LIST_KINDS = [
    ("industrial_park", _("产业园区 industrial park")),
    ("trade_association", _("行业协会 trade association")),
    ("core_enterprise", _("核心企业（供应链）core enterprise of a supply chain")),
    ("settlement", _("本行结算客户（无贷款）the bank's settlement customers without a loan")),
]


class MarketingDataPolicy(models.Model):
    """Which data source may be used to select and score prospects who have given no consent (营销用数据授权规则).

    Seeded by a data migration: the bank's own records and the public registers (business registry, courts) are
    allowed; tax, social security, customs and the credit bureau need the enterprise's authorisation for a credit
    application and are never used for marketing."""

    source = models.CharField(_("数据源 source"), max_length=20, choices=DATA_SOURCES, unique=True)
    allowed = models.BooleanField(_("可用于营销 allowed for marketing"), default=False)
    basis = models.CharField(_("依据 basis"), max_length=300)

    class Meta:
        verbose_name = _("营销数据使用规则 marketing data policy")
        verbose_name_plural = _("营销数据使用规则 marketing data policy")
        ordering = ["source"]

    def __str__(self) -> str:
        return f"{self.source}: {'allowed' if self.allowed else 'not allowed'}"


class MarketingSettings(models.Model):
    """The figures behind the indicative limit and the expected value, as data (the latest row applies)."""

    effective_on = models.DateField(unique=True)
    product = models.ForeignKey(LoanProduct, on_delete=models.PROTECT, help_text=_("指示性额度所依据的产品 / the product the indicative limit is for"))
    lgd = models.DecimalField(_("违约损失率 loss given default"), max_digits=5, decimal_places=4, default=Decimal("0.4500"))
    revenue_from_inflow = models.DecimalField(
        _("结算流入折算收入比例 settlement inflow share of revenue"), max_digits=5, decimal_places=4, default=Decimal("0.5000"),
        help_text=_("无申报收入时，以结算流入/该比例估算收入 / revenue estimate = settlement inflow / this share"))

    class Meta:
        verbose_name = _("营销参数 marketing settings")
        verbose_name_plural = _("营销参数 marketing settings")
        ordering = ["-effective_on"]

    def __str__(self) -> str:
        return f"{self.effective_on} {self.product_id}"


class ProspectList(models.Model):
    kind = models.CharField(_("来源类型 kind"), max_length=20, choices=LIST_KINDS)
    partner_name = models.CharField(_("合作方 partner"), max_length=200, blank=True)
    file_name = models.CharField(max_length=200, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    rows_total = models.PositiveIntegerField(default=0)
    rows_imported = models.PositiveIntegerField(default=0)
    rows_duplicate = models.PositiveIntegerField(default=0)
    rows_rejected = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="[{row, field, message}]")
    imported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    imported_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("营销名单 prospect list")
        verbose_name_plural = _("营销名单 prospect lists")
        ordering = ["-imported_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.partner_name} ({self.imported_at:%Y-%m-%d})"


class Prospect(models.Model):
    """One enterprise the bank would like to lend to (潜在客户), once per USCC."""

    class Status(models.TextChoices):
        NEW = "new", _("待联系 new")
        CONTACTED = "contacted", _("已联系 contacted")
        INTERESTED = "interested", _("有意向 interested")
        INVITED = "invited", _("已邀请 invited")
        NOT_INTERESTED = "not_interested", _("无意向 not interested")
        UNREACHABLE = "unreachable", _("联系不上 unreachable")
        DISQUALIFIED = "disqualified", _("不符合准入 disqualified")

    prospect_list = models.ForeignKey(ProspectList, null=True, blank=True, on_delete=models.SET_NULL, related_name="prospects")
    source_kind = models.CharField(_("来源类型 source"), max_length=20, choices=LIST_KINDS)
    partner_name = models.CharField(_("合作方 partner"), max_length=200, blank=True)
    uscc = models.CharField(_("统一社会信用代码 USCC"), max_length=18, unique=True)
    name = models.CharField(_("企业名称 name"), max_length=200)
    contact_name = EncryptedCharField(_("联系人 contact"), max_length=100, blank=True)
    contact_phone = EncryptedCharField(_("联系电话 phone"), max_length=30, blank=True)
    industry_code = models.CharField(_("行业代码 industry"), max_length=10, blank=True)
    declared_revenue = models.DecimalField(_("申报年收入 declared revenue"), **MONEY, null=True, blank=True)
    employees = models.PositiveIntegerField(_("从业人数 employees"), null=True, blank=True)
    enterprise = models.ForeignKey(Enterprise, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    relationship_manager = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                             related_name="prospects")
    branch = models.ForeignKey(Branch, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(_("状态 status"), max_length=20, choices=Status.choices, default=Status.NEW, db_index=True)
    product = models.ForeignKey(LoanProduct, null=True, blank=True, on_delete=models.SET_NULL)
    prequalified = models.BooleanField(_("预审通过 pre-qualified"), null=True)
    prescreen = models.JSONField(default=dict, blank=True)
    grade = models.CharField(max_length=1, blank=True)
    points = models.IntegerField(null=True, blank=True)
    pd = models.DecimalField(max_digits=7, decimal_places=6, null=True, blank=True)
    indicative_limit = models.DecimalField(_("指示性额度 indicative limit"), **MONEY, null=True, blank=True)
    expected_value = models.DecimalField(_("预期价值 expected value"), **MONEY, null=True, blank=True, db_index=True)
    data_used = models.JSONField(_("使用的数据 data used"), default=dict, blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)
    invited_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # When the retention schedule anonymised its contact's name and phone (casework.retention).
    anonymised_at = models.DateTimeField(_("个人信息匿名化时间 personal data anonymised"), null=True, blank=True)

    class Meta:
        verbose_name = _("潜在客户 prospect")
        verbose_name_plural = _("潜在客户 prospects")
        indexes = [models.Index(fields=["relationship_manager", "status"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.uscc})"


class ContactAttempt(models.Model):
    CHANNELS = [("phone", _("电话 phone")), ("visit", _("上门 visit")), ("wechat", _("微信 WeChat")), ("sms", _("短信 SMS")),
                ("email", _("邮件 e-mail"))]
    OUTCOMES = [
        ("no_answer", _("未接通 no answer")),
        ("callback", _("约定再联系 call back")),
        ("interested", _("有意向 interested")),
        ("not_interested", _("无意向 not interested")),
        ("wrong_contact", _("联系方式有误 wrong contact")),
        ("invited", _("已发送申请邀请 invitation sent")),
    ]
    prospect = models.ForeignKey(Prospect, on_delete=models.CASCADE, related_name="contacts")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    at = models.DateTimeField(default=timezone.now)
    channel = models.CharField(_("方式 channel"), max_length=10, choices=CHANNELS)
    outcome = models.CharField(_("结果 outcome"), max_length=20, choices=OUTCOMES)
    note = models.CharField(_("备注 note"), max_length=500, blank=True)
    next_action_on = models.DateField(_("下次跟进 next action"), null=True, blank=True)

    class Meta:
        verbose_name = _("联系记录 contact attempt")
        verbose_name_plural = _("联系记录 contact attempts")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.prospect_id} {self.outcome}"
