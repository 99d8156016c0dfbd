"""The admin on django-unfold (#16): the project's site kept, evidence JSON readable, titles in the reader's language."""

import json

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model

from loanservice.admin_site import AdminSite
from loanservice.audit import audit_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    user = get_user_model().objects.create_superuser(username="unfold_admin", password="x")
    client.force_login(user)
    return client


def test_the_default_site_is_the_projects_on_unfold():
    from unfold.sites import UnfoldAdminSite

    assert isinstance(admin.site._wrapped if hasattr(admin.site, "_wrapped") else admin.site, AdminSite)
    assert issubclass(AdminSite, UnfoldAdminSite)


def test_evidence_json_is_pretty_printed_with_chinese_as_characters(superuser_client):
    event = audit_record(actor=None, action="admin.change", object_type="x", object_id="1",
                         data={"企业": "杭州某某科技有限公司", "n": [1, 2]})
    page = superuser_client.get(f"/admin/loanservice/auditevent/{event.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "杭州某某科技有限公司" in html and "\\u676d" not in html
    event.refresh_from_db()  # as stored: Postgres's jsonb orders the keys its own way
    pretty = json.dumps(event.data, ensure_ascii=False, indent=2).replace('"', "&quot;")
    assert pretty in html and "<pre" in html
    assert 'name="data"' not in html  # shown, not an input


def test_the_admin_title_in_chinese_by_default_and_english_by_cookie(superuser_client):
    zh = superuser_client.get("/admin/").content.decode()
    assert "贷款服务管理后台" in zh
    superuser_client.cookies["django_language"] = "en"
    en = superuser_client.get("/admin/").content.decode()
    assert "Loan Service Admin" in en and "贷款服务管理后台" not in en


def test_unfold_search_with_a_page_that_is_not_a_number_is_a_400(superuser_client):
    assert superuser_client.get("/admin/search/?s=loan&page=abc").status_code == 400
