"""SLA clocks on the official calendar (loaded from chinese-calendar into CalendarDay): across the 2025
National Day holiday and its make-up workdays, paused while the applicant is asked, targets per product,
and the breach watch that notifies the owner, escalates to the supervisor and records it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.approvals_support import fast_passwords  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]
CST = ZoneInfo("Asia/Shanghai")
H = dt.timedelta(hours=1)


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=CST)


def test_the_calendar_is_loaded_with_the_2025_national_day_and_its_make_up_workdays():
    from loanservice.sla import business_calendar

    cal = business_calendar()
    assert not cal.is_business_day(dt.date(2025, 10, 6))  # a Monday inside the holiday
    assert cal.is_business_day(dt.date(2025, 9, 28))  # a Sunday worked in exchange (调休)
    assert cal.is_business_day(dt.date(2025, 10, 11))  # a Saturday worked in exchange


def test_clock_across_the_national_day_holiday():
    from loanservice.sla import sla_clock_elapsed, sla_clock_remaining, sla_clock_start

    # Tuesday 30 September, 10:00, two business days: 14 h that day, then 1-8 October are off,
    # 24 h on Thursday 9 October, and the last 10 h on Friday 10 October.
    clock = sla_clock_start(case_id=910001, stage="due_diligence", now=at(2025, 9, 30, 10))
    assert clock.target_days == Decimal("2")
    assert timezone.localtime(clock.due_at) == at(2025, 10, 10, 10)
    assert sla_clock_elapsed(clock, now=at(2025, 10, 8, 23)) == 14 * H
    assert sla_clock_remaining(clock, now=at(2025, 10, 8, 23)) == 34 * H
    assert sla_clock_remaining(clock, now=at(2025, 10, 10, 12)) == -2 * H


def test_clock_through_a_make_up_workday():
    from loanservice.sla import sla_clock_start

    # Friday 26 September, 12:00, one business day: 12 h on Friday, Saturday off, and the make-up
    # Sunday 28 September counts: due at 12:00 that Sunday, not on Monday.
    clock = sla_clock_start(case_id=910002, stage="branch_approval", now=at(2025, 9, 26, 12))
    assert timezone.localtime(clock.due_at) == at(2025, 9, 28, 12)


def test_pause_while_waiting_for_the_applicant_moves_the_due_time_by_the_business_time_waited():
    from loanservice.sla import sla_clock_pause, sla_clock_remaining, sla_clock_resume, sla_clock_start
    from loanservice.sla_monitor import sla_breaches_process

    clock = sla_clock_start(case_id=910003, stage="due_diligence", now=at(2025, 9, 30, 10))
    sla_clock_pause(case_id=910003, now=at(2025, 9, 30, 16))
    clock.refresh_from_db()
    # Paused past its original due time: not a breach, the bank is waiting for the applicant.
    assert sla_breaches_process(now=at(2025, 10, 10, 20)) == {"breached": 0}
    sla_clock_resume(case_id=910003, now=at(2025, 10, 9, 12))
    clock.refresh_from_db()
    # Waited 8 h on 30 September and 12 h on 9 October: 20 business hours later, which runs from
    # Friday 10 October 10:00 into the make-up Saturday 11 October.
    assert timezone.localtime(clock.due_at) == at(2025, 10, 11, 6)
    assert sla_clock_remaining(clock, now=at(2025, 10, 9, 12)) == 42 * H
    assert sla_clock_remaining(clock, now=at(2025, 10, 11, 5)) == 1 * H


def test_targets_are_data_per_product():
    from loanservice.models import SlaTarget
    from loanservice.sla import sla_clock_start, sla_target_days

    SlaTarget.objects.create(stage="branch_approval", product_code="xinmiaodai", business_days=Decimal("0.5"))
    assert sla_target_days(stage="branch_approval", product_code="xinmiaodai") == Decimal("0.5")
    assert sla_target_days(stage="branch_approval", product_code="secured-operating") == Decimal("1")
    clock = sla_clock_start(case_id=910004, stage="branch_approval", product_code="xinmiaodai", now=at(2025, 9, 30, 20))
    assert timezone.localtime(clock.due_at) == at(2025, 10, 9, 8)  # 4 h on 30 September, 8 h after the holiday


def test_a_year_beyond_the_published_calendar_falls_back_to_weekends_and_never_raises():
    from loanservice.bizcal import warnings_for
    from loanservice.sla import business_calendar, sla_clock_start

    clock = sla_clock_start(case_id=910005, stage="disbursement", now=at(2031, 10, 3, 9))  # a Friday
    assert timezone.localtime(clock.due_at) == at(2031, 10, 6, 9)  # Monday: no holiday data for 2031
    assert warnings_for(dt.date(2031, 10, 3), business_calendar())


def test_breach_notifies_the_owner_escalates_to_the_supervisor_and_is_recorded_once(org):
    from loanservice.models import AuditEvent, Notification, SlaClock
    from loanservice.sla import sla_clock_start
    from loanservice.sla_monitor import sla_breaches_process

    rm, supervisor = org["demo_rm"], org["demo_branch_approver"]  # the RM's supervisor (Profile)
    now = timezone.now()
    sla_clock_start(case_id=910006, stage="due_diligence", owner=rm, now=now - dt.timedelta(days=20))
    assert sla_breaches_process(now=now) == {"breached": 1}
    clock = SlaClock.objects.get(case_id=910006)
    assert clock.breached_at == now and clock.escalated_to == supervisor
    assert Notification.objects.filter(user=rm, kind="sla_breach", title__contains="#910006").count() == 1
    assert Notification.objects.filter(user=supervisor, kind="sla_escalation", title__contains="#910006").count() == 1
    event = AuditEvent.objects.get(action="sla.breach", object_id=str(clock.pk))
    assert event.data["owners"] == [rm.pk] and event.data["escalated_to"] == [supervisor.pk]
    assert sla_breaches_process(now=now + dt.timedelta(minutes=5)) == {"breached": 0}
    assert Notification.objects.filter(kind="sla_breach", title__contains="#910006").count() == 1


def test_an_approval_stage_breach_goes_to_the_tier_pool_and_their_supervisors(org):
    from casework.demo.approvals import seed_demo_data
    from loanservice.models import Branch, Notification, SlaClock
    from loanservice.sla import sla_clock_start

    seed_demo_data(org)  # the demo escalation chain: branch approver -> head office approver
    now = timezone.now()
    sla_clock_start(case_id=910007, stage="branch_approval", branch=Branch.objects.get(code="SH01"),
                    now=now - dt.timedelta(days=10))
    out = StringIO()
    call_command("sla_check", stdout=out)
    assert "breached: 1" in out.getvalue()
    assert Notification.objects.filter(user=org["demo_branch_approver"], kind="sla_breach").exists()
    assert not Notification.objects.filter(user__username="bj01_approver", kind="sla_breach").exists()  # another branch
    assert Notification.objects.filter(user=org["demo_head_approver"], kind="sla_escalation").exists()
    assert SlaClock.objects.get(case_id=910007).escalated_to == org["demo_head_approver"]


def test_a_clock_stopped_late_records_the_breach():
    from loanservice.models import SlaClock
    from loanservice.sla import sla_clock_start, sla_clock_stop

    sla_clock_start(case_id=910008, stage="contracting", now=at(2025, 9, 30, 10))
    sla_clock_stop(case_id=910008, now=at(2025, 10, 13, 10))
    clock = SlaClock.objects.get(case_id=910008)
    assert clock.breached_at is not None and clock.stopped_at is not None
