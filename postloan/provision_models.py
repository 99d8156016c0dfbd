"""The loan book's provisions and reconciliation (issue #17): the provisioning policy (data, edited in admin), the
expected credit loss of each loan on each date it was measured, the portfolio overlay that brings the allowance up
to the five-category ratios (approved by a second person), and each close of business's sub-ledger ↔ GL check.
Imported at the end of `postloan.models`."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, transition

from applications.models import MONEY
from loanservice.four_eyes import FourEyesRequest

FRACTION = {"max_digits": 6, "decimal_places": 4,
            "validators": [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))]}

SECURITY_TYPES = [
    ("credit", _("信用 unsecured")),
    ("guarantee", _("保证 guarantee")),
    ("mortgage", _("抵押 mortgage")),
    ("pledge", _("质押 pledge")),
]
STAGES = [(1, _("第一阶段 stage 1")), (2, _("第二阶段 stage 2")), (3, _("第三阶段 stage 3"))]


class ProvisionPolicy(models.Model):
    """贷款损失准备政策 in force from `effective_from` (the latest one not in the future applies): the forward-looking
    factor on PD, the stage-2 threshold, LGD by security type, the credit-conversion factor of undrawn limits and
    the five-category ratios the portfolio is compared with."""

    effective_from = models.DateField(_("生效日 effective from"), unique=True)
    forward_looking_factor = models.DecimalField(
        _("前瞻性调整系数 forward-looking factor"), max_digits=6, decimal_places=4, default=Decimal("1.0000"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("10"))],
        help_text=_("违约概率乘以此系数（上限为1）/ PD is multiplied by this (capped at 1)"))
    stage2_dpd = models.PositiveSmallIntegerField(
        _("第二阶段逾期天数阈值 stage 2 above DPD"), default=30,
        help_text=_("逾期超过此天数即信用风险显著增加 / more days past due than this: significant increase in credit risk"))
    ccf = models.DecimalField(_("未使用额度信用转换系数 CCF of undrawn limits"), **FRACTION, default=Decimal("0"))
    lgd_credit = models.DecimalField(_("违约损失率-信用 LGD unsecured"), **FRACTION, default=Decimal("0.4500"))
    lgd_guarantee = models.DecimalField(_("违约损失率-保证 LGD guaranteed"), **FRACTION, default=Decimal("0.4000"))
    lgd_mortgage = models.DecimalField(_("违约损失率-抵押 LGD mortgage"), **FRACTION, default=Decimal("0.2500"))
    lgd_pledge = models.DecimalField(_("违约损失率-质押 LGD pledge"), **FRACTION, default=Decimal("0.1000"))
    ratio_normal = models.DecimalField(_("正常类计提比例 ratio normal"), **FRACTION, default=Decimal("0"))
    ratio_special_mention = models.DecimalField(_("关注类计提比例 ratio special mention"), **FRACTION, default=Decimal("0.0200"))
    ratio_substandard = models.DecimalField(_("次级类计提比例 ratio substandard"), **FRACTION, default=Decimal("0.2500"))
    ratio_doubtful = models.DecimalField(_("可疑类计提比例 ratio doubtful"), **FRACTION, default=Decimal("0.5000"))
    ratio_loss = models.DecimalField(_("损失类计提比例 ratio loss"), **FRACTION, default=Decimal("1.0000"))

    class Meta:
        verbose_name = _("拨备政策 provisioning policy")
        verbose_name_plural = _("拨备政策 provisioning policies")
        ordering = ["-effective_from"]

    def __str__(self) -> str:
        return f"provisioning policy from {self.effective_from}"

    def lgd(self, security_type: str) -> Decimal:
        return getattr(self, f"lgd_{security_type}", self.lgd_credit)

    def ratio(self, category: str) -> Decimal:
        return getattr(self, f"ratio_{category}")


class LoanProvision(models.Model):
    """A loan's expected credit loss measured on `on` (预期信用损失): its stage, the PD, LGD and EAD it came from,
    and the allowance it sets (the entry posts the change from the one before)."""

    loan = models.ForeignKey("postloan.Loan", on_delete=models.CASCADE, related_name="provisions")
    on = models.DateField(_("计量日 measured on"), db_index=True)
    stage = models.PositiveSmallIntegerField(_("阶段 stage"), choices=STAGES)
    category = models.CharField(_("五级分类 category"), max_length=20)
    dpd = models.PositiveIntegerField(_("逾期天数 days past due"), default=0)
    grade = models.CharField(_("评级 grade"), max_length=2, blank=True)
    security_type = models.CharField(_("担保方式 security"), max_length=10, choices=SECURITY_TYPES)
    pd = models.DecimalField(_("违约概率 PD"), max_digits=9, decimal_places=8)
    lgd = models.DecimalField(_("违约损失率 LGD"), max_digits=6, decimal_places=4)
    principal = models.DecimalField(_("本金余额 principal"), **MONEY)
    ead = models.DecimalField(_("违约风险暴露 EAD"), **MONEY)
    ecl = models.DecimalField(_("预期信用损失 ECL"), **MONEY)
    change = models.DecimalField(_("本次计提(转回) change"), **MONEY, default=Decimal("0"))
    reason = models.CharField(_("触发 trigger"), max_length=12, choices=[
        ("month_end", _("月末 month end")), ("stage", _("阶段变化 stage change")), ("new", _("新发放 new loan")),
        ("write_off", _("核销 write-off"))])
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("贷款减值准备 loan provision")
        verbose_name_plural = _("贷款减值准备 loan provisions")
        ordering = ["loan", "-on"]
        constraints = [models.UniqueConstraint(fields=["loan", "on"], name="uniq_provision_per_loan_and_date")]

    def __str__(self) -> str:
        return f"loan {self.loan_id} {self.on} stage {self.stage} ECL {self.ecl}"


class ProvisionOverlay(FourEyesRequest):
    """管理层叠加: the portfolio's allowance compared with the five-category ratios at a month end; the shortfall
    (or, once it shrinks, the release) is proposed by close of business, submitted by one person and approved by
    another (four eyes) before it posts. Proposed before anyone submits it, it redeclares the four-eyes state
    (proposed and superseded too), reason, requester and comment."""

    decide_permission = "postloan.decide_overlay_of"

    class Status(models.TextChoices):
        PROPOSED = "proposed", _("待提交 proposed")
        PENDING = "pending", _("待审批 pending")
        APPROVED = "approved", _("已批准 approved")
        REJECTED = "rejected", _("已否决 rejected")
        SUPERSEDED = "superseded", _("已被新测算取代 superseded")

    on = models.DateField(_("测算日 on"))
    required = models.DecimalField(_("按五级分类比例应计提 required by the ratios"), **MONEY)
    ecl_total = models.DecimalField(_("预期信用损失合计 ECL total"), **MONEY)
    held_before = models.DecimalField(_("已有叠加 overlay held"), **MONEY)
    amount = models.DecimalField(_("叠加调整 overlay change"), **MONEY,
                                 help_text=_("正数补提，负数转回 / positive adds, negative releases"))
    by_category = models.JSONField(default=list, blank=True)
    status = FSMField(max_length=12, choices=Status.choices, default=Status.PROPOSED, protected=True, db_index=True)
    reason = models.CharField(_("理由 reason"), max_length=500, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(null=True, blank=True)
    comment = models.CharField(_("审批意见 comment"), max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("拨备叠加 provision overlay")
        verbose_name_plural = _("拨备叠加 provision overlays")
        ordering = ["-on", "-id"]

    def __str__(self) -> str:
        return f"overlay {self.on} {self.amount} ({self.status})"

    @transition(field=status, source=Status.PROPOSED, target=Status.PENDING)
    def submit(self):
        self.requested_at = timezone.now()

    @transition(field=status, source=[Status.PROPOSED, Status.PENDING], target=Status.SUPERSEDED)
    def supersede(self):
        pass


class CobReconciliation(models.Model):
    """After close of business for `on`: each loan's sub-ledger (principal, interest receivable, penalty receivable,
    allowance) against the GL control accounts, to the cent. A difference marks the run and raises the alarm."""

    run = models.OneToOneField("postloan.CobRun", null=True, blank=True, on_delete=models.CASCADE, related_name="reconciliation")
    on = models.DateField(_("对账日 on"), db_index=True)
    balanced = models.BooleanField(_("总分核对一致 balanced"))
    totals = models.JSONField(default=dict, help_text="{item: {sub, gl, difference}}")
    differences = models.JSONField(default=list, help_text="[{loan, item, sub, gl, difference}] (the first 200)")
    difference_count = models.PositiveIntegerField(default=0)
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("总分核对 sub-ledger reconciliation")
        verbose_name_plural = _("总分核对 sub-ledger reconciliations")
        ordering = ["-checked_at", "-id"]

    def __str__(self) -> str:
        return f"reconciliation {self.on} {'ok' if self.balanced else 'DIFFERENCE'}"
