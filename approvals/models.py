"""Approvals: the authority matrix (versioned data), reason codes, approval cases and decisions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from applications.models import MONEY, RATE, Bilingual, LoanApplication, LoanProduct
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


class AuthorityMatrixVersion(models.Model):
    number = models.PositiveIntegerField(unique=True)
    note = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        verbose_name = _("授权矩阵版本 authority matrix version")
        verbose_name_plural = _("授权矩阵版本 authority matrix versions")
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"v{self.number}{' (active)' if self.is_active else ''}"


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
    related_party = models.BooleanField(null=True, blank=True, help_text=_("为空表示不限 / empty: either"))
    route = models.CharField(max_length=20, choices=ROUTES)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("授权规则 authority rule")
        verbose_name_plural = _("授权矩阵 authority matrix")
        ordering = ["version", "priority", "id"]

    def __str__(self) -> str:
        return f"v{self.version.number} #{self.priority} → {self.route}"

    def matches(self, *, product_id, branch_id, amount, grade, related_party) -> bool:
        return (
            (self.product_id is None or self.product_id == product_id)
            and (self.branch_id is None or self.branch_id == branch_id)
            and (self.min_amount is None or amount > self.min_amount)
            and (self.max_amount is None or amount <= self.max_amount)
            and (not self.grades or grade in self.grades)
            and (self.related_party is None or self.related_party == related_party)
        )


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
        indexes = [models.Index(fields=["status", "tier"])]

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
