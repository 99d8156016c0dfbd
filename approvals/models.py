"""Approvals: the authority matrix (versioned data), reason codes, approval cases and decisions."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, transition

from applications.models import MONEY, RATE, Bilingual, Enterprise, LoanApplication, LoanProduct
from loanservice.fields import BlindIndexField, EncryptedCharField
from loanservice.fsm import ConcurrentTransitionMixin
from loanservice.models import Branch

ROUTES = [
    ("auto", _("自动审批 auto")),
    ("branch", _("分行审批 branch")),
    ("head_office", _("总行审批 head office")),
    ("committee", _("贷审会 committee")),
    ("auto_decline", _("自动拒绝 automatic decline")),
]
TIERS = [("branch", _("分行 branch")), ("head_office", _("总行 head office")), ("committee", _("贷审会 committee"))]
# Who decides at each tier, and the levels a route passes through (recommend first, decide last).
TIER_ROLE = {"branch": "branch_approver", "head_office": "head_office_approver", "committee": "credit_committee"}
ROUTE_LEVELS = {"branch": ["branch"], "head_office": ["branch", "head_office"], "committee": ["branch", "committee"]}
GRADES = ["A", "B", "C", "D", "E"]
# The customer rating the matrix can route on: the enterprise's tax credit rating (纳税信用等级), the rating
# every SME lender in China reads first (银税互动).
CUSTOMER_RATINGS = ["A", "B", "M", "C", "D"]


class AuthorityMatrixVersion(models.Model):
    """One version of the authority matrix (授权矩阵). A draft is edited; activating it is an explicit,
    audited act (approvals.services.matrix_version_activate); an activated version never changes again."""

    number = models.PositiveIntegerField(unique=True)
    note = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=False)
    based_on = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("授权矩阵版本 authority matrix version")
        verbose_name_plural = _("授权矩阵版本 authority matrix versions")
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True),
                                               name="one_active_authority_matrix")]

    def __str__(self) -> str:
        return f"v{self.number} ({self.state})"

    @property
    def is_draft(self) -> bool:
        return self.activated_at is None and not self.is_active

    @property
    def state(self) -> str:
        if self.is_active:
            return "active"
        return "draft" if self.activated_at is None else "retired"


class AuthorityRule(models.Model):
    """One row of the authority matrix: the first row (by priority) that matches a case routes it."""

    version = models.ForeignKey(AuthorityMatrixVersion, on_delete=models.CASCADE, related_name="rules")
    priority = models.PositiveSmallIntegerField(default=100)
    product = models.ForeignKey(LoanProduct, null=True, blank=True, on_delete=models.CASCADE)
    branch = models.ForeignKey(Branch, null=True, blank=True, on_delete=models.CASCADE,
                               help_text=_("分行授权：为空表示默认 / delegation: empty means the default"))
    min_amount = models.DecimalField(**MONEY, null=True, blank=True)
    max_amount = models.DecimalField(**MONEY, null=True, blank=True)
    grades = models.JSONField(default=list, blank=True, help_text='["A", "B"]; empty = any grade')
    customer_ratings = models.JSONField(
        default=list, blank=True,
        help_text=_('客户评级（纳税信用等级）["A", "B", "M"]；为空表示不限 / customer (tax credit) rating; empty = any'))
    related_party = models.BooleanField(null=True, blank=True, help_text=_("为空表示不限 / empty: either"))
    route = models.CharField(max_length=20, choices=ROUTES)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("授权规则 authority rule")
        verbose_name_plural = _("授权矩阵 authority matrix")
        ordering = ["version", "priority", "id"]

    def __str__(self) -> str:
        return f"v{self.version.number} #{self.priority} → {self.route}"

    def save(self, *args, **kwargs):
        self._frozen_check()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._frozen_check()
        return super().delete(*args, **kwargs)

    def matches(self, *, product_id, branch_id, amount, grade, related_party, customer_rating=None) -> bool:
        return (
            (self.product_id is None or self.product_id == product_id)
            and (self.branch_id is None or self.branch_id == branch_id)
            and (self.min_amount is None or amount > self.min_amount)
            and (self.max_amount is None or amount <= self.max_amount)
            and (not self.grades or grade in self.grades)
            and (not self.customer_ratings or customer_rating in self.customer_ratings)
            and (self.related_party is None or self.related_party == related_party)
        )

    def clean(self):
        errors = {}
        if self.min_amount is not None and self.max_amount is not None and self.min_amount >= self.max_amount:
            errors["max_amount"] = [_("上限须大于下限 / The upper bound must be above the lower bound.")]
        if not isinstance(self.grades, list) or any(g not in GRADES for g in self.grades):
            errors["grades"] = [_("评级只能是 A-E / Grades are A to E.")]
        if not isinstance(self.customer_ratings, list) or any(r not in CUSTOMER_RATINGS for r in self.customer_ratings):
            errors["customer_ratings"] = [_("客户评级只能是 A、B、M、C、D / Ratings are A, B, M, C, D.")]
        if self.version_id and not self.version.is_draft:
            errors["version"] = [_("已启用的版本不能修改，请复制为新草稿 / An activated version is frozen; copy it to a new draft.")]
        if errors:
            raise ValidationError(errors)

    def _frozen_check(self):
        version = AuthorityMatrixVersion.objects.filter(pk=self.version_id).only("is_active", "activated_at").first()
        if version is not None and not version.is_draft:
            raise ValidationError(_("已启用的授权矩阵版本不能修改 / An activated authority matrix version cannot change."))


class ReasonCode(Bilingual, models.Model):
    KINDS = [("decline", _("拒绝 decline")), ("condition", _("附加条件 condition")), ("return", _("退回 return")),
             ("approve", _("批准 approve")), ("refer", _("转人工 refer"))]
    code = models.SlugField(max_length=40, unique=True)
    kind = models.CharField(max_length=10, choices=KINDS)
    text = models.CharField(max_length=300)
    text_en = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = _("原因代码 reason code")
        verbose_name_plural = _("原因代码 reason codes")
        ordering = ["kind", "code"]

    def __str__(self) -> str:
        return self.code


class ApprovalCase(ConcurrentTransitionMixin, models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("待审批 pending")
        APPROVED = "approved", _("批准 approved")
        DECLINED = "declined", _("拒绝 declined")
        RETURNED = "returned", _("退回 returned")

    application = models.ForeignKey(LoanApplication, on_delete=models.CASCADE, related_name="approval_cases")
    route = models.CharField(max_length=20, choices=ROUTES)
    tier = models.CharField(max_length=20, choices=TIERS)
    status = FSMField(default=Status.PENDING, choices=Status.choices, protected=True)
    prepared_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    matrix_version = models.ForeignKey(AuthorityMatrixVersion, null=True, on_delete=models.PROTECT)
    model_version = models.PositiveIntegerField(null=True)
    conditions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("审批案件 approval case")
        verbose_name_plural = _("审批案件 approval cases")
        ordering = ["-created_at"]
        # The approvers' queue a page at a time, oldest first (selectors.approval_queue).
        indexes = [models.Index(fields=["status", "tier"]), models.Index(fields=["status", "created_at", "id"])]

    def __str__(self) -> str:
        return f"approval {self.pk} of #{self.application_id} ({self.tier})"

    @transition(field=status, source=Status.PENDING, target=Status.APPROVED)
    def approve(self):
        self.closed_at = timezone.now()

    @transition(field=status, source=Status.PENDING, target=Status.DECLINED)
    def decline(self):
        self.closed_at = timezone.now()

    @transition(field=status, source=Status.PENDING, target=Status.RETURNED)
    def return_to_rm(self):
        self.closed_at = timezone.now()

    @property
    def levels(self) -> list[str]:
        return ROUTE_LEVELS[self.route]

    @property
    def is_final_tier(self) -> bool:
        return self.tier == self.levels[-1]


class Decision(models.Model):
    """A decision, recommendation or committee vote; the automatic ones have no approver."""

    KINDS = [("approve", _("批准 approve")), ("decline", _("拒绝 decline")), ("return", _("退回 return")),
             ("recommend", _("同意上报 recommend")), ("vote_approve", _("投票同意 vote approve")),
             ("vote_decline", _("投票反对 vote decline"))]
    case = models.ForeignKey(ApprovalCase, null=True, blank=True, on_delete=models.CASCADE, related_name="decisions")
    application = models.ForeignKey(LoanApplication, on_delete=models.CASCADE, related_name="decisions")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    tier = models.CharField(max_length=20, blank=True)
    decision = models.CharField(max_length=20, choices=KINDS)
    automatic = models.BooleanField(default=False)
    reason_codes = models.JSONField(default=list, blank=True)
    comment = models.TextField(blank=True)
    approved_amount = models.DecimalField(**MONEY, null=True, blank=True)
    rate = models.DecimalField(**RATE, null=True, blank=True)
    term_months = models.PositiveSmallIntegerField(null=True, blank=True)
    conditions = models.JSONField(default=list, blank=True)
    model_version = models.PositiveIntegerField(null=True)
    matrix_version = models.PositiveIntegerField(null=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("审批决定 decision")
        verbose_name_plural = _("审批决定 decisions")
        ordering = ["created_at", "id"]
        constraints = [
            # Four eyes: nobody decides twice on one case.
            models.UniqueConstraint(fields=["case", "approver"], name="one_decision_per_approver_per_case"),
        ]

    def __str__(self) -> str:
        return f"{self.decision} on #{self.application_id}"


class CreditCommittee(models.Model):
    """The credit committee (贷审会): who chairs it and how many distinct votes make a quorum. Members are
    the users with the credit_committee role; approval needs a majority of the votes cast, and the
    votes are due by the committee's SLA deadline (SlaTarget committee_approval)."""

    name = models.CharField(max_length=100, default="总行贷款审查委员会")
    chair = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              help_text=_("主任委员，记录决议 / the chair, who records the resolution"))
    quorum = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(3)],
                                              help_text=_("法定人数：至少3名不同委员投票 / at least 3 distinct members vote"))
    # Who may record the resolution once the votes are in, and when nobody has, a reminder: policy, edited in admin.
    RECORDERS = [("chair", _("主任委员或秘书 the chair or the secretary")),
                 ("voters", _("任一已投票委员 any member who voted")),
                 ("members", _("任一委员 any member"))]
    secretary = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                  help_text=_("秘书，可代为记录决议 / the secretary, who may record the resolution"))
    resolution_recorders = models.CharField(max_length=10, choices=RECORDERS, default="chair",
                                            help_text=_("谁可以记录决议 / who may record the resolution"))
    resolution_reminder_hours = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1)],
        help_text=_("表决完成后多少小时无人记录决议即提醒全体可记录人 / hours after the last vote before everyone who may "
                    "record the resolution is reminded"))
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("贷审会 credit committee")
        verbose_name_plural = _("贷审会 credit committee")

    def __str__(self) -> str:
        return self.name


