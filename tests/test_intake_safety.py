"""Bad input and safety at intake: every field checked on the server, uploads sniffed by content and size-limited,
stored under generated names and never served by path, no half-written records, and another applicant's
enterprise or application is a 404."""

from __future__ import annotations

import io
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from applications.models import ApplicationDocument, DocumentRequirement, Enterprise, LoanApplication
from applications.services import application_create, consent_grant, document_upload, enterprise_create
from casework import lifecycle
from casework.demo.cases import verify_representative
from loanservice.errors import ApplicationError
from loanservice.models import AuditEvent
from tests.conftest import ALL_SOURCES, TINY_PDF, client_for
from tests.factories import ApplicantFactory, ApplicationFactory, enterprise_payload, uscc_for
from underwriting.models import DataSnapshot

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64


def _zip(names) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in names:
            z.writestr(name, "<ofd:OFD xmlns:ofd='http://www.ofdspec.org/2016'/>")
    return buf.getvalue()


OFD = _zip(["OFD.xml", "Doc_0/Document.xml"])
NOT_OFD = _zip(["word/document.xml"])  # a .docx is a zip too


@pytest.fixture
def owner():
    return ApplicantFactory(username="safe_owner")


@pytest.fixture
def draft(owner, products):
    """A supply-chain draft from 1,200,000: orders, invoices (OFD allowed) and financial statements (PDF only)."""
    return ApplicationFactory(applicant=owner, product=products["supply-chain-order"], seed=101, grades="", tier="prime",
                              amount="1200000", term_months=6, repayment_method="bullet", purpose="履行订单", documents=False,
                              consent=False)


def _upload(client, pk, requirement, content, name="file.pdf"):
    up = SimpleUploadedFile(name, content, content_type="application/pdf")  # the browser's claim is ignored
    return client.post(f"/api/v1/applications/{pk}/documents/", {"requirement": requirement, "file": up}, format="multipart")


# ---------------------------------------------------------------- uploads
@pytest.mark.parametrize("requirement, content, name, ok", [
    ("invoices", TINY_PDF, "inv.pdf", True),
    ("invoices", OFD, "inv.ofd", True),
    ("invoices", PNG, "photo.png", True),
    ("invoices", JPEG, "photo.jpg", True),
    ("invoices", NOT_OFD, "fake.ofd", False),
    ("invoices", b"hello, I am text", "notes.pdf", False),
    ("invoices", b"MZ\x90\x00\x03" + b"\x00" * 100, "virus.pdf", False),
    ("invoices", b"<html><script>alert(1)</script></html>", "page.pdf", False),
    ("financial_statements", PNG, "statements.pdf", False),  # PDF only for this line
    ("financial_statements", TINY_PDF, "statements.pdf", True),
])
def test_uploads_are_sniffed_by_content_against_the_line_accepted_types(owner, draft, requirement, content, name, ok):
    r = _upload(client_for(owner), draft.pk, requirement, content, name)
    if ok:
        assert r.status_code == 201, r.content
    else:
        assert r.status_code == 400 and "按文件内容识别" in r.json()["errors"]["file"][0]
        assert not ApplicationDocument.objects.filter(application=draft).exists()


def test_uploads_are_size_limited_per_line_and_empty_files_refused(owner, draft):
    DocumentRequirement.objects.filter(product=draft.product, code="invoices").update(max_size_mb=1)
    big = TINY_PDF + b"0" * (1024 * 1024)
    r = _upload(client_for(owner), draft.pk, "invoices", big)
    assert r.status_code == 400 and "1 MB" in r.json()["errors"]["file"][0]
    r = _upload(client_for(owner), draft.pk, "invoices", b"")
    assert r.status_code == 400 and "file" in r.json()["errors"]
    assert not ApplicationDocument.objects.filter(application=draft).exists()


def test_stored_under_a_generated_name_outside_any_served_path(owner, draft, client):
    r = _upload(client_for(owner), draft.pk, "invoices", TINY_PDF, name="../../etc/passwd<script>.pdf")
    doc = ApplicationDocument.objects.get(pk=r.json()["id"])
    assert doc.file.name == f"documents/{draft.pk}/{doc.token}" and len(doc.token) == 32
    assert "passwd" not in doc.file.name and "/" not in doc.original_name and "<" not in doc.original_name
    stored = Path(doc.file.path)
    assert stored.read_bytes() == TINY_PDF
    root = Path(doc.file.storage.location).resolve()
    assert root in stored.resolve().parents
    for served in [Path(settings.STATIC_ROOT), *map(Path, settings.STATICFILES_DIRS)]:
        assert served.resolve() not in stored.resolve().parents
    # no URL maps to the storage: by path it is a 404, whoever asks
    client.force_login(owner)
    for url in (f"/media/{doc.file.name}", f"/{doc.file.name}", f"/private/{doc.file.name}", f"/static/../{doc.file.name}"):
        assert client.get(url).status_code == 404, url


