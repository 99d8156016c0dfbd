"""The bank seal: dev / PKCS#12 backends, PAdES signing and tamper detection."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from contracts.pdf import find_cjk_font, pdf_sha256, pdf_text, render_pdf
from contracts.signing import (
    DevSelfSignedBackend,
    Pkcs12Backend,
    SigningBackend,
    SigningError,
    VerifyResult,
    load_backend,
    unsigned_prefix,
    verify_pdf,
    verify_with_backend,
)

TAMPERED_ZH = "文件已被篡改"
TAMPERED_EN = "The file was altered after signing"


@pytest.fixture(scope="module")
def unsigned_pdf(tmp_path_factory) -> bytes:
    root = tmp_path_factory.mktemp("static")
    html = (
        '<html lang="zh-CN"><body><h1>借款合同</h1>'
        + "".join(f"<p>第{i}条 借款本金人民币叁拾万元整。</p>" for i in range(1, 40))
        + "</body></html>"
    )
    return render_pdf(
        html, static_roots=[root], title="借款合同", header_text="HT-2025-000123", font_path=find_cjk_font()
    )


@pytest.fixture(scope="module")
def dev_backend(tmp_path_factory) -> DevSelfSignedBackend:
    return DevSelfSignedBackend(tmp_path_factory.mktemp("keys") / "seal")


@pytest.fixture(scope="module")
def signed_pdf(dev_backend, unsigned_pdf) -> bytes:
    return dev_backend.sign(unsigned_pdf, reason="贷款合同签章", location="上海")


# --------------------------------------------------------------------------- dev backend


def test_dev_backend_generates_and_reuses_keys(tmp_path, unsigned_pdf):
    key_dir = tmp_path / "keys"
    backend = DevSelfSignedBackend(key_dir, common_name="测试银行 dev seal", key_size=2048)
    assert isinstance(backend, SigningBackend)
    assert backend.name
    backend.sign(unsigned_pdf, reason="r", location="l")
    key_path, cert_path = backend.key_path, backend.cert_path
    assert key_path.is_file() and cert_path.is_file()
    for path in (key_path, cert_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in key_path.read_bytes()
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "测试银行 dev seal"
    assert cert.issuer == cert.subject  # self-signed
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.content_commitment

    key_before, cert_before = key_path.read_bytes(), cert_path.read_bytes()
    # A fresh instance (e.g. another worker process) reuses the same files.
    again = DevSelfSignedBackend(key_dir, common_name="ignored", key_size=2048)
    signed = again.sign(unsigned_pdf, reason="r", location="l")
    assert key_path.read_bytes() == key_before and cert_path.read_bytes() == cert_before
    assert again.certificate() == cert
    assert verify_pdf(signed, trust_roots=[cert]).ok


def test_sign_then_verify_ok(signed_pdf, unsigned_pdf, dev_backend):
    result = verify_with_backend(
        signed_pdf, expected_unsigned_sha256=pdf_sha256(unsigned_pdf), backend=dev_backend
    )
    assert isinstance(result, VerifyResult)
    assert result.ok and result.signed and result.intact and result.covers_whole_file
    assert result.trusted and result.matches_original is True
    assert result.signer == "loanservice dev seal"
    assert result.signed_at is not None
    assert abs(result.signed_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert "篡改" not in result.message_zh and "valid" in result.message_en


def test_signature_is_pades_incremental_and_keeps_text(signed_pdf, unsigned_pdf):
    assert signed_pdf.startswith(unsigned_pdf)  # incremental update: original bytes are a prefix
    assert len(signed_pdf) > len(unsigned_pdf)
    assert b"/ETSI.CAdES.detached" in signed_pdf[len(unsigned_pdf) :]
    assert b"/BankSeal" in signed_pdf[len(unsigned_pdf) :] or b"(BankSeal)" in signed_pdf[len(unsigned_pdf) :]
    assert unsigned_prefix(signed_pdf) == unsigned_pdf
    assert unsigned_prefix(unsigned_pdf) is None
    assert "借款合同" in pdf_text(signed_pdf)


def test_verify_without_trust_roots_is_ok_with_note(signed_pdf):
    result = verify_pdf(signed_pdf)
    assert result.ok and result.intact and not result.trusted
    assert "注意" in result.message_zh and "not verified" in result.message_en


def test_verify_with_foreign_trust_root_not_ok(signed_pdf, tmp_path):
    other = DevSelfSignedBackend(tmp_path / "other", key_size=2048)
    result = verify_pdf(signed_pdf, trust_roots=other.trust_roots())
    assert not result.ok and result.intact and not result.trusted
    assert "不受信任" in result.message_zh


def _assert_tampered(result: VerifyResult) -> None:
    assert not result.ok
    assert result.message_zh == TAMPERED_ZH
    assert result.message_en == TAMPERED_EN


@pytest.mark.parametrize("where", ["start", "middle", "just_before_signature", "after_signature"])
def test_flipped_byte_is_detected(signed_pdf, unsigned_pdf, where):
    contents_at = signed_pdf.index(b"/Contents <")
    contents_end = signed_pdf.index(b">", contents_at + 11)
    pos = {
        "start": 10,
        "middle": len(unsigned_pdf) // 2,
        "just_before_signature": contents_at - 5,
        "after_signature": contents_end + 5,
    }[where]
    tampered = bytearray(signed_pdf)
    tampered[pos] ^= 0x01
    _assert_tampered(verify_pdf(bytes(tampered)))


def test_every_sampled_byte_flip_is_detected(signed_pdf):
    contents_at = signed_pdf.index(b"/Contents <")
    contents_end = signed_pdf.index(b">", contents_at + 11) + 1
    positions = list(range(0, contents_at, max(1, contents_at // 40))) + list(
        range(contents_end, len(signed_pdf), 17)
    )
    for pos in positions:
        tampered = bytearray(signed_pdf)
        tampered[pos] ^= 0x20
        result = verify_pdf(bytes(tampered))
        assert not result.ok, f"flip at {pos} not detected"
        assert result.message_en == TAMPERED_EN, f"flip at {pos}: {result.message_en}"


def test_changed_signature_value_is_detected(signed_pdf):
    contents_at = signed_pdf.index(b"/Contents <") + len(b"/Contents <")
    tampered = bytearray(signed_pdf)
    pos = contents_at + 1000  # inside the CMS blob, well before the zero padding
    tampered[pos] = ord("0") if tampered[pos] != ord("0") else ord("1")
    assert not verify_pdf(bytes(tampered)).ok


def test_appended_bytes_are_detected(signed_pdf):
    result = verify_pdf(signed_pdf + b"\n% appended after signing\n")
    _assert_tampered(result)
    assert not result.covers_whole_file


def test_appended_incremental_update_is_detected(signed_pdf):
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(signed_pdf))
    writer.set_info(
        generic.DictionaryObject({generic.NameObject("/Title"): generic.TextStringObject("改过")})
    )
    out = io.BytesIO()
    writer.write(out)
    result = verify_pdf(out.getvalue())
    _assert_tampered(result)
    assert result.intact and not result.covers_whole_file


def test_expected_hash_mismatch_not_ok(signed_pdf, unsigned_pdf):
    result = verify_pdf(signed_pdf, expected_unsigned_sha256="0" * 64)
    assert not result.ok and result.intact and result.matches_original is False
    assert "不一致" in result.message_zh and "original" in result.message_en
    assert verify_pdf(signed_pdf, expected_unsigned_sha256=pdf_sha256(unsigned_pdf).upper()).ok


def test_resigned_other_document_does_not_match_original(dev_backend, unsigned_pdf, tmp_path):
    other = render_pdf(
        '<html lang="zh-CN"><body><p>人民币叁佰万元整</p></body></html>',
        static_roots=[tmp_path],
        title="借款合同",
        header_text="HT-2025-000123",
    )
    forged = dev_backend.sign(other, reason="r", location="l")
    assert verify_pdf(forged).ok  # a valid signature...
    assert not verify_pdf(
        forged, expected_unsigned_sha256=pdf_sha256(unsigned_pdf)
    ).ok  # ...on the wrong file


def test_unsigned_and_garbage(unsigned_pdf):
    result = verify_pdf(unsigned_pdf)
    assert not result.ok and not result.signed and result.message_en == "The file is not signed"
    result = verify_pdf(b"not a pdf at all")
    assert not result.ok and not result.signed and "PDF" in result.message_en


def test_verify_inside_running_event_loop(signed_pdf):
    async def main():
        return verify_pdf(signed_pdf)

    assert asyncio.run(main()).ok


# --------------------------------------------------------------------------- PKCS#12


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "测试银行"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _make_p12(path: Path, passphrase: bytes) -> x509.Certificate:
    """A test CA and a seal certificate it issued, packed with the CA into a .p12."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Test Root CA"))
        .issuer_name(_name("Test Root CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("测试银行 合同专用章"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"seal", key, cert, [ca_cert], serialization.BestAvailableEncryption(passphrase)
        )
    )
    return ca_cert


