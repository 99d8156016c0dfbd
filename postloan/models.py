"""Post-loan (贷后管理): loans, installments, repayments, days past due, overdue buckets, five-category
classification, early warnings and RM tasks, renewals, restructuring, write-off, satisfaction surveys,
and the policy data all of these read (edited in admin, never constants in code)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, transition

from applications.models import (
    LPR_TENORS,
    MONEY,
    RATE,
    RATE_TYPES,
    REPAYMENT_METHODS,
    SPREAD_BP,
    Enterprise,
    LoanApplication,
)
from contracts.models import DisbursementOrder
from loanservice.four_eyes import FourEyesRequest
from loanservice.fsm import ConcurrentTransitionMixin
from loanservice.models import Branch
from loanservice.money import money_display

FIVE_CATEGORIES = [
    ("normal", _("正常 normal")),
    ("special_mention", _("关注 special mention")),
    ("substandard", _("次级 substandard")),
    ("doubtful", _("可疑 doubtful")),
    ("loss", _("损失 loss")),
]
CATEGORY_ORDER = [code for code, _label in FIVE_CATEGORIES]
NPL_CATEGORIES = ["substandard", "doubtful", "loss"]  # 不良贷款 = 次级 + 可疑 + 损失
SEVERITIES = [("red", _("红色 red")), ("orange", _("橙色 orange")), ("yellow", _("黄色 yellow"))]
SEVERITY_ORDER = ["red", "orange", "yellow"]


class Loan(ConcurrentTransitionMixin, models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("正常存续 active")
        CLOSED = "closed", _("已结清 closed")
        WRITTEN_OFF = "written_off", _("已核销 written off")

    STATUSES = Status.choices
    # A term loan's case has one loan (its disbursement order is the case's one); a credit line's case has one per
    # drawdown (creditlines.Drawdown), each with its own order under the line's contract.
    application = models.ForeignKey(LoanApplication, on_delete=models.PROTECT, related_name="loans")
    disbursement = models.OneToOneField(DisbursementOrder, on_delete=models.PROTECT, related_name="loan")
    enterprise = models.ForeignKey(Enterprise, on_delete=models.PROTECT, related_name="loans")
    borrower = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="loans")
    relationship_manager = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                             related_name="rm_loans")
    branch = models.ForeignKey(Branch, null=True, blank=True, on_delete=models.SET_NULL)
    product_code = models.CharField(max_length=40, blank=True, db_index=True)
    principal = models.DecimalField(**MONEY)
    annual_rate = models.DecimalField(**RATE)
    term_months = models.PositiveSmallIntegerField()
    repayment_method = models.CharField(max_length=20, choices=REPAYMENT_METHODS)
    disbursed_on = models.DateField()
    maturity_date = models.DateField(db_index=True)
    status = FSMField(max_length=12, choices=Status.choices, default=Status.ACTIVE, protected=True, db_index=True)
    outstanding_principal = models.DecimalField(**MONEY)
    overdue_since = models.DateField(_("最早逾期应还日 oldest overdue due date"), null=True, blank=True, db_index=True)
    dpd = models.PositiveIntegerField(_("逾期天数 days past due"), default=0)
    bucket = models.CharField(max_length=4, default="M0")
    classification = models.CharField(max_length=20, choices=FIVE_CATEGORIES, default="normal", db_index=True)
    restructured_on = models.DateField(_("重组日 restructured on"), null=True, blank=True)
    observation_until = models.DateField(_("重组观察期至 observation period until"), null=True, blank=True)
    recall_requested_on = models.DateField(_("提前收回 recall requested on"), null=True, blank=True)
    # The contract's terms the loan is serviced to (fixed at opening; later policy or product edits do not change them).
    repayment_day = models.PositiveSmallIntegerField(_("合同还款日 contract repayment day"), null=True, blank=True)
    due_date_rule = models.CharField(_("节假日还款日规则 due-date holiday rule"), max_length=20, blank=True, default="")
    penalty_markup = models.DecimalField(
        _("合同罚息上浮比例 contract penalty markup"), max_digits=5, decimal_places=4, default=Decimal("0.5000"),
        validators=[MinValueValidator(Decimal("0.30")), MaxValueValidator(Decimal("0.50"))],
        help_text=_("合同约定，上浮0.30-0.50；罚息利率 = 合同利率 × (1 + 上浮) / fixed in the contract, 0.30-0.50"))
    prepayment_terms = models.JSONField(_("合同提前还款条款 contract prepayment terms"), default=dict, blank=True,
                                        help_text="{allowed, lock_in_months, fee_rate, fee_free_after_months, mode}")
    accelerated_on = models.DateField(_("宣布提前到期日 accelerated on"), null=True, blank=True)
    # The rate basis the contract fixes (DESIGN.md "Rates"): annual_rate = lpr_rate + spread_bp / 10000. A floating
    # rate is repriced every repricing_months from the disbursement day at the LPR last published before that day
    # (lpr_rate and lpr_date then name that LPR); the spread never changes; a fixed rate never changes.
    lpr_tenor = models.CharField(_("定价基准 LPR tenor"), max_length=2, choices=LPR_TENORS, blank=True)
    lpr_rate = models.DecimalField(_("定价LPR LPR"), **RATE, null=True, blank=True)
    lpr_date = models.DateField(_("LPR公布日 LPR published on"), null=True, blank=True)
    spread_bp = models.DecimalField(_("加点(基点) spread (bp)"), **SPREAD_BP, null=True, blank=True)
    rate_type = models.CharField(_("利率类型 rate type"), max_length=10, choices=RATE_TYPES, default="fixed")
    repricing_months = models.PositiveSmallIntegerField(_("重定价周期(月) repricing period (months)"), null=True, blank=True)
    next_repricing_on = models.DateField(_("下一重定价日 next repricing date"), null=True, blank=True, db_index=True)
    auto_debit = models.BooleanField(
        _("自动扣款授权 auto-debit authorised"), default=True, db_default=True,
        help_text=_("合同授权日终从借款人结算账户扣收到期款项 / the contract lets close of business debit what is due "
                    "from the borrower's settlement account"))
    tax_class = models.CharField(
        _("增值税免税客户类型 VAT-exempt borrower class"), max_length=20, blank=True, default="",
        help_text=_("放款时借款人符合小微企业贷款利息免征增值税条件的类型（微型、小型、个体工商户），否则为空 / the borrower's class "
                    "when the loan qualified for the small and micro VAT exemption at disbursement, else empty"))
    non_accrual_since = models.DateField(_("停止计息(非应计)起始日 non-accrual since"), null=True, blank=True)
    recovered_amount = models.DecimalField(_("核销后收回 recovered after write-off"), **MONEY, default=0)
    written_off_amount = models.DecimalField(**MONEY, null=True, blank=True)
    closed_on = models.DateField(null=True, blank=True)
    accrued_through = models.DateField(_("日终已处理至 closed through"), null=True, blank=True,
                                       help_text=_("最后一个已完成日终的日期 / the last date close of business closed"))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("贷款 loan")
        verbose_name_plural = _("贷款 loans")
        indexes = [models.Index(fields=["status", "branch"]), models.Index(fields=["status", "dpd"])]

    def __str__(self) -> str:
        return f"loan {self.pk} ({self.enterprise_id})"

    @transition(field=status, source=Status.ACTIVE, target=Status.CLOSED)
    def close(self):
        pass

    @transition(field=status, source=Status.ACTIVE, target=Status.WRITTEN_OFF)
    def write_off(self):
        pass

    @transition(field=status, source=Status.CLOSED, target=Status.ACTIVE)
    def reopen(self):
        """A reversal (冲正) of the repayment that paid the loan off."""
        self.closed_on = None


class RateChange(models.Model):
    """One line of a floating-rate loan's rate history (利率调整记录): the repricing on `effective_on` at the LPR then
    + the contract's spread; the new rate applies from that day."""

    loan = models.ForeignKey(Loan, on_delete=models.CASCADE, related_name="rate_changes")
    effective_on = models.DateField(_("重定价日 effective on"))
    old_rate = models.DecimalField(_("原利率 old rate"), **RATE)
    new_rate = models.DecimalField(_("新利率 new rate"), **RATE)
    lpr_tenor = models.CharField(max_length=2, choices=LPR_TENORS)
    lpr_rate = models.DecimalField(_("LPR"), **RATE)
    lpr_date = models.DateField(_("LPR公布日 LPR published on"))
    spread_bp = models.DecimalField(_("加点(基点) spread (bp)"), **SPREAD_BP)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("利率调整 rate change")
        verbose_name_plural = _("利率调整记录 rate changes")
        ordering = ["loan", "effective_on"]
        constraints = [models.UniqueConstraint(fields=["loan", "effective_on"], name="one_repricing_per_loan_and_date")]

    def __str__(self) -> str:
        return f"{self.loan_id} {self.effective_on} {self.old_rate} → {self.new_rate}"


