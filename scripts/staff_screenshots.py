"""The staff gallery: each staff persona's main pages, desktop (1366 px) and phone (390 px), as small PNGs in
docs/screenshots/ (indexed by docs/screenshots/README.md).

Against a running demo (`make run`, or `manage.py runserver` on a seeded database):

    python scripts/staff_screenshots.py http://127.0.0.1:8000

Chromium is Debian's (/usr/bin/chromium, or $E2E_CHROMIUM); the images are the first screen (not the whole page),
reduced to a 128-colour palette to stay small.
"""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
PASSWORD = os.environ.get("DEMO_PASSWORD", "demo-pass")
WIDTHS = {"desktop": (1366, 900), "phone": (390, 844)}

# (file prefix, user, path or a callable finding it on the home page)
SHOTS = [
    ("rm-queue", "demo_rm", "/staff/cases/"),
    ("rm-case", "demo_rm", "first:/staff/cases/ a[href^='/staff/cases/'][href$='/']:not([href='/staff/cases/'])"),
    ("rm-marketing", "demo_rm", "/staff/marketing/"),
    ("approver-queue", "demo_branch_approver", "/staff/approvals/"),
    ("approver-review", "demo_branch_approver", "first:/staff/approvals/ #approval-queue a[href^='/staff/approvals/']"),
    ("committee-queue", "demo_committee_1", "/staff/approvals/"),
    ("ops-queue", "demo_ops", "/staff/operations/"),
    ("risk-dashboard", "demo_risk", "/staff/risk/"),
    ("risk-warnings", "demo_risk", "/postloan/warnings/"),
    ("risk-whatif", "demo_risk", "/staff/risk/whatif/"),
    ("analytics-funnel", "demo_risk", "/staff/analytics/"),
    ("analytics-portfolio", "demo_risk", "/staff/analytics/portfolio/"),
]


def small_png(raw: bytes, path: Path) -> None:
    image = Image.open(io.BytesIO(raw)).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    image.save(path, optimize=True)


def main(base: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        sessions = {}
        for name, user, where in SHOTS:
            if user not in sessions:
                context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
                page = context.new_page()
                page.goto(f"{base}/login/")
                page.locator("#id_username").fill(user)
                page.locator("#id_password").fill(PASSWORD)
                with page.expect_navigation():
                    page.locator("main form button[type=submit]").click()
                sessions[user] = page
            page = sessions[user]
            if where.startswith("first:"):
                listing, selector = where[len("first:"):].split(" ", 1)
                page.set_viewport_size({"width": 1366, "height": 900})
                page.goto(base + listing)
                href = page.locator(selector).first.get_attribute("href")
                where = href
            for kind, (width, height) in WIDTHS.items():
                page.set_viewport_size({"width": width, "height": height})
                page.goto(base + where)
                page.wait_for_timeout(400)  # charts draw
                small_png(page.screenshot(), OUT / f"{name}-{kind}.png")
                print(f"{name}-{kind}.png  {where}")
        browser.close()


if __name__ == "__main__":
    main(re.sub(r"/$", "", sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"))
