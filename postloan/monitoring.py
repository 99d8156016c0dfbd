"""The nightly post-loan monitoring job (贷后批量监测), set-based so that it keeps up with a whole portfolio:

1. delinquency — days past due, overdue bucket and the five-category floor, as a handful of UPDATE statements
   over the loans that were or fall overdue (a loan that does not change is neither read nor rewritten);
2. refresh — data snapshots whose freshness window has passed are pulled in chunks through underwriting's
   batch pull (configured provider, consent on the loan's application, bulk insert, one audit event a chunk);
3. warnings — the warning rules (data) are evaluated on the snapshots that arrived since they last looked,
   one read per source, and on collateral LTV; a warning is opened once per loan, rule and evidence;
4. tasks — each new warning opens an RM task with a due date; overdue tasks are marked breached.

Progress is kept on a MonitoringRun row (step, cursor, counts, seconds per step): a killed run resumes where
it stopped, and a second run on the same day finds nothing to change. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections import defaultdict
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
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
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from applications.models import Consent, Enterprise
from loanservice.audit import audit_record
from loanservice.business_date import business_date
from loanservice.models import Profile
from loanservice.notifications import notify
from underwriting.models import DataSnapshot, DataSourceConfig
from underwriting.services import snapshots_refresh_batch, source_config

from .models import (
    CATEGORY_ORDER,
    NPL_CATEGORIES,
    ClassificationChange,
    EarlyWarning,
    Installment,
    Loan,
    MonitoringRun,
    SourceRefresh,
    WarningRule,
    WarningTask,
)
from .policy import bucket_for, bucket_table, floor_table, overdue_cutoff, policy_in_force, task_due

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
def delinquency_refresh(*, today: dt.date, loan_ids: list[int] | None = None, counted: bool = True) -> dict:
    """DPD, bucket and the classification floor for active loans (all, or `loan_ids`), set-based. Only the
    loans that were overdue, or have an unpaid installment due by the cutoff, can change: a few per cent of
    a book, so the rest is never read row by row nor rewritten. `counted=False` (close of business, chunk by chunk)
    leaves out the four queries that only count the DPD and bucket changes for the report."""

    cutoff = overdue_cutoff(today)
    active = Loan.objects.filter(status=Loan.Status.ACTIVE)
    if loan_ids is not None:
        active = active.filter(pk__in=loan_ids)
    unpaid = Installment.objects.filter(settled_on__isnull=True, superseded=False, due_date__lte=cutoff)
    oldest = unpaid.filter(loan=OuterRef("pk")).order_by("due_date").values("due_date")[:1]
    counts = {}
    with transaction.atomic():
        # Two statements, not one with `overdue OR id IN (...)`: Postgres cannot turn an IN under an OR into a
        # semi-join and may rescan the subquery for every loan. First the loans overdue until now (paid up, or
        # their oldest unpaid installment moved on), then the loans that fall overdue today.
        moved = (active.filter(overdue_since__isnull=False).annotate(new=Subquery(oldest))
                 .filter(Q(new__isnull=True) | ~Q(overdue_since=F("new"))))
        counts["overdue_changed"] = (Loan.objects.filter(pk__in=moved.values("pk")).update(overdue_since=Subquery(oldest))
                                     + active.filter(overdue_since__isnull=True, pk__in=unpaid.values("loan_id"))
                                     .update(overdue_since=Subquery(oldest)))
        # DPD and bucket in one write per loan (a loan row carries many indexes: each rewrite costs them all).
        days = DaysSince(today, "overdue_since")
        table = bucket_table()
        not_overdue = bucket_for(0, table)
        overdue = active.filter(overdue_since__isnull=False).exclude(dpd=days, bucket=_bucket_case(days, table))
        cleared = active.filter(overdue_since__isnull=True).filter(Q(dpd__gt=0) | ~Q(bucket=not_overdue))
        if counted:
            counts["dpd_changed"] = overdue.exclude(dpd=days).count() + cleared.filter(dpd__gt=0).count()
            counts["bucket_changed"] = (overdue.exclude(bucket=_bucket_case(days, table)).count()
                                        + cleared.exclude(bucket=not_overdue).count())
        overdue.update(dpd=days, bucket=_bucket_case(days, table))
        cleared.update(dpd=0, bucket=not_overdue)
        counts["classified"] = _floors_apply(active, floor_table(), today=today)
        scope = None if loan_ids is None else list(Loan.objects.filter(pk__in=loan_ids).values_list("enterprise_id", flat=True)
                                                    .distinct())
        counts["borrower_floor"] = len(borrower_floors_apply(enterprise_ids=scope, today=today))
    return counts


def borrower_floors_apply(*, enterprise_ids: list[int] | None = None, today: dt.date | None = None) -> list[int]:
    """The borrower as one (2023 rules, art. 21): when more than the policy's share (data, 10 %) of a non-retail
    borrower's claims with the bank are non-performing (substandard or worse, by outstanding principal), all its loans
    are at least substandard. Set-based over the borrowers (all, or `enterprise_ids`) that hold a non-performing loan;
    never lowers a loan. A history row per loan and one audit event naming the rule. Returns the loans raised."""
    policy_date = today or business_date()
    policy = policy_in_force(policy_date)
    floor = NPL_CATEGORIES[0]
    active = Loan.objects.filter(status=Loan.Status.ACTIVE).exclude(enterprise__legal_form__in=policy.retail_legal_forms or [])
    if enterprise_ids is not None:
        active = active.filter(enterprise_id__in=enterprise_ids)
    with_npl = active.filter(classification__in=NPL_CATEGORIES).values("enterprise_id")
    shares = (active.filter(enterprise_id__in=with_npl).values("enterprise_id")
              .annotate(total=Sum("outstanding_principal"),
                        npl=Sum("outstanding_principal", filter=Q(classification__in=NPL_CATEGORIES))))
    hit = {}
    for r in shares:  # (SQLite sums decimals as floats)
        total, npl = Decimal(str(r["total"] or 0)), Decimal(str(r["npl"] or 0))
        if total and npl > policy.borrower_npl_share * total:
            hit[r["enterprise_id"]] = npl / total
    if not hit:
        return []
    below = CATEGORY_ORDER[: CATEGORY_ORDER.index(floor)]
    rows = list(active.filter(enterprise_id__in=hit, classification__in=below).values_list("pk", "classification", "enterprise_id"))
    if not rows:
        return []
    rule = f"borrower NPL share > {policy.borrower_npl_share:.2%}"
    now = timezone.now()
    ClassificationChange.objects.bulk_create([
        ClassificationChange(loan_id=pk, from_category=old, to_category=floor, kind="borrower", at=now, on=policy_date,
                             reason=f"{rule}: {hit[ent]:.2%}") for pk, old, ent in rows], batch_size=5000)
    ids = [r[0] for r in rows]
    Loan.objects.filter(pk__in=ids).update(classification=floor)
    audit_record(actor=None, action="loan.classification.borrower_floor", object_type="postloan.loan", to_state=floor,
                 reason=rule, data={"rule": "borrower_npl_share", "threshold": str(policy.borrower_npl_share), "loans": ids,
                                    "borrowers": {str(e): f"{v:.4f}" for e, v in hit.items()}})
    return ids


def _bucket_case(dpd, table) -> Case:
    """The bucket (data: code, min, max) of a DPD expression, as SQL."""
    whens = [When(GreaterThanOrEqual(dpd, low) & LessThanOrEqual(dpd, high) if high is not None else GreaterThanOrEqual(dpd, low),
                  then=Value(code)) for code, low, high in table]
    return Case(*whens, default=Value(table[-1][0]))


def _floors_apply(active, floors, *, today: dt.date | None = None) -> int:
    """Raise loans to their DPD floor (never lower them), worst floor first: a history row per loan, one
    audit event per floor (naming the loans)."""
    moved = 0
    now = timezone.now()
    for category, over in sorted(floors, key=lambda f: -CATEGORY_ORDER.index(f[0])):
        below = CATEGORY_ORDER[: CATEGORY_ORDER.index(category)]
        rows = list(active.filter(dpd__gt=over, classification__in=below).values_list("pk", "classification", "dpd"))
        if not rows:
            continue
        ClassificationChange.objects.bulk_create([
            ClassificationChange(loan_id=pk, from_category=old, to_category=category, kind="floor", reason=f"DPD {dpd} > {over}", at=now,
                                 on=today)
            for pk, old, dpd in rows], batch_size=5000)
        moved += Loan.objects.filter(pk__in=[r[0] for r in rows]).update(classification=category)
        from_counts: dict[str, int] = defaultdict(int)
        for _pk, old, _dpd in rows:
            from_counts[old] += 1
        audit_record(actor=None, action="loan.classification.floor", object_type="postloan.loan", to_state=category,
                     reason=f"DPD > {over}", data={"loans": [r[0] for r in rows], "from": dict(from_counts)})
    return moved


# ---------------------------------------------------------------- 2. refresh the data snapshots
def refresh_schedule_sync(*, today: dt.date) -> int:
    """Add the refresh schedule of borrowers that have none yet (loans opened before monitoring existed)."""

    sources = monitored_sources()
    # NOT EXISTS, not NOT IN: Postgres plans NOT IN over a large subquery as a nested scan.
    missing = list(Enterprise.objects.filter(loans__status=Loan.Status.ACTIVE)
                   .filter(~Exists(SourceRefresh.objects.filter(enterprise_id=OuterRef("pk")))).values_list("pk", flat=True).distinct())
    if not missing:
        return 0
    consented = set(Consent.objects.filter(application__loans__status=Loan.Status.ACTIVE, application__enterprise_id__in=missing,
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


HINT_FIELDS = ["id", "uscc", "legal_rep_id_number", "founded_on", "industry_code", "employees", "annual_revenue"]


def refresh_chunk(*, today: dt.date, after_id: int, limit: int = REFRESH_CHUNK) -> tuple[int, int, dict]:
    """Refresh the next chunk of due (enterprise, source) pairs of the work list through underwriting's batch
    pull; returns (last id, pairs seen, counts). A pair whose data arrived since it was scheduled (pushed, pulled
    for a new application, or by this run before it was killed) is not pulled again, only rescheduled."""

    due = list(SourceRefresh.objects.filter(due_on__lte=today, pk__gt=after_id).order_by("pk")
               .values_list("pk", "enterprise_id", "source")[:limit])
    if not due:
        return after_id, 0, {}
    enterprise_ids = {e for _pk, e, _s in due}
    sources = {s for _pk, _e, s in due}
    stored = {c.source: c for c in DataSourceConfig.objects.filter(source__in=sources)}
    configs = {s: stored.get(s) or DataSourceConfig(source=s) for s in sources}
    applications = dict(Loan.objects.filter(status=Loan.Status.ACTIVE, enterprise_id__in=enterprise_ids)
                        .order_by("enterprise_id", "id").values_list("enterprise_id", "application_id"))  # the latest loan's consent
    window = max(c.freshness_days for c in configs.values())
    latest = {(e, s): d for e, s, d in DataSnapshot.objects.filter(
        enterprise_id__in=enterprise_ids, source__in=sources, status=DataSnapshot.OK, as_of__gt=today - dt.timedelta(days=window))
        .values("enterprise_id", "source").annotate(d=Max("as_of")).values_list("enterprise_id", "source", "d")}
    counts: dict[str, int] = defaultdict(int)
    next_due: dict[dt.date, list[int]] = defaultdict(list)
    pulls, asked = [], []
    for pk, enterprise_id, source in due:
        config = configs[source]
        freshness = dt.timedelta(days=config.freshness_days)
        application_id = applications.get(enterprise_id)
        last = latest.get((enterprise_id, source))
        if application_id is None:  # the loan closed: stop monitoring this borrower
            counts["dropped"] += 1
            next_due[dt.date.max].append(pk)
        elif last is not None and last + freshness > today:
            counts["fresh"] += 1
            next_due[last + freshness].append(pk)
        elif config.provider == "push" or not config.is_active:
            counts["push_only"] += 1
            next_due[today + freshness].append(pk)
        else:
            pulls.append((enterprise_id, source, application_id))
            asked.append(pk)
    if pulls:
        enterprises = Enterprise.objects.only(*HINT_FIELDS).in_bulk({e for e, _s, _a in pulls})
        snapshots = snapshots_refresh_batch(pulls=[(enterprises[e], s, a) for e, s, a in pulls], as_of=today, by=None,
                                            purpose="postloan.monitoring")
        for pk, snap in zip(asked, snapshots, strict=True):
            if snap.status == DataSnapshot.OK:
                counts["pulled"] += 1
                next_due[today + dt.timedelta(days=configs[snap.source].freshness_days)].append(pk)
            else:
                counts["failed"] += 1
                next_due[today + dt.timedelta(days=1)].append(pk)  # try again tomorrow
    with transaction.atomic():
        for due_on, ids in next_due.items():  # a few distinct dates: one UPDATE each, not a CASE per row
            SourceRefresh.objects.filter(pk__in=ids).update(due_on=due_on)
    return due[-1][0], len(due), dict(counts)


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


def _warnings_create(hits: list[tuple[WarningRule, dict, dict, int | None]], today: dt.date) -> int:
    """hits: (rule, loan row {id, branch_id}, evidence, snapshot id). One warning per loan, rule and evidence; none
    while the same rule is already open on the loan. Three queries whatever the number of hits."""
    if not hits:
        return 0
    rule_ids = {rule.pk for rule, _loan, _evidence, _snap in hits}
    loan_ids = {loan["id"] for _rule, loan, _evidence, _snap in hits}
    printed = [(rule, loan, evidence, snap, _fingerprint(rule, evidence)) for rule, loan, evidence, snap in hits]
    open_on = set(EarlyWarning.objects.filter(rule_id__in=rule_ids, status=EarlyWarning.Status.OPEN, loan_id__in=loan_ids)
                  .values_list("rule_id", "loan_id"))
    seen = set(EarlyWarning.objects.filter(rule_id__in=rule_ids, loan_id__in=loan_ids, fingerprint__in={p[-1] for p in printed})
               .values_list("rule_id", "loan_id", "fingerprint"))
    new = []
    for rule, loan, evidence, snapshot_id, fp in printed:
        if (rule.pk, loan["id"]) in open_on or (rule.pk, loan["id"], fp) in seen:
            continue
        open_on.add((rule.pk, loan["id"]))
        new.append(EarlyWarning(loan_id=loan["id"], rule=rule, branch_id=loan["branch_id"], severity=rule.severity,
                                fingerprint=fp, evidence=evidence, snapshot_id=snapshot_id, detected_on=today))
    EarlyWarning.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
    return len(new)


def warnings_evaluate_source(*, source: str, rules: list[WarningRule], today: dt.date, upto: int) -> dict:
    """Evaluate the snapshot rules of one source that share a watermark, in one pass: the latest new snapshot
    (id in (watermark, upto]) of each borrower with an active loan is read once, only the payload fields the
    rules name, and every rule is applied to it; then the rules' watermark moves to `upto`."""
    after = rules[0].evaluated_through
    latest = (DataSnapshot.objects.filter(source=source, status=DataSnapshot.OK, pk__gt=after, pk__lte=upto,
                                          enterprise__loans__status=Loan.Status.ACTIVE)
              .order_by().values("enterprise_id").annotate(last=Max("pk")).values_list("last", flat=True))
    ids = sorted(set(latest))
    fields = sorted({f for rule in rules for f in (rule.field, rule.compare_field) if f})
    alias = {f: f"v{i}" for i, f in enumerate(fields)}
    increases = sorted({rule.field for rule in rules if rule.kind == "increase"})
    created = evaluated = 0
    with transaction.atomic():
        for start in range(0, len(ids), EVAL_CHUNK):
            chunk = ids[start:start + EVAL_CHUNK]
            qs = (DataSnapshot.objects.filter(pk__in=chunk).order_by()
                  .annotate(**{alias[f]: KeyTextTransform(f, "payload") for f in fields}))
            for f in increases:  # the same field on the borrower's previous snapshot of this source
                previous = (DataSnapshot.objects.filter(enterprise_id=OuterRef("enterprise_id"), source=source, status=DataSnapshot.OK,
                                                        pk__lt=OuterRef("pk"))
                            .order_by("-as_of", "-pk").annotate(v=KeyTextTransform(f, "payload")).values("v")[:1])
                qs = qs.annotate(**{f"p{alias[f]}": Subquery(previous)})
            rows = list(qs.values("pk", "enterprise_id", *alias.values(), *[f"p{alias[f]}" for f in increases]))
            by_enterprise = defaultdict(list)
            for loan in Loan.objects.filter(status=Loan.Status.ACTIVE, enterprise_id__in={r["enterprise_id"] for r in rows}).values(
                    "id", "branch_id", "enterprise_id"):
                by_enterprise[loan["enterprise_id"]].append(loan)
            hits = []
            for row in rows:
                current = {f: row[alias[f]] for f in fields}
                for rule in rules:
                    previous = None
                    if rule.kind == "increase" and row[f"p{alias[rule.field]}"] is not None:
                        previous = {rule.field: row[f"p{alias[rule.field]}"]}
                    evidence = rule_fires(rule, current, previous)
                    evaluated += 1
                    if evidence:
                        hits.extend((rule, loan, evidence, row["pk"]) for loan in by_enterprise[row["enterprise_id"]])
            created += _warnings_create(hits, today)
        WarningRule.objects.filter(pk__in=[rule.pk for rule in rules]).update(evaluated_through=upto)
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
                hits.append((rule, {"id": row["id"], "branch_id": row["branch_id"]},
                             {"collateral_value": f"{row['value']:.2f}", "ltv_limit": str(rule.threshold)}, None))
    return {"evaluated": len(rows), "created": _warnings_create(hits, today)}