class Installment(models.Model):
    loan = models.ForeignKey(Loan, on_delete=models.CASCADE, related_name="installments")
    n = models.PositiveSmallIntegerField()
    due_date = models.DateField(db_index=True)
    principal = models.DecimalField(**MONEY)
    interest = models.DecimalField(**MONEY)
    paid_principal = models.DecimalField(**MONEY, default=0)
    paid_interest = models.DecimalField(**MONEY, default=0)
    penalty_accrued = models.DecimalField(_("已计罚息 penalty accrued"), **MONEY, default=0)
    penalty_through = models.DateField(_("罚息计至 penalty accrued through"), null=True, blank=True)
    paid_penalty = models.DecimalField(**MONEY, default=0)
    interest_accrued = models.DecimalField(_("已计提利息 interest accrued"), **MONEY, default=0)
    # The contract's nominal due date (before the holiday rule moved it) and the nominal start of the period: interest
    # accrues on the nominal period; the due date (moved) only says when it is payable.
    nominal_due_date = models.DateField(_("名义应还日 nominal due date"), null=True, blank=True)
    period_start = models.DateField(_("计息起始日 period start"), null=True, blank=True)
    # A floating rate repriced inside the period: the not-yet-due principal earns the new rate from this day; what it
    # earned before at the old rate is part of interest_upfront.
    accrual_start = models.DateField(_("重定价后计息起始日 accrual at the new rate from"), null=True, blank=True)
    # Interest of this period charged before its due date on principal prepaid in it (interest to the day).
    interest_upfront = models.DecimalField(_("提前还款时已收本期利息 interest charged at prepayment"), **MONEY, default=0)
    compound_accrued = models.DecimalField(_("已计复利 compound interest accrued"), **MONEY, default=0)
    compound_exact = models.DecimalField(max_digits=28, decimal_places=12, null=True, blank=True)
    paid_compound = models.DecimalField(**MONEY, default=0)
    # Interest, penalty and compound interest accrued while the loan was non-accrual (表外, off the income statement).
    off_balance_accrued = models.DecimalField(_("表外应收未收利息 off-balance accrued"), **MONEY, default=0)
    # The penalty accrued to the fraction of a cent: each day's accrual is the change of its rounded value, so
    # accruing daily and accruing once charge the same cents.
    penalty_exact = models.DecimalField(max_digits=28, decimal_places=12, null=True, blank=True)
    settled_on = models.DateField(null=True, blank=True)
    superseded = models.BooleanField(_("已被重组计划取代 superseded by a new schedule"), default=False)

    class Meta:
        ordering = ["loan", "n"]
        constraints = [models.UniqueConstraint(fields=["loan", "n"], name="uniq_installment")]
        indexes = [models.Index(fields=["loan", "due_date"], condition=Q(settled_on__isnull=True), name="installment_unsettled"),
                   # the nightly job's "what fell due unpaid by the cutoff", without reading the paid history
                   models.Index(fields=["due_date", "loan"], condition=Q(settled_on__isnull=True, superseded=False),
                                name="installment_open_due")]

    def __str__(self) -> str:
        return f"{self.loan_id}#{self.n}"

    @property
    def total(self):
        return self.principal + self.interest

    @property
    def paid(self):
        return self.paid_principal + self.paid_interest

    @property
    def due_remaining(self):
        return self.total - self.paid

    @property
    def nominal(self):
        return self.nominal_due_date or self.due_date


