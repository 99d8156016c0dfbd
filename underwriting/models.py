"""Underwriting: data sources and dated snapshots, scorecard models and scores, pricing policy,
questionnaires and site/video visits."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from applications.models import (
    DATA_SOURCES,
    LPR_TENORS,
    MONEY,
    RATE,
    SPREAD_BP,
    ApplicationDocument,
    Bilingual,
    DataAuthorisation,
    DocumentRequirement,
    Enterprise,
    InfoRequest,
    LoanApplication,
    LoanProduct,
)
from loanservice.fields import BlindIndexField, EncryptedCharField

from .scorecard import compile_spec


class DataSourceConfig(models.Model):
    PROVIDERS = [("sandbox", _("沙箱 sandbox")), ("http", _("HTTP 接口 http")), ("push", _("推送 push"))]
    source = models.CharField(max_length=20, choices=DATA_SOURCES, unique=True)
    provider = models.CharField(max_length=10, choices=PROVIDERS, default="sandbox")
    base_url = models.URLField(blank=True)
    timeout_seconds = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("3.00"))
    retries = models.PositiveSmallIntegerField(_("重试次数 retries"), default=2)
    backoff_seconds = models.DecimalField(_("重试间隔(秒) backoff (seconds)"), max_digits=5, decimal_places=2,
                                          default=Decimal("0.20"), help_text=_("第 n 次重试前等待 backoff × 2^(n-1) 秒"))
    breaker_threshold = models.PositiveSmallIntegerField(_("熔断阈值 circuit breaker threshold"), default=5,
                                                         help_text=_("连续失败多少次后熔断 / consecutive failures that open the circuit"))
    breaker_reset_seconds = models.PositiveIntegerField(_("熔断恢复(秒) circuit breaker reset (seconds)"), default=30)
    freshness_days = models.PositiveSmallIntegerField(_("有效期(天) freshness window (days)"), default=30)
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("数据源配置 data source")
        verbose_name_plural = _("数据源配置 data sources")

    def __str__(self) -> str:
        return f"{self.source} ({self.provider})"


class DataSnapshot(models.Model):
    """One dated answer of one source about one enterprise; kept, and referenced by the scores."""

    OK, FAILED = "ok", "failed"
    enterprise = models.ForeignKey(Enterprise, on_delete=models.PROTECT, related_name="snapshots")
    source = models.CharField(max_length=20, choices=DATA_SOURCES)
    as_of = models.DateField()
    fetched_at = models.DateTimeField(default=timezone.now)
    provider = models.CharField(max_length=10)
    status = models.CharField(max_length=10, choices=[(OK, "ok"), (FAILED, "failed")], default=OK)
    payload = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=300, blank=True)
    error_code = models.CharField(max_length=20, blank=True, help_text=(
        "unavailable, circuit_open, not_found, rejected, malformed, invalid, no_consent, not_pushed, inactive"))
    application = models.ForeignKey(LoanApplication, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="snapshots", help_text="the application whose consent allowed the pull")
    authorisation = models.ForeignKey(DataAuthorisation, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="snapshots",
                                      help_text="the data authorisation the pull used (empty: pushed, or refused)")

    TRANSIENT_CODES = frozenset({"unavailable", "circuit_open"})

    class Meta:
        verbose_name = _("数据快照 data snapshot")
        verbose_name_plural = _("数据快照 data snapshots")
        indexes = [models.Index(fields=["enterprise", "source", "-as_of"])]
        ordering = ["-fetched_at"]

    def __str__(self) -> str:
        return f"{self.enterprise_id}:{self.source}@{self.as_of}"

    @property
    def transient(self) -> bool:
        """A failure that trying again later may cure (worth a task retry, not yet a referral)."""
        return self.status == self.FAILED and self.error_code in self.TRANSIENT_CODES


class ScorecardModel(models.Model):
    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField(unique=True, editable=False)
    spec = models.JSONField()
    metrics = models.JSONField(default=dict, blank=True)
    development = models.JSONField(_("开发样本分布 development sample summary"), default=dict, blank=True,
                                   help_text=_("PSI 的基准：各特征分箱占比与分数分布 / the PSI baseline"))
    is_active = models.BooleanField(_("冠军模型 champion"), default=False)
    is_challenger = models.BooleanField(_("挑战者（影子评分）challenger (shadow)"), default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("评分卡模型 scorecard model")
        verbose_name_plural = _("评分卡模型 scorecard models")
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"v{self.version} {self.name}"

    def save(self, *args, **kwargs):
        if self.version is None:
            last = ScorecardModel.objects.aggregate(m=models.Max("version"))["m"] or 0
            self.version = last + 1
        super().save(*args, **kwargs)

    def compiled(self):
        """The spec compiled for scoring, cached per stored version (a version's spec never changes)."""

        return compile_spec(self.spec, key=("scorecard", self.pk, self.version, self.created_at.isoformat()))


class Score(models.Model):
    application = models.ForeignKey(LoanApplication, on_delete=models.CASCADE, related_name="scores")
    model = models.ForeignKey(ScorecardModel, on_delete=models.PROTECT)
    is_shadow = models.BooleanField(default=False)
    points = models.IntegerField()
    grade = models.CharField(max_length=1)
    pd = models.DecimalField(max_digits=7, decimal_places=6)
    dimensions = models.JSONField(default=dict)
    reasons = models.JSONField(default=list)
    features = models.JSONField(default=dict)
    missing_sources = models.JSONField(default=list)
    data_gaps = models.JSONField(default=dict, blank=True, help_text="{source: {code, error, snapshot}} for every missing source")
    limit_basis = models.JSONField(default=dict, blank=True, help_text="the figures the recommended limit came from")
    decision_seconds = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True,
                                           help_text="submission to routed decision (auto approve / decline / referral)")
    snapshots = models.ManyToManyField(DataSnapshot, blank=True)
    recommended_limit = models.DecimalField(**MONEY, null=True, blank=True)
    recommended_rate = models.DecimalField(**RATE, null=True, blank=True)
    # The recommendation proper: a spread over the product's LPR (the rate above is that LPR on the scoring day + it).
    recommended_spread_bp = models.DecimalField(**SPREAD_BP, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("评分 score")
        verbose_name_plural = _("评分 scores")
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["application", "model"], name="uniq_score_per_model")]

    def __str__(self) -> str:
        return f"{self.application_id} {self.grade} {self.points}"


