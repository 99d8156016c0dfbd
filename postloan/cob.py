"""Close of business (日终, COB): close every open loan once for each date up to `until`, then move the business date.

The open loans are split into partitions of loan-id ranges when the run starts; each partition is a Celery task, so
any number of workers close them in parallel. A partition is resumable: each loan is closed in its own transaction
under its row lock, and a loan already closed through `until` is skipped, so a task that a dead worker leaves
half-done is simply run again. The last partition to finish moves the business date to `until` + 1.

A partition first auto-debits what is due on each date of the run (`postloan.autodebit`, with no row lock held
while core banking answers), then closes its loans chunk by chunk under their locks (overdue, accrual, penalty,
provisions).
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Count, F, Max, Min, Q, Sum
from django.db.models.functions import Least
from django.utils import timezone
from django.utils.translation import gettext as _

from ledger.selectors import posting_batch
from loanservice.audit import audit_record
from loanservice.business_date import business_date, business_date_set, simulated_dates_allowed
from loanservice.dispatch import dispatch_on_commit
from loanservice.errors import ApplicationError, Conflict

from .autodebit import autodebit_loans
from .models import CobPartition, CobReconciliation, CobRun, Loan
from .monitoring import delinquency_refresh
from .provisions import month_end_within, provisions_measure
from .reconciliation import cob_book_close
from .services import loans_close_through

# Loans closed in one transaction: a crash redoes at most this many (each is exactly-once by date), and they stay
# locked for the chunk (≈ 0.3 s of CPU for 250). The per-chunk passes (delinquency, provisions, the accrual statement)
# cost about the same for 100 loans as for 250: 250 instead of 100 saved ≈ 20 % of the CPU a loan (docs/benchmarks.md).
CHUNK = 250


def _partitions(loan_ids: list[int], size: int) -> list[tuple[int, int, int]]:
    return [(chunk[0], chunk[-1], len(chunk)) for chunk in (loan_ids[i:i + size] for i in range(0, len(loan_ids), size))]


def cob_start(*, until: dt.date, by) -> CobRun:
    """Start close of business through `until` (≥ the business date). A date after today is refused unless this
    installation simulates dates (the demo). One run at a time."""
    today, current = timezone.localdate(), business_date()
    if until < current:
        raise ApplicationError(_("日终日期不能早于营业日期 %(d)s / Close of business cannot run before the business date %(d)s.")
                               % {"d": current.isoformat()}, errors={"until": [current.isoformat()]})
    if until >= today and not simulated_dates_allowed():
        raise ApplicationError(_("只能对已结束的日期做日终 / Only a day that has ended can be closed."),
                               errors={"until": [_("须早于 %(d)s / Before %(d)s") % {"d": today.isoformat()}]})
    ids = list(Loan.objects.filter(status=Loan.Status.ACTIVE).filter(Q(accrued_through__isnull=True) | Q(accrued_through__lt=until))
               .order_by("pk").values_list("pk", flat=True))
    try:
        with transaction.atomic():
            run = CobRun.objects.create(from_date=current, until=until, total=len(ids),
                                        requested_by=by if getattr(by, "pk", None) else None)
            parts = CobPartition.objects.bulk_create([
                CobPartition(run=run, lo=lo, hi=hi, total=n)
                for lo, hi, n in _partitions(ids, getattr(settings, "COB_PARTITION_SIZE", 500))])
            audit_record(actor=by, action="cob.start", obj=run, data={"from": current.isoformat(), "until": until.isoformat(),
                                                                     "loans": len(ids), "partitions": len(parts)})
            if not parts:
                _finish(run)
            for part in CobPartition.objects.filter(run=run).values_list("pk", flat=True):
                dispatch_on_commit(cob_partition_task, part)
    except IntegrityError:
        raise Conflict(_("日终正在进行 / Close of business is already running."), state="running") from None
    run.refresh_from_db()
    return run


def cob_nightly(*, by=None) -> CobRun | None:
    """Beat's nightly entry: close every day that has ended and is not closed yet (through yesterday)."""
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    if business_date() > yesterday or CobRun.objects.filter(status=CobRun.Status.RUNNING).exists():
        return None
    return cob_start(until=yesterday, by=by)