def warnings_evaluate(*, today: dt.date) -> dict:
    upto = DataSnapshot.objects.aggregate(m=Max("pk"))["m"] or 0
    counts = defaultdict(int)
    groups: dict[tuple[str, int], list[WarningRule]] = defaultdict(list)
    for rule in WarningRule.objects.filter(is_active=True).order_by("code"):
        if rule.kind == "ltv_above":
            result = warnings_evaluate_ltv(rule=rule, today=today)
            counts["evaluated"] += result["evaluated"]
            counts["created"] += result["created"]
        else:
            groups[(rule.source, rule.evaluated_through)].append(rule)
    for (source, _watermark), rules in sorted(groups.items()):
        result = warnings_evaluate_source(source=source, rules=rules, today=today, upto=upto)
        counts["evaluated"] += result["evaluated"]
        counts["created"] += result["created"]
    return dict(counts)


# ---------------------------------------------------------------- 4. RM tasks
def tasks_open(*, today: dt.date) -> dict:
    """An RM task for every open warning without one (due date from the severity's SLA); breached tasks
    are marked and the RM's supervisor is told."""

    policy = policy_in_force(today)
    now = timezone.now()
    # plain values, not model instances: a Loan with deferred fields would load its FSM state row by row
    pending = list(EarlyWarning.objects.filter(status=EarlyWarning.Status.OPEN, task__isnull=True)
                   .values_list("id", "severity", "loan_id", "loan__relationship_manager_id"))
    dues = {s: task_due(severity=s, policy=policy, now=now) for s in ("red", "orange", "yellow")}
    tasks = [WarningTask(warning_id=pk, loan_id=loan_id, assigned_to_id=rm_id, target_days=dues[severity][0],
                         due_at=dues[severity][1], created_at=now) for pk, severity, loan_id, rm_id in pending]
    with transaction.atomic():
        WarningTask.objects.bulk_create(tasks, batch_size=1000, ignore_conflicts=True)
        per_rm = defaultdict(int)
        for task in tasks:
            if task.assigned_to_id:
                per_rm[task.assigned_to_id] += 1
        _notify_many(per_rm, kind="warning_tasks", title=_("您有 %(n)s 个新的贷后预警任务 / %(n)s new post-loan warning tasks"),
                     url=reverse("postloan:tasks"))
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
                     title=_("%(n)s 个贷后预警任务已超时 / %(n)s post-loan warning tasks are overdue"), url=reverse("postloan:warnings"))
    return {"tasks_opened": len(tasks), "tasks_breached": len(breached)}