COLLATERAL_KINDS = [
    ("real_estate", _("房产 real estate")),
    ("land", _("土地使用权 land use right")),
    ("equipment", _("机器设备 equipment")),
    ("vehicle", _("车辆 vehicle")),
    ("receivables", _("应收账款 receivables")),
    ("deposit", _("存单 certificate of deposit")),
    ("other", _("其他 other")),
]


def default_ltv_by_kind() -> dict:
    return {"real_estate": "0.70", "land": "0.60", "equipment": "0.50", "vehicle": "0.50", "receivables": "0.60",
            "deposit": "0.90", "other": "0.30"}


class LoanPrimeRate(models.Model):
    """贷款市场报价利率 (LPR) as published: one row per tenor and publication. Published on the 20th of each month at
    9:00, on the next business day when the 20th is not one; ``published_on`` is the actual date. Operations add
    each month's figures in admin (docs/contracts.md "Rates"); rows are never edited once a contract used them."""

    tenor = models.CharField(_("期限 tenor"), max_length=2, choices=LPR_TENORS)
    published_on = models.DateField(_("公布日 published on"),
                                    help_text=_("实际公布日（每月20日，遇节假日顺延）/ the actual date (the 20th, or the next business day)"))
    rate = models.DecimalField(_("利率 rate"), **RATE, validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("0.5"))],
                               help_text=_("小数，0.030000 即 3.00% / a fraction: 0.030000 is 3.00 %"))

    class Meta:
        verbose_name = _("贷款市场报价利率 LPR")
        verbose_name_plural = _("贷款市场报价利率 LPR")
        ordering = ["-published_on", "tenor"]
        constraints = [models.UniqueConstraint(fields=["tenor", "published_on"], name="uniq_lpr_per_tenor_and_date")]

    def __str__(self) -> str:
        return f"LPR {self.tenor} {self.published_on} {self.rate * 100:.2f}%"


