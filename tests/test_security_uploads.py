"""Upload abuse: a file is judged by its bytes, bounded in size, stored under a name the applicant does not
choose, and an archive-based format (OFD) that would expand into a bomb is refused. Through the API and
the wizard page; nothing half-written remains after a refusal."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.conftest import TINY_PDF, client_for, draft_via_api
from tests.factories import ApplicantFactory, uscc_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft(products, org):
    owner = ApplicantFactory(username="uploader")
    client = client_for(owner)
    pk = draft_via_api(client, uscc=uscc_for("ABC", seed=7, tier="good"), product="supply-chain-order", amount="500000.00",
                       term=6, method="bullet", documents=False, consent=False, seed=7)
    return {"owner": owner, "client": client, "pk": pk}


def _post(draft, name, content, requirement="core_orders", content_type="application/pdf"):
    up = SimpleUploadedFile(name, content, content_type=content_type)
    return draft["client"].post(f"/api/v1/applications/{draft['pk']}/documents/", {"requirement": requirement, "file": up},
                                format="multipart")


def _documents(draft) -> int:
    from applications.models import ApplicationDocument

    return ApplicationDocument.objects.filter(application_id=draft["pk"]).count()


def _ofd(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


OFD_XML = b'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" Version="1.0"/>'


@pytest.mark.parametrize(("name", "content"), [
    ("invoice.pdf", b"<html><script>alert(1)</script></html>"),          # HTML claiming to be a PDF
    ("invoice.pdf", b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200),      # a Windows executable
    ("orders.ofd", b"PK\x03\x04" + b"OFD.xml" + b"\x00" * 100),           # a broken archive naming OFD.xml
    ("orders.ofd", _ofd({"Doc_0/Document.xml": b"<x/>"})),              # a ZIP that is not an OFD package
    ("empty.pdf", b""),
])
def test_wrong_type_is_refused_by_content_naming_the_file_field(draft, name, content):
    r = _post(draft, name, content)
    assert r.status_code == 400, r.content
    assert "file" in r.json()["errors"]
    assert _documents(draft) == 0


def test_a_real_pdf_and_a_real_ofd_are_accepted(draft):
    assert _post(draft, "orders.pdf", TINY_PDF).status_code == 201
    r = _post(draft, "invoice.ofd", _ofd({"OFD.xml": OFD_XML, "Doc_0/Document.xml": b"<ofd:Document/>"}), requirement="invoices")
    assert r.status_code == 201, r.content
    assert r.json()["content_type"] != "application/pdf"
    assert _documents(draft) == 2


def test_oversize_is_refused_naming_the_limit(draft):
    from applications.models import DocumentRequirement

    limit = DocumentRequirement.objects.get(product__code="supply-chain-order", code="core_orders").max_size_mb
    big = TINY_PDF + b"%" + b"0" * (limit * 1024 * 1024)
    r = _post(draft, "huge.pdf", big)
    assert r.status_code == 400 and "file" in r.json()["errors"]
    assert str(limit) in " ".join(r.json()["errors"]["file"])
    assert _documents(draft) == 0


def test_an_ofd_that_would_expand_into_a_bomb_is_refused(draft):
    # 200 MB of zeros compress to about 200 KB: small on the wire, enormous for whoever opens it.
    bomb = _ofd({"OFD.xml": OFD_XML, "Doc_0/Res/zeros.bin": b"\x00" * (200 * 1024 * 1024)})
    assert len(bomb) < 1024 * 1024
    r = _post(draft, "orders.ofd", bomb)
    assert r.status_code == 400, r.content
    assert "file" in r.json()["errors"]
    assert _documents(draft) == 0


def test_an_ofd_with_a_path_escaping_member_is_refused(draft):
    r = _post(draft, "orders.ofd", _ofd({"OFD.xml": OFD_XML, "../../../etc/cron.d/x": b"* * * * * root id"}))
    assert r.status_code == 400 and "file" in r.json()["errors"]


@pytest.mark.parametrize("name", ["../../../../etc/passwd.pdf", "..\\..\\windows\\system32\\x.pdf", "/abs/path.pdf",
                                  "a\x00b.pdf", "<script>alert(1)</script>.pdf"])
def test_a_path_in_the_name_never_becomes_a_path(draft, name):
    from applications.models import ApplicationDocument

    r = _post(draft, name, TINY_PDF)
    assert r.status_code == 201, r.content
    doc = ApplicationDocument.objects.get(pk=r.json()["id"])
    stored = Path(doc.file.path).resolve()
    root = Path(doc.file.storage.location).resolve()
    assert root in stored.parents, (stored, root)
    assert ".." not in doc.file.name and not doc.file.name.startswith("/")
    for bad in ("/", "\\", "\x00", "<", ">"):
        assert bad not in doc.original_name
    # Head-office staff see drafts: the download carries the cleaned name only.
    from django.contrib.auth import get_user_model

    staff = Client()
    staff.force_login(get_user_model().objects.get(username="demo_head_approver"))
    r = staff.get(f"/staff/documents/{doc.pk}/")
    assert r.status_code == 200
    disposition = r["Content-Disposition"]
    assert "/" not in disposition.split("filename", 1)[1] and "\\" not in disposition


def test_the_wizard_page_refuses_a_disguised_file_with_a_message(draft):
    page = Client()
    page.force_login(draft["owner"])
    up = SimpleUploadedFile("orders.pdf", b"<svg onload=alert(1)>", content_type="application/pdf")
    r = page.post(f"/portal/applications/{draft['pk']}/documents/", {"requirement": "core_orders", "file": up}, follow=True)
    assert r.status_code in (200, 400)  # the page again, with the refusal
    html = r.content.decode()
    assert "<svg onload" not in html
    assert "PDF" in html and _documents(draft) == 0
