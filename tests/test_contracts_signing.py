"""Signing: the customer (borrower, guarantor) first, then the bank's PAdES seal; every signature records who,
when, from where and the hash of what was signed; verification says clearly when a file was altered."""

from __future__ import annotations

import pytest

from tests.conftest import borrower_sign_via_api, client_for, signing_code
from tests.contracts_support import accept, contracts_of
from tests.factories import ApplicationFactory, FastTrackApplicationFactory, owner_view

pytestmark = pytest.mark.django_db


def _tamper(field, *, offset: int = 200) -> None:
    """Flip one byte of a stored file in place (what an attacker with disk access would do)."""
    path = field.path
    data = bytearray(open(path, "rb").read())
    data[offset] ^= 0x01
    open(path, "wb").write(bytes(data))


def test_secured_case_borrower_signs_the_package_then_the_bank_seals(products, org):
    from applications.models import LoanApplication
    from contracts.models import Contract
    from contracts.pdf import pdf_sha256
    from loanservice.models import AuditEvent

    pk, owner, client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=7))
    detail = accept(client, pk)
    kinds = {c["kind"]: c for c in detail["contracts"]}
    assert set(kinds) == {"loan", "mortgage"} and detail["contract"] == kinds["loan"]["id"]

    ops = client_for(org["demo_ops"])
    r = ops.post(f"/api/v1/contracts/{kinds['mortgage']['id']}/sign/", {"agree": True}, format="json")
    assert r.status_code == 409 and r.json()["state"] == "issued"  # the bank never signs first

    r = client.post(f"/api/v1/contracts/{detail['contract']}/sign/", {"agree": False}, format="json")
    assert r.status_code == 400 and "agree" in r.json()["errors"]
    r = borrower_sign_via_api(client, detail["contract"], HTTP_USER_AGENT="Mozilla/5.0 test-phone", REMOTE_ADDR="10.1.2.3")
    assert r.status_code == 200 and r.json()["status"] == "borrower_signed"
    assert LoanApplication.objects.get(pk=pk).status == "contracting"
    for contract in contracts_of(pk):  # one act signs both contracts, each with its own record
        sig = contract.signatures.get()
        assert (sig.party, sig.signer, sig.ip, sig.user_agent) == ("borrower", owner, "10.1.2.3", "Mozilla/5.0 test-phone")
        assert sig.document_sha256 == contract.sha256 == pdf_sha256(contract.pdf.open("rb").read())
        assert sig.party_name == contract.terms["borrower"]["name"]

    r = ops.post(f"/api/v1/contracts/{detail['contract']}/sign/", {"agree": True}, format="json", HTTP_USER_AGENT="ops-desk")
    assert r.status_code == 200 and r.json()["application_status"] == "signed"
    for contract in contracts_of(pk):
        assert contract.status == Contract.Status.SIGNED
        bank = contract.signatures.get(party="bank")
        assert bank.signer == org["demo_ops"] and bank.document_sha256 == contract.sha256
        sealed = contract.signed_pdf.open("rb").read()
        assert bank.result_sha256 == contract.signed_sha256 == pdf_sha256(sealed)
        assert sealed.startswith(contract.pdf.open("rb").read())  # the seal is an incremental update
    assert list(AuditEvent.objects.filter(object_type="contracts.contract", object_id=str(detail["contract"]),
                                          action__startswith="contract.sign").values_list("action", flat=True)) == [
        "contract.sign.borrower", "contract.sign.bank"]