class PricingPolicy(models.Model):
    """Spreads by grade over the product's LPR (rate = LPR + spread; the LPR itself comes from LoanPrimeRate), and
    the limit formula's factors."""

    effective_on = models.DateField(unique=True)
    lpr_1y = models.DecimalField(_("一年期LPR(资金成本参考) 1-year LPR (funding reference)"), **RATE,
                                 help_text=_("仅作营销收益测算的资金成本参考；定价用LPR表 / only the marketing margin's "
                                             "reference; pricing reads the LPR table"))
    spreads = models.JSONField(_("按评级加点 spread by grade"), default=dict, help_text='{"A": "0.0050", ...}')
    revenue_share = models.DecimalField(_("营收比例 share of revenue"), max_digits=5, decimal_places=4, default=Decimal("0.25"))
    tax_multiple = models.DecimalField(_("纳税倍数 multiple of tax paid"), max_digits=6, decimal_places=2, default=Decimal("8"))
    collateral_ltv = models.DecimalField(_("抵押率 loan-to-value"), max_digits=5, decimal_places=4, default=Decimal("0.70"),
                                         help_text=_("未按类型设置时的抵押率上限 / the LTV cap for kinds not listed below"))
    collateral_ltv_by_kind = models.JSONField(_("按押品类型的抵押率上限 LTV cap by collateral kind"), default=default_ltv_by_kind,
                                              blank=True, help_text='{"real_estate": "0.70", ...}')
    appraisal_max_age_days = models.PositiveSmallIntegerField(_("评估报告有效期(天) appraisal valid for (days)"), default=365)
    debt_share = models.DecimalField(_("既有负债扣减比例 share of existing debt deducted"), max_digits=5, decimal_places=4,
                                     default=Decimal("0.50"))

    class Meta:
        verbose_name = _("定价与额度政策 pricing policy")
        verbose_name_plural = _("定价与额度政策 pricing policies")
        ordering = ["-effective_on"]

    def __str__(self) -> str:
        return f"{self.effective_on} LPR {self.lpr_1y}"


class QuestionnaireQuestion(Bilingual, models.Model):
    TYPES = [("yes_no", _("是/否 yes/no")), ("number", _("数字 number")), ("choice", _("选择 choice")), ("text", _("文字 text"))]
    product = models.ForeignKey(LoanProduct, null=True, blank=True, on_delete=models.CASCADE,
                                help_text=_("为空表示所有产品 / empty: every product"))
    code = models.SlugField(max_length=40)
    question = models.CharField(max_length=300)
    question_en = models.CharField(max_length=300, blank=True)
    qtype = models.CharField(max_length=10, choices=TYPES)
    required = models.BooleanField(default=True)
    choices = models.JSONField(default=list, blank=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("尽调问卷 questionnaire question")
        verbose_name_plural = _("尽调问卷 questionnaire")
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.code


class SiteVisit(models.Model):
    MODES = [("onsite", _("现场 on site")), ("video", _("视频 video")), ("waived", _("免于走访 waived"))]
    application = models.ForeignKey(LoanApplication, on_delete=models.CASCADE, related_name="visits")
    mode = models.CharField(max_length=10, choices=MODES)
    notes = models.TextField(blank=True)
    answers = models.JSONField(default=dict, blank=True)
    visited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    visited_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("走访记录 site visit")
        verbose_name_plural = _("走访记录 site visits")
        ordering = ["-visited_at"]

    def __str__(self) -> str:
        return f"{self.application_id} {self.mode}"


class Collateral(models.Model):
    """An item pledged for a secured loan (押品): valued by an appraiser, lent against at a loan-to-value ratio."""

    application = models.ForeignKey(LoanApplication, on_delete=models.CASCADE, related_name="collateral")
    kind = models.CharField(_("押品类型 kind"), max_length=20, choices=COLLATERAL_KINDS)
    description = models.CharField(_("押品描述 description"), max_length=200)
    owner_name = models.CharField(_("权属人 owner"), max_length=100, blank=True)
    certificate_no = models.CharField(_("权证编号 certificate number"), max_length=60, blank=True)
    valuation = models.DecimalField(_("评估价值 valuation"), **MONEY)
    appraiser = models.CharField(_("评估机构 appraiser"), max_length=100)
    appraised_on = models.DateField(_("评估日期 appraised on"))
    ltv = models.DecimalField(_("抵押率 loan-to-value"), max_digits=5, decimal_places=4)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("押品 collateral")
        verbose_name_plural = _("押品 collateral")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.valuation}"

    @property
    def lendable_value(self) -> Decimal:
        return (self.valuation * self.ltv).quantize(Decimal("0.01"))