def _notify_many(per_user: dict[int, int], *, kind: str, title: str, url: str) -> None:
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
    `max_chunks` stops the refresh step early (to test resuming). The seconds each step took (this attempt)
    are kept with the counts."""
    today = today or business_date()
    run = _claim(today, force)
    if run is None:
        return MonitoringRun.objects.filter(run_date=today).first()
    counts = dict(run.counts)
    seconds = dict(counts.get("seconds", {}))
    try:
        if run.step == "delinquency":
            started = time.perf_counter()
            counts["delinquency"] = delinquency_refresh(today=today)
            counts["schedule_added"] = refresh_schedule_sync(today=today)
            seconds["delinquency"] = round(time.perf_counter() - started, 2)
            counts["seconds"] = seconds
            _save(run, step="refresh", cursor=0, counts=counts)
        if run.step == "refresh":
            started = time.perf_counter()
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
                seconds["refresh"] = round(seconds.get("refresh", 0) + time.perf_counter() - started, 2)
                started = time.perf_counter()
                counts["seconds"] = seconds
                _save(run, cursor=cursor, counts=counts)
                chunks += 1
            _save(run, step="warnings", cursor=0, counts=counts)
        if run.step == "warnings":
            started = time.perf_counter()
            counts["warnings"] = warnings_evaluate(today=today)
            seconds["warnings"] = round(time.perf_counter() - started, 2)
            counts["seconds"] = seconds
            _save(run, step="tasks", counts=counts)
        if run.step == "tasks":
            started = time.perf_counter()
            counts["tasks"] = tasks_open(today=today)
            seconds["tasks"] = round(time.perf_counter() - started, 2)
            counts["seconds"] = seconds
            _save(run, step="done", status="done", counts=counts, finished_at=timezone.now())
    except Exception as exc:
        log.exception("monitoring run %s failed", today)
        _save(run, status="failed", error=str(exc)[:2000])
        raise
    return run
