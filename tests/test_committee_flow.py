"""The committee flow after the last vote (#16): everyone the committee's rule names (the chair and the secretary,
any member who voted, or any member: data) is told "resolution to record", the case leads their approval
queue, any of them may record it, and a reminder goes out when nobody has within the committee's hours."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.approvals_support import fast_passwords  # noqa: F401
from tests.conftest import client_for
from tests.factories import PendingApprovalFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


def _committee(org, *, recorders: str = "chair", secretary=None, reminder_hours: int = 4):
    from approvals.models import CreditCommittee
    from approvals.services import committee_configure

    committee = committee_configure(by=org["demo_admin"], chair=org["demo_committee_1"], quorum=3)
    CreditCommittee.objects.filter(pk=committee.pk).update(resolution_recorders=recorders, secretary=secretary,
                                                           resolution_reminder_hours=reminder_hours)
    return committee


def _before_committee(org, seed: int):
    application = PendingApprovalFactory(seed=seed, related_party=True)
    r = client_for(org["demo_branch_approver"]).post(f"/api/v1/applications/{application.pk}/decide/", {"decision": "approve"},
                                                     format="json")
    assert r.status_code == 200, r.content
    return application


def _vote(org, application, *members: str):
    for member in members:
        r = client_for(org[member]).post(f"/api/v1/applications/{application.pk}/decide/", {"decision": "approve"}, format="json")
        assert r.status_code == 200, r.content


def _notes(user, kind):
    from loanservice.models import Notification

    return list(Notification.objects.filter(user=user, kind=kind))


def test_the_last_vote_tells_the_chair_and_the_secretary_and_the_case_leads_their_queue(client, products, org):
    from tests.approvals_support import staff_user

    secretary = staff_user("committee_secretary", "credit_committee", "HO")
    _committee(org, secretary=secretary)
    older = _before_committee(org, seed=51)  # before the committee first, still voting
    application = _before_committee(org, seed=52)
    _vote(org, application, "demo_committee_2", "demo_committee_3")
    assert not _notes(org["demo_committee_1"], "committee_resolution_due")  # 2 of 3: nothing to record yet
    _vote(org, application, "demo_committee_1")

    for user in (org["demo_committee_1"], secretary):
        (note,) = _notes(user, "committee_resolution_due")
        assert f"#{application.pk}" in note.title and "待记录决议" in note.title and note.url == f"/staff/approvals/{application.pk}/"
    assert not _notes(org["demo_committee_2"], "committee_resolution_due")  # the rule names the chair and the secretary

    client.force_login(secretary)
    html = client.get("/staff/approvals/").content.decode()
    first, second = html.index(f'id="queue-row-{application.pk}"'), html.index(f'id="queue-row-{older.pk}"')
    assert first < second  # the voted case leads, although the other reached the committee first
    assert "待记录决议" in html[first:second]
    assert 'id="resolution-form"' in client.get(f"/staff/approvals/{application.pk}/").content.decode()

    # The secretary records it; a member the rule does not name cannot.
    r = client_for(org["demo_committee_2"]).post(f"/api/v1/applications/{application.pk}/resolution/", {"text": "一致同意"},
                                                 format="json")
    assert r.status_code == 403
    r = client.post(f"/staff/cases/{application.pk}/action/resolve/", {"text": "一致同意，按期放款"})
    assert r.status_code == 302
    application.refresh_from_db()
    assert application.status == "approved"
    assert application.approval_cases.get().resolution.chair == secretary  # the one who recorded it


def test_by_rule_any_member_who_voted_records_and_is_told(client, products, org):
    from tests.approvals_support import staff_user

    absent = staff_user("committee_4", "credit_committee", "HO")
    _committee(org, recorders="voters")
    application = _before_committee(org, seed=53)
    _vote(org, application, "demo_committee_1", "demo_committee_2", "demo_committee_3")
    for member in ("demo_committee_1", "demo_committee_2", "demo_committee_3"):
        assert len(_notes(org[member], "committee_resolution_due")) == 1
    assert not _notes(absent, "committee_resolution_due")
    r = client_for(absent).post(f"/api/v1/applications/{application.pk}/resolution/", {"text": "同意"}, format="json")
    assert r.status_code == 403  # did not vote
    r = client_for(org["demo_committee_3"]).post(f"/api/v1/applications/{application.pk}/resolution/", {"text": "同意"},
                                                 format="json")
    assert r.status_code == 200 and r.json()["status"] == "approved"


def test_nobody_records_it_the_sweeper_reminds_once_per_period(products, org):
    from approvals.services import committee_resolution_remind, committee_resolutions_due
    from casework.sweeper import sweep
    from loanservice.models import AuditEvent

    _committee(org, reminder_hours=4)
    application = _before_committee(org, seed=54)
    _vote(org, application, "demo_committee_1", "demo_committee_2", "demo_committee_3")
    assert [c.application_id for c in committee_resolutions_due()] == [application.pk]
    now = timezone.now()
    assert committee_resolution_remind(now=now + dt.timedelta(hours=1)) == 0  # too soon, and just told
    later = now + dt.timedelta(hours=5)
    assert committee_resolution_remind(now=later) == 1
    (reminder,) = _notes(org["demo_committee_1"], "committee_resolution_reminder")
    assert f"#{application.pk}" in reminder.title
    assert AuditEvent.objects.filter(action="committee.resolution_reminder").count() == 1
    # Not again within the period (the sweeper runs every minute) ...
    from loanservice.models import Notification

    Notification.objects.filter(kind="committee_resolution_reminder").update(created_at=later)
    assert committee_resolution_remind(now=later + dt.timedelta(hours=1)) == 0
    # ... but again after it; the sweeper's run includes the step.
    assert sweep(now=later + dt.timedelta(hours=5))["committee_reminded"] == 1
    # Recorded: nothing is due, nobody is reminded.
    r = client_for(org["demo_committee_1"]).post(f"/api/v1/applications/{application.pk}/resolution/", {"text": "同意"},
                                                 format="json")
    assert r.status_code == 200
    assert committee_resolutions_due() == [] and committee_resolution_remind(now=later + dt.timedelta(days=3)) == 0


def test_a_case_still_voting_is_not_due_and_nobody_is_reminded(products, org):
    from approvals.services import committee_resolution_remind, committee_resolutions_due

    _committee(org, reminder_hours=1)
    application = _before_committee(org, seed=55)
    _vote(org, application, "demo_committee_2")
    assert committee_resolutions_due() == []
    assert committee_resolution_remind(now=timezone.now() + dt.timedelta(hours=3)) == 0
