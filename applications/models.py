"""Intake: enterprises, products with their published checklists and criteria, and the application
lifecycle (the master FSM of a case)."""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, transition

from loanservice.fields import BlindIndexField, EncryptedCharField
from loanservice.fsm import ConcurrentTransitionMixin
from loanservice.models import Branch
from loanservice.storage import private_storage

from .identifiers import check_resident_id, check_uscc
from .prescreen import RULES

MONEY = {"max_digits": 16, "decimal_places": 2}
RATE = {"max_digits": 7, "decimal_places": 6}

REPAYMENT_METHODS = [
    ("equal_installment", _("等额本息 equal installment")),
    ("equal_principal", _("等额本金 equal principal")),
    ("interest_only", _("先息后本 interest only")),
    ("bullet", _("到期一次还本付息 bullet")),
    ("daily_interest", _("随借随还 daily interest")),
]


def validate_repayment_methods(value) -> None:
    """A product offers at least one repayment method, each one the schedules know (REPAYMENT_METHODS)."""
    known = [code for code, _label in REPAYMENT_METHODS]
    if not isinstance(value, list) or not value or not all(isinstance(m, str) for m in value):
        raise ValidationError(_('还款方式列表，如 ["equal_installment"] / A list of repayment methods, e.g. ["equal_installment"].'))
    unknown = [m for m in value if m not in known]
    if unknown:
        raise ValidationError(_("未知的还款方式 / Unknown repayment methods: %(m)s（可选 / known: %(k)s）")
                              % {"m": ", ".join(unknown), "k": ", ".join(known)})

#: 贷款市场报价利率 (LPR) tenors: the 1-year and the over-5-year rate the National Interbank Funding Center publishes.
LPR_TENORS = [("1y", _("一年期LPR 1-year LPR")), ("5y", _("五年期以上LPR 5-year LPR"))]
#: 固定利率 / 浮动利率: a floating rate is repriced every N months at the LPR then + the contract's fixed spread.
RATE_TYPES = [("fixed", _("固定利率 fixed rate")), ("floating", _("浮动利率 floating rate"))]
#: A spread over the LPR in basis points (may be negative), to a hundredth of a point (the rate's own precision).
SPREAD_BP = {"max_digits": 8, "decimal_places": 2}

DATA_SOURCES = [
    ("tax", _("税务 tax")),
    ("registry", _("工商登记 business registry")),
    ("social_security", _("社保 social security")),
    ("customs", _("海关 customs")),
    ("credit_bureau", _("征信 credit bureau")),
    ("judicial", _("司法 judicial")),
    ("internal", _("行内 internal")),
]


class Bilingual:
    """Picks the English twin of a field when the UI language is English."""

    def tr(self, field: str) -> str:
        if (get_language() or "").startswith("en"):
            value = getattr(self, f"{field}_en", "")
            if value:
                return value
        return getattr(self, field)