def test_guarantee_contract_is_signed_by_the_guarantor_before_the_bank(products, org):
    from contracts.models import Contract

    pk, owner, client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=7, conditions=[{"code": "ADD_GUARANTOR", "text": "追加保证人"}]))
    detail = accept(client, pk)
    guarantee = next(c for c in detail["contracts"] if c["kind"] == "guarantee")
    contract = Contract.objects.get(pk=guarantee["id"])
    assert contract.customer_party == "guarantor"
    # No guarantor recorded: the legal representative's personal guarantee.
    assert contract.terms["guarantor"]["name"] == contract.application.enterprise.legal_rep_name
    assert contract.terms["guarantor"]["id_number"] == contract.application.enterprise.legal_rep_id_number

    # The borrower's signature covers the loan and mortgage contracts, not the guarantee.
    assert borrower_sign_via_api(client, detail["contract"]).status_code == 200
    contract.refresh_from_db()
    assert contract.status == "issued" and not contract.signatures.exists()
    ops = client_for(org["demo_ops"])
    r = ops.post(f"/api/v1/contracts/{detail['contract']}/sign/", {"agree": True}, format="json")
    assert r.status_code == 200 and r.json()["application_status"] == "contracting"  # the guarantee is still open
    r = ops.post(f"/api/v1/contracts/{contract.pk}/sign/", {"agree": True}, format="json")
    assert r.status_code == 409

    r = client.post(f"/api/v1/contracts/{contract.pk}/sign/", {"agree": True}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "borrower_signed"
    assert contract.signatures.get().party == "guarantor"
    assert contract.signatures.get().party_name == contract.terms["guarantor"]["name"]
    r = ops.post(f"/api/v1/contracts/{contract.pk}/sign/", {"agree": True}, format="json")
    assert r.status_code == 200 and r.json()["application_status"] == "signed"
    order = contract.application.disbursement_orders.get(kind="loan")
    assert {c["code"]: c["met"] for c in order.conditions}["ADD_GUARANTOR"] is True  # proven by the signed guarantee


def test_signing_a_file_other_than_the_one_reviewed_is_refused(products, org):
    pk, owner, client = owner_view(FastTrackApplicationFactory(seed=1))
    detail = accept(client, pk)
    code = signing_code(client, detail["contract"])
    r = borrower_sign_via_api(client, detail["contract"], sms_code=code, sha256="0" * 64)
    assert r.status_code == 409 and r.json()["state"] == "issued"
    r = borrower_sign_via_api(client, detail["contract"], sms_code=code, sha256=detail["contracts"][0]["sha256"])
    assert r.status_code == 200


def test_a_tampered_contract_file_cannot_be_signed(products, org):
    pk, owner, client = owner_view(FastTrackApplicationFactory(seed=1))
    detail = accept(client, pk)
    contract = contracts_of(pk)[0]
    _tamper(contract.pdf)
    r = borrower_sign_via_api(client, detail["contract"])
    assert r.status_code == 409 and "integrity" in r.json()["detail"]
    assert not contract.signatures.exists()


def test_verify_reports_intact_files_and_says_clearly_when_one_was_altered(products, org, settings, tmp_path,
                                                                          django_capture_on_commit_callbacks):
    from loanservice.models import AuditEvent

    pk, owner, client = owner_view(FastTrackApplicationFactory(seed=1))
    detail = accept(client, pk)
    cid = detail["contract"]
    r = client.post(f"/api/v1/contracts/{cid}/verify/")
    body = r.json()
    assert r.status_code == 200 and body["ok"] is True and body["altered"] is False and body["signed"] is False
    with django_capture_on_commit_callbacks(execute=True):  # the fast track seals and releases after commit
        assert borrower_sign_via_api(client, cid).status_code == 200
    body = client.post(f"/api/v1/contracts/{cid}/verify/").json()
    assert body["ok"] is True and body["signed"] is True and body["checks"]["seal_ok"] is True
    assert "电子签章有效" in body["message"] and body["signer"]

    contract = contracts_of(pk)[0]
    original = contract.pdf.open("rb").read()
    sealed = contract.signed_pdf.open("rb").read()
    # A copy sent for checking: the original and the sealed file pass, an edited copy does not.
    from django.core.files.uploadedfile import SimpleUploadedFile

    for data, ok in ((original, True), (sealed, True), (sealed[:-30] + b"%% edited\n" + sealed[-20:], False)):
        up = SimpleUploadedFile("copy.pdf", data, content_type="application/pdf")
        body = client.post(f"/api/v1/contracts/{cid}/verify/", {"file": up}, format="multipart").json()
        assert body["ok"] is ok and body["altered"] is (not ok)

    # Unchanged, but checked against another seal certificate (e.g. keys replaced): not ok, yet not "altered".
    bank_keys = settings.CONTRACT_SIGNING_KEY_DIR
    settings.CONTRACT_SIGNING_KEY_DIR = tmp_path / "other-keys"
    body = client.post(f"/api/v1/contracts/{cid}/verify/").json()
    assert body["ok"] is False and body["altered"] is False and "不受信任" in body["message"]
    settings.CONTRACT_SIGNING_KEY_DIR = bank_keys

    _tamper(contract.signed_pdf, offset=len(original) - 100)
    body = client.post(f"/api/v1/contracts/{cid}/verify/").json()
    assert body["ok"] is False and body["altered"] is True and body["checks"]["sealed_hash_ok"] is False
    assert "文件已被篡改" in body["message"] and "altered" in body["message_en"]
    _tamper(contract.pdf)
    body = client.post(f"/api/v1/contracts/{cid}/verify/").json()
    assert body["checks"]["original_hash_ok"] is False and body["altered"] is True
    assert AuditEvent.objects.filter(action="contract.verify", object_id=str(cid)).count() == 8


def test_strangers_cannot_sign_verify_or_download(products, org):
    from tests.factories import ApplicantFactory

    pk, owner, client = owner_view(FastTrackApplicationFactory(seed=1))
    cid = accept(client, pk)["contract"]
    stranger = client_for(ApplicantFactory(username="stranger"))
    assert stranger.post(f"/api/v1/contracts/{cid}/sign/", {"agree": True}, format="json").status_code == 404
    assert stranger.post(f"/api/v1/contracts/{cid}/verify/").status_code == 404
    assert stranger.get(f"/api/v1/contracts/{cid}/pdf/").status_code == 404
    assert stranger.get(f"/api/v1/contracts/{cid}/schedule/").status_code == 404
    assert client_for(org["demo_rm"]).post(f"/api/v1/contracts/{cid}/sign/", {"agree": True}, format="json").status_code == 403


def _red_pixels(pdf: bytes, page_no: int, rect: tuple[float, float, float, float], scale: int = 2) -> int:
    """Red pixels inside ``rect`` (PDF points) of the page as pdfium draws it, form fields included."""
    import numpy
    import pypdfium2

    doc = pypdfium2.PdfDocument(pdf)
    doc.init_forms()  # draw form fields' appearances, the signature widget's among them
    img = doc[page_no].render(scale=scale, may_draw_forms=True).to_pil().convert("RGB")
    x1, y1, x2, y2 = rect
    crop = img.crop((int(x1 * scale), int(img.height - y2 * scale), int(x2 * scale), int(img.height - y1 * scale)))
    px = numpy.asarray(crop).astype(int)
    return int(((px[..., 0] > 150) & (px[..., 1] < 90) & (px[..., 2] < 90)).sum())


def test_the_bank_seal_is_visible_in_the_signature_block(products, org, tmp_path, monkeypatch):
    """The seal is a visible signature field: an appearance (/AP) drawn over the seal circle of the signature block,
    red ink where the template only had a thin outline, and the signature still verifies as the bank's."""
    import io

    from pypdf import PdfReader

    from contracts.seal import seal_image
    from contracts.signing import verify_with_backend

    monkeypatch.setenv("LOANSERVICE_SEAL_CACHE", str(tmp_path / "seal-cache"))
    seal_image.cache_clear()  # earlier tests may have drawn it in this process already
    pk, owner, client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=7))
    detail = accept(client, pk)
    assert borrower_sign_via_api(client, detail["contract"]).status_code == 200
    ops = client_for(org["demo_ops"])
    assert ops.post(f"/api/v1/contracts/{detail['contract']}/sign/", {"agree": True}, format="json").status_code == 200
    assert list((tmp_path / "seal-cache").glob("seal-*.png"))  # drawn once, kept for the next contract
    for contract in contracts_of(pk):
        unsigned, sealed = contract.pdf.open("rb").read(), contract.signed_pdf.open("rb").read()
        reader = PdfReader(io.BytesIO(sealed))
        fields = [(n, a.get_object()) for n, page in enumerate(reader.pages) for a in page.get("/Annots", [])
                  if a.get_object().get("/FT") == "/Sig"]
        # The borrowing enterprise's own signature first (when it is the customer party), then the bank's seal.
        expect = ["BorrowerSignature", "BankSeal"] if contract.customer_party == "borrower" else ["BankSeal"]
        assert [w["/T"] for _, w in fields] == expect
        page_no, seal = fields[-1]
        # The page of the signature block: the last one, or the one before the appended repayment schedule.
        block_pages = [n for n, page in enumerate(reader.pages) if "合同专用章" in page.extract_text().replace(" ", "")]
        assert page_no == block_pages[-1]
        last = reader.pages[page_no]
        ap = seal["/AP"]["/N"].get_object()
        assert ap.get_data(), "the seal has an appearance stream"
        x1, y1, x2, y2 = (float(v) for v in seal["/Rect"])
        box = last.mediabox
        assert box.left <= x1 < x2 <= box.right and box.bottom <= y1 < y2 <= box.top
        assert 80 < x2 - x1 < 110 and 80 < y2 - y1 < 110  # the 34 mm circle of the signature block
        assert x1 > float(box.right) / 2 - 20  # in the lender's (right-hand) column of the signature block
        result = verify_with_backend(sealed, expected_unsigned_sha256=contract.sha256)
        assert result.ok and result.trusted and result.covers_whole_file

        # The template only outlines the seal's place; the seal's ring, star and text are far more red ink.
        assert _red_pixels(sealed, page_no, (x1, y1, x2, y2)) > 2 * _red_pixels(unsigned, page_no, (x1, y1, x2, y2)) > 0
