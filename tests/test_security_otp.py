"""The staff's second factor (TOTP, django-otp) and the staff session's idle timeout (docs/security.md): who is
asked, enrolment with an inline QR code, verification at sign-in for pages, the admin, the session API and the
token API; the demo's hint only with DEBUG and DEMO_OTP_HINTS."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from loanservice import second_factor
from loanservice.middleware import LAST_SEEN_KEY
from loanservice.models import AuditEvent

PASSWORD = "demo-pass"


@pytest.fixture(autouse=True)
def _second_factor_on_login():
    """The real second factor here: a signed-in test client is not waved through (overrides conftest's)."""


@pytest.fixture
def demo(users):
    for user in users.values():
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    return users


def sign_in(username: str) -> Client:
    client = Client()
    r = client.post("/login/", {"username": username, "password": PASSWORD})
    assert r.status_code == 302, r.content[:500]
    return client


def test_an_approver_is_held_at_the_second_factor_until_a_right_code(demo):
    client = sign_in("demo_branch_approver")
    r = client.get("/staff/approvals/")
    assert r.status_code == 302 and r["Location"] == "/login/second-factor/?next=%2Fstaff%2Fapprovals%2F"
    page = client.get(r["Location"])
    assert page.status_code == 200 and 'name="code"' in page.content.decode()
    r = client.post("/login/second-factor/", {"code": "000000", "next": "/staff/approvals/"})
    assert r.status_code == 200 and "errorlist" in r.content.decode()
    assert AuditEvent.objects.filter(action="otp.fail", actor=demo["demo_branch_approver"]).exists()
    device = TOTPDevice.objects.get(user=demo["demo_branch_approver"], name=second_factor.DEMO_DEVICE)
    device.throttling_failure_count, device.throttling_failure_timestamp = 0, None  # the wrong code's back-off
    device.save()
    r = client.post("/login/second-factor/", {"code": second_factor.current_code(device), "next": "/staff/approvals/"})
    assert r.status_code == 302 and r["Location"] == "/staff/approvals/"
    assert client.get("/staff/approvals/").status_code == 200
    assert AuditEvent.objects.filter(action="otp.verify", actor=demo["demo_branch_approver"]).exists()


def test_a_code_is_good_once(demo):
    device = TOTPDevice.objects.get(user=demo["demo_ops"], name=second_factor.DEMO_DEVICE)
    code = second_factor.current_code(device)
    first, second = sign_in("demo_ops"), sign_in("demo_ops")
    assert first.post("/login/second-factor/", {"code": code}).status_code == 302
    assert second.post("/login/second-factor/", {"code": code}).status_code == 200  # replayed: refused


@pytest.mark.parametrize("username", ["demo_head_approver", "demo_committee_1", "demo_ops", "demo_risk", "demo_admin"])
def test_every_role_that_must_use_it_is_asked(demo, username):
    client = sign_in(username)
    r = client.get("/")
    assert r.status_code == 302 and r["Location"].startswith("/login/second-factor/")


def test_the_admin_is_behind_it_too(demo):
    client = sign_in("demo_admin")
    r = client.get("/admin/")
    assert r.status_code == 302 and r["Location"].startswith("/login/second-factor/")
    admin_login = Client()
    r = admin_login.post("/admin/login/", {"username": "demo_admin", "password": PASSWORD, "next": "/admin/"})
    assert r.status_code == 302
    assert admin_login.get("/admin/")["Location"].startswith("/login/second-factor/")


def test_a_staff_member_without_a_device_enrols_with_an_inline_qr_code(demo):
    TOTPDevice.objects.filter(user=demo["demo_risk"]).delete()
    client = sign_in("demo_risk")
    r = client.get("/staff/risk/")
    assert r.status_code == 302 and r["Location"].startswith("/account/second-factor/?next=")
    page = client.get(r["Location"]).content.decode()
    qr = page.split('id="otp-qr"')[1].split("</div>")[0]
    assert "<svg" in qr and "<img" not in qr and "http" not in qr.split("<svg")[0]  # drawn here, no image service
    device = TOTPDevice.objects.get(user=demo["demo_risk"], confirmed=False)
    assert client.post("/account/second-factor/", {"code": "000000"}).status_code == 200
    device.refresh_from_db()
    device.throttling_failure_count, device.throttling_failure_timestamp = 0, None
    device.save()
    r = client.post("/account/second-factor/", {"code": second_factor.current_code(device), "next": "/staff/risk/"})
    assert r.status_code == 302 and r["Location"] == "/staff/risk/"
    device.refresh_from_db()
    assert device.confirmed and client.get("/staff/risk/").status_code == 200
    assert AuditEvent.objects.filter(action="otp.enrol", actor=demo["demo_risk"]).exists()


def test_a_password_alone_cannot_add_a_device_to_an_enrolled_user(demo):
    client = sign_in("demo_ops")
    r = client.get("/account/second-factor/")
    assert r.status_code == 200 and "otp-qr" not in r.content.decode() and 'name="code"' in r.content.decode()
    assert not TOTPDevice.objects.filter(user=demo["demo_ops"], confirmed=False).exists()


def test_an_rm_is_not_asked_unless_enrolled_and_an_applicant_never(demo):
    TOTPDevice.objects.filter(user=demo["demo_rm"]).delete()
    rm = sign_in("demo_rm")
    assert rm.get("/staff/cases/").status_code == 200
    assert rm.get("/account/second-factor/").status_code == 200  # may enrol
    applicant = sign_in("demo_applicant")
    assert applicant.get("/portal/").status_code == 200
    assert applicant.get("/account/second-factor/").status_code == 404
    second_factor.demo_device_ensure(demo["demo_rm"])  # the RM enrolled: asked from the next sign-in on
    assert sign_in("demo_rm").get("/staff/cases/")["Location"].startswith("/login/second-factor/")


def test_the_roles_that_must_use_it_are_a_setting(demo, settings):
    settings.OTP_REQUIRED_ROLES = ["risk"]
    TOTPDevice.objects.filter(user=demo["demo_ops"]).delete()
    assert sign_in("demo_ops").get("/staff/operations/").status_code == 200
    assert sign_in("demo_risk").get("/staff/risk/").status_code == 302
    settings.OTP_REQUIRED = False
    assert sign_in("demo_risk").get("/staff/risk/").status_code == 200


def test_the_session_api_refuses_an_unverified_staff_session(demo):
    client = sign_in("demo_branch_approver")
    assert client.get("/api/v1/reason-codes/").status_code in (401, 403)
    device = TOTPDevice.objects.get(user=demo["demo_branch_approver"], name=second_factor.DEMO_DEVICE)
    client.post("/login/second-factor/", {"code": second_factor.current_code(device)})
    assert client.get("/api/v1/reason-codes/").status_code == 200


def test_the_token_api_asks_staff_for_a_code(demo):
    api = APIClient()
    r = api.post("/api/v1/auth/token/", {"username": "demo_ops", "password": PASSWORD}, format="json")
    assert r.status_code == 400 and "otp_token" in r.json()["errors"]
    r = api.post("/api/v1/auth/token/", {"username": "demo_ops", "password": PASSWORD, "otp_token": "000000"}, format="json")
    assert r.status_code == 400
    device = TOTPDevice.objects.get(user=demo["demo_ops"], name=second_factor.DEMO_DEVICE)
    device.throttling_failure_count, device.throttling_failure_timestamp = 0, None
    device.save()
    r = api.post("/api/v1/auth/token/", {"username": "demo_ops", "password": PASSWORD,
                                         "otp_token": second_factor.current_code(device)}, format="json")
    assert r.status_code == 200 and r.json()["token"]
    r = api.post("/api/v1/auth/token/", {"username": "demo_applicant", "password": PASSWORD}, format="json")
    assert r.status_code == 200


def test_the_demo_code_is_shown_only_in_a_debug_demo(demo, settings):
    client = sign_in("demo_ops")
    settings.DEBUG, settings.DEMO_OTP_HINTS = False, True
    assert 'id="demo-code"' not in client.get("/login/second-factor/").content.decode()
    settings.DEBUG, settings.DEMO_OTP_HINTS = True, False
    assert 'id="demo-code"' not in client.get("/login/second-factor/").content.decode()
    settings.DEBUG, settings.DEMO_OTP_HINTS = True, True
    page = client.get("/login/second-factor/").content.decode()
    device = TOTPDevice.objects.get(user=demo["demo_ops"], name=second_factor.DEMO_DEVICE)
    assert 'id="demo-code"' in page and second_factor.current_code(device) in page


def test_a_staff_session_ends_after_the_idle_time(demo, settings):
    settings.STAFF_SESSION_IDLE_SECONDS = 1800
    TOTPDevice.objects.filter(user=demo["demo_rm"]).delete()
    client = sign_in("demo_rm")
    assert client.get("/staff/cases/").status_code == 200
    session = client.session
    session[LAST_SEEN_KEY] = int(time.time()) - 1801
    session.save()
    r = client.get("/staff/cases/")
    assert r.status_code == 302 and r["Location"].startswith("/login/?next=")
    assert "_auth_user_id" not in client.session
    # Active within the idle time: still signed in.
    client = sign_in("demo_rm")
    session = client.session
    session[LAST_SEEN_KEY] = int(time.time()) - 1700
    session.save()
    assert client.get("/staff/cases/").status_code == 200


def test_an_applicant_session_has_no_idle_timeout(demo):
    client = sign_in("demo_applicant")
    session = client.session
    session[LAST_SEEN_KEY] = int(time.time()) - 99999
    session.save()
    assert client.get("/portal/").status_code == 200
