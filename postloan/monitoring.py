"""The nightly post-loan monitoring job (贷后批量监测), set-based so that it keeps up with a whole portfolio:

1. delinquency — days past due, overdue bucket and the five-category floor for every active loan, as a
   handful of UPDATE statements (only rows whose value changes are written);
2. refresh — data snapshots whose freshness window has passed are pulled from the configured provider
   (sandbox / http) in chunks and bulk-inserted, under the consent recorded on the loan's application;
3. warnings — the warning rules (data) are evaluated on the snapshots that arrived since each rule last
   looked, and on collateral LTV; a warning is opened once per loan, rule and evidence;
4. tasks — each new warning opens an RM task with a due date; overdue tasks are marked breached.

Progress is kept on a MonitoringRun row (step, cursor, counts): a killed run resumes where it stopped,
and a second run on the same day finds nothing to change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections import defaultdict
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import (
    Case,
    DateField,
    Exists,
    F,
    Func,
    IntegerField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone
from django.utils.translation import gettext as _

from applications.models import Consent, Enterprise
from loanservice.models import AuditEvent, Profile
from loanservice.notifications import notify
from underwriting.models import DataSnapshot

from .models import (
    CATEGORY_ORDER,
    ClassificationChange,
    EarlyWarning,
    Installment,
    Loan,
    MonitoringRun,
    SourceRefresh,
    WarningRule,
    WarningTask,
)

log = logging.getLogger(__name__)
STALE_AFTER = dt.timedelta(minutes=10)  # a run whose heartbeat is older than this was killed
REFRESH_CHUNK = 2000
EVAL_CHUNK = 5000


class DaysSince(Func):
    """Whole days from a date column to a given day (today - column), on Postgres and SQLite."""

    output_field = IntegerField()
    template = "(%(expressions)s)"
    arg_joiner = " - "

    def __init__(self, day: dt.date, expression):
        super().__init__(Value(day, output_field=DateField()), expression)

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="CAST(julianday(%(expressions)s) AS INTEGER)",
                           arg_joiner=") - julianday(", **extra)


def monitored_sources() -> list[str]:
    return sorted(set(WarningRule.objects.filter(is_active=True).exclude(source="collateral").values_list("source", flat=True)))


# ---------------------------------------------------------------- 1. delinquency
def delinquency_refresh(*, today: dt.date, loan_ids: list[int] | None = None) -> dict:
    """DPD, bucket and the classification floor for active loans (all, or `loan_ids`), set-based."""
    from .services import bucket_table, floor_table, overdue_cutoff

    cutoff = overdue_cutoff(today)
    active = Loan.objects.filter(status=Loan.Status.ACTIVE)
    if loan_ids is not None:
        active = active.filter(pk__in=loan_ids)
    oldest = (Installment.objects.filter(loan=OuterRef("pk"), settled_on__isnull=True, superseded=False, due_date__lte=cutoff)
              .order_by("due_date").values("due_date")[:1])
    counts = {}
    with transaction.atomic():
        changed = (active.annotate(new=Subquery(oldest))
                   .filter(Q(overdue_since__isnull=True, new__isnull=False) | Q(overdue_since__isnull=False, new__isnull=True)
                           | (Q(overdue_since__isnull=False, new__isnull=False) & ~Q(overdue_since=F("new")))))
        counts["overdue_changed"] = Loan.objects.filter(pk__in=changed.values("pk")).update(overdue_since=Subquery(oldest))
        days = DaysSince(today, "overdue_since")
        counts["dpd_changed"] = (active.filter(overdue_since__isnull=False).exclude(dpd=days).update(dpd=days)
                                 + active.filter(overdue_since__isnull=True).exclude(dpd=0).update(dpd=0))
        table = bucket_table()
        bucket = Case(*[When(Q(dpd__gte=low) & (Q(dpd__lte=high) if high is not None else Q()), then=Value(code))
                        for code, low, high in table], default=Value(table[-1][0]))
        counts["bucket_changed"] = active.exclude(bucket=bucket).update(bucket=bucket)
        counts["classified"] = _floors_apply(active, floor_table())
        counts["monitored"] = active.exclude(monitored_on=today).update(monitored_on=today)
    return counts


def _floors_apply(active, floors) -> int:
    """Raise loans to their DPD floor (never lower them), worst floor first, with history and audit rows."""
    moved = 0
    now = timezone.now()
    for category, over in sorted(floors, key=lambda f: -CATEGORY_ORDER.index(f[0])):
        below = CATEGORY_ORDER[: CATEGORY_ORDER.index(category)]
        rows = list(active.filter(dpd__gt=over, classification__in=below).values_list("pk", "classification", "dpd"))
        if not rows:
            continue
        reason = f"DPD > {over}"
        ClassificationChange.objects.bulk_create([
            ClassificationChange(loan_id=pk, from_category=old, to_category=category, kind="floor", reason=f"DPD {dpd} > {over}", at=now)
            for pk, old, dpd in rows])
        AuditEvent.objects.bulk_create([
            AuditEvent(actor_label="system", action="loan.classification.floor", object_type="postloan.loan", object_id=str(pk),
                       from_state=old, to_state=category, reason=reason, data={"dpd": dpd}, at=now)
            for pk, old, dpd in rows])
        moved += Loan.objects.filter(pk__in=[r[0] for r in rows]).update(classification=category)
    return moved


# ---------------------------------------------------------------- 2. refresh the data snapshots
def refresh_schedule_sync(*, today: dt.date) -> int:
    """Add the refresh schedule of borrowers that have none yet (loans opened before monitoring existed)."""
    from underwriting.services import source_config

    sources = monitored_sources()
    # NOT EXISTS, not NOT IN: Postgres plans NOT IN over a large subquery as a nested scan.
    missing = list(Enterprise.objects.filter(loans__status=Loan.Status.ACTIVE)
                   .filter(~Exists(SourceRefresh.objects.filter(enterprise_id=OuterRef("pk")))).values_list("pk", flat=True).distinct())
    if not missing:
        return 0
    consented = set(Consent.objects.filter(application__loan__status=Loan.Status.ACTIVE, application__enterprise_id__in=missing,
                                           source__in=sources).values_list("application__enterprise_id", "source"))
    latest = dict(((e, s), d) for e, s, d in DataSnapshot.objects.filter(enterprise_id__in=missing, status=DataSnapshot.OK)
                  .values("enterprise_id", "source").annotate(d=Max("as_of")).values_list("enterprise_id", "source", "d"))
    rows = []
    for enterprise_id, source in sorted(consented):
        last = latest.get((enterprise_id, source))
        due = last + dt.timedelta(days=source_config(source).freshness_days) if last else today
        rows.append(SourceRefresh(enterprise_id=enterprise_id, source=source, due_on=max(due, today) if last else today))
    SourceRefresh.objects.bulk_create(rows, ignore_conflicts=True, batch_size=5000)
    return len(rows)


def refresh_chunk(*, today: dt.date, after_id: int, limit: int = REFRESH_CHUNK) -> tuple[int, int, dict]:
    """Pull the next chunk of due (enterprise, source) pairs; returns (last id, pairs seen, counts)."""
    from underwriting import services as underwriting
    from underwriting.providers import ProviderError

    due = list(SourceRefresh.objects.filter(due_on__lte=today, pk__gt=after_id).order_by("pk")[:limit])
    if not due:
        return after_id, 0, {}
    enterprises = Enterprise.objects.in_bulk({r.enterprise_id for r in due})
    loans = dict(Loan.objects.filter(status=Loan.Status.ACTIVE, enterprise_id__in=enterprises)
                 .order_by("enterprise_id", "-id").values_list("enterprise_id", "application_id"))
    counts = defaultdict(int)
    snapshots, touched = [], []
    configs = {}
    now = timezone.now()
    for row in due:
        application_id = loans.get(row.enterprise_id)
        config = configs.get(row.source) or configs.setdefault(row.source, underwriting.source_config(row.source))
        if application_id is None:  # the loan closed: stop monitoring this borrower
            counts["dropped"] += 1
            row.due_on = dt.date.max
            touched.append(row)
            continue
        row.due_on = today + dt.timedelta(days=config.freshness_days)
        touched.append(row)
        if config.provider == "push" or not config.is_active:
            counts["push_only"] += 1
            continue
        enterprise = enterprises[row.enterprise_id]
        try:
            if config.provider == "http" and not config.base_url:
                raise ProviderError(row.source, "no base_url configured for the http provider", code="not_configured")
            payload = underwriting.provider_for(config).fetch(row.source, enterprise.uscc, as_of=today,
                                                               hints=underwriting._hints(enterprise))
            snap = DataSnapshot(enterprise_id=row.enterprise_id, source=row.source, as_of=today, provider=config.provider,
                                payload=payload, application_id=application_id, fetched_at=now)
            counts["pulled"] += 1
        except ProviderError as exc:
            snap = DataSnapshot(enterprise_id=row.enterprise_id, source=row.source, as_of=today, provider=config.provider,
                                status=DataSnapshot.FAILED, error=str(exc)[:300], application_id=application_id, fetched_at=now)
            row.due_on = today + dt.timedelta(days=1)  # try again tomorrow
            counts["failed"] += 1
        snapshots.append(snap)
    with transaction.atomic():
        DataSnapshot.objects.bulk_create(snapshots, batch_size=1000)
        AuditEvent.objects.bulk_create([
            AuditEvent(actor_label="system", action="data.pull", object_type="applications.enterprise", object_id=str(s.enterprise_id),
                       data={"source": s.source, "status": s.status, "application": s.application_id, "monitoring": True}, at=now)
            for s in snapshots], batch_size=1000)
        by_due = defaultdict(list)  # a few distinct dates: one UPDATE each, not a CASE per row
        for row in touched:
            by_due[row.due_on].append(row.pk)
        for due_on, ids in by_due.items():
            SourceRefresh.objects.filter(pk__in=ids).update(due_on=due_on)
    return due[-1].pk, len(due), dict(counts)


# ---------------------------------------------------------------- 3. warnings
def _number(value) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return Decimal(int(value))
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _truthy(value) -> bool:
    return value is True or str(value).lower() in ("true", "1", "yes")


def rule_fires(rule: WarningRule, current: dict, previous: dict | None) -> dict | None:
    """The evidence when `rule` fires on a snapshot's values (`current`, and the previous snapshot's), else None."""
    field, other, threshold = rule.field, rule.compare_field, rule.threshold
    if rule.kind == "drop_yoy":
        now, before = _number(current.get(field)), _number(current.get(other))
        if now is None or before is None or before <= 0:
            return None
        drop = (before - now) / before
        return {field: str(now), other: str(before), "drop": f"{drop:.4f}"} if drop > threshold else None
    if rule.kind == "flag":
        return {field: True} if _truthy(current.get(field)) else None
    if rule.kind == "positive":
        now = _number(current.get(field))
        return {field: str(now)} if now is not None and now > threshold else None
    if rule.kind == "increase":
        now = _number(current.get(field))
        before = _number((previous or {}).get(field))
        if now is None or before is None:
            return None
        return {field: str(now), "previous": str(before)} if now > before else None
    return None


def _fingerprint(rule: WarningRule, evidence: dict) -> str:
    return hashlib.sha256(f"{rule.code}|{json.dumps(evidence, sort_keys=True, default=str)}".encode()).hexdigest()[:40]


def _open_warning_loans(rule: WarningRule, loan_ids) -> set[int]:
    return set(EarlyWarning.objects.filter(rule=rule, status=EarlyWarning.Status.OPEN, loan_id__in=loan_ids)
               .values_list("loan_id", flat=True))


def _warnings_create(rule: WarningRule, hits: list[tuple[dict, dict, int | None]], today: dt.date) -> int:
    """hits: (loan row {id, branch_id}, evidence, snapshot id). One warning per loan, rule and evidence; none
    while the same rule is already open on the loan."""
    if not hits:
        return 0
    loan_ids = [h[0]["id"] for h in hits]
    open_on = _open_warning_loans(rule, loan_ids)
    prints = {(h[0]["id"], _fingerprint(rule, h[1])) for h in hits}
    seen = set(EarlyWarning.objects.filter(rule=rule, loan_id__in=loan_ids, fingerprint__in={p for _l, p in prints})
               .values_list("loan_id", "fingerprint"))
    new = []
    for loan, evidence, snapshot_id in hits:
        fp = _fingerprint(rule, evidence)
        if loan["id"] in open_on or (loan["id"], fp) in seen:
            continue
        seen.add((loan["id"], fp))
        new.append(EarlyWarning(loan_id=loan["id"], rule=rule, branch_id=loan["branch_id"], severity=rule.severity,
                                fingerprint=fp, evidence=evidence, snapshot_id=snapshot_id, detected_on=today))
    EarlyWarning.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
    return len(new)


def warnings_evaluate_rule(*, rule: WarningRule, today: dt.date, upto: int) -> dict:
    """Evaluate one snapshot rule on the latest new snapshot (id in (evaluated_through, upto]) of each borrower
    with an active loan; then move the rule's watermark."""
    latest = (DataSnapshot.objects.filter(source=rule.source, status=DataSnapshot.OK, pk__gt=rule.evaluated_through, pk__lte=upto,
                                          enterprise__loans__status=Loan.Status.ACTIVE)
              .values("enterprise_id").annotate(last=Max("pk")).values_list("last", flat=True))
    ids = sorted(set(latest))
    fields = [f for f in (rule.field, rule.compare_field) if f]
    created = evaluated = 0
    for start in range(0, len(ids), EVAL_CHUNK):
        chunk = ids[start:start + EVAL_CHUNK]
        qs = DataSnapshot.objects.filter(pk__in=chunk).annotate(**{f"v_{f}": KeyTextTransform(f, "payload") for f in fields})
        if rule.kind == "increase":
            previous = (DataSnapshot.objects.filter(enterprise_id=OuterRef("enterprise_id"), source=rule.source, status=DataSnapshot.OK,
                                                    pk__lt=OuterRef("pk"))
                        .order_by("-as_of", "-pk").annotate(v=KeyTextTransform(rule.field, "payload")).values("v")[:1])
            qs = qs.annotate(v_previous=Subquery(previous))
        rows = list(qs.values("pk", "enterprise_id", *[f"v_{f}" for f in fields], *(["v_previous"] if rule.kind == "increase" else [])))
        by_enterprise = defaultdict(list)
        for loan in Loan.objects.filter(status=Loan.Status.ACTIVE, enterprise_id__in=[r["enterprise_id"] for r in rows]).values(
                "id", "branch_id", "enterprise_id"):
            by_enterprise[loan["enterprise_id"]].append(loan)
        hits = []
        for row in rows:
            current = {f: row[f"v_{f}"] for f in fields}
            previous = {rule.field: row["v_previous"]} if rule.kind == "increase" and row.get("v_previous") is not None else None
            evidence = rule_fires(rule, current, previous)
            evaluated += 1
            if evidence:
                hits.extend((loan, evidence, row["pk"]) for loan in by_enterprise[row["enterprise_id"]])
        created += _warnings_create(rule, hits, today)
    WarningRule.objects.filter(pk=rule.pk).update(evaluated_through=upto)
    return {"evaluated": evaluated, "created": created}