def cob_partition_run(*, partition_id: int) -> dict:
    """Close the partition's loans one by one (each in its own transaction, under its lock); resumable."""
    part = CobPartition.objects.select_related("run").get(pk=partition_id)
    run = part.run
    if run.status != CobRun.Status.RUNNING or part.finished_at:
        return {"partition": part.pk, "skipped": True}
    ids = list(Loan.objects.filter(pk__gte=max(part.lo, part.last_loan + 1), pk__lte=part.hi)
               .order_by("pk").values_list("pk", flat=True))
    with posting_batch():
        day = run.from_date
        while day <= run.until:  # step 1, 自动扣款, each day once: core banking is asked before the loans are locked
            autodebit_loans(loan_ids=ids, on=day, chunk=CHUNK)
            day += dt.timedelta(days=1)
        for k in range(0, len(ids), CHUNK):
            chunk = ids[k:k + CHUNK]
            with transaction.atomic():  # a chunk of loans under their row locks (in id order: partitions never overlap)
                loans = list(Loan.objects.select_for_update(of=("self",)).filter(pk__in=chunk).order_by("pk"))
                loans_close_through(loans=loans, through=run.until, delinquency=False)  # skips those already through
                delinquency_refresh(today=run.until, loan_ids=chunk, counted=False)
                provisions_measure(loan_ids=chunk, on=run.until, month_end=month_end_within(run.from_date, run.until))
                # the range holds loans outside the run too (closed, written off): progress counts up to the partition's total
                CobPartition.objects.filter(pk=part.pk).update(done=Least(F("done") + len(chunk), F("total")), last_loan=chunk[-1])
    with transaction.atomic():
        CobPartition.objects.filter(pk=part.pk, finished_at__isnull=True).update(finished_at=timezone.now(), done=F("total"))
        locked = CobRun.objects.select_for_update().get(pk=run.pk)
        if locked.status == CobRun.Status.RUNNING and not locked.partitions.filter(finished_at__isnull=True).exists():
            _finish(locked)
    return {"partition": part.pk, "run": run.pk}


def _finish(run: CobRun) -> None:
    run.status = CobRun.Status.DONE
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "finished_at"])
    business_date_set(run.until + dt.timedelta(days=1))
    audit_record(actor=None, action="cob.done", obj=run, data={"until": run.until.isoformat(), "loans": run.total})
    cob_book_close(run)  # provisions of the portfolio, then sub-ledger ↔ GL reconciliation (an alarm on a difference)


def cob_progress(run: CobRun) -> dict:
    parts = run.partitions.aggregate(done=Sum("done"), partitions=Count("id"), open=Count("id", filter=Q(finished_at__isnull=True)),
                                     first=Min("lo"), last=Max("hi"))
    seconds = ((run.finished_at or timezone.now()) - run.started_at).total_seconds()
    return {"id": run.pk, "status": run.status, "from": run.from_date, "until": run.until, "done": parts["done"] or 0,
            "total": run.total, "partitions": parts["partitions"], "partitions_open": parts["open"],
            "seconds": round(seconds, 2), "reconciled": _reconciled(run)}


def _reconciled(run: CobRun) -> bool | None:
    """True when the sub-ledger agreed with the GL after the run, False on a difference, None before it is checked."""
    return CobReconciliation.objects.filter(run=run).values_list("balanced", flat=True).first()


def cob_last() -> CobRun | None:
    return CobRun.objects.order_by("-id").first()


# Celery tasks (listed in postloan.tasks, where the worker finds them; their names say so).
@shared_task(name="postloan.tasks.cob_partition", bind=True, acks_late=True, autoretry_for=(OperationalError,),
             retry_backoff=True, max_retries=5)
def cob_partition_task(self, partition_id: int) -> dict:
    """One partition of close of business; run it again after a crash and it resumes where it stopped."""
    return cob_partition_run(partition_id=partition_id)


@shared_task(name="postloan.tasks.cob_nightly")
def cob_nightly_task() -> dict:
    """Close of business each night for the days that have ended (beat, just after midnight bank time)."""
    run = cob_nightly()
    return {"run": run.pk, "until": str(run.until)} if run else {}