class Guarantor(models.Model):
    """A guarantor (保证人) of a loan: an enterprise or a person, with its own pre-screen."""

    ENTERPRISE, PERSON = "enterprise", "person"
    KINDS = [(ENTERPRISE, _("企业保证 enterprise")), (PERSON, _("个人保证 person"))]
    application = models.ForeignKey(LoanApplication, on_delete=models.CASCADE, related_name="guarantors")
    kind = models.CharField(_("保证人类型 kind"), max_length=10, choices=KINDS)
    name = EncryptedCharField(_("名称/姓名 name"), max_length=200)
    uscc = models.CharField(_("统一社会信用代码 USCC"), max_length=18, blank=True)
    id_number = EncryptedCharField(_("身份证号 ID number"), max_length=18, blank=True, blind_index="id_number_bidx")
    id_number_bidx = BlindIndexField(source="id_number")
    relationship = models.CharField(_("与借款人关系 relationship"), max_length=100, blank=True)
    guaranteed_amount = models.DecimalField(_("担保金额 amount guaranteed"), **MONEY, null=True, blank=True)
    prescreen = models.JSONField(default=dict, blank=True)
    prescreen_passed = models.BooleanField(default=False)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("保证人 guarantor")
        verbose_name_plural = _("保证人 guarantors")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name


