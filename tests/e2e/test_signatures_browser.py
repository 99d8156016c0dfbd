"""The contract page shows both PDF signatures (the enterprise's and the bank's) as validated, and says so when the
file was altered; operations approve an agent's power of attorney from their queue (issue #19). Desktop and phone."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import artifacts_dir, login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_contract_page_shows_both_signatures_and_a_tampered_file(live_server, page, products, org):
    from tests.conftest import borrower_sign_via_api, client_for
    from tests.contracts_support import accept, contracts_of
    from tests.factories import ApplicationFactory, owner_view

    pk, owner, client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=7))
    detail = accept(client, pk)
    assert borrower_sign_via_api(client, detail["contract"]).status_code == 200
    assert client_for(org["demo_ops"]).post(f"/api/v1/contracts/{detail['contract']}/sign/", {"agree": True},
                                             format="json").status_code == 200
    contract = next(c for c in contracts_of(pk) if c.pk == detail["contract"])
    login(page, live_server.url, "demo_ops")
    page.goto(f"{live_server.url}/staff/operations/")
    page.goto(f"{live_server.url}/staff/contracts/{contract.pk}/")
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.reload()
        assert "loanservice sandbox CA" in page.locator("#pdf-signature-BorrowerSignature").inner_text()
        assert page.locator("#pdf-signature-BankSeal").is_visible()
        assert "文件已被篡改" not in page.locator("#pdf-signatures-verdict").inner_text()
        page.screenshot(path=str(artifacts_dir() / f"contract_signatures_{width}.png"), full_page=True)
    path = contract.signed_pdf.path
    data = bytearray(open(path, "rb").read())
    data[400] ^= 0x01
    open(path, "wb").write(bytes(data))
    page.reload()
    assert "文件已被篡改" in page.locator("#pdf-signatures-verdict").inner_text()
    page.screenshot(path=str(artifacts_dir() / "contract_signatures_tampered.png"), full_page=True)


def test_operations_approve_a_power_of_attorney_from_the_queue(live_server, page, products, org):
    from applications.models import IdentityVerification
    from applications.services import identity_check_record
    from tests.conftest import TINY_PDF
    from tests.factories import ApplicantFactory, EnterpriseFactory
    from underwriting.providers import make_resident_id

    owner = ApplicantFactory(username="agent_browser")
    enterprise = EnterpriseFactory(owner=owner, seed=94)
    record = identity_check_record(enterprise=enterprise, user=owner, method="agent", name="王经办",
                                   id_number=make_resident_id(5152, birth_year=1990), phone="13900000094",
                                   power_of_attorney=TINY_PDF)
    login(page, live_server.url, "demo_ops")
    for width, height in ((390, 844), (1366, 900)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server.url}/staff/identity-reviews/")
        assert enterprise.name in page.locator(f"#identity-review-{record.pk}").inner_text()
        page.screenshot(path=str(artifacts_dir() / f"identity_reviews_{width}.png"), full_page=True)
    page.fill(f"#identity-review-reason-{record.pk}", "委托书盖章、签字齐全")
    page.click(f"#identity-review-approve-{record.pk}")
    page.wait_for_selector("#identity-reviews-empty")
    record.refresh_from_db()
    assert record.review_status == IdentityVerification.REVIEW_APPROVED
