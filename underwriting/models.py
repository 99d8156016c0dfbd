"""Underwriting: data sources and dated snapshots, scorecard models and scores, pricing policy,
questionnaires and site/video visits."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from applications.models import DATA_SOURCES, MONEY, RATE, Bilingual, Enterprise, LoanApplication, LoanProduct


class DataSourceConfig(models.Model):
    PROVIDERS = [("sandbox", _("沙箱 sandbox")), ("http", _("HTTP 接口 http")), ("push", _("推送 push"))]
    source = models.CharField(max_length=20, choices=DATA_SOURCES, unique=True)
    provider = models.CharField(max_length=10, choices=PROVIDERS, default="sandbox")
    base_url = models.URLField(blank=True)
    timeout_seconds = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("3.00"))
    retries = models.PositiveSmallIntegerField(default=2)
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
    application = models.ForeignKey(LoanApplication, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="snapshots", help_text="the application whose consent allowed the pull")

    class Meta:
        verbose_name = _("数据快照 data snapshot")
        verbose_name_plural = _("数据快照 data snapshots")
        indexes = [models.Index(fields=["enterprise", "source", "-as_of"])]
        ordering = ["-fetched_at"]

    def __str__(self) -> str:
        return f"{self.enterprise_id}:{self.source}@{self.as_of}"


class ScorecardModel(models.Model):
    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField(unique=True, editable=False)
    spec = models.JSONField()
    metrics = models.JSONField(default=dict, blank=True)
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
    snapshots = models.ManyToManyField(DataSnapshot, blank=True)
    recommended_limit = models.DecimalField(**MONEY, null=True, blank=True)
    recommended_rate = models.DecimalField(**RATE, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("评分 score")
        verbose_name_plural = _("评分 scores")
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["application", "model"], name="uniq_score_per_model")]

    def __str__(self) -> str:
        return f"{self.application_id} {self.grade} {self.points}"


class PricingPolicy(models.Model):
    """LPR and spreads by grade (rate = LPR + spread), and the limit formula's factors."""

    effective_on = models.DateField(unique=True)
    lpr_1y = models.DecimalField(_("一年期LPR"), **RATE)
    spreads = models.JSONField(_("按评级加点 spread by grade"), default=dict, help_text='{"A": "0.0050", ...}')
    revenue_share = models.DecimalField(_("营收比例 share of revenue"), max_digits=5, decimal_places=4, default=Decimal("0.25"))
    tax_multiple = models.DecimalField(_("纳税倍数 multiple of tax paid"), max_digits=6, decimal_places=2, default=Decimal("8"))
    collateral_ltv = models.DecimalField(_("抵押率 loan-to-value"), max_digits=5, decimal_places=4, default=Decimal("0.70"))

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
