"""The shared kernel's records: organisation, audit trail, SLA clocks, calendar, notifications."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .fields import BlindIndexField, EncryptedCharField


class Branch(models.Model):
    """A branch (分行/支行) or the head office. New cases go to the branch whose region codes
    match the enterprise's registration region; otherwise to the default branch."""

    code = models.CharField(_("代码 code"), max_length=20, unique=True)
    name = models.CharField(_("名称 name"), max_length=100)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    is_head_office = models.BooleanField(_("总行 head office"), default=False)
    is_default = models.BooleanField(_("默认分行 default branch"), default=False)
    region_prefixes = models.CharField(
        _("管辖地区代码前缀 region code prefixes"),
        max_length=200,
        blank=True,
        help_text=_("逗号分隔的行政区划代码前缀，如 3101,3201 / comma-separated administrative division prefixes"),
    )

    class Meta:
        verbose_name = _("分行 branch")
        verbose_name_plural = _("分行 branches")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def prefixes(self) -> list[str]:
        return [p.strip() for p in self.region_prefixes.split(",") if p.strip()]


class Profile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    display_name = models.CharField(_("姓名 name"), max_length=100, blank=True)
    phone = EncryptedCharField(_("手机 phone"), max_length=20, blank=True, blind_index="phone_bidx")
    phone_bidx = BlindIndexField(source="phone")
    branch = models.ForeignKey(Branch, null=True, blank=True, on_delete=models.PROTECT, related_name="staff")
    supervisor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="supervised"
    )

    class Meta:
        verbose_name = _("用户资料 profile")
        verbose_name_plural = _("用户资料 profiles")

    def __str__(self) -> str:
        return self.display_name or self.user.get_username()


class AuditEventQuerySet(models.QuerySet):
    """The trail is append-only: no queryset update or delete (the database refuses them too, see migration 0003)."""

    def update(self, **kwargs):
        raise RuntimeError("Audit events are append-only.")

    def delete(self):
        raise RuntimeError("Audit events are append-only.")

    _raw_delete = delete


class AuditEvent(models.Model):
    """Append-only audit trail: who did what to which record, from which state to which, and why.

    Each event is a link in its object's hash chain (`chain`, `seq`): `hash` is SHA-256 over the event's content
    and `prev_hash`, the hash of the chain's event before it (loanservice/audit.py). Personal data in `data` and
    `reason` is stored masked."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    actor_label = models.CharField(max_length=150, blank=True, help_text="'system' for automatic steps")
    action = models.CharField(max_length=60, db_index=True)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=40)
    from_state = models.CharField(max_length=40, blank=True)
    to_state = models.CharField(max_length=40, blank=True)
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    chain = models.CharField(_("链 chain"), max_length=120, default="", blank=True)
    seq = models.PositiveBigIntegerField(_("链内序号 position in chain"), default=0)
    prev_hash = models.CharField(_("前一事件哈希 previous hash"), max_length=64, default="", blank=True)
    hash = models.CharField(_("哈希 hash"), max_length=64, default="", blank=True)
    # 1: SHA-256 over content, place and prev_hash in one JSON body; 2: SHA-256 over (content digest, seq, prev_hash),
    # so that the database can link a new event to its chain's head in the statement that inserts it (audit.py).
    hash_version = models.PositiveSmallIntegerField(_("哈希版本 hash version"), default=1)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("审计事件 audit event")
        verbose_name_plural = _("审计事件 audit events")
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["object_type", "object_id", "at"])]
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="auditevent_chain_seq_unique")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.object_type}#{self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise RuntimeError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError("Audit events are append-only.")


class AuditChainHead(models.Model):
    """The last link of one audit chain. Writers lock this row (select_for_update) to append, so two events of the
    same chain never take the same position while events of different chains are written in parallel."""

    chain = models.CharField(max_length=120, unique=True)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True, default="",
                                 help_text="the hash of the link before the last (an append returns both at once)")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("审计链头 audit chain head")
        verbose_name_plural = _("审计链头 audit chain heads")

    def __str__(self) -> str:
        return f"{self.chain} #{self.seq}"


class AuditAnchor(models.Model):
    """A day's anchor: SHA-256 over the last link of every chain written that day (audit_anchor_day). Once stored,
    rewriting a whole chain (or cutting its tail) no longer matches the anchor; audit_verify checks both."""

    day = models.DateField(unique=True)
    digest = models.CharField(max_length=64)
    chains = models.PositiveIntegerField(default=0)
    events = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("审计日锚 audit daily anchor")
        verbose_name_plural = _("审计日锚 audit daily anchors")
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day} {self.digest[:12]}"


class AuditAnchorSignature(models.Model):
    """The bank's signature over a daily anchor (its day, digest, chain and event counts), with the key the sandbox CA
    issued for the audit trail (loanservice.pki.audit_signer). Whoever rewrites events, heads and the anchor together
    cannot sign the new anchor without that key; audit_verify checks the signature and that the certificate is the
    CA's. Append-only like the anchors (the database refuses UPDATE and DELETE)."""

    anchor = models.OneToOneField(AuditAnchor, on_delete=models.PROTECT, related_name="signature")
    algorithm = models.CharField(max_length=30, default="ecdsa-p256-sha256")
    signature = models.TextField(help_text="base64")
    certificate_pem = models.TextField()
    signed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("审计日锚签名 audit anchor signature")
        verbose_name_plural = _("审计日锚签名 audit anchor signatures")

    def __str__(self) -> str:
        return f"signature of {self.anchor_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise RuntimeError("Audit anchor signatures are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError("Audit anchor signatures are append-only.")


