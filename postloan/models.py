"""Post-loan: loans, installments, repayments, days past due, five-category classification."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from applications.models import MONEY, RATE, REPAYMENT_METHODS, Enterprise, LoanApplication
from contracts.models import DisbursementOrder
from loanservice.models import Branch

FIVE_CATEGORIES = [
    ("normal", _("正常 normal")),
    ("special_mention", _("关注 special mention")),
    ("substandard", _("次级 substandard")),
    ("doubtful", _("可疑 doubtful")),
    ("loss", _("损失 loss")),
]


class Loan(models.Model):
    STATUSES = [("active", _("正常存续 active")), ("closed", _("已结清 closed")), ("written_off", _("已核销 written off"))]
    application = models.OneToOneField(LoanApplication, on_delete=models.PROTECT, related_name="loan")
    disbursement = models.OneToOneField(DisbursementOrder, on_delete=models.PROTECT, related_name="loan")
    enterprise = models.ForeignKey(Enterprise, on_delete=models.PROTECT, related_name="loans")
    borrower = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="loans")
    relationship_manager = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                             related_name="rm_loans")
    branch = models.ForeignKey(Branch, null=True, blank=True, on_delete=models.SET_NULL)
    principal = models.DecimalField(**MONEY)
    annual_rate = models.DecimalField(**RATE)
    term_months = models.PositiveSmallIntegerField()
    repayment_method = models.CharField(max_length=20, choices=REPAYMENT_METHODS)
    disbursed_on = models.DateField()
    maturity_date = models.DateField()
    status = models.CharField(max_length=12, choices=STATUSES, default="active", db_index=True)
    outstanding_principal = models.DecimalField(**MONEY)
    dpd = models.PositiveIntegerField(_("逾期天数 days past due"), default=0)
    bucket = models.CharField(max_length=4, default="M0")
    classification = models.CharField(max_length=20, choices=FIVE_CATEGORIES, default="normal")
    monitored_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("贷款 loan")
        verbose_name_plural = _("贷款 loans")
        indexes = [models.Index(fields=["status", "branch"])]

    def __str__(self) -> str:
        return f"loan {self.pk} ({self.enterprise_id})"


class Installment(models.Model):
    loan = models.ForeignKey(Loan, on_delete=models.CASCADE, related_name="installments")
    n = models.PositiveSmallIntegerField()
    due_date = models.DateField(db_index=True)
    principal = models.DecimalField(**MONEY)
    interest = models.DecimalField(**MONEY)
    paid_principal = models.DecimalField(**MONEY, default=0)
    paid_interest = models.DecimalField(**MONEY, default=0)
    paid_penalty = models.DecimalField(**MONEY, default=0)
    settled_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["loan", "n"]
        constraints = [models.UniqueConstraint(fields=["loan", "n"], name="uniq_installment")]

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


class Repayment(models.Model):
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="repayments")
    amount = models.DecimalField(**MONEY)
    paid_on = models.DateField()
    reference = models.CharField(max_length=80)
    allocation = models.JSONField(default=dict)
    unapplied = models.DecimalField(**MONEY, default=0)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["paid_on", "id"]
        constraints = [models.UniqueConstraint(fields=["loan", "reference"], name="uniq_repayment_reference")]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount}"


class ClassificationChange(models.Model):
    loan = models.ForeignKey(Loan, on_delete=models.CASCADE, related_name="classification_history")
    from_category = models.CharField(max_length=20)
    to_category = models.CharField(max_length=20)
    reason = models.CharField(max_length=300)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.loan_id}: {self.from_category}→{self.to_category}"