class RepaymentImport(models.Model):
    """A CSV file from core banking: parsed and validated line by line (preview), then applied whole or not at all."""

    class Status(models.TextChoices):
        PREVIEWED = "previewed", _("已预览 previewed")
        APPLIED = "applied", _("已入账 applied")
        REJECTED = "rejected", _("有错误 has errors")

    file_name = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PREVIEWED)
    lines = models.JSONField(default=list, help_text="[{line, loan_id, reference, amount, paid_on, status, errors}]")
    summary = models.JSONField(default=dict)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(default=timezone.now)
    applied_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("还款导入 repayment import")
        verbose_name_plural = _("还款导入 repayment imports")
        ordering = ["-uploaded_at"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.status})"


class Repayment(models.Model):
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="repayments")
    amount = models.DecimalField(**MONEY)
    paid_on = models.DateField()
    reference = models.CharField(max_length=80)
    channel = models.CharField(max_length=10, default="api", choices=[("api", "API"), ("import", _("导入 import")),
                                                                      ("manual", _("手工 manual")),
                                                                      ("auto_debit", _("自动扣款 auto-debit"))])
    batch = models.ForeignKey(RepaymentImport, null=True, blank=True, on_delete=models.PROTECT, related_name="repayments")
    allocation = models.JSONField(default=dict)
    penalty_paid = models.DecimalField(**MONEY, default=0)
    compound_paid = models.DecimalField(_("复利 compound interest paid"), **MONEY, default=0)
    interest_paid = models.DecimalField(**MONEY, default=0)
    principal_paid = models.DecimalField(**MONEY, default=0)
    prepaid_principal = models.DecimalField(_("提前还本 prepaid principal"), **MONEY, default=0)
    prepayment_fee = models.DecimalField(_("提前还款违约金 prepayment fee"), **MONEY, default=0)
    unapplied = models.DecimalField(**MONEY, default=0)
    kind = models.CharField(max_length=12, default="repayment",
                            choices=[("repayment", _("还款 repayment")), ("prepayment", _("提前还款 prepayment"))])
    reversed_at = models.DateTimeField(_("已冲正 reversed at"), null=True, blank=True)
    # The loan's schedule as it stood before this repayment: a reversal replays the loan from here.
    state_before = models.JSONField(default=dict, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["paid_on", "id"]
        constraints = [models.UniqueConstraint(fields=["loan", "reference"], name="uniq_repayment_reference")]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount}"


