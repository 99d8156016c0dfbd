"""Sign-up. The page asks for a mobile number, the code sent to it by SMS and a password (the number is the
username); the API (`POST /api/v1/auth/register/`) keeps its fields and refuses the same bad number alike."""

from __future__ import annotations

import html as htmllib
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.test import APIClient

from loanservice.errors import ApplicationError
from loanservice.notifications import LocmemSmsBackend
from loanservice.sms_codes import sms_code_check, sms_code_send
from tests.factories import ApplicantFactory

pytestmark = pytest.mark.django_db

GOOD = {"username": "sign_up_owner", "password": "Xy7-long-pass", "phone": "13912345678", "email": "owner@example.com"}
PHONE = "13912345678"


@pytest.fixture(autouse=True)
def sms(settings):
    cache.clear()
    settings.SMS_BACKEND = "loanservice.notifications.LocmemSmsBackend"
    LocmemSmsBackend.outbox.clear()
    yield LocmemSmsBackend.outbox
    cache.clear()


@pytest.mark.parametrize("field, value", [
    ("username", "ab"), ("username", "taken_owner"), ("username", ""), ("phone", "123"), ("phone", "23912345678"),
    ("phone", "12912345678"), ("email", "not-an-email"), ("password", "short"), ("password", "password123"),
    ("password", ""),
])
def test_the_api_names_the_field_it_refuses(field, value):
    ApplicantFactory(username="taken_owner")
    r = APIClient().post("/api/v1/auth/register/", {**GOOD, field: value}, format="json")
    assert r.status_code == 400, r.content
    assert set(r.json()["errors"]) == {field}, r.json()
    assert not get_user_model().objects.filter(username=GOOD["username"]).exists()


def _page(client, **data):
    r = client.post("/register/", data)
    return r, htmllib.unescape(r.content.decode())


def _under(html: str, field: str) -> str:
    """The error block under a field of the sign-up page."""
    start = html.index(f'id="err-{field}"')
    return html[start:html.index("</div>", start)]


@pytest.mark.parametrize("phone", ["123", "23912345678", "12912345678", "1391234567x", ""])
def test_the_page_refuses_a_number_that_is_not_a_mainland_mobile_under_the_number(client, phone, sms):
    r, html = _page(client, phone=phone, send="1")
    assert r.status_code == 200 and sms == []
    assert "手机号" in _under(html, "phone") or "必填" in _under(html, "phone")
    assert "该变量" not in html and " / " not in _under(html, "phone")


def test_a_code_is_sent_then_the_account_is_made_with_the_number_as_username(client, sms, settings):
    settings.DEBUG = True
    r, html = _page(client, phone="139 1234 5678", send="1")
    assert r.status_code == 200 and len(sms) == 1 and sms[0][0] == PHONE
    code = re.search(r"\d{6}", sms[0][1]).group(0)
    assert code in html  # DEBUG: the demo shows the sandbox's code
    assert 'value="13912345678"' in html
    r = client.post("/register/", {"phone": PHONE, "code": code, "password": "Xy7-long-pass"})
    assert r.status_code == 302 and r["Location"] == "/portal/"
    user = get_user_model().objects.get(username=PHONE)
    assert user.profile.phone == PHONE and user.check_password("Xy7-long-pass")
    r, html = _page(client, phone=PHONE, send="1")
    assert "已注册" in _under(html, "phone")


def test_wrong_code_and_weak_password_sit_under_their_own_fields(client, sms):
    _page(client, phone=PHONE, send="1")
    r, html = _page(client, phone=PHONE, code="000000", password="123")
    assert r.status_code == 200 and not get_user_model().objects.filter(username=PHONE).exists()
    assert "验证码不正确" in _under(html, "code")
    assert _under(html, "password").count("<li>") >= 1 and "验证码" not in _under(html, "password")
    assert "errorlist" not in _under(html, "phone")


def test_codes_are_hashed_expire_after_five_tries_and_are_rate_limited(sms):
    code = sms_code_send(phone=PHONE)
    state = cache.get(f"sms-code:signup:{PHONE}")
    assert code not in str(state) and len(state["digest"]) == 64  # only a keyed hash is kept
    for _ in range(5):
        assert sms_code_check(phone=PHONE, code="999999" if code != "999999" else "000000") is False
    assert sms_code_check(phone=PHONE, code=code) is False  # the fifth wrong try ended it
    with pytest.raises(ApplicationError):
        sms_code_send(phone=PHONE)  # again within a minute
    other = "13800138000"
    good = sms_code_send(phone=other)
    assert sms_code_check(phone=other, code=good) is True
    assert sms_code_check(phone=other, code=good) is False  # once only
