"""DPD at month ends and across holidays, buckets and five-category floors (data), manual downgrade and
upgrade through approval, warning rules firing and not firing, RM tasks, and the nightly job: progress,
resume after a kill, and a second run the same day changing nothing."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from loanservice.errors import ApplicationError
from tests.conftest import client_for
from tests.test_postloan_repayments import DISBURSED

pytestmark = pytest.mark.django_db


@pytest.fixture
def loan(products, org):
    from tests.factories import ApplicantFactory, FastTrackLoanFactory

    with time_machine.travel(dt.datetime.combine(DISBURSED, dt.time(2)), tick=False):
        return FastTrackLoanFactory(owner=ApplicantFactory(username="pl_mon"), seed=41)


def refresh(loan, today):
    from postloan.monitoring import delinquency_refresh

    delinquency_refresh(today=today)
    loan.refresh_from_db()
    return loan


# ---------------------------------------------------------------- pure rules
def test_buckets_and_floors_are_data():
    from postloan.models import ClassificationFloor, DelinquencyBucket
    from postloan.policy import bucket_for, classification_floor

    assert [bucket_for(d) for d in (0, 1, 30, 31, 60, 61, 90, 91, 400)] == ["M0", "M1", "M1", "M2", "M2", "M3", "M3", "M4+", "M4+"]
    assert [classification_floor(d) for d in (0, 1, 90, 91, 270, 271, 360, 361)] == [
        "normal", "special_mention", "special_mention", "substandard", "substandard", "doubtful", "doubtful", "loss"]
    DelinquencyBucket.objects.filter(code="M1").update(max_dpd=15)
    DelinquencyBucket.objects.filter(code="M2").update(min_dpd=16)
    ClassificationFloor.objects.filter(category="substandard").update(dpd_over=60)
    assert bucket_for(20) == "M2" and classification_floor(61) == "substandard"


def test_reference_policy_is_seeded_again_after_a_flush():
    """A test flush (or a database emptied another way) gets the buckets, floors and warning rules back with the
    rest of the reference data; what admins edited is kept."""
    from casework.reference_data import seed_reference_data
    from postloan.models import ClassificationFloor, DelinquencyBucket, WarningRule

    WarningRule.objects.filter(code="headcount_drop").update(threshold="0.25")
    WarningRule.objects.exclude(code="headcount_drop").delete()
    DelinquencyBucket.objects.all().delete()
    ClassificationFloor.objects.all().delete()
    seed_reference_data()
    assert WarningRule.objects.count() == 10 and DelinquencyBucket.objects.count() == 5 and ClassificationFloor.objects.count() == 4
    assert str(WarningRule.objects.get(code="headcount_drop").threshold) == "0.2500"


def test_warning_rules_fire_and_do_not_fire():
    from postloan.models import WarningRule
    from postloan.monitoring import rule_fires

    rule = {r.code: r for r in WarningRule.objects.all()}
    cases = [
        ("tax_revenue_drop", {"revenue_12m": "690000.00", "revenue_prev_12m": "1000000.00"}, None, True),
        ("tax_revenue_drop", {"revenue_12m": "710000.00", "revenue_prev_12m": "1000000.00"}, None, False),
        ("settlement_inflow_drop", {"settlement_inflow_12m": "100.00", "settlement_inflow_prev_12m": "200.00"}, None, True),
        ("settlement_inflow_drop", {"settlement_inflow_12m": "0.00", "settlement_inflow_prev_12m": "0.00"}, None, False),
        ("headcount_drop", {"headcount": 6, "headcount_12m_ago": 10}, None, True),
        ("headcount_drop", {"headcount": 8, "headcount_12m_ago": 10}, None, False),
        ("legal_rep_changed", {"legal_rep_changed_12m": True}, None, True),
        ("legal_rep_changed", {"legal_rep_changed_12m": False}, None, False),
        ("dishonest_debtor", {"dishonest_debtor": "true"}, None, True),
        ("dishonest_debtor", {"dishonest_debtor": "false"}, None, False),
        ("legal_rep_dishonest", {"legal_rep_dishonest_debtor": True}, None, True),
        ("enforcement_new", {"enforcement_cases": "2"}, {"enforcement_cases": "1"}, True),
        ("enforcement_new", {"enforcement_cases": "1"}, {"enforcement_cases": "1"}, False),
        ("enforcement_new", {"enforcement_cases": "1"}, None, False),
        ("bureau_overdue", {"current_overdue_amount": "5000.00"}, None, True),
        ("bureau_overdue", {"current_overdue_amount": "0.00"}, None, False),
    ]
    for code, current, previous, fires in cases:
        assert bool(rule_fires(rule[code], current, previous)) is fires, (code, current, previous)


# ---------------------------------------------------------------- DPD, buckets, floors on a real loan
def test_dpd_at_month_ends_and_the_floors(loan):
    first, second = loan.installments.get(n=1), loan.installments.get(n=2)
    # disbursed on a 31st: due at month ends (moved to the next business day by the contract's due-date rule)
    assert all(d.day >= 28 or d.day <= 4 for d in (first.due_date, second.due_date))
    weekend_safe = first.due_date + dt.timedelta(days=5)
    assert refresh(loan, first.due_date).dpd == 0
    assert refresh(loan, weekend_safe).dpd == 5 and loan.bucket == "M1" and loan.classification == "special_mention"
    assert refresh(loan, second.due_date + dt.timedelta(days=5)).dpd == (second.due_date - first.due_date).days + 5
    assert loan.overdue_since == first.due_date
    assert refresh(loan, first.due_date + dt.timedelta(days=91)).classification == "substandard" and loan.bucket == "M4+"
    assert refresh(loan, first.due_date + dt.timedelta(days=271)).classification == "doubtful"
    assert refresh(loan, first.due_date + dt.timedelta(days=361)).classification == "loss"
    kinds = list(loan.classification_history.values_list("to_category", "kind"))
    assert kinds == [("special_mention", "floor"), ("substandard", "floor"), ("doubtful", "floor"), ("loss", "floor")]


def test_dpd_across_a_holiday_with_rollover(loan):
    from loanservice.models import CalendarDay
    from loanservice.sla import business_calendar_changed
    from postloan.models import PostloanPolicy

    first = loan.installments.get(n=1)
    # the due date and the two days after it are declared holidays (as admin does when the schedule is published)
    for k in range(3):  # (a day the official calendar already lists becomes a holiday too)
        CalendarDay.objects.update_or_create(date=first.due_date + dt.timedelta(days=k), defaults={"kind": "holiday", "name": "测试假期"})
    business_calendar_changed()
    from loanservice.sla import business_calendar

    grace_end = business_calendar().next_business_day(first.due_date, include_self=True)
    assert grace_end > first.due_date + dt.timedelta(days=2)
    assert refresh(loan, grace_end).dpd == 0  # may still pay on the first business day after the holiday
    day_after = grace_end + dt.timedelta(days=1)
    assert refresh(loan, day_after).dpd == (day_after - first.due_date).days  # counted from the contractual due date
    PostloanPolicy.objects.update(holiday_rollover=False)
    assert refresh(loan, first.due_date + dt.timedelta(days=1)).dpd == 1


def test_manual_downgrade_and_upgrade_through_a_second_person(loan, org, django_user_model):
    from django.contrib.auth.models import Group

    from postloan.models import ApprovalRequest, PostloanPolicy
    from postloan.services import (
        approval_request_decide,
        classification_downgrade,
        classification_upgrade_request,
    )

    risk = org["demo_risk"]
    risk2 = django_user_model.objects.create_user("risk_two", password="x-long-pass-1")
    risk2.groups.add(Group.objects.get(name="risk"))
    with pytest.raises(ApplicationError) as exc:
        classification_downgrade(loan=loan, to_category="substandard", reason="", by=risk)
    assert "reason" in exc.value.errors
    with pytest.raises(ApplicationError):
        classification_downgrade(loan=loan, to_category="substandard", reason="经营恶化", by=org["demo_rm"])
    classification_downgrade(loan=loan, to_category="substandard", reason="经营恶化", by=risk)
    loan.refresh_from_db()
    assert loan.classification == "substandard"
    PostloanPolicy.objects.update(upgrade_cure_months=0)  # no cure period here: this is about the four eyes
    request = classification_upgrade_request(loan=loan, to_category="normal", reason="已恢复", by=risk)
    loan.refresh_from_db()
    assert loan.classification == "substandard"  # nothing changes before the approval
    with pytest.raises(ApplicationError):
        approval_request_decide(request=request, approve=True, by=risk)  # four eyes
    approval_request_decide(request=request, approve=True, by=risk2, comment="同意")
    loan.refresh_from_db()
    assert loan.classification == "normal"
    last = loan.classification_history.last()
    assert (last.from_category, last.to_category, last.kind, last.by, last.approved_by) == ("substandard", "normal", "upgrade", risk, risk2)
    # an upgrade above the DPD floor is refused
    refresh(loan, loan.installments.get(n=1).due_date + dt.timedelta(days=100))
    assert loan.classification == "substandard"
    with pytest.raises(ApplicationError) as exc:
        classification_upgrade_request(loan=loan, to_category="normal", reason="x", by=risk)
    assert "to_category" in exc.value.errors
    assert ApprovalRequest.objects.filter(loan=loan, status="pending").count() == 0


def test_restructuring_and_write_off_go_through_approval(loan, org, django_user_model):
    from django.contrib.auth.models import Group

    from postloan.services import approval_request_decide, restructure_request, write_off_request

    rm, risk = org["demo_rm"], org["demo_risk"]
    approver = org["demo_head_approver"]
    first = loan.installments.get(n=1)
    on = first.due_date + dt.timedelta(days=20)
    with time_machine.travel(dt.datetime.combine(on, dt.time(12)), tick=False):
        refresh(loan, on)
        request = restructure_request(loan=loan, kind="extension", extra_months=6, reason="季节性困难", by=rm)
        approval_request_decide(request=request, approve=True, by=approver)
    loan.refresh_from_db()
    assert loan.restructured_on == on and loan.dpd == 0 and loan.classification == "special_mention"
    live = list(loan.installments.filter(superseded=False, settled_on__isnull=True).order_by("n"))
    assert len(live) == 11 + 6 and sum(i.principal for i in live) == loan.outstanding_principal
    assert live[0].interest > 0 and loan.maturity_date == live[-1].due_date
    with pytest.raises(ApplicationError):
        write_off_request(loan=loan, reason="无法收回", by=risk)  # not classified doubtful yet
    risk2 = django_user_model.objects.create_user("risk_three", password="x-long-pass-1")
    risk2.groups.add(Group.objects.get(name="risk"))
    from postloan.services import classification_downgrade

    classification_downgrade(loan=loan, to_category="doubtful", reason="破产重整", by=risk)
    request = write_off_request(loan=loan, reason="无法收回", by=risk)
    approval_request_decide(request=request, approve=True, by=risk2)
    loan.refresh_from_db()
    assert loan.status == "written_off" and loan.classification == "loss" and loan.written_off_amount > 0


# ---------------------------------------------------------------- warnings, tasks and the nightly job
def push(loan, source, payload, by, on):
    from underwriting.services import snapshot_push

    with time_machine.travel(dt.datetime.combine(on, dt.time(9)), tick=False):
        return snapshot_push(enterprise=loan.enterprise, source=source, as_of=on, payload=payload, by=by)


def test_nightly_job_warnings_tasks_resume_and_idempotence(loan, org):
    from postloan.models import EarlyWarning, MonitoringRun, SourceRefresh, WarningTask
    from postloan.monitoring import monitoring_run
    from postloan.services import collateral_record, warning_task_complete
    from underwriting.models import DataSnapshot

    first = loan.installments.get(n=1)
    day1 = first.due_date + dt.timedelta(days=3)
    assert SourceRefresh.objects.filter(enterprise=loan.enterprise).count() == 6  # the monitored, consented sources
    with time_machine.travel(dt.datetime.combine(day1, dt.time(1, 30)), tick=False):
        run = monitoring_run(today=day1)
    loan.refresh_from_db()
    assert run.status == "done" and loan.dpd == 3 and run.counts["delinquency"]["dpd_changed"] == 1
    assert run.counts["refresh"]["pulled"] == 6  # the snapshots left their freshness window: pulled from the sandbox
    assert DataSnapshot.objects.filter(enterprise=loan.enterprise, as_of=day1, application=loan.application).count() == 6

    # new data arrives: revenue down 40 %, a new enforcement case; collateral appraised low
    tax = DataSnapshot.objects.filter(enterprise=loan.enterprise, source="tax").order_by("-id").first().payload
    judicial = DataSnapshot.objects.filter(enterprise=loan.enterprise, source="judicial").order_by("-id").first().payload
    day2 = day1 + dt.timedelta(days=1)
    push(loan, "tax", {**tax, "revenue_12m": "600000.00", "revenue_prev_12m": "1000000.00"}, org["demo_risk"], day2)
    push(loan, "judicial", {**judicial, "enforcement_cases": judicial["enforcement_cases"] + 1}, org["demo_risk"], day2)
    with time_machine.travel(dt.datetime.combine(day2, dt.time(9)), tick=False):
        collateral_record(loan=loan, description="厂房", value=loan.outstanding_principal, valued_on=day2, by=org["demo_risk"])
        run = monitoring_run(today=day2, max_chunks=0)
        assert run.step == "refresh"  # stopped (as if killed) during the refresh
        assert monitoring_run(today=day2).status == "running"  # its heartbeat is fresh: no second worker joins in
    with time_machine.travel(dt.datetime.combine(day2, dt.time(9, 30)), tick=False):
        run = monitoring_run(today=day2)  # the heartbeat went stale: resumed where it stopped
    assert run.status == "done" and run.attempts == 2
    warnings = {w.rule.code: w for w in EarlyWarning.objects.filter(loan=loan).select_related("rule")}
    assert {"tax_revenue_drop", "enforcement_new", "collateral_ltv"} <= set(warnings)
    assert warnings["enforcement_new"].severity == "red" and warnings["tax_revenue_drop"].severity == "orange"
    tasks = WarningTask.objects.filter(loan=loan)
    assert tasks.count() == len(warnings) and all(t.assigned_to == loan.relationship_manager for t in tasks)
    assert all(t.due_at > t.created_at for t in tasks)

    # a second run the same day changes nothing
    counts = (EarlyWarning.objects.count(), WarningTask.objects.count(), DataSnapshot.objects.count())
    with time_machine.travel(dt.datetime.combine(day2, dt.time(3)), tick=False):
        again = monitoring_run(today=day2, force=True)
    assert (EarlyWarning.objects.count(), WarningTask.objects.count(), DataSnapshot.objects.count()) == counts
    assert again.counts["delinquency"] == {"overdue_changed": 0, "dpd_changed": 0, "bucket_changed": 0, "classified": 0,
                                            "borrower_floor": 0}
    assert again.counts["warnings"]["created"] == 0 and again.counts["tasks"]["tasks_opened"] == 0
    assert MonitoringRun.objects.get(run_date=day2).status == "done"

    # risk sees them by severity and branch; the RM records the visit and action
    r = client_for(org["demo_risk"]).get("/api/v1/warnings/?severity=red")
    assert r.status_code == 200 and [w["rule"] for w in r.json()["results"]] == ["enforcement_new"]
    assert r.json()["results"][0]["task"]["assigned_to"] == loan.relationship_manager.username
    assert client_for(loan.borrower).get("/api/v1/warnings/").status_code == 403
    task = warnings["enforcement_new"].task
    with pytest.raises(ApplicationError) as exc:
        warning_task_complete(task=task, by=loan.relationship_manager, visit_mode="onsite", visit_notes="", action="recall")
    assert "visit_notes" in exc.value.errors
    warning_task_complete(task=task, by=loan.relationship_manager, visit_mode="onsite", visit_notes="执行案件为货款纠纷，已和解",
                          action="keep")
    assert EarlyWarning.objects.get(pk=warnings["enforcement_new"].pk).status == "closed"
    page = client_for(org["demo_risk"])
    page.force_login(org["demo_risk"])
    assert page.get("/postloan/warnings/").status_code == 200
    assert page.get(f"/postloan/loans/{loan.pk}/").status_code == 200


def test_refresh_killed_after_the_pull_does_not_pull_again_and_audits_per_batch(loan, monkeypatch):
    """Killed between storing a chunk's snapshots and moving the work list on: the resumed run finds the data
    already there (fresh), reschedules those sources and pulls nothing twice."""
    from loanservice.models import AuditEvent
    from postloan import monitoring
    from postloan.models import MonitoringRun, SourceRefresh
    from postloan.monitoring import monitoring_run
    from underwriting.models import DataSnapshot

    day = loan.installments.get(n=1).due_date + dt.timedelta(days=40)
    real = monitoring.snapshots_refresh_batch  # the nightly job's own reference to underwriting's batch pull

    def pull_then_die(**kwargs):
        real(**kwargs)
        raise RuntimeError("worker killed")

    monkeypatch.setattr(monitoring, "snapshots_refresh_batch", pull_then_die)
    with time_machine.travel(dt.datetime.combine(day, dt.time(1, 30)), tick=False):
        with pytest.raises(RuntimeError):
            monitoring_run(today=day)
        assert MonitoringRun.objects.get(run_date=day).status == "failed"
        assert DataSnapshot.objects.filter(enterprise=loan.enterprise, as_of=day).count() == 6
        monkeypatch.setattr(monitoring, "snapshots_refresh_batch", real)
        run = monitoring_run(today=day)
    assert run.status == "done" and run.attempts == 2
    assert run.counts["refresh"] == {"fresh": 6}  # nothing pulled twice
    assert DataSnapshot.objects.filter(enterprise=loan.enterprise, as_of=day).count() == 6
    assert set(SourceRefresh.objects.filter(enterprise=loan.enterprise).values_list("due_on", flat=True)) == {day + dt.timedelta(days=30)}
    batches = AuditEvent.objects.filter(action="data.pull.batch")
    assert batches.count() == 1 and batches.get().data["pulls"] == 6  # one event for the batch, not one per pull
    floors = AuditEvent.objects.filter(action="loan.classification.floor")
    assert [(e.to_state, e.data["loans"]) for e in floors] == [("special_mention", [loan.pk])]
    assert loan.classification_history.get().reason.startswith("DPD ")
