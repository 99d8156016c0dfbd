"""The borrowing enterprise's own PAdES signature (DESIGN.md "Trust rules"; issue #19): a certificate per enterprise
from the bank's sandbox CA, issued on its first signature and reused; the bank's seal added after it keeps it valid;
the staff and owner contract pages validate both against their trust roots and say so when the file was altered."""

from __future__ import annotations

import pytest

from tests.conftest import borrower_sign_via_api, client_for
from tests.contracts_support import accept, contracts_of
from tests.factories import ApplicationFactory, owner_view

pytestmark = pytest.mark.django_db


def _tamper(field, *, offset: int = 400) -> None:
    path = field.path
    data = bytearray(open(path, "rb").read())
    data[offset] ^= 0x01
    open(path, "wb").write(bytes(data))


def _pages(user):
    """A browser-like client signed in as ``user`` (the pages use the session, not the API's token)."""
    from django.test import Client

    c = Client()
    c.force_login(user)
    return c


def _signed_case(org, seed=7):
    pk, owner, client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=seed))
    detail = accept(client, pk)
    assert borrower_sign_via_api(client, detail["contract"]).status_code == 200
    return pk, owner, client, detail


def test_the_enterprise_signs_the_pdf_and_the_bank_seal_keeps_it_valid(products, org):
    from cryptography.x509.oid import NameOID

    from contracts.models import EnterpriseCertificate
    from contracts.pdf import pdf_sha256
    from contracts.selectors import contract_pdf_signatures
    from contracts.signing import verify_with_backend
    from loanservice.pki import load_cert, sandbox_ca

    pk, owner, client, detail = _signed_case(org)
    enterprise = contracts_of(pk)[0].application.enterprise
    cert_row = EnterpriseCertificate.objects.get(enterprise=enterprise)
    cert = load_cert(cert_row.certificate_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == enterprise.name
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == enterprise.uscc
    assert cert.issuer == sandbox_ca().root_certificate().subject and sandbox_ca().issued_by_root(cert)
    for contract in contracts_of(pk):  # loan and mortgage contract: the borrower is the customer party of both
        signed = contract.borrower_signed_pdf.open("rb").read()
        assert signed.startswith(contract.pdf.open("rb").read())  # an incremental update of the issued bytes
        sig = contract.signatures.get(party="borrower")
        assert sig.certificate == cert_row and sig.result_sha256 == contract.borrower_signed_sha256 == pdf_sha256(signed)
        report = contract_pdf_signatures(contract)
        assert report["ok"] and not report["altered"] and report["file"] == "borrower_signed"
        assert [(s["field"], s["signer"], s["issuer"], s["ok"]) for s in report["signatures"]] == [
            ("BorrowerSignature", enterprise.name, "loanservice sandbox CA", True)]

    ops = client_for(org["demo_ops"])
    assert ops.post(f"/api/v1/contracts/{detail['contract']}/sign/", {"agree": True}, format="json").status_code == 200
    for contract in contracts_of(pk):
        sealed = contract.signed_pdf.open("rb").read()
        assert sealed.startswith(contract.borrower_signed_pdf.open("rb").read())
        report = contract_pdf_signatures(contract)
        assert report["ok"] and report["file"] == "signed"
        rows = {s["field"]: s for s in report["signatures"]}
        assert list(rows) == ["BorrowerSignature", "BankSeal"]
        assert all(s["ok"] and s["intact"] and s["trusted"] and s["signed_at"] for s in rows.values())
        assert rows["BorrowerSignature"]["party"] == "borrower" and rows["BankSeal"]["party"] == "bank"
        # The bank's seal still verifies as before (last signature, whole file, the issued bytes inside).
        assert verify_with_backend(sealed, expected_unsigned_sha256=contract.sha256).ok
    r = client.post(f"/api/v1/contracts/{detail['contract']}/verify/", format="json")
    assert r.status_code == 200 and r.json()["ok"] and not r.json()["altered"]
    assert [s["field"] for s in r.json()["pdf_signatures"]] == ["BorrowerSignature", "BankSeal"]


def test_the_certificate_is_issued_once_per_enterprise_and_reused(products, org):
    from django.db import transaction

    from contracts.models import EnterpriseCertificate, Signature
    from contracts.services import enterprise_certificate
    from loanservice.models import AuditEvent

    pk, owner, client, detail = _signed_case(org)
    enterprise = contracts_of(pk)[0].application.enterprise
    assert EnterpriseCertificate.objects.filter(enterprise=enterprise).count() == 1
    with transaction.atomic():
        again, _key = enterprise_certificate(enterprise=enterprise)
    assert again == EnterpriseCertificate.objects.get(enterprise=enterprise)
    # The loan and the mortgage contract were signed in one act, each with its own signature, by the one certificate.
    certs = set(Signature.objects.filter(contract__application_id=pk, party="borrower").values_list("certificate", flat=True))
    assert Signature.objects.filter(contract__application_id=pk, party="borrower").count() == 2 and len(certs) == 1
    assert AuditEvent.objects.filter(action="certificate.issue", object_id=str(enterprise.pk)).count() == 1
    # Another enterprise gets its own.
    pk3, _owner3, client3, _d3 = _signed_case(org, seed=9)
    other = contracts_of(pk3)[0].application.enterprise
    assert other != enterprise
    assert EnterpriseCertificate.objects.get(enterprise=other).serial != EnterpriseCertificate.objects.get(
        enterprise=enterprise).serial


def test_a_tampered_pdf_fails_validation_and_the_pages_say_so(products, org):
    from contracts.selectors import contract_pdf_signatures

    pk, owner, client, detail = _signed_case(org)
    ops_user = org["demo_ops"]
    ops = client_for(ops_user)
    assert ops.post(f"/api/v1/contracts/{detail['contract']}/sign/", {"agree": True}, format="json").status_code == 200
    contract = next(c for c in contracts_of(pk) if c.pk == detail["contract"])
    page = _pages(owner).get(f"/portal/contracts/{contract.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="pdf-signature-BorrowerSignature"' in html and 'id="pdf-signature-BankSeal"' in html
    assert "loanservice sandbox CA" in html and contract.terms["borrower"]["name"] in html
    assert "文件已被篡改" not in html

    _tamper(contract.signed_pdf)
    report = contract_pdf_signatures(contract)
    assert report["altered"] and not report["ok"]
    assert not any(s["ok"] for s in report["signatures"])
    for c, url in ((_pages(owner), f"/portal/contracts/{contract.pk}/"), (_pages(ops_user), f"/staff/contracts/{contract.pk}/")):
        html = c.get(url).content.decode()
        assert "文件已被篡改" in html, url
    r = client.post(f"/api/v1/contracts/{contract.pk}/verify/", format="json")
    assert r.status_code == 200 and r.json()["altered"] and not r.json()["ok"]


def test_a_signature_from_a_certificate_not_issued_by_the_bank_ca_is_not_trusted(products, org, tmp_path):
    """Someone makes a certificate in the enterprise's name with their own CA and re-signs the issued file: the
    signature is intact, but it does not chain to the bank's sandbox CA."""
    from cryptography.x509.oid import NameOID
    from django.core.files.base import ContentFile

    from contracts.pdf import pdf_sha256
    from contracts.selectors import contract_pdf_signatures
    from contracts.signing import sign_as_party
    from loanservice.pki import SandboxCA

    pk, owner, client, detail = _signed_case(org)
    contract = next(c for c in contracts_of(pk) if c.pk == detail["contract"])
    rogue = SandboxCA(tmp_path / "rogue")
    issued = rogue.issue([(NameOID.COMMON_NAME, contract.terms["borrower"]["name"])])
    forged = sign_as_party(contract.pdf.open("rb").read(), private_key=issued.key, certificate=issued.certificate,
                           chain=[rogue.root_certificate()], reason="x", location="CN")
    contract.borrower_signed_pdf.save("forged.pdf", ContentFile(forged), save=False)
    contract.borrower_signed_sha256 = pdf_sha256(forged)
    contract.save(update_fields=["borrower_signed_pdf", "borrower_signed_sha256"])
    report = contract_pdf_signatures(contract)
    assert not report["ok"] and not report["altered"]
    (row,) = report["signatures"]
    assert row["intact"] and not row["trusted"] and not row["ok"]
    html = _pages(owner).get(f"/portal/contracts/{contract.pk}/").content.decode()
    assert "证书不受信任" in html


def test_contract_pages_are_for_the_owner_and_staff_only(products, org):
    from django.test import Client

    from tests.factories import ApplicationFactory as Factory

    pk, owner, client, detail = _signed_case(org)
    stranger = Factory(approver=org["demo_branch_approver"], stage="approved", seed=11).applicant
    url = f"/portal/contracts/{detail['contract']}/"
    assert _pages(owner).get(url).status_code == 200
    assert _pages(stranger).get(url).status_code == 404
    assert Client().get(url).status_code == 302  # to the login page
    staff_url = f"/staff/contracts/{detail['contract']}/"
    assert _pages(owner).get(staff_url).status_code in (302, 403, 404)  # never the staff page
    assert _pages(org["demo_ops"]).get(staff_url).status_code == 200
