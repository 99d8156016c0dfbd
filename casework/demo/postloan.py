"""Demo data for post-loan (called by casework.demo.seed_demo through `seed_demo_data(users)`; idempotent; the
real services only, each step run at its own date with the clock moved as the demo history does).

Two loans of demo_applicant, made on the fast track months ago:
* 明远电子 — ten months of repayments on the due dates, satisfaction answers after disbursement and after the
  third repayment, and, two months before maturity, an offer of renewal without principal repayment (无还本续贷);
* 恒达五金 — two repayments, then arrears (about 60 days past due: M2, 关注 by the DPD floor), a part payment
  imported from core banking by demo_ops (plus a file refused for a bad line), a manual downgrade to 次级 by
  demo_risk and demo_rm's request to upgrade it back (waiting for a second person), and new data pushed by risk
  (taxed revenue and headcount down, a new enforcement case) that the monitoring turns into early warnings with
  RM tasks for demo_rm, one of them already followed up by phone.
The disbursement survey of the demo applicant's newest loan is answered too.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from applications.models import Enterprise, LoanApplication
from casework import lifecycle
from casework.demo.cases import _draft, _enterprise, _submit, sign_as_borrower
from casework.demo.clock import at as _at
from contracts.schedules import add_months
from ledger.services import core_file_fetch
from loanservice.business_date import business_date, simulated_dates_allowed
from postloan.cob import cob_partition_run, cob_progress, cob_start
from postloan.imports import repayment_import_apply, repayment_import_preview
from postloan.models import CobRun, Loan, SurveyResponse, WarningTask
from postloan.monitoring import delinquency_refresh, tasks_open, warnings_evaluate
from postloan.services import (
    classification_downgrade,
    classification_upgrade_request,
    renewal_offers_make,
    repayment_record,
    survey_answer,
    warning_task_complete,
)
from underwriting.models import DataSnapshot
from underwriting.services import snapshot_push

RENEWAL_ENTERPRISE = "上海明远电子科技有限公司"
ARREARS_ENTERPRISE = "上海恒达五金制品有限公司"


def _moment(day: dt.date, hour: int = 10):
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def _fast_track_loan(owner, *, seed: int, name: str, amount: str, on: dt.date):
    """A fast-track loan applied for, approved, signed and released on `on` (None if the sandbox did not approve)."""

    with _at(_moment(on)):
        enterprise = _enterprise(owner, seed, "prime", name, grades="AB", revenue="12000000", employees=60)
        application = _submit(_draft(owner, enterprise, "xinmiaodai", amount, 12, "equal_installment", purpose="经营周转"), owner)
        if application.status != LoanApplication.Status.APPROVED:
            return None
        lifecycle.offer_accept(application_id=application.pk, user=owner)
        contract = application.contracts.get()
        sign_as_borrower(contract, owner)
        lifecycle.fast_track_complete(contract.pk)
    application.refresh_from_db()
    return application.loans.first()


def _pay_on_due_dates(loan, *, until: dt.date, ops, count: int | None = None) -> None:
    for inst in loan.installments.filter(due_date__lt=until).order_by("n")[:count]:
        with _at(_moment(inst.due_date, 11)):
            inst.refresh_from_db()
            repayment_record(loan=loan, amount=inst.due_remaining, paid_on=inst.due_date, reference=f"DEMO-{loan.pk}-{inst.n}",
                             by=ops, channel="api")


def _answer(loan, owner, *, trigger: str, score: int, comment: str, when) -> None:
    if SurveyResponse.objects.filter(loan=loan, trigger=trigger, answered_at__isnull=True).exists():
        with _at(when):
            survey_answer(loan=loan, by=owner, score=score, comment=comment, trigger=trigger)


def _push_changed(loan, source: str, changes, by, today: dt.date) -> None:
    """Risk pushes the source's latest figures with `changes` applied (a dict, or a function of the payload)."""

    latest = (DataSnapshot.objects.filter(enterprise=loan.enterprise, source=source, status=DataSnapshot.OK)
              .order_by("-as_of", "-id").first())
    payload = dict(latest.payload)
    payload.update(changes(payload) if callable(changes) else changes)
    snapshot_push(enterprise=loan.enterprise, source=source, as_of=today, payload=payload, by=by)


def _money(value) -> str:
    return f"{Decimal(value):.2f}"