class ClassificationChange(models.Model):
    """History of the five-category classification: from, to, why, who, when."""

    KINDS = [("floor", _("逾期天数下限 DPD floor")), ("downgrade", _("人工下调 manual downgrade")),
             ("upgrade", _("审批上调 approved upgrade")), ("restructure", _("重组 restructuring")),
             ("write_off", _("核销 write-off")), ("borrower", _("借款人不良占比 borrower's non-performing share"))]
    loan = models.ForeignKey(Loan, on_delete=models.CASCADE, related_name="classification_history")
    from_category = models.CharField(max_length=20)
    to_category = models.CharField(max_length=20)
    kind = models.CharField(max_length=12, choices=KINDS, default="floor")
    reason = models.CharField(max_length=300)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    on = models.DateField(_("营业日期 business date"), null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.loan_id}: {self.from_category}→{self.to_category}"


# ---------------------------------------------------------------- policy as data
def _retail_forms() -> list[str]:
    return ["individual"]  # 个体工商户: a personal business loan, managed as retail


class PostloanPolicy(models.Model):
    """The post-loan policy in force from `effective_from` (the latest one not in the future applies)."""

    effective_from = models.DateField(_("生效日 effective from"), unique=True)
    penalty_rate_markup = models.DecimalField(
        _("罚息上浮比例 penalty rate markup"), max_digits=5, decimal_places=4, default=Decimal("0.5000"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("5"))],
        help_text=_("罚息利率 = 合同利率 × (1 + 上浮)；0.5 即上浮 50% / penalty rate = contract rate × (1 + markup)"))
    holiday_rollover = models.BooleanField(
        _("节假日顺延 holiday rollover"), default=True,
        help_text=_("应还日为节假日时，下一工作日前还款不算逾期 / a due date on a holiday may be paid by the next business day"))
    renewal_window_days = models.PositiveSmallIntegerField(_("续贷窗口(天) renewal window (days before maturity)"), default=90)
    renewal_max_late_days = models.PositiveSmallIntegerField(
        _("续贷允许的最长历史逾期(天) max historical lateness for renewal (days)"), default=0)
    nps_after_repayments = models.PositiveSmallIntegerField(_("第几次还款后邀请评价 survey after N repayments"), default=3)
    restructure_min_category = models.CharField(_("重组后最低分类 minimum category after restructuring"), max_length=20,
                                                choices=FIVE_CATEGORIES, default="special_mention")
    restructure_observation_months = models.PositiveSmallIntegerField(_("重组观察期(月) observation period (months)"), default=12)
    write_off_min_category = models.CharField(_("核销要求的最低分类 minimum category for write-off"), max_length=20,
                                              choices=FIVE_CATEGORIES, default="doubtful")
    overdue_charge_cap = models.DecimalField(
        _("罚息复利费用年化上限 annual cap on penalty, compound interest and fees"), max_digits=5, decimal_places=4,
        default=Decimal("0.2400"), validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("0.24"))],
        help_text=_("九民纪要第51条：合计年化不超过0.24 / 九民纪要 §51: never above 0.24 a year"))
    non_accrual_dpd = models.PositiveSmallIntegerField(_("非应计天数 non-accrual after days past due"), default=90)
    borrower_npl_share = models.DecimalField(
        _("借款人不良债权占比上限 borrower's non-performing share"), max_digits=5, decimal_places=4, default=Decimal("0.1000"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text=_("非零售借款人在本行的债权中不良占比超过此值时，其全部债权至少归为次级（2023年风险分类办法）/ "
                    "when more of a non-retail borrower's claims than this are non-performing, all of them are at least substandard"))
    retail_legal_forms = models.JSONField(
        _("按零售管理的组织形式 legal forms treated as retail"), default=_retail_forms, blank=True,
        help_text=_("这些组织形式的借款人不适用借款人统一分类 / borrowers of these legal forms are not classified as one"))
    upgrade_cure_months = models.PositiveSmallIntegerField(
        _("上调前须连续正常还款(月) months current before an upgrade"), default=3,
        help_text=_("曾被下调的贷款须连续按时还款满此月数方可上调 / a loan classified worse may be upgraded only after this many months current"))
    extension_max_times = models.PositiveSmallIntegerField(
        _("展期次数上限 extensions allowed"), default=1, help_text=_("贷款通则第十二条：原则上只能展期一次 / 贷款通则 art. 12: once"))
    auto_debit_new_contracts = models.BooleanField(
        _("新合同默认授权自动扣款 new contracts authorise auto-debit"), default=True,
        help_text=_("合同条款未另行约定时适用 / unless the contract's terms say otherwise"))
    accelerate_needs_approval = models.BooleanField(_("宣布提前到期须审批 acceleration needs approval"), default=True)
    red_task_days = models.DecimalField(_("红色预警处置时限(工作日) red task SLA (business days)"), max_digits=4, decimal_places=1, default=Decimal("1"))
    orange_task_days = models.DecimalField(_("橙色预警处置时限 orange task SLA"), max_digits=4, decimal_places=1, default=Decimal("3"))
    yellow_task_days = models.DecimalField(_("黄色预警处置时限 yellow task SLA"), max_digits=4, decimal_places=1, default=Decimal("5"))

    class Meta:
        verbose_name = _("贷后政策 post-loan policy")
        verbose_name_plural = _("贷后政策 post-loan policies")
        ordering = ["-effective_from"]

    def __str__(self) -> str:
        return f"post-loan policy from {self.effective_from}"


class DelinquencyBucket(models.Model):
    """Overdue buckets (M0, M1 1-30, ...): a loan is in the bucket whose range holds its DPD."""

    code = models.CharField(max_length=4, unique=True)
    min_dpd = models.PositiveIntegerField()
    max_dpd = models.PositiveIntegerField(null=True, blank=True, help_text=_("留空表示无上限 / blank = no upper bound"))

    class Meta:
        verbose_name = _("逾期分档 overdue bucket")
        verbose_name_plural = _("逾期分档 overdue buckets")
        ordering = ["min_dpd"]

    def __str__(self) -> str:
        return f"{self.code} ({self.min_dpd}-{self.max_dpd or '∞'})"


class ClassificationFloor(models.Model):
    """五级分类下限: DPD above `dpd_over` puts the loan at least in `category` (2023 rules by default)."""

    category = models.CharField(max_length=20, choices=FIVE_CATEGORIES, unique=True)
    dpd_over = models.PositiveIntegerField(_("逾期天数超过 DPD over"))

    class Meta:
        verbose_name = _("五级分类下限 classification floor")
        verbose_name_plural = _("五级分类下限 classification floors")
        ordering = ["dpd_over"]

    def __str__(self) -> str:
        return f"DPD > {self.dpd_over} → {self.category}"


class PrepaymentRule(models.Model):
    """提前还款规则 per product (blank product code = the default)."""

    MODES = [("reduce_installment", _("月供减少、期限不变 reduce the installment")),
             ("reduce_term", _("月供不变、期限缩短 shorten the term"))]
    product_code = models.CharField(max_length=40, blank=True, unique=True)
    allowed = models.BooleanField(_("允许提前还款 allowed"), default=True)
    lock_in_months = models.PositiveSmallIntegerField(_("放款后多少个月内不得提前还款 lock-in (months)"), default=0)
    fee_rate = models.DecimalField(_("违约金比例 fee rate on the prepaid principal"), max_digits=5, decimal_places=4, default=Decimal("0"))
    fee_free_after_months = models.PositiveSmallIntegerField(_("满多少个月后免违约金 fee-free after (months)"), default=0)
    mode = models.CharField(max_length=20, choices=MODES, default="reduce_installment")

    class Meta:
        verbose_name = _("提前还款规则 prepayment rule")
        verbose_name_plural = _("提前还款规则 prepayment rules")

    def __str__(self) -> str:
        return self.product_code or "*"


class WarningRule(models.Model):
    """An early-warning rule (预警规则). Kinds:
    drop_yoy: `field` below `compare_field` by more than `threshold` (0.30 = 30 %);
    flag: `field` is true; increase: `field` above the previous snapshot's value;
    positive: `field` above `threshold`; ltv_above: outstanding / collateral value above `threshold`."""

    KINDS = [("drop_yoy", _("同比下降 year-on-year drop")), ("flag", _("标志为真 flag set")),
             ("increase", _("较上期增加 increased")), ("positive", _("大于阈值 above threshold")),
             ("ltv_above", _("抵押率超限 LTV above limit"))]
    SOURCES = [("tax", "tax"), ("registry", "registry"), ("social_security", "social_security"), ("customs", "customs"),
               ("credit_bureau", "credit_bureau"), ("judicial", "judicial"), ("internal", "internal"),
               ("collateral", _("押品 collateral"))]
    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(_("名称 name"), max_length=100)
    source = models.CharField(max_length=20, choices=SOURCES)
    kind = models.CharField(max_length=12, choices=KINDS)
    field = models.CharField(max_length=60, blank=True)
    compare_field = models.CharField(max_length=60, blank=True)
    threshold = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal("0"))
    severity = models.CharField(max_length=6, choices=SEVERITIES)
    is_active = models.BooleanField(default=True)
    freezes_credit_line = models.BooleanField(
        _("冻结循环额度 freezes the credit line"), default=False,
        help_text=_("预警未处置时，借款人的循环额度不得用信，并由日终冻结 / while open, the borrower's lines refuse drawdowns "
                    "and the nightly job freezes them"))
    evaluated_through = models.BigIntegerField(default=0, help_text=_("已评估至的数据快照编号 / snapshots up to this id evaluated"))

    class Meta:
        verbose_name = _("预警规则 warning rule")
        verbose_name_plural = _("预警规则 warning rules")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} ({self.severity})"