def warnings_evaluate_ltv(*, rule: WarningRule, today: dt.date) -> dict:
    """Loan-to-value: outstanding principal over the collateral's latest appraised value."""
    rows = (Loan.objects.filter(status=Loan.Status.ACTIVE, collateral__isnull=False)
            .values("id", "branch_id", "outstanding_principal").annotate(value=Sum("collateral__value")))
    hits = []
    for row in rows:
        if row["value"] and row["value"] > 0:
            ltv = row["outstanding_principal"] / row["value"]
            if ltv > rule.threshold:
                hits.append(({"id": row["id"], "branch_id": row["branch_id"]},
                             {"collateral_value": f"{row['value']:.2f}", "ltv_limit": str(rule.threshold)}, None))
    return {"evaluated": len(rows), "created": _warnings_create(rule, hits, today)}


def warnings_evaluate(*, today: dt.date) -> dict:
    upto = DataSnapshot.objects.aggregate(m=Max("pk"))["m"] or 0
    counts = defaultdict(int)
    for rule in WarningRule.objects.filter(is_active=True).order_by("code"):
        result = (warnings_evaluate_ltv(rule=rule, today=today) if rule.kind == "ltv_above"
                  else warnings_evaluate_rule(rule=rule, today=today, upto=upto))
        counts["evaluated"] += result["evaluated"]
        counts["created"] += result["created"]
    return dict(counts)