@transaction.atomic
def seed_demo_data(users: dict) -> None:
    owner, ops, risk, rm = users["demo_applicant"], users["demo_ops"], users["demo_risk"], users["demo_rm"]
    if Enterprise.objects.filter(owner=owner, name__in=[RENEWAL_ENTERPRISE, ARREARS_ENTERPRISE]).exists():
        return
    today = timezone.localdate()

    # 1. repaid on time for ten months; renewal offered two months before maturity
    renewal = _fast_track_loan(owner, seed=21, name=RENEWAL_ENTERPRISE, amount="500000", on=add_months(today, -10))
    if renewal is not None:
        _answer(renewal, owner, trigger="disbursement", score=9, comment="线上申请方便，放款很快",
                when=_moment(renewal.disbursed_on + dt.timedelta(days=1), 15))
        _pay_on_due_dates(renewal, until=today, ops=ops)
        third = renewal.installments.order_by("n")[2]
        _answer(renewal, owner, trigger="repayments", score=10, comment="还款提醒及时，客户经理服务周到",
                when=_moment(third.due_date + dt.timedelta(days=2), 15))
        renewal_offers_make(today=today)

    # 2. two repayments, then arrears; a part payment from core banking
    arrears = _fast_track_loan(owner, seed=22, name=ARREARS_ENTERPRISE, amount="400000", on=add_months(today, -4) - dt.timedelta(days=5))
    if arrears is None:
        return
    # This borrower pays by transfer: no auto-debit authorisation, so closing the day in the demo leaves the arrears
    # for the journey (alert, how to pay, the ops import) instead of the sandbox's settlement account paying them.
    Loan.objects.filter(pk=arrears.pk).update(auto_debit=False)
    _answer(arrears, owner, trigger="disbursement", score=6, comment="审批快，但合同条款看不太懂",
            when=_moment(arrears.disbursed_on + dt.timedelta(days=2), 16))
    _pay_on_due_dates(arrears, until=today, ops=ops, count=2)
    paid_on = today - dt.timedelta(days=3)
    good = f"loan_id,reference,amount,paid_on\n{arrears.pk},CB-DEMO-{arrears.pk}-1,8000.00,{paid_on}\n".encode()
    repayment_import_apply(batch=repayment_import_preview(file_name=f"核心系统还款_{paid_on:%Y%m%d}.csv", content=good, by=ops), by=ops)
    bad = good + f"{arrears.pk},CB-DEMO-{arrears.pk}-2,12.345,{paid_on}\n999999,CB-DEMO-X,100.00,{paid_on}\n".encode()
    repayment_import_preview(file_name=f"核心系统还款_{paid_on:%Y%m%d}_重发.csv", content=bad, by=ops)

    # 3. DPD and the floor; risk downgrades, the RM asks to upgrade (a second person decides)
    delinquency_refresh(today=today)
    arrears = Loan.objects.get(pk=arrears.pk)
    if arrears.dpd > 0:
        classification_downgrade(loan=arrears, to_category="substandard", reason="连续两期未足额还款，经营现金流紧张", by=risk)
        classification_upgrade_request(loan=arrears, to_category="special_mention",
                                       reason="已与客户约定还款计划，本月起按期偿还欠款", by=rm)

    # 4. new data pushed by risk; the monitoring opens warnings and tasks for the RM, who follows one up
    _push_changed(arrears, "tax", lambda p: {"revenue_12m": _money(Decimal(p["revenue_prev_12m"]) * Decimal("0.58"))}, risk, today)
    _push_changed(arrears, "social_security", lambda p: {"headcount": max(1, int(p["headcount_12m_ago"] * 0.6))}, risk, today)
    _push_changed(arrears, "judicial", lambda p: {"enforcement_cases": int(p["enforcement_cases"]) + 1}, risk, today)
    warnings_evaluate(today=today)
    tasks_open(today=today)
    headcount = WarningTask.objects.filter(loan=arrears, warning__rule__code="headcount_drop", status="open").first()
    if headcount is not None and headcount.assigned_to_id:
        warning_task_complete(task=headcount, by=headcount.assigned_to, visit_mode="phone", action="keep",
                              visit_notes="电话核实：社保人数下降系季节性用工减少，订单正常")

    # 5. the newest demo loan's disbursement survey
    newest = Loan.objects.filter(borrower=owner).exclude(pk__in=[arrears.pk, getattr(renewal, "pk", 0)]).order_by("-id").first()
    if newest is not None:
        _answer(newest, owner, trigger="disbursement", score=10, comment="信秒贷真的秒批，体验很好", when=timezone.now())


def close_of_business_once(users: dict) -> dict | None:
    """One close of business over the seeded book, so that the finance pages (the day's accruals and provisions, the
    voucher batch for core banking, the book's reconciliation and the core's file reconciled) have a closed day to
    show: the business date (today: everything the seed did is dated today or before) is closed through the real run
    (its partitions run here, in order; a worker that gets them too finds them done), which moves the business date
    to tomorrow, and the sandbox core's file of that day is fetched. Only where the installation simulates dates
    (the `make run` demo: closing a day that has not ended is refused otherwise), and once: skipped when a run
    exists."""
    if not simulated_dates_allowed() or CobRun.objects.exists():
        return None
    started = time.monotonic()
    on = business_date()
    run = cob_start(until=on, by=users["demo_ops"])
    for partition in run.partitions.order_by("pk").values_list("pk", flat=True):
        cob_partition_run(partition_id=partition)
    run.refresh_from_db()
    if getattr(settings, "CORE_BANKING_BACKEND", "sandbox") == "sandbox":
        core_file_fetch(business_date=on, by=users["demo_ops"])
    return {**cob_progress(run), "seed_seconds": round(time.monotonic() - started, 2)}
