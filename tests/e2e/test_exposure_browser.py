"""The approver reads the borrower's total exposure on the review page (#18), in Chinese and English, on a desktop
and a phone: a top-up whose total takes it past the fast track, with what it is made of."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.e2e.conftest import artifacts_dir, login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_review_page_shows_the_total_exposure_and_its_parts(live_server, page, products, org):
    import time_machine
    from django.utils import timezone

    from tests.factories import ApplicantFactory, FastTrackApplicationFactory, FastTrackLoanFactory

    owner = ApplicantFactory(username="exposure_browser")
    with time_machine.travel(timezone.now() - dt.timedelta(days=40)):
        loan = FastTrackLoanFactory(owner=owner, seed=71)
    application = FastTrackApplicationFactory(applicant=owner, enterprise=loan.enterprise, amount="800000.00",
                                              stage="pending_approval", seed=71, fast_track=False)
    assert application.route == "branch"
    login(page, live_server.url, "demo_branch_approver")
    url = f"{live_server.url}/staff/approvals/{application.pk}/"
    for language in ("zh-hans", "en"):
        page.context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
        for width, height in ((1366, 900), (390, 844)):
            page.set_viewport_size({"width": width, "height": height})
            page.goto(url)
            line = page.locator("#exposure")
            text = line.inner_text()
            assert "1,100,000.00" in text and "800,000.00" in text and "300,000.00" in text, text
            line.scroll_into_view_if_needed()
            page.screenshot(path=str(artifacts_dir() / f"exposure_review_{language}_{width}.png"))
