"""The RM sees a person guarantor's ID number masked on the case page and reveals it with a reason (htmx swaps it
in, no CSP violation); a branch approver sees it masked with no way to reveal it. Desktop and phone."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import artifacts_dir, login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_rm_reveals_a_masked_id_number_and_the_approver_cannot(live_server, page, new_page, products, org):
    from loanservice.masking import mask_id_number
    from loanservice.models import AuditEvent
    from tests.factories import ApplicationFactory
    from underwriting.providers import make_resident_id
    from underwriting.services import guarantor_add

    application = ApplicationFactory(seed=33, stage="submitted")
    id_number = make_resident_id(8802, birth_year=1972)
    guarantor = guarantor_add(application=application, by=org["demo_rm"], kind="person", name="王保证",
                              id_number=id_number, relationship="实际控制人")
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    login(page, live_server.url, "demo_rm")
    url = f"{live_server.url}/staff/cases/{application.pk}/"
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(url)
        value = page.locator(f"#pii-guarantor-{guarantor.pk}-id_number")
        value.scroll_into_view_if_needed()
        assert mask_id_number(id_number) in value.inner_text() and id_number not in page.content()
        value.locator("input[name=reason]").fill("核对保证人身份")
        value.locator("button").click()
        page.locator(f"#pii-guarantor-{guarantor.pk}-id_number .pii-clear").wait_for()
        assert page.locator(f"#pii-guarantor-{guarantor.pk}-id_number").inner_text().strip() == id_number
        page.screenshot(path=str(artifacts_dir() / f"personal_data_reveal_{width}.png"))
    assert not [e for e in errors if "Content Security Policy" in e], errors
    assert AuditEvent.objects.filter(action="personal_data.reveal", actor=org["demo_rm"]).count() == 2

    approver = new_page()
    login(approver, live_server.url, "demo_branch_approver")
    approver.goto(url)
    value = approver.locator(f"#pii-guarantor-{guarantor.pk}-id_number")
    assert mask_id_number(id_number) in value.inner_text()
    assert value.locator("button").count() == 0 and id_number not in approver.content()
