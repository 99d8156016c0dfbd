"""Under the Content-Security-Policy in a real browser: the staff dashboards (their charts drawn by static scripts),
the language switcher and the django-unfold admin run with no violation reported in the console."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _watch(page) -> list[str]:
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: seen.append(f"page error: {e}"))
    return seen


def test_staff_dashboards_and_language_switch_run_under_the_policy(live_server, page, products, org):
    violations = _watch(page)
    login(page, live_server.url, "demo_risk")
    assert "/staff/risk/" in page.url
    page.wait_for_load_state("load")
    assert page.evaluate("() => !!window.Chart && Object.keys(Chart.instances).length") >= 3  # the charts drew
    for path in ("/staff/analytics/", "/staff/finance/asset-quality/"):
        response = page.goto(live_server.url + path)
        assert response.status in (200, 403), (path, response.status)
        page.wait_for_load_state("load")
    with page.expect_navigation():
        page.locator("#language-form select").select_option("en")  # app.js submits it (no inline handler)
    assert page.evaluate("() => document.documentElement.lang") == "en"
    assert violations == []


def test_the_admin_runs_under_the_policy(live_server, page, products, org):
    violations = _watch(page)
    login(page, live_server.url, "demo_admin", next_url="/admin/")
    assert "/admin/" in page.url
    page.wait_for_load_state("load")
    assert page.evaluate("() => !!window.Alpine")
    for path in ("/admin/loanservice/auditevent/", "/admin/loanservice/branch/", "/admin/loanservice/branch/add/"):
        response = page.goto(live_server.url + path)
        assert response.status == 200, (path, response.status)
        page.wait_for_load_state("load")
    assert violations == []