class CommitteeResolution(models.Model):
    """The chair's record of the committee's resolution (贷审会决议) on one case."""

    OUTCOMES = [("approved", _("通过 approved")), ("declined", _("否决 declined")),
                ("lapsed", _("未达法定人数，退回 no quorum by the deadline, returned"))]
    case = models.OneToOneField(ApprovalCase, on_delete=models.CASCADE, related_name="resolution")
    chair = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(max_length=10, choices=OUTCOMES)
    votes_for = models.PositiveSmallIntegerField()
    votes_against = models.PositiveSmallIntegerField()
    quorum = models.PositiveSmallIntegerField()
    text = models.TextField()
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("贷审会决议 committee resolution")
        verbose_name_plural = _("贷审会决议 committee resolutions")

    def __str__(self) -> str:
        return f"resolution {self.outcome} on case {self.case_id}"


class RelatedParty(models.Model):
    """关联方名单: enterprises and people related to the bank (staff relatives, shareholders, directors).
    A case of a related party routes to the credit committee."""

    RELATIONS = [("staff_relative", _("员工近亲属 staff relative")), ("staff", _("本行员工 staff")),
                 ("shareholder", _("主要股东 major shareholder")), ("director", _("董监高 director or officer")),
                 ("other", _("其他 other"))]
    uscc = models.CharField(_("统一社会信用代码 USCC"), max_length=18, blank=True, db_index=True)
    id_number = EncryptedCharField(_("身份证号 ID number"), max_length=18, blank=True, blind_index="id_number_bidx")
    id_number_bidx = BlindIndexField(source="id_number")
    name = models.CharField(_("名称 name"), max_length=200)
    relation = models.CharField(_("关联关系 relation"), max_length=20, choices=RELATIONS)
    note = models.CharField(max_length=300, blank=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("关联方 related party")
        verbose_name_plural = _("关联方名单 related parties")

    def __str__(self) -> str:
        return f"{self.name} ({self.get_relation_display()})"

    def clean(self):
        if not (self.uscc or self.id_number):
            raise ValidationError({"uscc": [_("请填写统一社会信用代码或身份证号 / Give a USCC or an ID number.")]})


class ConflictOfInterest(models.Model):
    """A member of staff's declared conflict of interest (利益冲突申报) with an enterprise: the case routes
    to the committee and the declarant can neither decide nor vote on it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="declared_conflicts")
    enterprise = models.ForeignKey(Enterprise, on_delete=models.CASCADE, related_name="declared_conflicts")
    reason = models.CharField(_("原因 reason"), max_length=300)
    is_active = models.BooleanField(default=True)
    declared_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("利益冲突申报 conflict of interest")
        verbose_name_plural = _("利益冲突申报 conflicts of interest")
        constraints = [models.UniqueConstraint(fields=["user", "enterprise"], name="one_conflict_per_user_enterprise")]

    def __str__(self) -> str:
        return f"{self.user} ↔ {self.enterprise_id}"


class ReferralRule(Bilingual, models.Model):
    """A warning that refers an otherwise fast-track case to a person (转人工规则), with the reason named.
    `field` is a scorecard feature (source "features") or a field of a data snapshot's payload."""

    SOURCES = [("features", _("评分特征 scorecard feature")), ("tax", "tax"), ("registry", "registry"),
               ("social_security", "social_security"), ("customs", "customs"), ("credit_bureau", "credit_bureau"),
               ("judicial", "judicial"), ("internal", "internal")]
    OPERATORS = [("lt", "<"), ("lte", "≤"), ("gt", ">"), ("gte", "≥"), ("is_true", _("为真 is true"))]
    code = models.SlugField(max_length=40, unique=True)
    source = models.CharField(max_length=20, choices=SOURCES, default="features")
    field = models.CharField(max_length=60)
    operator = models.CharField(max_length=10, choices=OPERATORS)
    threshold = models.DecimalField(max_digits=16, decimal_places=4, null=True, blank=True)
    message = models.CharField(max_length=300)
    message_en = models.CharField(max_length=300, blank=True)
    is_active = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("转人工规则 referral rule")
        verbose_name_plural = _("转人工规则 referral rules")
        ordering = ["order", "code"]

    def __str__(self) -> str:
        return self.code

    def clean(self):
        if self.operator != "is_true" and self.threshold is None:
            raise ValidationError({"threshold": [_("此比较需要阈值 / This comparison needs a threshold.")]})


class RoutingRecord(models.Model):
    """How a case was routed: the facts, the matrix version and row that matched, and why the fast track
    did not apply. Written once per routing, for every route including the automatic ones."""

    application = models.ForeignKey(LoanApplication, on_delete=models.CASCADE, related_name="routings")
    matrix_version = models.PositiveIntegerField()
    rule = models.ForeignKey(AuthorityRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rule_note = models.CharField(max_length=200, blank=True)
    route = models.CharField(max_length=20, choices=ROUTES)
    facts = models.JSONField(default=dict)
    referrals = models.JSONField(default=list, blank=True)
    model_version = models.PositiveIntegerField(null=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("路由记录 routing record")
        verbose_name_plural = _("路由记录 routing records")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.application_id} → {self.route} (v{self.matrix_version})"
