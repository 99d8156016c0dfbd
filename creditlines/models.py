"""Revolving credit lines (授信 / 用信, 随借随还): the line a signed credit-line case grants, its drawdowns (each a
postloan.Loan), the RM's limit-change requests awaiting a second person, and the annual review (年审) tasks.

What a line has drawn is never stored: `used` is the sum of its drawdowns' outstanding principal (selectors.py), so
a repayment makes it available again and a reversed repayment takes it back, with nothing to reconcile.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, transition

from applications.models import MONEY, RATE, REPAYMENT_METHODS, Enterprise, LoanApplication, LoanProduct
from contracts.models import Contract
from loanservice.four_eyes import FourEyesRequest
from loanservice.fsm import ConcurrentTransitionMixin
from loanservice.models import Branch
from postloan.models import Loan


class CreditLine(ConcurrentTransitionMixin, models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("可用 active")
        FROZEN = "frozen", _("已冻结 frozen")
        EXPIRED = "expired", _("已到期 expired")
        CLOSED = "closed", _("已关闭 closed")

    application = models.OneToOneField(LoanApplication, on_delete=models.PROTECT, related_name="credit_line")
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="+")
    product = models.ForeignKey(LoanProduct, on_delete=models.PROTECT, related_name="+")
    enterprise = models.ForeignKey(Enterprise, on_delete=models.PROTECT, related_name="credit_lines")
    borrower = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="credit_lines")
    relationship_manager = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                             related_name="rm_credit_lines")
    branch = models.ForeignKey(Branch, null=True, blank=True, on_delete=models.SET_NULL)
    limit = models.DecimalField(_("授信额度 limit"), **MONEY)
    annual_rate = models.DecimalField(_("年利率 annual rate"), **RATE)
    valid_from = models.DateField(_("额度起始日 valid from"))
    valid_until = models.DateField(_("额度到期日 valid until"), db_index=True)
    status = FSMField(max_length=8, choices=Status.choices, default=Status.ACTIVE, protected=True, db_index=True)
    status_reason = models.CharField(_("状态原因 reason"), max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("循环额度 credit line")
        verbose_name_plural = _("循环额度 credit lines")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"credit line {self.pk} ({self.enterprise_id})"

    @transition(field=status, source=Status.ACTIVE, target=Status.FROZEN)
    def freeze(self):
        pass

    @transition(field=status, source=Status.FROZEN, target=Status.ACTIVE)
    def unfreeze(self):
        pass

    @transition(field=status, source=[Status.ACTIVE, Status.FROZEN], target=Status.EXPIRED)
    def expire(self):
        pass

    @transition(field=status, source=[Status.ACTIVE, Status.FROZEN, Status.EXPIRED], target=Status.CLOSED)
    def close(self):
        pass


class Drawdown(models.Model):
    """用信: one draw on a line, funded at once as a loan of its own (its order under the line's contract). Exactly one
    per (line, Idempotency-Key); `request` is the body the key was first used with (another body → 409)."""

    line = models.ForeignKey(CreditLine, on_delete=models.PROTECT, related_name="drawdowns")
    loan = models.OneToOneField(Loan, on_delete=models.PROTECT, related_name="drawdown")
    amount = models.DecimalField(_("用信金额 amount"), **MONEY)
    term_months = models.PositiveSmallIntegerField(_("期限(月) term"))
    repayment_method = models.CharField(_("还款方式 repayment method"), max_length=20)
    payee_name = models.CharField(_("受托支付收款人 payee"), max_length=200, blank=True)
    payee_account = models.CharField(_("收款人账号 payee account"), max_length=40, blank=True)
    idempotency_key = models.CharField(max_length=200)
    request = models.JSONField(default=dict)
    receipt_number = models.CharField(_("借据号 receipt number"), max_length=40, unique=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("用信 drawdown")
        verbose_name_plural = _("用信 drawdowns")
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["line", "idempotency_key"], name="uniq_drawdown_key_per_line")]

    def __str__(self) -> str:
        return self.receipt_number

    @property
    def entrusted(self) -> bool:
        """受托支付: paid to the named payee rather than the borrower's own account."""
        return bool(self.payee_account)

    def get_repayment_method_display(self) -> str:
        return str(dict(REPAYMENT_METHODS).get(self.repayment_method, self.repayment_method))


class LineChangeRequest(FourEyesRequest):
    """An RM's freeze, unfreeze or reduction of a line, applied once another person (risk or an approver) approves."""

    class Kind(models.TextChoices):
        FREEZE = "freeze", _("冻结 freeze")
        UNFREEZE = "unfreeze", _("解冻 unfreeze")
        ADJUST = "adjust", _("压降额度 reduce the limit")

    decide_permission = "creditlines.decide_change_of"

    line = models.ForeignKey(CreditLine, on_delete=models.CASCADE, related_name="change_requests")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    limit = models.DecimalField(_("新额度 new limit"), **MONEY, null=True, blank=True)
    reason = models.CharField(_("原因 reason"), max_length=500)

    class Meta:
        verbose_name = _("额度调整申请 credit line change request")
        verbose_name_plural = _("额度调整申请 credit line change requests")
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"{self.kind} line {self.line_id} ({self.status})"


class LineReviewTask(ConcurrentTransitionMixin, models.Model):
    """年审: the RM reviews the line before it expires (the product's lead days); renewal is a new application."""

    class Status(models.TextChoices):
        OPEN = "open", _("待年审 open")
        DONE = "done", _("已完成 done")

    line = models.ForeignKey(CreditLine, on_delete=models.CASCADE, related_name="review_tasks")
    due_on = models.DateField(_("到期日 due on"))
    assigned_to = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="line_review_tasks")
    status = FSMField(max_length=6, choices=Status.choices, default=Status.OPEN, protected=True, db_index=True)
    created_on = models.DateField()
    completed_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        verbose_name = _("额度年审任务 annual review task")
        verbose_name_plural = _("额度年审任务 annual review tasks")
        ordering = ["due_on", "id"]
        constraints = [models.UniqueConstraint(fields=["line", "due_on"], name="uniq_line_review")]

    def __str__(self) -> str:
        return f"review of line {self.line_id} by {self.due_on}"

    @transition(field=status, source=Status.OPEN, target=Status.DONE)
    def complete(self):
        self.completed_at = timezone.now()