# The names of the facts a warning records as its evidence (postloan.monitoring).
EVIDENCE_NAMES = {
    "enforcement_cases": _("被执行案件数 enforcement cases"), "previous": _("此前 before"),
    "headcount": _("社保人数 insured employees"), "headcount_12m_ago": _("12个月前社保人数 insured employees 12 months ago"),
    "revenue_12m": _("近12个月收入 revenue, last 12 months"), "revenue_prev_12m": _("前12个月收入 revenue, previous 12 months"),
    "settlement_inflow_12m": _("近12个月结算流入 settlement inflows, last 12 months"),
    "settlement_inflow_prev_12m": _("前12个月结算流入 settlement inflows, previous 12 months"),
    "drop": _("降幅 drop"), "legal_rep_changed_12m": _("近12个月法定代表人变更 legal representative changed in 12 months"),
    "collateral_value": _("押品价值 collateral value"), "ltv_limit": _("抵押率上限 loan-to-value limit"),
    "dishonest_debtor": _("失信被执行人 dishonest judgment debtor"), "litigation_cases_12m": _("近12个月涉诉案件数 lawsuits in 12 months"),
}


class EarlyWarning(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("待处置 open")
        CLOSED = "closed", _("已处置 closed")

    loan = models.ForeignKey(Loan, on_delete=models.CASCADE, related_name="warnings")
    rule = models.ForeignKey(WarningRule, on_delete=models.PROTECT, related_name="warnings")
    branch = models.ForeignKey(Branch, null=True, blank=True, on_delete=models.SET_NULL)
    severity = models.CharField(max_length=6, choices=SEVERITIES, db_index=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN, db_index=True)
    fingerprint = models.CharField(max_length=64)
    evidence = models.JSONField(default=dict)
    snapshot_id = models.BigIntegerField(null=True, blank=True)
    detected_on = models.DateField()
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("预警 early warning")
        verbose_name_plural = _("预警 early warnings")
        ordering = ["-detected_on", "-id"]
        constraints = [models.UniqueConstraint(fields=["loan", "rule", "fingerprint"], name="uniq_warning_fingerprint")]
        indexes = [models.Index(fields=["status", "severity", "branch"])]

    def __str__(self) -> str:
        return f"{self.rule_id} on loan {self.loan_id}"

    @property
    def evidence_text(self) -> str:
        """The evidence in words: "被执行案件数 1（此前 0）· 降幅 40.0%" rather than a dict of codes."""
        parts = []
        for key, value in (self.evidence or {}).items():
            name = str(EVIDENCE_NAMES.get(key, key.replace("_", " ")))
            if isinstance(value, bool):
                shown = str(_("是 yes") if value else _("否 no"))
            elif key in ("drop", "ltv_limit"):
                try:
                    shown = f"{Decimal(str(value)) * 100:.1f}%"
                except ArithmeticError:
                    shown = str(value)
            elif isinstance(value, (int, float, str)) and str(value).replace(".", "", 1).lstrip("-").isdigit():
                number = Decimal(str(value))
                shown = money_display(number, 0 if number == number.to_integral_value() else 2)
            else:
                shown = str(value)
            parts.append(f"{name} {shown}")
        return " · ".join(parts)


class WarningTask(ConcurrentTransitionMixin, models.Model):
    """The RM's task opened by a warning: visit, then an action (keep, reduce limit, add collateral, recall)."""

    class Status(models.TextChoices):
        OPEN = "open", _("待处理 open")
        DONE = "done", _("已完成 done")

    ACTIONS = [("keep", _("维持 keep")), ("reduce_limit", _("压降额度 reduce limit")),
               ("add_collateral", _("追加担保 add collateral")), ("recall", _("提前收回 recall"))]
    VISIT_MODES = [("onsite", _("现场 on site")), ("video", _("视频 video")), ("phone", _("电话 phone"))]
    warning = models.OneToOneField(EarlyWarning, on_delete=models.CASCADE, related_name="task")
    loan = models.ForeignKey(Loan, on_delete=models.CASCADE, related_name="warning_tasks")
    assigned_to = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="warning_tasks")
    status = FSMField(max_length=8, choices=Status.choices, default=Status.OPEN, protected=True, db_index=True)
    target_days = models.DecimalField(max_digits=4, decimal_places=1)
    due_at = models.DateTimeField(db_index=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    visit_mode = models.CharField(max_length=8, choices=VISIT_MODES, blank=True)
    visit_notes = models.TextField(blank=True)
    action = models.CharField(max_length=16, choices=ACTIONS, blank=True)
    action_note = models.TextField(blank=True)
    completed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("预警处置任务 warning task")
        verbose_name_plural = _("预警处置任务 warning tasks")
        ordering = ["due_at", "id"]

    def __str__(self) -> str:
        return f"task {self.pk} for warning {self.warning_id}"

    @transition(field=status, source=Status.OPEN, target=Status.DONE)
    def complete(self):
        self.completed_at = timezone.now()


class Collateral(models.Model):
    """押品: its latest appraised value drives the LTV warning."""

    loan = models.ForeignKey(Loan, on_delete=models.CASCADE, related_name="collateral")
    description = models.CharField(max_length=200)
    value = models.DecimalField(_("评估价值 appraised value"), **MONEY)
    valued_on = models.DateField()

    class Meta:
        verbose_name = _("押品 collateral")
        verbose_name_plural = _("押品 collateral")

    def __str__(self) -> str:
        return self.description


class SourceRefresh(models.Model):
    """When each monitored data source of a borrower is next refreshed (the nightly job's work list)."""

    enterprise = models.ForeignKey(Enterprise, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=20)
    due_on = models.DateField(db_index=True)
    last_snapshot_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["enterprise", "source"], name="uniq_source_refresh")]

    def __str__(self) -> str:
        return f"{self.enterprise_id}:{self.source}@{self.due_on}"