def test_documents_are_streamed_only_by_the_checking_view(owner, draft, org, products, client):
    r = _upload(client_for(owner), draft.pk, "invoices", TINY_PDF)
    doc_id = r.json()["id"]
    for req in ("core_orders", "financial_statements"):
        assert _upload(client_for(owner), draft.pk, req, TINY_PDF).status_code == 201
    verify_representative(owner, draft.enterprise)
    consent_grant(application=draft, user=owner, scopes=ALL_SOURCES)
    lifecycle.application_submit(application_id=draft.pk, user=owner)
    draft.refresh_from_db()
    assert draft.branch.code == "SH01"
    url = f"/staff/documents/{doc_id}/"
    client.force_login(owner)
    assert client.get(url).status_code == 404  # the applicant is not staff
    client.force_login(org["demo_rm"].__class__.objects.get(username="bj01_rm"))
    assert client.get(url).status_code == 404  # another branch
    client.force_login(org["demo_rm"])
    r = client.get(url)
    assert r.status_code == 200 and b"".join(r.streaming_content) == TINY_PDF
    assert r["Content-Disposition"].startswith("attachment")
    assert AuditEvent.objects.filter(action="document.download", actor=org["demo_rm"]).exists()


# ---------------------------------------------------------------- nothing half-written
def test_a_failed_enterprise_step_writes_nothing(owner, products):
    client = client_for(owner)
    before = (Enterprise.objects.count(), AuditEvent.objects.filter(action="enterprise.create").count())
    data = enterprise_payload(uscc_for("", seed=102), seed=102, legal_rep_id_number="110105198001011230")
    r = client.post("/api/v1/enterprises/", data, format="json")
    assert r.status_code == 400 and "legal_rep_id_number" in r.json()["errors"]
    assert (Enterprise.objects.count(), AuditEvent.objects.filter(action="enterprise.create").count()) == before