class CaseNote(models.Model):
    """The RM's due-diligence notes on a case (尽调记录), visible to the approvers."""

    application = models.ForeignKey(LoanApplication, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("尽调笔记 case note")
        verbose_name_plural = _("尽调笔记 case notes")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"note {self.pk} on {self.application_id}"


class InfoRequestItem(models.Model):
    """One thing asked of the applicant in a request for information: a checklist document or a question."""

    DOCUMENT, QUESTION = "document", "question"
    info_request = models.ForeignKey(InfoRequest, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=10, choices=[(DOCUMENT, _("材料 document")), (QUESTION, _("问题 question"))])
    requirement = models.ForeignKey(DocumentRequirement, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    question = models.CharField(max_length=300, blank=True)
    answer = models.TextField(blank=True)
    document = models.ForeignKey(ApplicationDocument, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    fulfilled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("补充资料项 information item")
        verbose_name_plural = _("补充资料项 information items")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.requirement.code if self.requirement_id else self.question[:40]


GRADE_LETTERS = ("A", "B", "C", "D", "E")


class ModelRiskPolicy(models.Model):
    """Model-risk policy in force from `effective_from` (the latest one not after the day asked applies): the
    forward-looking factor of the PDs, what makes a grade's book thick enough to estimate its PD term structure,
    the minimum sample and thresholds of the drift states, and the back-test's traffic-light levels."""

    effective_from = models.DateField(_("生效日 effective from"), unique=True)
    forward_looking_factor = models.DecimalField(
        _("前瞻性调整系数 forward-looking factor"), max_digits=6, decimal_places=4, default=Decimal("1.0000"),
        validators=[MinValueValidator(Decimal("0.1")), MaxValueValidator(Decimal("5"))],
        help_text=_("月度违约风险乘以此系数（宏观情景）；1 = 不调整 / the monthly hazards are multiplied by it (macro "
                    "scenario); 1 = none"))
    default_dpd = models.PositiveSmallIntegerField(_("违约定义：逾期天数 default: days past due"), default=90)
    pd_min_loans = models.PositiveIntegerField(
        _("按账簿估计所需最少贷款笔数 minimum loans per grade for a book estimate"), default=100)
    pd_min_defaults = models.PositiveIntegerField(
        _("按账簿估计所需最少违约笔数 minimum defaults per grade for a book estimate"), default=5)
    pd_prior_months = models.PositiveIntegerField(
        _("评分卡先验强度（贷款·月）scorecard prior strength (loan-months)"), default=1200,
        help_text=_("账簿估计与评分卡校准按此权重平滑 / the book's hazards are smoothed towards the scorecard's with this weight"))
    pd_horizon_months = models.PositiveSmallIntegerField(_("期限结构月数 term structure horizon (months)"), default=60,
                                                         validators=[MinValueValidator(12), MaxValueValidator(360)])
    drift_min_sample = models.PositiveIntegerField(
        _("稳定性检验最少样本 minimum sample per drift window"), default=150,
        help_text=_("不足时合并相邻月份直至达到 / months are pooled until the window holds this many"))
    drift_watch = models.DecimalField(_("PSI关注阈值 PSI watch threshold"), max_digits=5, decimal_places=3, default=Decimal("0.100"))
    drift_shift = models.DecimalField(_("PSI偏移阈值 PSI shift threshold"), max_digits=5, decimal_places=3, default=Decimal("0.250"))
    drift_bootstrap = models.PositiveSmallIntegerField(_("自助抽样次数 bootstrap resamples"), default=200,
                                                       validators=[MinValueValidator(50), MaxValueValidator(2000)])
    backtest_yellow = models.DecimalField(
        _("回测黄灯置信度 back-test yellow at confidence"), max_digits=6, decimal_places=5, default=Decimal("0.95000"),
        help_text=_("观察违约数的二项累积概率达到此值为黄灯（巴塞尔交通灯）/ yellow when the binomial cumulative probability "
                    "of the observed defaults reaches it (Basel traffic light)"))
    backtest_red = models.DecimalField(_("回测红灯置信度 back-test red at confidence"), max_digits=6, decimal_places=5,
                                       default=Decimal("0.99990"))
    backtest_min_loans = models.PositiveIntegerField(_("回测最少贷款笔数 minimum loans per back-test cell"), default=20)
    auc_min_defaults = models.PositiveIntegerField(
        _("计算区分度所需最少违约笔数 minimum defaults for the Gini/AUC"), default=20)

    class Meta:
        verbose_name = _("模型风险政策 model-risk policy")
        verbose_name_plural = _("模型风险政策 model-risk policies")
        ordering = ["-effective_from"]

    def __str__(self) -> str:
        return f"model-risk policy from {self.effective_from}"

    def clean(self):
        errors = {}
        if self.drift_watch is not None and self.drift_shift is not None and self.drift_watch >= self.drift_shift:
            errors["drift_shift"] = _("偏移阈值须大于关注阈值 / The shift threshold must exceed the watch threshold.")
        if self.backtest_yellow is not None and self.backtest_red is not None and not (
                Decimal("0.5") <= self.backtest_yellow < self.backtest_red < Decimal("1")):
            errors["backtest_red"] = _("须满足 0.5 ≤ 黄灯 < 红灯 < 1 / Needs 0.5 ≤ yellow < red < 1.")
        if errors:
            raise ValidationError(errors)


class PDTermStructure(models.Model):
    """One version of the PD term structure (违约概率期限结构): per grade, the cumulative probability of default
    (90+ days past due) by month on book, through the cycle (the forward-looking factor of the policy in force is
    applied when it is read, `underwriting.pd`). `basis` says per grade whether it was estimated from the book's
    vintages or taken from the scorecard's grade calibration (a thin book). A version is a draft until someone
    other than its creator approves it; the approved version with the latest `effective_from` not after the day
    asked is the one in force. Versions are never edited."""

    BOOK, SCORECARD = "book", "scorecard"
    BASES = [(BOOK, _("账簿估计 estimated from the book")), (SCORECARD, _("评分卡校准 scorecard calibration"))]

    version = models.PositiveIntegerField(unique=True, editable=False)
    name = models.CharField(_("名称 name"), max_length=100)
    effective_from = models.DateField(_("生效日 effective from"))
    as_of = models.DateField(_("数据截至 data as of"))
    horizon_months = models.PositiveSmallIntegerField(_("期限(月) horizon (months)"))
    curves = models.JSONField(_("累计违约概率 cumulative PD by month on book"),
                              help_text='{"A": ["0.000400", ...], ...}: month 1..horizon')
    basis = models.JSONField(_("依据 basis per grade"), help_text='{"A": "book" | "scorecard", ...}')
    sample = models.JSONField(_("样本 sample"), default=dict, blank=True,
                              help_text="per grade: loans, defaults, loan-months observed; the settings used")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("违约概率期限结构 PD term structure")
        verbose_name_plural = _("违约概率期限结构 PD term structures")
        ordering = ["-version"]
        indexes = [models.Index(fields=["approved_at", "-effective_from"])]

    def __str__(self) -> str:
        return f"PD v{self.version} {self.name}"

    def save(self, *args, **kwargs):
        if self.version is None:
            last = PDTermStructure.objects.aggregate(m=models.Max("version"))["m"] or 0
            self.version = last + 1
        super().save(*args, **kwargs)

    @property
    def is_approved(self) -> bool:
        return self.approved_at is not None
