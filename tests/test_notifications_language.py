"""Notices are written in the default language, whoever acted and whatever their UI language: the stored title (and
its e-mail and SMS) is the "中文 / English" text, never the English-only translation an English-speaking member of
staff sees on their own pages. The notifications page shows each reader their half."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.utils import translation

from loanservice.models import Notification
from tests.approvals_support import fast_passwords  # noqa: F401
from tests.conftest import client_for
from tests.factories import ApplicantFactory, ApprovalsCaseFactory, PendingApprovalFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords", "sms")]


def in_english(user):
    """An API client for a user who chose the English UI (the switcher's cookie; Accept-Language alone is ignored)."""
    client = client_for(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def english_of(msgid: str) -> str:
    with translation.override("en"):
        return translation.gettext(msgid)


def test_an_approver_deciding_in_english_sends_the_applicant_the_bilingual_notice(products, org):
    application = PendingApprovalFactory(applicant__username="lang_decide")
    owner = application.applicant
    r = in_english(org["demo_branch_approver"]).post(f"/api/v1/applications/{application.pk}/decide/",
                                                     {"decision": "approve", "comment": "ok"}, format="json",
                                                     HTTP_ACCEPT_LANGUAGE="en")
    assert r.status_code == 200, r.content
    assert r["Content-Language"] == "en"  # the approver really works in English
    msgid = "您的贷款申请 #%(id)s 已获批准 / Application #%(id)s is approved"
    assert english_of(msgid) == "Application #%(id)s is approved"  # what the old code stored
    note = Notification.objects.get(user=owner, kind="decision")
    assert note.title == f"您的贷款申请 #{application.pk} 已获批准 / Application #{application.pk} is approved"


def test_an_rm_asking_in_english_sends_the_bilingual_notice_by_every_channel(products, org, sms,
                                                                             django_capture_on_commit_callbacks):
    owner = ApplicantFactory(username="lang_info")
    owner.profile.phone = "13911113333"
    owner.profile.save()
    application = ApprovalsCaseFactory(applicant=owner, seed=61, stage="submitted")
    assert application.status == "under_review", application.status
    with django_capture_on_commit_callbacks(execute=True):
        r = in_english(application.relationship_manager).post(f"/api/v1/applications/{application.pk}/request-info/",
                                                              {"message": "请补充近6个月银行流水"}, format="json")
    assert r.status_code == 201, r.content
    title = f"申请 #{application.pk} 需要补充资料 / Application #{application.pk} needs more information"
    assert Notification.objects.get(user=owner, kind="info_requested").title == title
    assert [m.subject for m in mail.outbox if m.to == [owner.email]] == [title]
    assert ("13911113333", title) in sms


def test_a_task_run_in_an_english_request_writes_in_the_default_language(products, org, django_capture_on_commit_callbacks):
    """Eager Celery (and delay_on_commit) runs in the request's thread: the applicant submits in English, the
    worker's step routes the case and tells the RM, in the default language as a real worker would."""
    from casework import lifecycle

    owner = ApplicantFactory(username="lang_task")
    application = ApprovalsCaseFactory(applicant=owner, seed=7)
    with translation.override("en"), django_capture_on_commit_callbacks(execute=True):
        lifecycle.application_submit(application_id=application.pk, user=owner)
        assert translation.get_language() == "en"
    application.refresh_from_db()
    assert application.status == "under_review", application.status
    note = Notification.objects.get(user=application.relationship_manager, kind="new_case")
    assert note.title == f"新案件 #{application.pk} 待尽职调查 / New case #{application.pk} for due diligence"


def test_a_post_loan_request_rejected_in_english_is_told_in_both_languages(products, org, django_user_model, client):
    from django.contrib.auth.models import Group

    from postloan.services import classification_downgrade, classification_upgrade_request
    from tests.factories import FastTrackLoanFactory
    from tests.test_postloan_repayments import DISBURSED

    with time_machine.travel(dt.datetime.combine(DISBURSED, dt.time(2)), tick=False):
        loan = FastTrackLoanFactory(owner=ApplicantFactory(username="lang_postloan"), seed=43)
    risk = org["demo_risk"]
    risk2 = django_user_model.objects.create_user("lang_risk_two", password="x-long-pass-1")
    risk2.groups.add(Group.objects.get(name="risk"))
    classification_downgrade(loan=loan, to_category="substandard", reason="经营恶化", by=risk)
    request = classification_upgrade_request(loan=loan, to_category="normal", reason="已恢复", by=risk)
    client.force_login(risk2)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    r = client.post(f"/postloan/approvals/{request.pk}/decide/", {"decision": "reject", "comment": "not yet"})
    assert r.status_code == 302
    request.refresh_from_db()
    assert request.status == "rejected"
    note = Notification.objects.get(user=risk, kind="postloan_decision")
    assert note.title == f"贷后申请 #{request.pk} 已否决 / Post-loan request #{request.pk} rejected"
    assert english_of("贷后申请 #%(id)s 已否决 / Post-loan request #%(id)s rejected") == "Post-loan request #%(id)s rejected"
    assert english_of("贷后申请 #%(id)s 已批准 / Post-loan request #%(id)s approved") == "Post-loan request #%(id)s approved"


def test_the_notifications_page_shows_the_readers_half(org, client):
    from loanservice.notifications import notify

    rm = org["demo_rm"]
    notify(user=rm, kind="returned", title="申请 #7 被退回 / Application #7 was returned", email=False)
    client.force_login(rm)
    html = client.get("/notifications/").content.decode()
    assert "申请 #7 被退回" in html and "Application #7 was returned" not in html
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get("/notifications/").content.decode()
    assert "Application #7 was returned" in html and "被退回" not in html


def test_an_applicant_submitting_in_english_gets_the_bilingual_notice(products, org):
    owner = ApplicantFactory(username="lang_submit")
    application = ApprovalsCaseFactory(applicant=owner, seed=67)
    r = in_english(owner).post(f"/api/v1/applications/{application.pk}/submit/", HTTP_ACCEPT_LANGUAGE="en")
    assert r.status_code == 200, r.content
    assert r["Content-Language"] == "en"
    note = Notification.objects.get(user=owner, kind="submitted")
    assert note.title == (f"您的贷款申请 #{application.pk} 已提交，预审通过 / "
                          f"Application #{application.pk} submitted and pre-screen passed")
    rm_note = Notification.objects.filter(user=application.enterprise.relationship_manager, kind="new_case").first()
    if rm_note is not None:  # referred to the RM (not the fast track): the RM's notice is bilingual too
        assert rm_note.title.startswith(f"新案件 #{application.pk} ")