def test_a_failed_upload_leaves_neither_row_nor_file(owner, draft, monkeypatch):
    from applications import services

    def boom(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(services, "audit_record", boom)
    folder = Path(ApplicationDocument._meta.get_field("file").storage.location) / "documents" / str(draft.pk)
    files_before = set(folder.glob("*")) if folder.exists() else set()
    with pytest.raises(RuntimeError):
        document_upload(application=draft, user=owner, requirement_code="invoices", name="a.pdf", content=TINY_PDF)
    assert not ApplicationDocument.objects.filter(application=draft).exists()
    assert (set(folder.glob("*")) if folder.exists() else set()) == files_before


def test_a_refused_submission_changes_nothing(owner, draft):
    verify_representative(owner, draft.enterprise)
    consent_grant(application=draft, user=owner, scopes=ALL_SOURCES)
    with pytest.raises(ApplicationError) as exc:
        lifecycle.application_submit(application_id=draft.pk, user=owner)
    assert set(exc.value.errors) == {"documents"}
    assert any("core_orders" in m for m in exc.value.errors["documents"])
    draft.refresh_from_db()
    assert draft.status == "draft" and draft.relationship_manager is None and draft.submitted_at is None
    assert draft.enterprise.relationship_manager is None and draft.enterprise.branch is None
    assert not DataSnapshot.objects.filter(enterprise=draft.enterprise).exists()  # the pulls rolled back too
    assert not AuditEvent.objects.filter(action__in=["application.submit", "data.pull"], object_id__in=[
        str(draft.pk), str(draft.enterprise_id)]).exists()


# ---------------------------------------------------------------- every field checked on the server
@pytest.mark.parametrize("field, value", [
    ("name", "企" * 201), ("name", "  "), ("uscc", "91310000MA1FL0BL50"), ("legal_rep_id_number", "123"),
    ("industry_code", "ZZ99"), ("industry_code", "C1711999"), ("founded_on", "2999-01-01"), ("founded_on", "yesterday"),
    ("employees", "abc"), ("employees", -1), ("employees", 1.5), ("employees", True), ("annual_revenue", "1e20"),
    ("annual_revenue", "-5"), ("annual_revenue", "12.345"), ("annual_revenue", "NaN"), ("legal_form", "trust"),
    ("legal_rep_name", "x" * 101),
])
def test_enterprise_fields(owner, products, field, value):
    data = enterprise_payload(uscc_for("", seed=103), seed=103)
    data[field] = value
    r = client_for(owner).post("/api/v1/enterprises/", data, format="json")
    assert r.status_code == 400, r.content
    assert field in r.json()["errors"] and r.json()["errors"][field][0]


@pytest.mark.parametrize("field, value", [
    ("amount", "20000000.00"), ("amount", "0"), ("amount", "-1"), ("term_months", 2), ("term_months", 99),
    ("repayment_method", "equal_principal"), ("repayment_method", "nonsense"), ("purpose", ""), ("purpose", "用" * 301),
    ("channel", "x" * 30), ("channel", "Web App"),
])
def test_application_fields(owner, products, field, value):
    client = client_for(owner)
    enterprise = client.post("/api/v1/enterprises/", enterprise_payload(uscc_for("", seed=104), seed=104), format="json").json()
    body = {"enterprise": enterprise["id"], "product": "supply-chain-order", "amount": "500000.00", "term_months": 6,
            "repayment_method": "bullet", "purpose": "履行订单", field: value}
    r = client.post("/api/v1/applications/", body, format="json")
    assert r.status_code == 400, r.content
    assert field in r.json()["errors"]
    assert not LoanApplication.objects.filter(enterprise_id=enterprise["id"]).exists()


def test_consent_scopes_are_checked(owner, draft):
    r = client_for(owner).post(f"/api/v1/applications/{draft.pk}/consent/", {"scopes": ["tax", "gossip"]}, format="json")
    assert r.status_code == 400 and "scopes" in r.json()["errors"]
    assert not draft.consents.exists()


# ---------------------------------------------------------------- another applicant's records are a 404
def test_another_applicants_enterprise_and_application_are_404_everywhere(owner, draft, products, client):
    intruder = ApplicantFactory(username="safe_intruder")
    api = client_for(intruder)
    pk = draft.pk
    up = SimpleUploadedFile("a.pdf", TINY_PDF, content_type="application/pdf")
    assert api.get(f"/api/v1/applications/{pk}/").status_code == 404
    assert api.post(f"/api/v1/applications/{pk}/documents/", {"requirement": "invoices", "file": up}, format="multipart").status_code == 404
    for action, body in (("consent", {"scopes": ALL_SOURCES}), ("submit", {}), ("withdraw", {}), ("accept-offer", {}),
                         ("respond", {"response": "x"})):
        assert api.post(f"/api/v1/applications/{pk}/{action}/", body, format="json").status_code == 404, action
    assert draft.enterprise.uscc not in api.get("/api/v1/enterprises/").content.decode()
    assert pk not in [a["id"] for a in api.get("/api/v1/applications/").json()]
    r = api.post("/api/v1/applications/", {"enterprise": draft.enterprise_id, "product": "xinmiaodai", "amount": "300000.00",
                                           "term_months": 12, "repayment_method": "equal_installment", "purpose": "x"}, format="json")
    assert r.status_code == 400 and "enterprise" in r.json()["errors"]

    doc = document_upload(application=draft, user=owner, requirement_code="invoices", name="a.pdf", content=TINY_PDF)
    client.force_login(intruder)
    for url in (f"/portal/applications/{pk}/", f"/portal/applications/{pk}/request/", f"/portal/applications/{pk}/documents/",
                f"/portal/applications/{pk}/consent/", f"/portal/applications/{pk}/review/",
                f"/portal/applications/{pk}/resume/", f"/portal/apply/xinmiaodai/?enterprise={draft.enterprise_id}"):
        assert client.get(url).status_code == 404, url
    for url in (f"/portal/applications/{pk}/action/withdraw/", f"/portal/applications/{pk}/documents/{doc.pk}/remove/",
                f"/portal/applications/{pk}/review/"):
        assert client.post(url).status_code == 404, url
    # the intruder's own draft cannot reach the owner's document either
    own = application_create(applicant=intruder, enterprise=enterprise_create(
        owner=intruder, **enterprise_payload(uscc_for("", seed=105), seed=105)), product=products["supply-chain-order"],
        amount=Decimal("500000"), term_months=6, repayment_method="bullet", purpose="x")
    assert client.post(f"/portal/applications/{own.pk}/documents/{doc.pk}/remove/").status_code == 404
    assert ApplicationDocument.objects.filter(pk=doc.pk).exists()
    draft.refresh_from_db()
    assert draft.status == "draft" and not draft.consents.exists()


def test_the_owner_removes_a_wrong_upload_from_a_draft_audited(owner, draft, client):
    doc = document_upload(application=draft, user=owner, requirement_code="invoices", name="wrong.pdf", content=TINY_PDF)
    path = Path(doc.file.path)
    client.force_login(owner)
    with_callbacks = client.post(f"/portal/applications/{draft.pk}/documents/{doc.pk}/remove/")
    assert with_callbacks.status_code == 302
    assert not ApplicationDocument.objects.filter(pk=doc.pk).exists()
    assert AuditEvent.objects.filter(action="document.delete", object_id=str(draft.pk)).exists()
    assert path.exists()  # the file goes after commit (the test's transaction never commits)