# ---------------------------------------------------------------- 4. RM tasks
def tasks_open(*, today: dt.date) -> dict:
    """An RM task for every open warning without one (due date from the severity's SLA); breached tasks
    are marked and the RM's supervisor is told."""
    from .services import policy_in_force, task_due

    policy = policy_in_force(today)
    now = timezone.now()
    pending = list(EarlyWarning.objects.filter(status=EarlyWarning.Status.OPEN, task__isnull=True)
                   .select_related("loan").only("id", "severity", "loan_id", "loan__relationship_manager_id"))
    dues = {s: task_due(severity=s, policy=policy, now=now) for s in ("red", "orange", "yellow")}
    tasks = [WarningTask(warning_id=w.pk, loan_id=w.loan_id, assigned_to_id=w.loan.relationship_manager_id,
                         target_days=dues[w.severity][0], due_at=dues[w.severity][1], created_at=now) for w in pending]
    with transaction.atomic():
        WarningTask.objects.bulk_create(tasks, batch_size=1000, ignore_conflicts=True)
        per_rm = defaultdict(int)
        for task in tasks:
            if task.assigned_to_id:
                per_rm[task.assigned_to_id] += 1
        _notify_many(per_rm, kind="warning_tasks", title=_("您有 %(n)s 个新的贷后预警任务 / %(n)s new post-loan warning tasks"),
                     url="/postloan/tasks/")
        breached = list(WarningTask.objects.filter(status=WarningTask.Status.OPEN, breached_at__isnull=True, due_at__lt=now)
                        .values_list("pk", "assigned_to_id"))
        WarningTask.objects.filter(pk__in=[b[0] for b in breached]).update(breached_at=now)
        supervisors = dict(Profile.objects.filter(user_id__in={b[1] for b in breached if b[1]}, supervisor__isnull=False)
                           .values_list("user_id", "supervisor_id"))
        per_supervisor = defaultdict(int)
        for _pk, rm in breached:
            if rm in supervisors:
                per_supervisor[supervisors[rm]] += 1
        _notify_many(per_supervisor, kind="warning_task_breach",
                     title=_("%(n)s 个贷后预警任务已超时 / %(n)s post-loan warning tasks are overdue"), url="/postloan/warnings/")
    return {"tasks_opened": len(tasks), "tasks_breached": len(breached)}