class CalendarDay(models.Model):
    """Official calendar exceptions: holidays (off) and make-up workdays (调休, on)."""

    HOLIDAY = "holiday"
    WORKDAY = "workday"
    date = models.DateField(unique=True)
    kind = models.CharField(max_length=10, choices=[(HOLIDAY, _("节假日 holiday")), (WORKDAY, _("调休上班 make-up workday"))])
    name = models.CharField(max_length=60, blank=True)

    class Meta:
        verbose_name = _("节假日安排 calendar day")
        verbose_name_plural = _("节假日安排 calendar days")
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {self.kind} {self.name}"


class CalendarYear(models.Model):
    """A year whose official schedule is loaded; other years fall back to weekends only."""

    year = models.PositiveIntegerField(unique=True)
    source = models.CharField(max_length=60, default="chinese-calendar")
    loaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("已录入年份 calendar year")
        verbose_name_plural = _("已录入年份 calendar years")
        ordering = ["year"]

    def __str__(self) -> str:
        return str(self.year)


class RetentionRule(models.Model):
    """How long personal data is kept (个人信息保存期限), per kind of record, counted from the end of the relationship;
    past it `casework.retention` anonymises the record's personal data and keeps the record (docs/security.md)."""

    CUSTOMER_WITH_LOANS = "customer_with_loans"
    CUSTOMER_WITHOUT_LOANS = "customer_without_loans"
    PROSPECT = "prospect"
    KINDS = [
        (CUSTOMER_WITH_LOANS, _("贷款客户（最后一笔贷款结清后）customer with loans (after the last loan is closed)")),
        (CUSTOMER_WITHOUT_LOANS, _("未获贷款的申请客户（最后一笔申请结束后）applicant without a loan (after the last "
                                   "application ended)")),
        (PROSPECT, _("营销潜在客户（最后一次联系后）prospect (after the last contact)")),
    ]
    kind = models.CharField(_("记录类型 kind of record"), max_length=30, choices=KINDS, unique=True)
    years = models.PositiveSmallIntegerField(_("保存年限 years kept"))
    basis = models.CharField(_("依据 basis"), max_length=300, blank=True)
    is_active = models.BooleanField(_("启用 active"), default=True)

    class Meta:
        verbose_name = _("保存期限 retention rule")
        verbose_name_plural = _("保存期限 retention schedule")

    def __str__(self) -> str:
        return f"{self.kind}: {self.years}y"


class SlaTarget(models.Model):
    """Target for a stage in business days; product_code blank = the default for all products."""

    STAGES = [
        ("due_diligence", _("尽职调查 due diligence")),
        ("branch_approval", _("分行审批 branch approval")),
        ("head_office_approval", _("总行审批 head office approval")),
        ("committee_approval", _("贷审会 committee")),
        ("contracting", _("合同签署 contracting")),
        ("disbursement", _("放款 disbursement")),
    ]
    stage = models.CharField(max_length=30, choices=STAGES)
    product_code = models.CharField(max_length=40, blank=True)
    business_days = models.DecimalField(max_digits=5, decimal_places=2)

    class Meta:
        verbose_name = _("时效目标 SLA target")
        verbose_name_plural = _("时效目标 SLA targets")
        constraints = [models.UniqueConstraint(fields=["stage", "product_code"], name="uniq_sla_target")]

    def __str__(self) -> str:
        return f"{self.stage} {self.product_code or '*'} {self.business_days}d"


class SlaClock(models.Model):
    """One stage of one case against its target. The case is a LoanApplication (case_id)."""

    case_id = models.BigIntegerField(db_index=True)
    stage = models.CharField(max_length=30, choices=SlaTarget.STAGES)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    branch = models.ForeignKey(Branch, null=True, blank=True, on_delete=models.SET_NULL)
    product_code = models.CharField(max_length=40, blank=True)
    target_days = models.DecimalField(max_digits=5, decimal_places=2)
    started_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    paused_at = models.DateTimeField(null=True, blank=True)
    pauses = models.JSONField(default=list, blank=True, help_text="closed pauses [[start, end], ...] ISO")
    stopped_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    escalated_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("时效计时 SLA clock")
        verbose_name_plural = _("时效计时 SLA clocks")
        indexes = [models.Index(fields=["stopped_at", "breached_at", "due_at"])]

    def __str__(self) -> str:
        return f"case {self.case_id} {self.stage}"


class Notification(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("通知 notification")
        verbose_name_plural = _("通知 notifications")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title


class BusinessDate(models.Model):
    """The bank's business date (营业日期), one row: loans run on it, not on the wall clock. Close of business
    for a date moves it to the next day."""

    date = models.DateField(_("营业日期 business date"))
    updated_at = models.DateTimeField(_("更新时间 updated at"), auto_now=True)

    class Meta:
        verbose_name = _("营业日期 business date")
        verbose_name_plural = _("营业日期 business date")

    def __str__(self) -> str:
        return self.date.isoformat()
