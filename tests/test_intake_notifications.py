"""Notifications: in-app, e-mail (console by default) and SMS (pluggable backend) for the applicant on submission,
pre-screen result, information requested, decision, contract ready and disbursement; nothing sent for a step
that rolls back; a broken channel never undoes the business step."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction

from applications.models import LoanApplication
from applications.services import (
    negative_list_add,
)
from casework import lifecycle
from loanservice.models import Notification
from loanservice.notifications import notify
from tests.factories import ApplicantFactory, ApplicationFactory, sign_as_borrower

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sms")]


class BrokenEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError("smtp down")


def _owner(name):
    owner = ApplicantFactory(username=name)
    owner.profile.phone = "13911112222"
    owner.profile.save()
    return owner


def _draft(owner, product, *, seed, grades="", amount="300000"):
    return ApplicationFactory(applicant=owner, product=product, seed=seed, grades=grades, tier="prime", amount=amount,
                              term_months=product.min_term_months, repayment_method=product.repayment_methods[0],
                              purpose="流动资金")


def _delivered(owner, kind, sms, *, fragment=""):
    notes = Notification.objects.filter(user=owner, kind=kind)
    assert notes.exists(), f"no in-app {kind}"
    title = notes.latest("created_at").title
    assert fragment in title
    assert any(m.to == [owner.email] and m.subject == title for m in mail.outbox), f"no e-mail for {kind}"
    assert ("13911112222", title) in sms, f"no SMS for {kind}"


def test_every_milestone_of_the_fast_track_reaches_the_applicant_three_ways(products, sms, django_capture_on_commit_callbacks):
    owner = _owner("notify_fast")
    application = _draft(owner, products["xinmiaodai"], seed=1, grades="AB")
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.application_submit(application_id=application.pk, user=owner)
    application.refresh_from_db()
    _delivered(owner, "submitted", sms, fragment="预审通过")
    assert application.status == LoanApplication.Status.APPROVED, (
        f"the sandbox now routes this firm to {application.status}, not the fast track: pick another seed")
    _delivered(owner, "decision", sms, fragment="已获批准")
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.offer_accept(application_id=application.pk, user=owner)
    _delivered(owner, "contract_ready", sms, fragment="请签署")
    contract = application.contracts.get()
    with django_capture_on_commit_callbacks(execute=True):
        sign_as_borrower(contract, owner)
    application.refresh_from_db()
    assert application.status == LoanApplication.Status.DISBURSED
    _delivered(owner, "disbursed", sms, fragment="300,000.00")


def test_prescreen_decline_is_sent_with_its_reasons(products, org, sms, django_capture_on_commit_callbacks):
    owner = _owner("notify_decline")
    application = _draft(owner, products["xinmiaodai"], seed=91)
    negative_list_add(by=org["demo_risk"], uscc=application.enterprise.uscc, reason="内部原因")
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.application_submit(application_id=application.pk, user=owner)
    _delivered(owner, "prescreen_declined", sms, fragment="未通过预审")
    note = Notification.objects.get(user=owner, kind="prescreen_declined")
    assert "负面清单" in note.body and "内部原因" not in note.body


def test_information_requested_reaches_the_applicant(products, org, sms, django_capture_on_commit_callbacks):
    owner = _owner("notify_info")
    application = _draft(owner, products["secured-operating"], seed=92, amount="2000000")
    lifecycle.application_submit(application_id=application.pk, user=owner)  # scoring left to the worker
    application.refresh_from_db()
    assert application.status == LoanApplication.Status.UNDER_REVIEW
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.case_request_info(application_id=application.pk, user=application.relationship_manager,
                                    message="请补充近6个月银行流水")
    _delivered(owner, "info_requested", sms, fragment="补充资料")
    assert Notification.objects.get(user=owner, kind="info_requested").body == "请补充近6个月银行流水"


def test_a_rolled_back_step_sends_nothing(org, sms, django_capture_on_commit_callbacks):
    owner = _owner("notify_rollback")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            notify(user=owner, kind="submitted", title="t")
            raise RuntimeError("the step failed")
    assert not Notification.objects.filter(user=owner).exists()
    assert mail.outbox == [] and sms == []


def test_a_broken_mail_server_does_not_undo_the_step_and_sms_still_goes(org, sms, settings,
                                                                       django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "tests.test_intake_notifications.BrokenEmailBackend"
    owner = _owner("notify_broken")
    with django_capture_on_commit_callbacks(execute=True):
        note = notify(user=owner, kind="decision", title="已获批准")
    assert Notification.objects.filter(pk=note.pk).exists()
    assert sms == [("13911112222", "已获批准")]


def test_staff_notices_stay_off_sms_unless_asked(org, sms, django_capture_on_commit_callbacks):
    rm = org["demo_rm"]
    with django_capture_on_commit_callbacks(execute=True):
        notify(user=rm, kind="new_case", title="新案件")
        notify(user=rm, kind="sla_breach", title="超时", sms=True)
    assert sms == [(rm.profile.phone, "超时")]
    assert [m.subject for m in mail.outbox] == ["新案件", "超时"]
