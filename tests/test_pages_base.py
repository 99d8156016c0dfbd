"""The frame of every page (templates/base.html): Bootstrap from the project's own files, a navbar that folds on
phones, the language switch, the user menu, the confirmation modal."""

import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders


def test_bootstrap_is_served_by_the_project_not_a_cdn(client, db):
    html = client.get("/").content.decode()
    assert "/static/vendor/bootstrap/bootstrap.min.css" in html and "/static/vendor/bootstrap/bootstrap.bundle.min.js" in html
    assert not re.search(r'(src|href)="https?://', html)  # nothing from another host
    for path in ("vendor/bootstrap/bootstrap.min.css", "vendor/bootstrap/bootstrap.bundle.min.js", "js/app.js"):
        assert finders.find(path), path
    assert "sourceMappingURL" not in open(finders.find("vendor/bootstrap/bootstrap.min.css")).read()


def test_signed_out_header_offers_login_register_and_the_language_switch(client, db):
    html = client.get("/").content.decode()
    assert 'class="navbar-toggler"' in html and 'id="main-nav"' in html and "collapse navbar-collapse" in html
    assert 'href="/register/"' in html and 'href="/login/"' in html
    assert 'name="language"' in html and 'action="/i18n/setlang/"' in html
    assert 'id="confirm-modal"' in html


@pytest.mark.parametrize("username, present, absent", [
    ("demo_applicant", ["/portal/", "/prequalify/"], ["/staff/cases/", "/admin/"]),
    ("demo_rm", ["/staff/cases/"], ["/prequalify/", "/admin/"]),
])
def test_the_nav_keeps_each_link_behind_its_permission(client, org, username, present, absent):
    client.force_login(org[username])
    html = client.get("/products/").content.decode()
    nav = html[html.index('id="main-nav"'):html.index("</nav>")]
    for href in present:
        assert f'href="{href}"' in nav, href
    for href in absent:
        assert f'href="{href}"' not in nav, href
    assert 'id="user-menu"' in html and username in html and 'action="/logout/"' in html


def test_the_css_sets_the_brand_and_a_cjk_font_stack():
    css = open(settings.BASE_DIR / "static" / "css" / "app.css", encoding="utf-8").read()
    assert "--bs-primary:#b3261e" in css and "Noto Sans CJK SC" in css
