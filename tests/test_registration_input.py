"""Sign-up is checked once, by loanservice.api.RegisterSerializer: the page (/register/) and the API
(`POST /api/v1/auth/register/`) refuse the same input with the same message under the same field."""

from __future__ import annotations

import html as htmllib

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.factories import ApplicantFactory

pytestmark = pytest.mark.django_db

GOOD = {"username": "sign_up_owner", "password": "Xy7-long-pass", "phone": "13912345678", "email": "owner@example.com"}


@pytest.mark.parametrize("field, value", [
    ("username", "ab"), ("username", "taken_owner"), ("username", ""), ("phone", "123"), ("phone", "23912345678"),
    ("email", "not-an-email"), ("password", "short"), ("password", "password123"), ("password", ""),
])
def test_the_page_and_the_api_refuse_alike(client, field, value):
    ApplicantFactory(username="taken_owner")
    body = {**GOOD, field: value}
    r = APIClient().post("/api/v1/auth/register/", body, format="json")
    assert r.status_code == 400, r.content
    errors = r.json()["errors"]
    assert set(errors) == {field}, errors
    page = client.post("/register/", body)
    assert page.status_code == 200
    html = htmllib.unescape(page.content.decode())
    for message in errors[field]:
        assert message in html, message
    assert not get_user_model().objects.filter(username=GOOD["username"]).exists()


def test_a_good_sign_up_on_the_page_lands_in_the_portal(client):
    r = client.post("/register/", GOOD)
    assert r.status_code == 302 and r["Location"] == "/portal/"
    user = get_user_model().objects.get(username=GOOD["username"])
    assert user.profile.phone == GOOD["phone"] and user.email == GOOD["email"]