def test_pkcs12_backend_signs_and_verifies(tmp_path, unsigned_pdf):
    p12 = tmp_path / "seal.p12"
    ca_cert = _make_p12(p12, b"s3cret")
    backend = Pkcs12Backend(p12, b"s3cret")
    assert isinstance(backend, SigningBackend)
    signed = backend.sign(unsigned_pdf, reason="贷款合同签章", location="北京")
    assert signed.startswith(unsigned_pdf)

    result = verify_pdf(signed, expected_unsigned_sha256=pdf_sha256(unsigned_pdf), trust_roots=[ca_cert])
    assert result.ok and result.trusted, result
    assert result.signer == "测试银行 合同专用章"
    assert backend.trust_roots() == [ca_cert]
    assert verify_with_backend(signed, backend=backend).ok

    tampered = bytearray(signed)
    tampered[len(unsigned_pdf) // 3] ^= 0x01
    _assert_tampered(verify_pdf(bytes(tampered), trust_roots=[ca_cert]))


def test_pkcs12_wrong_passphrase(tmp_path, unsigned_pdf):
    p12 = tmp_path / "seal.p12"
    _make_p12(p12, b"right")
    with pytest.raises(SigningError, match="passphrase"):
        Pkcs12Backend(p12, b"wrong").sign(unsigned_pdf, reason="r", location="l")
    with pytest.raises(SigningError):
        Pkcs12Backend(tmp_path / "missing.p12", None).sign(unsigned_pdf, reason="r", location="l")


def test_pkcs12_from_settings_and_env(tmp_path, monkeypatch):
    p12 = tmp_path / "seal.p12"
    monkeypatch.setenv("CONTRACT_SIGNING_P12", str(p12))
    monkeypatch.setenv("CONTRACT_SIGNING_P12_PASSPHRASE", "pw")
    backend = Pkcs12Backend.from_settings(SimpleNamespace())
    assert backend.path == p12 and backend.passphrase == b"pw"
    backend = Pkcs12Backend.from_settings(
        SimpleNamespace(CONTRACT_SIGNING_P12="/x.p12", CONTRACT_SIGNING_P12_PASSPHRASE="")
    )
    assert backend.path == Path("/x.p12") and backend.passphrase is None
    monkeypatch.delenv("CONTRACT_SIGNING_P12")
    with pytest.raises(SigningError, match="CONTRACT_SIGNING_P12"):
        Pkcs12Backend.from_settings(SimpleNamespace())


# --------------------------------------------------------------------------- backend selection


class FakeProvider:
    """An external e-signature provider plugged in by dotted path."""

    name = "fake-provider"

    def __init__(self, settings=None):
        self.settings = settings

    @classmethod
    def from_settings(cls, settings):
        return cls(settings)

    def sign(self, pdf: bytes, *, reason: str, location: str, field_name: str = "BankSeal") -> bytes:
        return pdf


def test_load_backend_by_dotted_path(tmp_path):
    settings = SimpleNamespace(CONTRACT_SIGNING_KEY_DIR=tmp_path / "k")
    backend = load_backend("contracts.signing.DevSelfSignedBackend", settings)
    assert isinstance(backend, DevSelfSignedBackend) and backend.key_dir == tmp_path / "k"
    provider = load_backend("tests.test_signing.FakeProvider", settings)
    assert isinstance(provider, FakeProvider) and provider.settings is settings
    with pytest.raises(SigningError):
        load_backend("tests.test_signing.Nope", settings)
    with pytest.raises(SigningError):
        load_backend("pathlib.PurePath", settings)  # not a SigningBackend


def test_get_backend_reads_django_settings_lazily(tmp_path):
    # In a subprocess: configuring Django settings here would leak into other tests.
    code = f"""
from django.conf import settings
import contracts.signing as s
settings.configure(CONTRACT_SIGNING_KEY_DIR={str(tmp_path / "k")!r})
b = s.get_backend()
assert isinstance(b, s.DevSelfSignedBackend), b
assert str(b.key_dir) == {str(tmp_path / "k")!r}
assert s.get_backend() is b  # cached per settings
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_modules_do_not_import_django_at_import_time():
    code = "import sys, contracts.pdf, contracts.signing; print('django' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "False", out.stderr


def test_seal_name_without_a_signature_block_stays_invisible(dev_backend, unsigned_pdf):
    """No 合同专用章 circle in the document: the seal is still made, as an invisible (zero-size) field."""
    from pypdf import PdfReader

    from contracts.seal import seal_box

    assert seal_box(unsigned_pdf) is None
    signed = dev_backend.sign(unsigned_pdf, reason="贷款合同签章", location="上海", seal_name="示范银行股份有限公司")
    assert verify_with_backend(signed, backend=dev_backend).ok
    widgets = [a.get_object() for page in PdfReader(io.BytesIO(signed)).pages for a in page.get("/Annots", [])]
    rects = [[float(v) for v in w["/Rect"]] for w in widgets if w.get("/FT") == "/Sig"]
    assert all(x1 == x2 and y1 == y2 for x1, y1, x2, y2 in rects)


def test_seal_box_is_the_circle_around_the_seal_text(tmp_path):
    html = ('<html lang="zh-CN"><body><p>第一条</p><div style="page-break-before: always">贷款人（电子签章）'
            '<span style="display:block;margin-left:300pt;font-size:8pt">合同专用章</span></div></body></html>')
    pdf = render_pdf(html, static_roots=[tmp_path], title="t", header_text="HT-1", font_path=find_cjk_font())
    from contracts.seal import SEAL_SIZE_PT, seal_box

    page, (x1, y1, x2, y2) = seal_box(pdf)
    assert page == 1  # the last page
    assert abs((x2 - x1) - SEAL_SIZE_PT) < 0.1 and abs((y2 - y1) - SEAL_SIZE_PT) < 0.1
    assert 360 < (x1 + x2) / 2 < 385  # 18 mm page margin + 300 pt + half of five 8 pt characters ≈ 371


def test_seal_image_cache_in_a_directory_others_can_write_is_not_trusted(tmp_path, monkeypatch):
    """A PNG planted in a shared cache directory never becomes the bank's seal."""
    from PIL import Image

    from contracts.seal import seal_image

    cache = tmp_path / "shared"
    monkeypatch.setenv("LOANSERVICE_SEAL_CACHE", str(cache))
    seal_image.cache_clear()
    drawn = seal_image("示范银行")
    planted = next(cache.glob("seal-*.png"))
    Image.new("RGBA", drawn.size, (0, 0, 255, 255)).save(planted)
    seal_image.cache_clear()
    assert seal_image("示范银行").getpixel((300, 300)) == (0, 0, 255, 255)  # our own 0700 cache: used
    cache.chmod(0o777)
    seal_image.cache_clear()
    assert seal_image("示范银行").getpixel((300, 300)) != (0, 0, 255, 255)  # writable by others: drawn afresh
    seal_image.cache_clear()


def test_signature_room_reserved_up_front_and_measured_when_too_small(dev_backend, unsigned_pdf, monkeypatch):
    """The container's room is reserved without pyHanko's dry-run signature; an allowance too small for the
    container falls back to pyHanko measuring it, and either way the seal verifies."""
    from pyhanko.sign.signers.pdf_signer import PdfSigningSession

    from contracts import signing

    measured = []
    original = PdfSigningSession.estimate_signature_container_size

    async def counting(self, *args, **kwargs):
        measured.append(1)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(PdfSigningSession, "estimate_signature_container_size", counting)
    signed = dev_backend.sign(unsigned_pdf, reason="贷款合同签章", location="上海")
    assert verify_with_backend(signed, backend=dev_backend, expected_unsigned_sha256=pdf_sha256(unsigned_pdf)).ok
    assert measured == []  # no dummy signature to measure the room

    monkeypatch.setattr(signing, "_bytes_reserved", lambda signer: 64)  # far too small for any CMS container
    signed = dev_backend.sign(unsigned_pdf, reason="贷款合同签章", location="上海")
    assert verify_with_backend(signed, backend=dev_backend, expected_unsigned_sha256=pdf_sha256(unsigned_pdf)).ok
    assert measured == [1]


def test_seal_image_stream_is_what_pyhanko_writes_and_is_compressed_once(monkeypatch):
    """The seal's image XObject, written from the once-compressed streams, decodes to the same pixels and alpha
    pyHanko's own pil_image writes; a second seal does not compress again."""
    import zlib

    from pyhanko.pdf_utils.images import pil_image
    from pyhanko.pdf_utils.writer import PdfFileWriter

    from contracts import signing
    from contracts.seal import seal_image

    img = seal_image("示范银行股份有限公司")
    writer = PdfFileWriter()
    ours = signing._image_content(img)
    ours.set_writer(writer)
    theirs = pil_image(img, writer).get_object()
    mine = ours.image_ref.get_object()
    assert mine.data == theirs.data and mine["/SMask"].get_object().data == theirs["/SMask"].get_object().data
    assert {k: mine[k] for k in ("/Width", "/Height", "/ColorSpace", "/BitsPerComponent")} == \
        {k: theirs[k] for k in ("/Width", "/Height", "/ColorSpace", "/BitsPerComponent")}
    calls = []
    monkeypatch.setattr(zlib, "compress", lambda *a, **k: calls.append(1) or b"")
    again = signing._image_content(img)
    again.set_writer(PdfFileWriter())
    assert again.image_ref is not None and calls == []