class Enterprise(models.Model):
    LEGAL_FORMS = [
        ("llc", _("有限责任公司 limited liability company")),
        ("jsc", _("股份有限公司 joint-stock company")),
        ("sole", _("个人独资企业 sole proprietorship")),
        ("partnership", _("合伙企业 partnership")),
        ("individual", _("个体工商户 individual business")),
    ]
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="enterprises")
    name = models.CharField(_("企业名称 name"), max_length=200)
    uscc = models.CharField(_("统一社会信用代码 USCC"), max_length=18, unique=True)
    legal_form = models.CharField(_("组织形式 legal form"), max_length=20, choices=LEGAL_FORMS, default="llc")
    legal_rep_name = EncryptedCharField(_("法定代表人 legal representative"), max_length=100)
    legal_rep_id_number = EncryptedCharField(_("法定代表人身份证号 legal representative ID"), max_length=18,
                                             blind_index="legal_rep_id_number_bidx")
    legal_rep_id_number_bidx = BlindIndexField(source="legal_rep_id_number")
    industry_code = models.CharField(_("行业代码 industry (GB/T 4754)"), max_length=10)
    founded_on = models.DateField(_("成立日期 founded on"))
    employees = models.PositiveIntegerField(_("从业人数 employees"))
    annual_revenue = models.DecimalField(_("年营业收入 annual revenue"), **MONEY, validators=[MinValueValidator(0)])
    region_code = models.CharField(_("登记地区代码 region code"), max_length=6, blank=True)
    relationship_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="rm_enterprises"
    )
    branch = models.ForeignKey(Branch, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    # When the retention schedule anonymised its personal data (casework.retention); the record itself stays.
    anonymised_at = models.DateTimeField(_("个人信息匿名化时间 personal data anonymised"), null=True, blank=True)

    class Meta:
        verbose_name = _("企业 enterprise")
        verbose_name_plural = _("企业 enterprises")

    def __str__(self) -> str:
        return f"{self.name} ({self.uscc})"


def list_grade_a() -> list[str]:
    return ["A"]


def validate_grade_list(value) -> None:
    if not isinstance(value, list) or any(g not in ("A", "B", "C", "D", "E") for g in value):
        raise ValidationError(_('评级列表，如 ["A"] / A list of grades A-E, e.g. ["A"].'))


class LoanProduct(Bilingual, models.Model):
    code = models.SlugField(_("产品代码 code"), max_length=40, unique=True)
    name = models.CharField(_("名称 name"), max_length=100)
    name_en = models.CharField(_("英文名称 name (en)"), max_length=100, blank=True)
    description = models.TextField(_("介绍 description"), blank=True)
    description_en = models.TextField(_("英文介绍 description (en)"), blank=True)
    customers = models.TextField(_("适用客户 who it is for"), blank=True)
    customers_en = models.TextField(_("适用客户(英) who it is for (en)"), blank=True)
    min_amount = models.DecimalField(_("最低金额 min amount"), **MONEY)
    max_amount = models.DecimalField(_("最高金额 max amount"), **MONEY)
    min_term_months = models.PositiveSmallIntegerField(_("最短期限(月) min term"))
    max_term_months = models.PositiveSmallIntegerField(_("最长期限(月) max term"))
    repayment_methods = models.JSONField(_("还款方式 repayment methods"), default=list,
                                         validators=[validate_repayment_methods])
    fast_track = models.BooleanField(_("信秒贷快速通道 fast track"), default=False)
    secured = models.BooleanField(_("需抵押/担保 secured"), default=False)
    rate_floor = models.DecimalField(_("最低年利率 rate floor"), **RATE, default=Decimal("0.030000"))
    rate_cap = models.DecimalField(_("最高年利率 rate cap"), **RATE, default=Decimal("0.150000"))
    # Rate basis (DESIGN.md "Rates"): rate = LPR of this tenor + a spread in basis points fixed for the loan's life.
    lpr_tenor = models.CharField(_("定价基准 LPR tenor"), max_length=2, choices=LPR_TENORS, default="1y",
                                 help_text=_("利率 = 该期限LPR + 加点 / the rate is this LPR plus the spread"))
    rate_type = models.CharField(_("利率类型 rate type"), max_length=10, choices=RATE_TYPES, default="fixed",
                                 help_text=_("浮动利率按重定价周期随LPR调整，加点不变 / floating: repriced at the LPR, same spread"))
    repricing_months = models.PositiveSmallIntegerField(
        _("重定价周期(月) repricing period (months)"), default=12, validators=[MinValueValidator(1), MaxValueValidator(120)],
        help_text=_("浮动利率自放款日起每满此月数重定价一次 / floating: repriced every this many months from disbursement"))
    # Repayment schedule policy, used by contracts (docs/schedules.md).
    grace_months = models.PositiveSmallIntegerField(
        _("宽限期(月，只付息) grace months"), default=0,
        help_text=_("等额本息/等额本金前的只付息月数，适合季节性经营 / interest-only months before amortising"))
    repayment_day = models.PositiveSmallIntegerField(
        _("固定还款日 repayment day"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(31)],
        help_text=_("每月固定还款日(1-31)，为空表示放款日对日 / day of month; empty: the value date's day"))
    DUE_DATE_RULES = [("none", _("不调整 no adjustment")), ("following", _("顺延至下一工作日 following business day")),
                      ("modified_following", _("顺延，跨月则提前 modified following")),
                      ("preceding", _("提前至上一工作日 preceding business day"))]
    due_date_rule = models.CharField(_("非工作日还款日调整 due-date rule"), max_length=20, choices=DUE_DATE_RULES,
                                     default="following")
    # Offer and due-diligence policy (DESIGN.md: an offer is valid 30 days; a visit is waived for grade A under 1,000,000).
    offer_valid_days = models.PositiveSmallIntegerField(
        _("批复有效期(天) offer valid for (days)"), default=30, validators=[MinValueValidator(1)],
        help_text=_("批复后客户须在此天数内接受，否则过期 / the applicant accepts within these days or the offer expires"))
    visit_waiver_grades = models.JSONField(
        _("可免走访的评级 grades that may waive the visit"), default=list_grade_a, blank=True, validators=[validate_grade_list],
        help_text=_('评级在此列表且金额低于下方上限时可免于走访，如 ["A"]；为空表示不免 / e.g. ["A"]; empty: never waived'))
    visit_waiver_below = models.DecimalField(
        _("免走访金额上限(不含) visit waived below"), **MONEY, default=Decimal("1000000"),
        help_text=_("申请金额低于此值方可免于走访 / the requested amount must be below this"))
    # Kind: a one-off term loan, or a revolving credit line (授信): the application grants a limit for a validity
    # period and each drawdown (用信) is a loan of its own (creditlines/, docs/creditlines.md). For a line, the
    # application's amount is the limit asked for, its term the validity in months, its method the default for drawdowns.
    class Kind(models.TextChoices):
        TERM_LOAN = "term_loan", _("单笔贷款 term loan")
        CREDIT_LINE = "credit_line", _("循环额度 revolving credit line")

    kind = models.CharField(_("产品类型 kind"), max_length=12, choices=Kind.choices, default=Kind.TERM_LOAN)
    drawdown_min_amount = models.DecimalField(
        _("单笔用信最低金额 drawdown min amount"), **MONEY, default=Decimal("1000"),
        help_text=_("循环额度产品：每笔提款不低于此金额 / credit lines: each drawdown at least this"))
    drawdown_max_amount = models.DecimalField(
        _("单笔用信最高金额 drawdown max amount"), **MONEY, null=True, blank=True,
        help_text=_("为空表示以可用额度为限 / empty: up to what is available"))
    drawdown_min_term_months = models.PositiveSmallIntegerField(_("用信最短期限(月) drawdown min term"), default=1)
    drawdown_max_term_months = models.PositiveSmallIntegerField(_("用信最长期限(月) drawdown max term"), default=12)
    drawdown_methods = models.JSONField(_("用信还款方式 drawdown repayment methods"), default=list, blank=True,
                                        help_text=_('如 ["daily_interest", "equal_installment"]；为空时同还款方式 / empty: the product\'s methods'))
    drawdown_maturity_cap_months = models.PositiveSmallIntegerField(
        _("用信到期日上限(额度到期后月数) drawdown maturity cap"), default=0,
        help_text=_("每笔用信到期日不得晚于额度到期日后的月数，0 表示不得超过额度有效期 / "
                    "months after the line's validity a drawdown may mature; 0: within the validity"))
    self_payment_limit = models.DecimalField(
        _("自主支付限额 self-payment limit"), **MONEY, default=Decimal("300000"),
        help_text=_("超过此金额的用信须受托支付给指定收款人 / above this a drawdown is paid to a named payee (受托支付)"))
    review_days_before_expiry = models.PositiveSmallIntegerField(
        _("年审提前天数 annual review lead days"), default=30,
        help_text=_("额度到期前多少天为客户经理生成年审任务 / days before expiry the RM gets the annual review task"))
    is_active = models.BooleanField(_("上架 active"), default=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("贷款产品 loan product")
        verbose_name_plural = _("贷款产品 loan products")
        ordering = ["order", "code"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_credit_line(self) -> bool:
        return self.kind == self.Kind.CREDIT_LINE

    @property
    def drawdown_method_list(self) -> list[str]:
        return list(self.drawdown_methods or self.repayment_methods)


class DocumentRequirement(Bilingual, models.Model):
    """One line of a product's published checklist (清单制)."""

    product = models.ForeignKey(LoanProduct, on_delete=models.CASCADE, related_name="checklist")
    code = models.SlugField(max_length=40)
    name = models.CharField(_("材料 document"), max_length=100)
    name_en = models.CharField(_("英文名称 name (en)"), max_length=100, blank=True)
    help_text = models.CharField(_("说明 explanation"), max_length=300, blank=True)
    help_text_en = models.CharField(_("英文说明 explanation (en)"), max_length=300, blank=True)
    required = models.BooleanField(_("必需 required"), default=True)
    min_amount = models.DecimalField(
        _("仅当金额不低于 only from amount"), **MONEY, null=True, blank=True,
        help_text=_("为空表示不限金额 / empty: any amount"),
    )
    legal_forms = models.JSONField(_("仅限组织形式 only for legal forms"), default=list, blank=True)
    accepted_types = models.JSONField(_("接受格式 accepted types"), default=list)
    max_size_mb = models.PositiveSmallIntegerField(_("大小上限(MB) size limit"), default=10)
    satisfied_by_source = models.CharField(
        _("由数据源证明 satisfied by data source"), max_length=20, choices=DATA_SOURCES, blank=True,
        help_text=_("电子证照：数据源快照可证明时无需上传 / e-licence: no upload when the snapshot proves it"),
    )
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("材料清单项 checklist item")
        verbose_name_plural = _("材料清单 checklist")
        ordering = ["product", "order", "id"]
        constraints = [models.UniqueConstraint(fields=["product", "code"], name="uniq_requirement_code")]

    def __str__(self) -> str:
        return f"{self.product.code}:{self.code}"

    FILE_TYPES = ("pdf", "jpeg", "png", "ofd")

    def clean(self):
        errors = {}
        if not isinstance(self.accepted_types, list) or not self.accepted_types or \
                any(t not in self.FILE_TYPES for t in self.accepted_types):
            errors["accepted_types"] = _("请从 %(t)s 中选择，如 [\"pdf\", \"jpeg\"] / A list from %(t)s, e.g. [\"pdf\", \"jpeg\"]") % {
                "t": ", ".join(self.FILE_TYPES)}
        forms = dict(Enterprise.LEGAL_FORMS)
        if not isinstance(self.legal_forms, list) or any(f not in forms for f in self.legal_forms):
            errors["legal_forms"] = _("请从 %(f)s 中选择（空列表表示全部）/ A list from %(f)s (empty: all)") % {"f": ", ".join(forms)}
        if not self.max_size_mb or self.max_size_mb > 50:
            errors["max_size_mb"] = _("须在 1 至 50 MB 之间 / Between 1 and 50 MB.")
        if errors:
            raise ValidationError(errors)

    def applies_to(self, *, amount=None, legal_form: str | None = None) -> bool:
        """The conditions of this line: only from an amount, only for some legal forms."""
        if self.min_amount is not None and amount is not None and amount < self.min_amount:
            return False
        return not (self.legal_forms and legal_form and legal_form not in self.legal_forms)

    def legal_form_labels(self) -> list[str]:
        forms = dict(Enterprise.LEGAL_FORMS)
        return [str(forms.get(f, f)) for f in self.legal_forms]


class AdmissionCriterion(Bilingual, models.Model):
    """A named, quantified admission rule (准入) or negative-list rule (负面清单), as data."""

    ADMISSION = "admission"
    NEGATIVE = "negative"
    code = models.SlugField(max_length=40, unique=True)
    kind = models.CharField(max_length=10, choices=[(ADMISSION, _("准入 admission")), (NEGATIVE, _("负面清单 negative list"))])
    rule = models.CharField(_("规则 rule"), max_length=40, help_text=_("applications.prescreen.RULES 中的规则名 / a rule name"))
    params = models.JSONField(_("参数 parameters"), default=dict, blank=True)
    name = models.CharField(_("名称 name"), max_length=100)
    name_en = models.CharField(max_length=100, blank=True)
    message = models.CharField(_("未通过时的说明 message"), max_length=300)
    message_en = models.CharField(max_length=300, blank=True)
    products = models.ManyToManyField(LoanProduct, blank=True, related_name="criteria",
                                      help_text=_("为空表示适用于所有产品 / empty: all products"))
    is_active = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("准入规则 admission criterion")
        verbose_name_plural = _("准入规则 admission criteria")
        ordering = ["kind", "order", "code"]

    def __str__(self) -> str:
        return self.code

    def clean(self):
        errors = {}
        if self.rule not in RULES:
            errors["rule"] = _("未知规则，可选：%(r)s / Unknown rule; one of: %(r)s") % {"r": ", ".join(sorted(RULES))}
        if not isinstance(self.params, dict):
            errors["params"] = _("参数须为 JSON 对象 / The parameters must be a JSON object.")
        if errors:
            raise ValidationError(errors)


class NegativeListEntry(models.Model):
    """A manual negative-list entry by USCC or resident ID number, maintained by risk (in admin, audited)."""

    uscc = models.CharField(_("统一社会信用代码 USCC"), max_length=18, blank=True, db_index=True)
    id_number = EncryptedCharField(_("身份证号 ID number"), max_length=18, blank=True, blind_index="id_number_bidx")
    id_number_bidx = BlindIndexField(source="id_number")
    reason = models.CharField(_("原因 reason"), max_length=300)
    expires_on = models.DateField(_("到期日 expires on"), null=True, blank=True,
                                  help_text=_("为空表示长期有效 / empty: no expiry"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("负面清单 negative list entry")
        verbose_name_plural = _("负面清单 negative list")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.uscc or self.id_number

    @property
    def is_in_force(self) -> bool:
        return self.expires_on is None or self.expires_on >= timezone.localdate()

    def clean(self):
        errors = {}
        self.uscc = (self.uscc or "").strip().upper()
        self.id_number = (self.id_number or "").strip().upper()
        if not self.uscc and not self.id_number:
            errors["uscc"] = _("请填写统一社会信用代码或身份证号 / Give a USCC or an ID number.")
        if self.uscc:
            check = check_uscc(self.uscc)
            if check.ok:
                self.uscc = check.value
            else:
                errors["uscc"] = check.errors
        if self.id_number:
            check = check_resident_id(self.id_number)
            if check.ok:
                self.id_number = check.value
            else:
                errors["id_number"] = check.errors
        if not (self.reason or "").strip():
            errors["reason"] = _("请说明原因 / Give the reason.")
        if errors:
            raise ValidationError(errors)


class FaqEntry(Bilingual, models.Model):
    """智能客服 knowledge base: one question and its answer, in Chinese and English, edited in admin."""

    question = models.CharField(_("问题 question"), max_length=200)
    question_en = models.CharField(_("英文问题 question (en)"), max_length=200, blank=True)
    answer = models.TextField(_("答案 answer"))
    answer_en = models.TextField(_("英文答案 answer (en)"), blank=True)
    keywords = models.CharField(_("同义词/关键词 keywords"), max_length=300, blank=True,
                                help_text=_("用户可能的其他说法，空格分隔，按问题同等权重检索 / other ways people ask, "
                                            "space-separated, weighted like the question"))
    url = models.CharField(_("相关链接 link"), max_length=200, blank=True)
    is_active = models.BooleanField(_("启用 active"), default=True)
    order = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("常见问题 FAQ entry")
        verbose_name_plural = _("常见问题 FAQ")
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.question


class UnansweredQuestion(models.Model):
    """A question the assistant could not answer, kept for the knowledge base owner (one row per wording)."""

    text = models.CharField(_("问题 question"), max_length=300)
    normalized = models.CharField(max_length=300, unique=True)
    language = models.CharField(max_length=10, blank=True)
    asked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    times_asked = models.PositiveIntegerField(_("次数 times asked"), default=1)
    first_asked_at = models.DateTimeField(default=timezone.now)
    last_asked_at = models.DateTimeField(default=timezone.now, db_index=True)
    resolved = models.BooleanField(_("已处理 resolved"), default=False)
    note = models.CharField(_("备注 note"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("未解答问题 unanswered question")
        verbose_name_plural = _("未解答问题 unanswered questions")
        ordering = ["resolved", "-times_asked", "-last_asked_at"]

    def __str__(self) -> str:
        return self.text


class LoanApplication(ConcurrentTransitionMixin, models.Model):
    """The case. Its status is the master lifecycle (DESIGN.md); only services change it."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("草稿 draft")
        PRESCREEN_DECLINED = "prescreen_declined", _("预审未通过 pre-screen declined")
        UNDER_REVIEW = "under_review", _("审查中 under review")
        AWAITING_INFO = "awaiting_info", _("待补充资料 awaiting information")
        PENDING_APPROVAL = "pending_approval", _("待审批 pending approval")
        APPROVED = "approved", _("已批准 approved")
        DECLINED = "declined", _("已拒绝 declined")
        WITHDRAWN = "withdrawn", _("已撤回 withdrawn")
        EXPIRED = "expired", _("已过期 expired")
        CONTRACTING = "contracting", _("签约中 contracting")
        SIGNED = "signed", _("已签约 signed")
        DISBURSED = "disbursed", _("已放款 disbursed")

    OPEN_STATES = [
        Status.DRAFT, Status.UNDER_REVIEW, Status.AWAITING_INFO, Status.PENDING_APPROVAL,
        Status.APPROVED, Status.CONTRACTING, Status.SIGNED,
    ]
    ROUTES = [("auto", _("自动 auto")), ("branch", _("分行 branch")), ("head_office", _("总行 head office")),
              ("committee", _("贷审会 committee"))]

    applicant = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="applications")
    enterprise = models.ForeignKey(Enterprise, on_delete=models.PROTECT, related_name="applications")
    product = models.ForeignKey(LoanProduct, on_delete=models.PROTECT, related_name="applications")
    amount = models.DecimalField(_("申请金额 amount"), **MONEY)
    term_months = models.PositiveSmallIntegerField(_("期限(月) term"))
    repayment_method = models.CharField(_("还款方式 repayment method"), max_length=20, choices=REPAYMENT_METHODS)
    purpose = models.CharField(_("用途 purpose"), max_length=300)
    channel = models.CharField(_("渠道 channel"), max_length=20, default="web")
    status = FSMField(default=Status.DRAFT, choices=Status.choices, protected=True, db_index=True)
    relationship_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="rm_cases"
    )
    branch = models.ForeignKey(Branch, null=True, blank=True, on_delete=models.SET_NULL)
    prescreen = models.JSONField(default=dict, blank=True)
    route = models.CharField(max_length=20, choices=ROUTES, blank=True)
    recommendation = models.TextField(_("客户经理意见 RM recommendation"), blank=True)
    info_return_status = models.CharField(max_length=20, blank=True)
    offer_amount = models.DecimalField(**MONEY, null=True, blank=True)
    offer_rate = models.DecimalField(**RATE, null=True, blank=True)
    offer_term_months = models.PositiveSmallIntegerField(null=True, blank=True)
    offer_repayment_method = models.CharField(max_length=20, choices=REPAYMENT_METHODS, blank=True)
    offer_valid_until = models.DateField(null=True, blank=True)
    # The offer's rate basis (DESIGN.md "Rates"): offer_rate = offer_lpr_rate + offer_spread_bp / 10000.
    offer_lpr_tenor = models.CharField(max_length=2, choices=LPR_TENORS, blank=True)
    offer_lpr_rate = models.DecimalField(**RATE, null=True, blank=True)
    offer_lpr_date = models.DateField(null=True, blank=True)
    offer_spread_bp = models.DecimalField(**SPREAD_BP, null=True, blank=True)
    offer_rate_type = models.CharField(max_length=10, choices=RATE_TYPES, blank=True)
    offer_repricing_months = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    scoring_requested_at = models.DateTimeField(null=True, blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("贷款申请 loan application")
        verbose_name_plural = _("贷款申请 loan applications")
        indexes = [
            models.Index(fields=["status", "branch", "created_at"]),
            models.Index(fields=["relationship_manager", "status"]),
            # The RM's queue a page at a time, oldest submission first (staff_views.rm_queue).
            models.Index(fields=["relationship_manager", "submitted_at", "id"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.enterprise.name} {self.amount}"

    S = Status

    @transition(field=status, source=S.DRAFT, target=S.UNDER_REVIEW)
    def submit(self):
        self.submitted_at = timezone.now()

    @transition(field=status, source=S.DRAFT, target=S.PRESCREEN_DECLINED)
    def prescreen_decline(self):
        self.submitted_at = timezone.now()
        self.decided_at = timezone.now()

    @transition(field=status, source=[S.UNDER_REVIEW, S.PENDING_APPROVAL], target=S.AWAITING_INFO)
    def request_info(self):
        self.info_return_status = self.status

    @transition(field=status, source=S.AWAITING_INFO, target=S.UNDER_REVIEW,
                conditions=[lambda a: a.info_return_status == "under_review"])
    def respond_to_review(self):
        self.info_return_status = ""

    @transition(field=status, source=S.AWAITING_INFO, target=S.PENDING_APPROVAL,
                conditions=[lambda a: a.info_return_status == "pending_approval"])
    def respond_to_approval(self):
        self.info_return_status = ""

    @transition(field=status, source=S.UNDER_REVIEW, target=S.PENDING_APPROVAL)
    def send_to_approval(self):
        pass

    @transition(field=status, source=[S.UNDER_REVIEW, S.PENDING_APPROVAL], target=S.APPROVED)
    def approve(self):
        self.decided_at = timezone.now()

    @transition(field=status, source=[S.UNDER_REVIEW, S.PENDING_APPROVAL], target=S.DECLINED)
    def decline(self):
        self.decided_at = timezone.now()

    @transition(field=status, source=S.PENDING_APPROVAL, target=S.UNDER_REVIEW)
    def return_to_rm(self):
        pass

    @transition(field=status, source=S.APPROVED, target=S.CONTRACTING)
    def accept_offer(self):
        pass

    @transition(field=status, source=S.APPROVED, target=S.EXPIRED)
    def expire(self):
        pass

    @transition(field=status, source=S.CONTRACTING, target=S.SIGNED)
    def mark_signed(self):
        pass

    @transition(field=status, source=S.SIGNED, target=S.DISBURSED)
    def mark_disbursed(self):
        pass

    @transition(field=status, source=OPEN_STATES, target=S.WITHDRAWN)
    def withdraw(self):
        pass

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATES


def document_upload_to(instance, filename: str) -> str:
    # Generated names only: the applicant's file name is kept as data, never as a path.
    return f"documents/{instance.application_id}/{instance.token}"


class ApplicationDocument(models.Model):
    application = models.ForeignKey(LoanApplication, on_delete=models.CASCADE, related_name="documents")
    requirement = models.ForeignKey(DocumentRequirement, on_delete=models.PROTECT)
    token = models.CharField(max_length=40, unique=True)
    file = models.FileField(upload_to=document_upload_to, storage=private_storage, max_length=200)
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=60)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("申请材料 document")
        verbose_name_plural = _("申请材料 documents")
        ordering = ["uploaded_at"]

    def __str__(self) -> str:
        return f"{self.requirement.code} {self.original_name}"


class AuthorisationText(models.Model):
    """The text a person agrees to when authorising data queries (数据查询授权书), as data: each version is kept,
    shown in full before the person ticks, and named by every authorisation given under it."""

    version = models.CharField(_("版本 version"), max_length=20, unique=True)
    title = models.CharField(_("标题 title"), max_length=100)
    body = models.TextField(_("授权书正文 text"))
    body_en = models.TextField(_("英文正文 text (en)"), blank=True)
    is_current = models.BooleanField(_("当前版本 current"), default=False,
                                     help_text=_("新的授权使用当前版本 / new authorisations use the current version"))
    published_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("授权书文本 authorisation text")
        verbose_name_plural = _("授权书文本 authorisation texts")
        ordering = ["-published_at"]

    def __str__(self) -> str:
        return self.version


def power_of_attorney_upload_to(instance, filename: str) -> str:
    return f"identity/{instance.enterprise_id}/{secrets.token_hex(16)}"


class IdentityVerification(models.Model):
    """One check of who acts for an enterprise (身份核验): its legal representative (name and ID number against
    the 公安部 citizen register, plus an SMS code to the phone given) or an agent with a power of attorney.
    Every attempt is kept, passed or failed."""

    LEGAL_REP, AGENT = "legal_rep", "agent"
    METHODS = [(LEGAL_REP, _("法定代表人本人 legal representative")), (AGENT, _("授权经办人 authorised agent"))]
    PASSED, FAILED = "passed", "failed"
    RESULTS = [(PASSED, _("核验通过 verified")), (FAILED, _("核验未通过 not verified"))]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="identity_verifications")
    enterprise = models.ForeignKey(Enterprise, on_delete=models.PROTECT, related_name="identity_verifications")
    method = models.CharField(_("核验方式 method"), max_length=10, choices=METHODS)
    person_name = EncryptedCharField(_("姓名 name"), max_length=100)
    id_number = EncryptedCharField(_("身份证号 ID number"), max_length=18)
    phone = EncryptedCharField(_("手机号 phone"), max_length=11)
    result = models.CharField(_("结果 result"), max_length=10, choices=RESULTS)
    reason = models.CharField(_("未通过原因 reason"), max_length=40, blank=True)
    provider = models.CharField(_("核验服务 provider"), max_length=20)
    provider_reference = models.CharField(_("核验流水号 provider reference"), max_length=100, blank=True)
    power_of_attorney = models.FileField(_("授权委托书 power of attorney"), upload_to=power_of_attorney_upload_to,
                                         storage=private_storage, max_length=200, blank=True)
    power_of_attorney_sha256 = models.CharField(max_length=64, blank=True)
    # An agent's power of attorney is reviewed by operations before the agent may authorise or sign (four eyes:
    # never the enterprise's RM, never the agent): pending → approved / rejected, with the reason. Empty for a
    # legal representative, who needs no review.
    REVIEW_PENDING, REVIEW_APPROVED, REVIEW_REJECTED = "pending", "approved", "rejected"
    REVIEW_STATES = [(REVIEW_PENDING, _("待审核 pending review")), (REVIEW_APPROVED, _("审核通过 approved")),
                     (REVIEW_REJECTED, _("审核未通过 rejected"))]
    review_status = models.CharField(_("授权委托书审核 power of attorney review"), max_length=10, choices=REVIEW_STATES,
                                     blank=True, db_index=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_reason = models.CharField(_("审核意见 review reason"), max_length=300, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("身份核验 identity verification")
        verbose_name_plural = _("身份核验 identity verifications")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["enterprise", "user", "result", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.enterprise_id}:{self.method}:{self.result}"

    @property
    def passed(self) -> bool:
        return self.result == self.PASSED

    @property
    def in_force(self) -> bool:
        """Passed, and for an agent its power of attorney approved by operations: who may authorise and sign."""
        return self.passed and (self.method != self.AGENT or self.review_status == self.REVIEW_APPROVED)


class DataAuthorisation(models.Model):
    """An authorisation to query an enterprise's data (数据查询授权): who gave it (a verified legal representative
    or agent), for which enterprise and application, which sources, for what purpose, under which text, when.
    Withdrawn, it stops every later pull; the snapshots it allowed stay with the decision they served."""

    PURPOSES = [("loan_application", _("贷款申请审查及贷后管理 loan review and monitoring"))]
    enterprise = models.ForeignKey(Enterprise, on_delete=models.PROTECT, related_name="authorisations")
    application = models.ForeignKey("LoanApplication", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="authorisations")
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verification = models.ForeignKey(IdentityVerification, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="authorisations",
                                     help_text=_("授权人的身份核验；为空者为本功能上线前的授权 / empty: given before verification existed"))
    scopes = models.JSONField(_("授权数据源 sources"), default=list)
    purpose = models.CharField(_("用途 purpose"), max_length=30, choices=PURPOSES, default="loan_application")
    text = models.ForeignKey(AuthorisationText, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    text_version = models.CharField(_("授权书版本 text version"), max_length=20)
    granted_at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(_("撤回时间 withdrawn at"), null=True, blank=True)
    withdrawn_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")

    class Meta:
        verbose_name = _("数据查询授权 data authorisation")
        verbose_name_plural = _("数据查询授权 data authorisations")
        ordering = ["-granted_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.enterprise_id} {','.join(self.scopes)}"

    @property
    def is_live(self) -> bool:
        return self.withdrawn_at is None


class LiveConsentManager(models.Manager):
    """Consents in force: a withdrawn one no longer counts anywhere (pulls, the wizard, monitoring)."""

    def get_queryset(self):
        return super().get_queryset().filter(withdrawn_at__isnull=True)


class Consent(models.Model):
    """One data source of an authorisation on one application (数据授权), recorded before any pull. The default
    manager sees only the consents in force; `all_objects` sees the withdrawn ones too."""

    application = models.ForeignKey(LoanApplication, on_delete=models.CASCADE, related_name="consents")
    source = models.CharField(max_length=20, choices=DATA_SOURCES)
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    granted_at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)
    text_version = models.CharField(max_length=20, default="2026-1")
    authorisation = models.ForeignKey(DataAuthorisation, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="consents")
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    all_objects = models.Manager()
    objects = LiveConsentManager()

    class Meta:
        verbose_name = _("数据授权 consent")
        verbose_name_plural = _("数据授权 consents")
        base_manager_name = "all_objects"
        default_manager_name = "objects"
        constraints = [models.UniqueConstraint(fields=["application", "source"], condition=models.Q(withdrawn_at__isnull=True),
                                               name="uniq_live_consent")]

    def __str__(self) -> str:
        return f"{self.application_id}:{self.source}"


class InfoRequest(models.Model):
    """A request for information from the applicant (补充资料), answered in the portal."""

    application = models.ForeignKey(LoanApplication, on_delete=models.CASCADE, related_name="info_requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    message = models.TextField()
    due_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    response = models.TextField(blank=True)
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"info request {self.pk} on {self.application_id}"