class MonitoringRun(models.Model):
    """One night's monitoring job: its progress (step, counts), so it can resume where it was killed."""

    STEPS = ["delinquency", "refresh", "warnings", "tasks", "done"]
    run_date = models.DateField(unique=True)
    status = models.CharField(max_length=10, default="running",
                              choices=[("running", _("运行中 running")), ("done", _("完成 done")), ("failed", _("失败 failed"))])
    step = models.CharField(max_length=12, default="delinquency")
    cursor = models.BigIntegerField(default=0)
    counts = models.JSONField(default=dict)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("贷后监测批次 monitoring run")
        verbose_name_plural = _("贷后监测批次 monitoring runs")
        ordering = ["-run_date"]

    def __str__(self) -> str:
        return f"{self.run_date} {self.status} {self.step}"


class ApprovalRequest(FourEyesRequest):
    """A post-loan change that needs a second person's approval: a classification upgrade, a
    restructuring (term extension, reschedule) or a write-off."""

    class Kind(models.TextChoices):
        UPGRADE = "upgrade", _("分类上调 classification upgrade")
        EXTENSION = "extension", _("展期 term extension")
        RESCHEDULE = "reschedule", _("重新安排还款计划 reschedule")
        WRITE_OFF = "write_off", _("核销 write-off")
        ACCELERATE = "accelerate", _("宣布提前到期 acceleration")
        REVERSAL = "reversal", _("冲正 reversal")

    decide_permission = "postloan.decide_request_of"

    loan = models.ForeignKey(Loan, on_delete=models.CASCADE, related_name="approval_requests")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("贷后审批 post-loan approval")
        verbose_name_plural = _("贷后审批 post-loan approvals")
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"{self.kind} loan {self.loan_id} ({self.status})"

    @property
    def params_text(self) -> str:
        """What is asked, in words: "关注 → 正常", "展期 6 个月", "剩余 24 个月，等额本金", "核销 ¥330,000.00"."""
        p, categories, methods = self.params or {}, dict(FIVE_CATEGORIES), dict(REPAYMENT_METHODS)
        if "to_category" in p:
            before = categories.get(p.get("from_category"), p.get("from_category") or "")
            return f"{before} → {categories.get(p['to_category'], p['to_category'])}".strip(" →")
        if "extra_months" in p:
            return str(_("展期 %(n)s 个月") % {"n": p["extra_months"]})
        if "term_months" in p:
            method = methods.get(p.get("repayment_method"), p.get("repayment_method") or "")
            return str(_("剩余期限 %(n)s 个月") % {"n": p["term_months"]}) + (f" · {method}" if method else "")
        if "amount" in p:
            return f"¥{money_display(p['amount'])}"
        return ""