def _notify_many(per_user: dict[int, int], *, kind: str, title: str, url: str) -> None:
    from django.contrib.auth import get_user_model

    for user in get_user_model().objects.filter(pk__in=list(per_user)):
        notify(user=user, kind=kind, title=title % {"n": per_user[user.pk]}, url=url, email=False)


# ---------------------------------------------------------------- the job
def _claim(today: dt.date, force: bool) -> MonitoringRun | None:
    with transaction.atomic():
        run, _created = MonitoringRun.objects.select_for_update().get_or_create(run_date=today)
        now = timezone.now()
        if run.status == "done" and not force:
            return None
        if run.status == "running" and run.attempts and now - run.heartbeat_at < STALE_AFTER and not force:
            return None  # another worker is on it
        if run.status == "done":  # forced re-run: start over; every step finds nothing left to change
            run.step, run.cursor, run.counts = "delinquency", 0, {}
        run.status, run.attempts, run.heartbeat_at, run.error = "running", run.attempts + 1, now, ""
        run.save()
        return run


def _save(run: MonitoringRun, **fields) -> None:
    for key, value in fields.items():
        setattr(run, key, value)
    run.heartbeat_at = timezone.now()
    run.save(update_fields=[*fields, "heartbeat_at"])


def monitoring_run(*, today: dt.date | None = None, force: bool = False, max_chunks: int | None = None) -> MonitoringRun | None:
    """Run (or resume) tonight's job. Returns the run, or None when it is done already or running elsewhere.
    `max_chunks` stops the refresh step early (to test resuming)."""
    today = today or timezone.localdate()
    run = _claim(today, force)
    if run is None:
        return MonitoringRun.objects.filter(run_date=today).first()
    counts = dict(run.counts)
    try:
        if run.step == "delinquency":
            counts["delinquency"] = delinquency_refresh(today=today)
            counts["schedule_added"] = refresh_schedule_sync(today=today)
            _save(run, step="refresh", cursor=0, counts=counts)
        if run.step == "refresh":
            refresh = defaultdict(int, counts.get("refresh", {}))
            chunks = 0
            while True:
                if max_chunks is not None and chunks >= max_chunks:
                    return run
                cursor, seen, chunk_counts = refresh_chunk(today=today, after_id=run.cursor)
                if not seen:
                    break
                for key, value in chunk_counts.items():
                    refresh[key] += value
                counts["refresh"] = dict(refresh)
                _save(run, cursor=cursor, counts=counts)
                chunks += 1
            _save(run, step="warnings", cursor=0, counts=counts)
        if run.step == "warnings":
            counts["warnings"] = warnings_evaluate(today=today)
            _save(run, step="tasks", counts=counts)
        if run.step == "tasks":
            counts["tasks"] = tasks_open(today=today)
            _save(run, step="done", status="done", counts=counts, finished_at=timezone.now())
    except Exception as exc:
        log.exception("monitoring run %s failed", today)
        _save(run, status="failed", error=str(exc)[:2000])
        raise
    return run
