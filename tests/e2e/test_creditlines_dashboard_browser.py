"""Risk reads the credit lines on the risk dashboard and in the analytics' credit-lines tab (#18), in Chinese and
English, on a desktop and a phone: the cards, the drawdown chart drawn, the frozen line linked to its page, no page
wider than the screen."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import artifacts_dir, login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _outbound(settings, tmp_path):
    settings.CORE_BANKING_OUTBOUND_DIR = tmp_path / "outbound"
    settings.CORE_BANKING_BACKEND = "sandbox"


def test_risk_sees_utilisation_drawdowns_and_frozen_lines(live_server, page, products, org):
    from creditlines.services import line_change
    from tests.test_creditlines import draw, make_line

    line = make_line(seed=1, limit="500000.00")
    draw(line, "120000.00", key="e2e-1")
    line, _ = line_change(line=line, kind="freeze", reason="贷后检查发现经营异常 / Trouble found at the post-loan check", by=org["demo_risk"])
    login(page, live_server.url, "demo_risk")
    for language, reason in (("zh-hans", "贷后检查发现经营异常"), ("en", "Trouble found at the post-loan check")):
        page.context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
        for width, height in ((1366, 900), (390, 844)):
            page.set_viewport_size({"width": width, "height": height})
            page.goto(f"{live_server.url}/staff/risk/")
            cards = page.locator("#line-kpis").inner_text()
            assert "24.0%" in cards and "¥120,000.00" in cards and "¥500,000.00" in cards, cards
            assert page.evaluate("() => !!Chart.getChart(document.getElementById('chart-line-drawdowns'))")
            frozen = page.locator("#risk-lines-frozen")
            assert reason in frozen.inner_text()
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            page.locator("#risk-lines").screenshot(path=str(artifacts_dir() / f"risk_lines_{language}_{width}.png"))
            page.goto(f"{live_server.url}/staff/analytics/credit_lines/")
            assert page.evaluate("() => !!Chart.getChart(document.getElementById('chart-lines_by_product'))")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            page.screenshot(path=str(artifacts_dir() / f"analytics_lines_{language}_{width}.png"), full_page=True)
            page.locator('[data-table="lines_frozen"] a').first.click()
            page.wait_for_url(f"**/staff/credit-lines/{line.pk}/")