class RenewalOffer(models.Model):
    """无还本续贷 / top-up: the offer made before maturity, and the new application once requested."""

    KINDS = [("renewal", _("无还本续贷 renewal without principal repayment")), ("top_up", _("增额 top-up"))]
    loan = models.ForeignKey(Loan, on_delete=models.CASCADE, related_name="renewals")
    kind = models.CharField(max_length=10, choices=KINDS, default="renewal")
    offered_on = models.DateField()
    application = models.OneToOneField(LoanApplication, null=True, blank=True, on_delete=models.SET_NULL, related_name="renewal_of")
    amount = models.DecimalField(**MONEY, null=True, blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("续贷 renewal")
        verbose_name_plural = _("续贷 renewals")
        constraints = [models.UniqueConstraint(fields=["loan"], condition=Q(kind="renewal"), name="uniq_renewal_offer")]

    def __str__(self) -> str:
        return f"{self.kind} of loan {self.loan_id}"


class SurveyResponse(models.Model):
    """A short satisfaction survey (NPS 0-10 and a comment) after disbursement and after the first repayments."""

    TRIGGERS = [("disbursement", _("放款后 after disbursement")), ("repayments", _("首几次还款后 after the first repayments"))]
    loan = models.ForeignKey(Loan, on_delete=models.CASCADE, related_name="surveys")
    trigger = models.CharField(max_length=12, choices=TRIGGERS)
    invited_at = models.DateTimeField(default=timezone.now)
    score = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(10)])
    comment = models.CharField(max_length=500, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("满意度调查 satisfaction survey")
        verbose_name_plural = _("满意度调查 satisfaction surveys")
        constraints = [models.UniqueConstraint(fields=["loan", "trigger"], name="uniq_survey")]

    def __str__(self) -> str:
        return f"{self.trigger} loan {self.loan_id}"


class CobRun(models.Model):
    """Close of business (日终) from the business date through `until`: every open loan closed once, in partitions
    of loan ids that any number of workers process in parallel; then the business date becomes `until` + 1."""

    class Status(models.TextChoices):
        RUNNING = "running", _("进行中 running")
        DONE = "done", _("已完成 done")
        FAILED = "failed", _("失败 failed")

    from_date = models.DateField(_("起始日 from"))
    until = models.DateField(_("截止日 until"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING, db_index=True)
    total = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("日终批处理 close of business")
        verbose_name_plural = _("日终批处理 close of business runs")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["status"], condition=Q(status="running"), name="one_cob_running")]

    def __str__(self) -> str:
        return f"COB {self.from_date}..{self.until} {self.status}"


class CobPartition(models.Model):
    """A range of loan ids of one run; resumable: `last_loan` is the last loan it closed."""

    run = models.ForeignKey(CobRun, on_delete=models.CASCADE, related_name="partitions")
    lo = models.BigIntegerField()
    hi = models.BigIntegerField()
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    last_loan = models.BigIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "lo"]

    def __str__(self) -> str:
        return f"{self.run_id}[{self.lo}..{self.hi}] {self.done}/{self.total}"


class Recovery(models.Model):
    """核销后收回 (账销案存: a write-off never ends collection): cash received on a written-off loan, booked as
    recovery income. Idempotent by reference."""

    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="recoveries")
    amount = models.DecimalField(**MONEY)
    paid_on = models.DateField()
    reference = models.CharField(max_length=80)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("核销后收回 recovery after write-off")
        verbose_name_plural = _("核销后收回 recoveries after write-off")
        ordering = ["paid_on", "id"]
        constraints = [models.UniqueConstraint(fields=["loan", "reference"], name="uniq_recovery_reference")]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount}"

class AutoDebitAttempt(models.Model):
    """自动扣款: close of business asking core banking to debit what a loan has due on a date from the borrower's
    settlement account. One per loan and date (its reference is the key core banking de-duplicates on); what was
    debited is allocated as a repayment with the same reference."""

    class Status(models.TextChoices):
        REQUESTED = "requested", _("已发起 requested")
        DEBITED = "debited", _("全额扣款 debited in full")
        PARTIAL = "partial", _("部分扣款 partially debited")
        FAILED = "failed", _("扣款失败 not debited")
        ERROR = "error", _("核心系统无应答 no answer from core banking")

    FINAL = frozenset({Status.DEBITED, Status.PARTIAL, Status.FAILED, Status.ERROR})

    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="auto_debits")
    on = models.DateField(_("扣款日 date"), db_index=True)
    reference = models.CharField(_("扣款流水号 reference"), max_length=80, unique=True)
    account = models.CharField(_("结算账户 settlement account"), max_length=40, blank=True)
    requested = models.DecimalField(_("应扣金额 requested"), **MONEY)
    debited = models.DecimalField(_("实扣金额 debited"), **MONEY, default=0)
    status = models.CharField(_("结果 status"), max_length=10, choices=Status.choices, default=Status.REQUESTED,
                              db_index=True)
    core_reference = models.CharField(_("核心流水号 core reference"), max_length=60, blank=True)
    error = models.CharField(_("原因 reason"), max_length=200, blank=True)
    repayment = models.OneToOneField(Repayment, null=True, blank=True, on_delete=models.PROTECT, related_name="auto_debit")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("自动扣款 auto-debit")
        verbose_name_plural = _("自动扣款 auto-debits")
        ordering = ["-on", "loan_id"]
        constraints = [models.UniqueConstraint(fields=["loan", "on"], name="auto_debit_once_a_day")]

    def __str__(self) -> str:
        return f"{self.reference} {self.status} {self.debited}/{self.requested}"


# Provisions (expected credit loss), the portfolio overlay and the reconciliation of close of business (issue #17).
from .provision_models import CobReconciliation, LoanProvision, ProvisionOverlay, ProvisionPolicy  # noqa: E402, F401
