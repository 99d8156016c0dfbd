"""The bank's seal on contract PDFs, as a PAdES (ETSI.CAdES.detached) signature.

No Django import at module level.  :func:`get_backend` reads
``settings.CONTRACT_SIGNING_BACKEND`` / ``settings.CONTRACT_SIGNING_KEY_DIR`` lazily.

Backends implement :class:`SigningBackend` (``name`` + ``sign(pdf, reason=,
location=, field_name=)``).  Shipped:

* :class:`DevSelfSignedBackend` — generates an RSA key and a self-signed
  certificate in a key directory on first use (PEM files, mode 0600), reuses them.
* :class:`Pkcs12Backend` — a CA-issued certificate + key from a PKCS#12 file.

Backends with ``visible_seal = True`` (both shipped ones) also take ``seal_name=`` (and the shipped ones
``seal_place=``, the circle's place when the caller knows it, contracts.seal.signature_places):
the seal is then a visible signature field over the seal circle of the contract's
signature block (its last page, or the one before an appended schedule), with a drawn seal as its appearance
(contracts/seal.py); without a seal circle it stays invisible.

Signing is an incremental update: the unsigned PDF bytes stay an exact prefix
of the signed file, so ``sha256(unsigned)`` recorded at render time can be
re-checked later with :func:`verify_pdf`.  See docs/signing.md.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import importlib
import io
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from loanservice.pki import write_private

__all__ = [
    "DEFAULT_BACKEND",
    "DevSelfSignedBackend",
    "PARTY_FIELD_NAME",
    "SignatureStatus",
    "Pkcs12Backend",
    "SigningBackend",
    "SigningError",
    "VerifyResult",
    "get_backend",
    "load_backend",
    "make_signer",
    "seal_from_report",
    "sign_as_party",
    "signatures_report",
    "trust_roots_fingerprint",
    "unsigned_prefix",
    "verify_pdf",
    "verify_with_backend",
]

DEFAULT_BACKEND = "contracts.signing.DevSelfSignedBackend"
DEFAULT_FIELD_NAME = "BankSeal"
#: The signature field of the customer party (the borrowing enterprise), signed before the bank's seal.
PARTY_FIELD_NAME = "BorrowerSignature"


class SigningError(RuntimeError):
    """The PDF could not be signed (bad key material, unreadable PDF, ...)."""


@runtime_checkable
class SigningBackend(Protocol):
    """What the contract workflow needs from a seal provider."""

    name: str

    def sign(self, pdf: bytes, *, reason: str, location: str, field_name: str = DEFAULT_FIELD_NAME) -> bytes:
        """Return ``pdf`` with a PAdES signature appended as an incremental update."""
        ...


# --------------------------------------------------------------------------- helpers




def _to_asn1_cert(cert):
    """cryptography / asn1crypto / DER / PEM certificate -> asn1crypto Certificate."""
    from asn1crypto import pem, x509  # noqa: PLC0415

    if isinstance(cert, x509.Certificate):
        return cert
    if isinstance(cert, bytes | bytearray):
        data = bytes(cert)
        if pem.detect(data):
            _, _, data = pem.unarmor(data)
        return x509.Certificate.load(data)
    from cryptography.hazmat.primitives.serialization import Encoding  # noqa: PLC0415

    return x509.Certificate.load(cert.public_bytes(Encoding.DER))


_SIGNER_CLASS = None


def make_signer(private_key, certificate, other_certs: Iterable = ()):
    """A pyHanko ``SimpleSigner`` for a ``cryptography`` key + certificate (+ chain).

    Unlike ``SimpleSigner.load*()``, the parsed private key is kept, so a signature
    does not re-parse (and re-validate) the RSA key twice per document.
    """
    global _SIGNER_CLASS
    from pyhanko.keys.internal import (  # noqa: PLC0415
        translate_pyca_cryptography_cert_to_asn1,
        translate_pyca_cryptography_key_to_asn1,
    )
    from pyhanko_certvalidator.registry import SimpleCertificateStore  # noqa: PLC0415

    if _SIGNER_CLASS is None:
        from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePrivateKey  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey  # noqa: PLC0415
        from pyhanko.sign.signers import SimpleSigner  # noqa: PLC0415
        from pyhanko_certvalidator.util import get_pyca_cryptography_hash, process_pss_params  # noqa: PLC0415

        class _KeyCachingSigner(SimpleSigner):
            pyca_key = None

            def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
                key = self.pyca_key
                mech = self.get_signature_mechanism_for_digest(digest_algorithm)
                try:
                    algo = mech.signature_algo
                except ValueError:
                    algo = mech["algorithm"].native
                if algo == "rsassa_pkcs1v15" and isinstance(key, RSAPrivateKey):
                    return key.sign(data, PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))
                if algo == "rsassa_pss" and isinstance(key, RSAPrivateKey):
                    padding, hash_algo = process_pss_params(mech["parameters"])
                    return key.sign(data, padding, hash_algo)
                if algo == "ecdsa" and isinstance(key, EllipticCurvePrivateKey):
                    return key.sign(data, ECDSA(get_pyca_cryptography_hash(digest_algorithm)))
                return super().sign_raw(data, digest_algorithm)  # other key types: pyHanko's path

        _SIGNER_CLASS = _KeyCachingSigner

    asn1_others = [translate_pyca_cryptography_cert_to_asn1(c) for c in other_certs]
    signer = _SIGNER_CLASS(
        signing_cert=translate_pyca_cryptography_cert_to_asn1(certificate),
        signing_key=translate_pyca_cryptography_key_to_asn1(private_key),
        cert_registry=SimpleCertificateStore.from_certs(asn1_others),
    )
    signer.pyca_key = private_key
    return signer


_UNKNOWN = object()


def _place(place) -> tuple[int, tuple] | None:
    """A place as :func:`contracts.seal.signature_places` gives it ([page, [x1, y1, x2, y2]]) as pyHanko wants it."""
    return (int(place[0]), tuple(float(v) for v in place[1])) if place else None


#: Image XObjects' encoded streams by image (the seal is one image per bank name, contracts.seal.seal_image; a stamp
#: one per enterprise): (image, (size, rgb, alpha)), the image kept so that its id stays its own.
_ENCODED: dict[int, tuple] = {}
_ENCODED_MAX = 64


def _encoded(img) -> tuple:
    """(width, height), Flate-compressed RGB and alpha of ``img`` as pyHanko's ``pil_image`` writes them (the
    same bytes), compressed once per image: compressing the 600 px seal was ~8 ms of every seal."""
    import zlib  # noqa: PLC0415

    hit = _ENCODED.get(id(img))
    if hit is not None and hit[0] is img:
        return hit[1]
    alpha = zlib.compress(img.split()[-1].tobytes()) if img.mode == "RGBA" else None
    rgb = img.convert("RGB") if img.mode != "RGB" else img
    value = ((img.width, img.height), zlib.compress(rgb.tobytes()), alpha)
    if len(_ENCODED) >= _ENCODED_MAX:
        _ENCODED.pop(next(iter(_ENCODED)))
    _ENCODED[id(img)] = (img, value)
    return value


def _image_content(img):
    """A pyHanko ``PdfImage`` for an RGB(A) Pillow image whose XObject is written from :func:`_encoded`."""
    from pyhanko.pdf_utils import generic  # noqa: PLC0415
    from pyhanko.pdf_utils.generic import pdf_name  # noqa: PLC0415
    from pyhanko.pdf_utils.images import PdfImage  # noqa: PLC0415

    class _EncodedImage(PdfImage):
        @property
        def image_ref(self):
            ref = self._image_ref
            if ref is None or ref.get_pdf_handler() is not self.writer:
                (width, height), rgb, alpha = _encoded(self.image)

                def xobject(space: str, data: bytes, **extra):
                    return self.writer.add_object(generic.StreamObject({
                        pdf_name("/Type"): pdf_name("/XObject"), pdf_name("/Subtype"): pdf_name("/Image"),
                        pdf_name("/Width"): generic.NumberObject(width), pdf_name("/Height"): generic.NumberObject(height),
                        **extra, pdf_name("/ColorSpace"): pdf_name(space),
                        pdf_name("/BitsPerComponent"): generic.NumberObject(8),
                        pdf_name("/Filter"): pdf_name("/FlateDecode")}, encoded_data=data))

                extra = {pdf_name("/SMask"): xobject("/DeviceGray", alpha)} if alpha is not None else {}
                self._image_ref = ref = xobject("/DeviceRGB", rgb, **extra)
            return ref

    if img.mode not in ("RGB", "RGBA"):
        return PdfImage(img)
    return _EncodedImage(img)


def _bytes_reserved(signer) -> int:
    """Room for the signature container, so that pyHanko does not sign a dummy first to measure it (a whole second
    CMS signature each time): the certificates it embeds, 1 KB for the signature value (RSA up to 8192 bits) and
    4 KB for the signed attributes and the structure, as hex. Too little is caught (:func:`_sign_with` then lets
    pyHanko measure); too much is only zeros in the file."""
    certs = [signer.signing_cert, *getattr(signer, "cert_registry", ())]
    return 2 * (sum(len(c.dump()) for c in certs if c is not None) + 1024 + 4096)


def _seal_appearance(pdf: bytes, field_name: str, seal_name: str, place=_UNKNOWN):
    """(new field spec, stamp style) for a visible seal at the signature block's seal circle, or (None, None).
    ``place``: the circle's place when the caller knows it (contracts.seal.signature_places; None: there is none)."""
    from .seal import seal_box, seal_image  # noqa: PLC0415

    found = seal_box(pdf) if place is _UNKNOWN else _place(place)
    if found is None:
        return None, None
    from pyhanko import stamp  # noqa: PLC0415
    from pyhanko.sign import fields  # noqa: PLC0415

    page, box = found
    spec = fields.SigFieldSpec(sig_field_name=field_name, on_page=page, box=box)
    style = stamp.StaticStampStyle(background=_image_content(seal_image(seal_name)), background_opacity=1, border_width=0)
    return spec, style


def _sign_with(signer, pdf: bytes, *, reason: str, location: str, field_name: str,
               seal_name: str | None = None, appearance: tuple | None = None, seal_place=_UNKNOWN) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter  # noqa: PLC0415
    from pyhanko.sign import fields, signers  # noqa: PLC0415
    from pyhanko.sign.general import SigningError as PyHankoSigningError  # noqa: PLC0415

    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        reason=reason,
        location=location,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
    )
    spec, style = (_seal_appearance(pdf, field_name, seal_name, seal_place) if seal_name
                   else appearance or (None, None))

    def sign(reserved: int | None):
        try:
            writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        except Exception as exc:
            raise SigningError(f"Not a readable PDF: {exc}") from exc
        pdf_signer = signers.PdfSigner(meta, signer=signer, stamp_style=style, new_field_spec=spec)
        return _run_sync(lambda: pdf_signer.sign_pdf(writer, bytes_reserved=reserved))

    try:
        out = sign(_bytes_reserved(signer))
    except PyHankoSigningError as exc:
        if "larger than expected" not in str(exc):
            raise
        out = sign(None)  # more than the allowance (a long chain?): pyHanko measures it
    signed = out.getvalue()
    if not signed.startswith(pdf):  # pragma: no cover - pyhanko guarantees this
        raise SigningError("Signed PDF does not start with the original bytes")
    return signed


def _run_sync(fn):
    """Run ``fn`` (which may call ``asyncio.run`` inside pyhanko) even from async code."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


# --------------------------------------------------------------------------- backends


class DevSelfSignedBackend:
    """Development seal: self-signed RSA certificate kept in ``key_dir``.

    Files: ``seal-key.pem`` (PKCS#8, unencrypted, 0600) and ``seal-cert.pem``
    (0600).  Created on first use under an exclusive lock, reused afterwards.
    Not trusted by any PDF reader — for development and tests only.
    """

    name = "dev-self-signed"
    visible_seal = True  # sign() takes seal_name= and draws the seal in the signature block
    takes_seal_place = True  # ... and seal_place=, when the caller already knows where
    KEY_FILE = "seal-key.pem"
    CERT_FILE = "seal-cert.pem"

    def __init__(
        self,
        key_dir: Path | str,
        common_name: str = "loanservice dev seal",
        *,
        key_size: int = 3072,
        valid_days: int = 3650,
    ) -> None:
        self.key_dir = Path(key_dir)
        self.common_name = common_name
        self.key_size = key_size
        self.valid_days = valid_days
        self._signer = None

    @classmethod
    def from_settings(cls, settings: Any) -> DevSelfSignedBackend:
        key_dir = getattr(settings, "CONTRACT_SIGNING_KEY_DIR", None)
        if not key_dir:
            base = Path(getattr(settings, "BASE_DIR", "."))
            key_dir = base / "var" / "keys"
        return cls(Path(key_dir))

    @property
    def key_path(self) -> Path:
        return self.key_dir / self.KEY_FILE

    @property
    def cert_path(self) -> Path:
        return self.key_dir / self.CERT_FILE

    def ensure_keys(self) -> tuple[Path, Path]:
        """Generate key + certificate if missing; return their paths."""
        if self.key_path.is_file() and self.cert_path.is_file():
            return self.key_path, self.cert_path
        self.key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_path = self.key_dir / ".seal.lock"
        with open(lock_path, "a+b") as lock:
            with contextlib.suppress(ImportError):
                import fcntl  # noqa: PLC0415

                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            # Re-check under the lock: another process may have generated them.
            if not (self.key_path.is_file() and self.cert_path.is_file()):
                self.cert_path.unlink(missing_ok=True)  # a lone cert/key is useless: redo both
                key_pem, cert_pem = self._generate()
                write_private(self.key_path, key_pem)
                write_private(self.cert_path, cert_pem)  # written last: "both exist" = complete
        return self.key_path, self.cert_path

    def _generate(self) -> tuple[bytes, bytes]:
        from cryptography import x509  # noqa: PLC0415
        from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415
        from cryptography.x509.oid import NameOID  # noqa: PLC0415

        key = rsa.generate_private_key(public_exponent=65537, key_size=self.key_size)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "loanservice (development only)"),
                x509.NameAttribute(NameOID.COMMON_NAME, self.common_name),
            ]
        )
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=self.valid_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,  # a.k.a. non-repudiation, required for seals
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return key_pem, cert.public_bytes(serialization.Encoding.PEM)

    def certificate(self):
        """The seal certificate (``cryptography`` object); generates keys if needed."""
        from cryptography import x509  # noqa: PLC0415

        _, cert_path = self.ensure_keys()
        return x509.load_pem_x509_certificate(cert_path.read_bytes())

    def trust_roots(self) -> list:
        """Certificates :func:`verify_pdf` should trust for this backend's seals."""
        return [self.certificate()]

    def _load_signer(self):
        if self._signer is None:
            from cryptography import x509  # noqa: PLC0415
            from cryptography.hazmat.primitives.serialization import load_pem_private_key  # noqa: PLC0415

            key_path, cert_path = self.ensure_keys()
            try:
                key = load_pem_private_key(key_path.read_bytes(), password=None)
                cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            except (OSError, ValueError) as exc:
                raise SigningError(
                    f"Could not load the dev seal key material from {self.key_dir}: {exc}"
                ) from exc
            self._signer = make_signer(key, cert)
        return self._signer

    def sign(self, pdf: bytes, *, reason: str, location: str, field_name: str = DEFAULT_FIELD_NAME,
             seal_name: str | None = None, seal_place=_UNKNOWN) -> bytes:
        return _sign_with(self._load_signer(), pdf, reason=reason, location=location, field_name=field_name,
                          seal_name=seal_name, seal_place=seal_place)


class Pkcs12Backend:
    """Seal with a CA-issued certificate from a PKCS#12 (.p12/.pfx) file.

    ``passphrase`` may be ``None`` for an unencrypted archive.  CA certificates
    contained in the archive are embedded in the signature.
    """

    name = "pkcs12"
    visible_seal = True
    takes_seal_place = True

    def __init__(self, path: Path | str, passphrase: bytes | str | None = None) -> None:
        self.path = Path(path)
        if isinstance(passphrase, str):
            passphrase = passphrase.encode()
        self.passphrase = passphrase
        self._signer = None
        self._chain: list = []

    @classmethod
    def from_settings(cls, settings: Any) -> Pkcs12Backend:
        """``CONTRACT_SIGNING_P12`` / ``CONTRACT_SIGNING_P12_PASSPHRASE`` from settings, else env."""
        path = getattr(settings, "CONTRACT_SIGNING_P12", None) or os.environ.get("CONTRACT_SIGNING_P12")
        if not path:
            raise SigningError(
                "Pkcs12Backend needs CONTRACT_SIGNING_P12 (path to the .p12/.pfx file) "
                "in the settings or the environment."
            )
        passphrase = getattr(settings, "CONTRACT_SIGNING_P12_PASSPHRASE", None)
        if passphrase is None:
            passphrase = os.environ.get("CONTRACT_SIGNING_P12_PASSPHRASE")
        return cls(Path(path), passphrase or None)

    def _load(self):
        if self._signer is None:
            from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: PLC0415

            try:
                data = self.path.read_bytes()
            except OSError as exc:
                raise SigningError(f"Cannot read PKCS#12 file {self.path}: {exc}") from exc
            try:
                key, cert, extra = pkcs12.load_key_and_certificates(data, self.passphrase)
            except (ValueError, TypeError) as exc:
                raise SigningError(
                    f"Cannot load PKCS#12 file {self.path} (wrong passphrase?): {exc}"
                ) from exc
            if key is None or cert is None:
                raise SigningError(f"PKCS#12 file {self.path} must contain a private key and its certificate")
            self._signer = make_signer(key, cert, extra)
            self._chain = [cert, *extra]
        return self._signer

    def certificate(self):
        self._load()
        return self._chain[0]

    def trust_roots(self) -> list:
        """Self-signed CA certificates shipped in the archive, else the seal certificate itself (pinned)."""
        self._load()
        roots = [c for c in self._chain[1:] if c.issuer == c.subject]
        return roots or [self._chain[0]]

    def sign(self, pdf: bytes, *, reason: str, location: str, field_name: str = DEFAULT_FIELD_NAME,
             seal_name: str | None = None, seal_place=_UNKNOWN) -> bytes:
        return _sign_with(self._load(), pdf, reason=reason, location=location, field_name=field_name,
                          seal_name=seal_name, seal_place=seal_place)


def load_backend(dotted_path: str, settings: Any = None) -> SigningBackend:
    """Instantiate the backend at ``dotted_path`` ("package.module.ClassName").

    If the class has ``from_settings(settings)``, that is used; otherwise it is
    called without arguments.  A module-level factory function also works.
    """
    module_name, _, attr = dotted_path.rpartition(".")
    if not module_name:
        raise SigningError(f"CONTRACT_SIGNING_BACKEND must be a dotted path, got {dotted_path!r}")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise SigningError(f"Cannot import signing backend {dotted_path!r}: {exc}") from exc
    from_settings = getattr(factory, "from_settings", None)
    backend = from_settings(settings) if callable(from_settings) else factory()
    if not isinstance(backend, SigningBackend):
        raise SigningError(f"{dotted_path} does not implement SigningBackend (name + sign())")
    return backend


_BACKEND_CACHE: dict[tuple, SigningBackend] = {}


def get_backend() -> SigningBackend:
    """The backend named by ``settings.CONTRACT_SIGNING_BACKEND`` (default: dev self-signed).

    Instances are cached per process and per relevant settings (backend path, key
    dir, PKCS#12 path), so the private key is parsed once, not on every contract;
    changing those settings (e.g. ``override_settings`` in tests) gives a new one.
    """
    from django.conf import settings  # noqa: PLC0415

    dotted = getattr(settings, "CONTRACT_SIGNING_BACKEND", None) or DEFAULT_BACKEND
    key = (
        dotted,
        str(getattr(settings, "CONTRACT_SIGNING_KEY_DIR", None)),
        str(getattr(settings, "CONTRACT_SIGNING_P12", None) or os.environ.get("CONTRACT_SIGNING_P12")),
    )
    backend = _BACKEND_CACHE.get(key)
    if backend is None:
        backend = _BACKEND_CACHE[key] = load_backend(dotted, settings)
    return backend


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    signed: bool
    intact: bool
    signer: str | None
    signed_at: dt.datetime | None
    covers_whole_file: bool
    message_zh: str
    message_en: str
    #: signer certificate chains to one of the given trust roots
    trusted: bool = False
    #: the bytes before the seal hash to ``expected_unsigned_sha256`` (None: not checked)
    matches_original: bool | None = None
    #: the certificates this result rests on (the signer's and the path it was validated on) are all valid from
    #: ``valid_from`` to ``valid_until``: outside that window the same bytes could validate differently
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None


MSG_TAMPERED = ("文件已被篡改", "The file was altered after signing")
MSG_NOT_SIGNED = ("文件未加盖电子签章", "The file is not signed")
MSG_UNREADABLE = ("无法读取该文件，不是有效的 PDF 文件", "The file could not be read as a PDF")
MSG_MISMATCH = (
    "签章文件与存档的原始合同不一致",
    "The signed file does not match the archived original contract",
)
MSG_UNTRUSTED = (
    "签章证书不受信任：文件未被修改，但签章不是由本行的签章证书加盖的",
    "The seal certificate is not trusted: the file is unchanged, but it was not sealed with the bank's certificate",
)
MSG_OK = (
    "电子签章有效，文件自签章后未被修改",
    "The seal is valid; the file has not been altered since signing",
)
NOTE_UNTRUSTED = (
    "（注意：签章证书未经受信任的证书机构验证）",
    " (note: the signing certificate is not verified against a trusted certificate authority)",
)

_EOF_RE = re.compile(rb"%%EOF(\r\n|\r|\n)?")
#: Any of these in an unreadable/unsigned-looking file means a signature was there.
_SIG_MARKERS = (b"/ByteRange", b"/ETSI.CAdES.detached", b"/adbe.pkcs7", b"/Contents <30")


def _looks_signed(pdf: bytes) -> bool:
    return any(marker in pdf for marker in _SIG_MARKERS)


def _result(
    msg: tuple[str, str],
    *,
    ok=False,
    signed=False,
    intact=False,
    signer=None,
    signed_at=None,
    covers=False,
    trusted=False,
    matches=None,
    note: tuple[str, str] | None = None,
    window: tuple[dt.datetime | None, dt.datetime | None] = (None, None),
) -> VerifyResult:
    zh, en = msg
    if note:
        zh, en = zh + note[0], en + note[1]
    return VerifyResult(ok, signed, intact, signer, signed_at, covers, zh, en, trusted, matches, *window)


def _certificate_window(status) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(latest not_before, earliest not_after) of the signer's certificate and of the path it was validated on
    (root included): the time span in which validating the same bytes against the same roots gives the same
    answer (validation is offline, at the current time, without revocation data)."""
    certs = [status.signing_cert]
    if status.validation_path is not None:
        certs += list(status.validation_path.iter_certs(include_root=True))
    return max(c.not_valid_before for c in certs), min(c.not_valid_after for c in certs)


def trust_roots_fingerprint(trust_roots: Iterable | dict | None) -> str:
    """SHA-256 over the DER of the trust roots (a list, or a dict of lists by signature field as
    :func:`signatures_report` takes them): two validations with the same fingerprint trusted the same roots."""
    by_field = trust_roots if isinstance(trust_roots, dict) else {None: trust_roots}
    digest = hashlib.sha256()
    for field in sorted(by_field, key=lambda f: (f is not None, f or "")):
        roots = by_field[field]
        digest.update(b"-" if roots is None else f"{field or ''}:{len(list(roots))}".encode())
        for der in sorted(_to_asn1_cert(c).dump() for c in roots or ()):
            digest.update(hashlib.sha256(der).digest())
    return digest.hexdigest()


def _prefix_candidates(pdf: bytes, limit: int) -> list[int]:
    """End offsets of each ``%%EOF`` line up to ``limit`` (with and without the EOL)."""
    ends: list[int] = []
    for m in _EOF_RE.finditer(pdf, 0, limit):
        ends.append(m.start() + 5)
        if m.group(1):
            ends.append(m.end())
    return ends


def unsigned_prefix(pdf: bytes) -> bytes | None:
    """The document as it was before the first signature was added (None if unsigned)."""
    from pyhanko.pdf_utils.reader import PdfFileReader  # noqa: PLC0415

    try:
        sigs = PdfFileReader(io.BytesIO(pdf), strict=False).embedded_signatures
    except Exception:
        return None
    if not sigs:
        return None
    contents_start = min(int(s.byte_range[1]) for s in sigs)
    ends = _prefix_candidates(pdf, contents_start)
    # The signature revision starts after the last %%EOF preceding its /Contents.
    return pdf[: ends[-1]] if ends else None


def _pick_signature(sigs: Sequence, field_name: str | None):
    if field_name:
        for s in sigs:
            if s.field_name == field_name:
                return s
    return sigs[0]


def _validate(sig, trust_roots: Iterable | None):
    from pyhanko.sign.validation import validate_pdf_signature  # noqa: PLC0415
    from pyhanko_certvalidator import ValidationContext  # noqa: PLC0415

    if trust_roots is None:
        # No roots given: pin the signer's own certificate so that path building
        # succeeds quietly; verify_pdf then reports trusted=False itself.
        roots = [sig.signer_cert]
    else:
        roots = [_to_asn1_cert(c) for c in trust_roots]
    # Never fetch CRL/OCSP over the network.
    vc = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")
    return _run_sync(lambda: validate_pdf_signature(sig, signer_validation_context=vc))


def verify_pdf(
    pdf: bytes,
    *,
    expected_unsigned_sha256: str | None = None,
    trust_roots: Iterable | None = None,
    field_name: str | None = DEFAULT_FIELD_NAME,
) -> VerifyResult:
    """Check the bank seal on ``pdf``.

    ``ok`` is true only if the file is signed, the signature is cryptographically
    valid and intact, it covers the whole file (nothing appended later) and,
    when given, the bytes before the seal hash to ``expected_unsigned_sha256``.
    When ``trust_roots`` (cryptography/asn1crypto certificates or PEM/DER bytes)
    is given, the signer must also chain to one of them; without it, trust is
    not required and the message carries a note.  Use :func:`verify_with_backend`
    to trust the configured backend's certificate (the dev certificate itself
    for the dev backend).  The seal is the signature field ``field_name``
    (default "BankSeal"), else the first signature in the file.
    """
    from pyhanko.pdf_utils.reader import PdfFileReader  # noqa: PLC0415

    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        sigs = reader.embedded_signatures
    except Exception:
        # Unparseable.  If it carries a signature dictionary, someone edited it.
        if _looks_signed(pdf):
            return _result(MSG_TAMPERED, signed=True)
        return _result(MSG_UNREADABLE)
    if not sigs:
        if _looks_signed(pdf):  # a signature is there but no longer recognisable
            return _result(MSG_TAMPERED, signed=True)
        return _result(MSG_NOT_SIGNED)

    try:
        sig = _pick_signature(sigs, field_name)
        status = _signature_status(sig, _validate(sig, trust_roots))
    except Exception:
        return _result(MSG_TAMPERED, signed=True)
    return _seal_result(pdf, status, expected_unsigned_sha256=expected_unsigned_sha256,
                        trust_required=trust_roots is not None)


def _seal_result(pdf: bytes, status: SignatureStatus, *, expected_unsigned_sha256: str | None,
                 trust_required: bool) -> VerifyResult:
    """The seal check of :func:`verify_pdf` on one validated signature of ``pdf``."""
    trusted = status.trusted and trust_required
    common = dict(signed=True, signer=status.signer, signed_at=status.timestamped_at or status.signed_at,
                  covers=status.covers_whole_file, trusted=trusted, window=(status.valid_from, status.valid_until))
    if not status.intact or not status.covers_whole_file:
        return _result(MSG_TAMPERED, intact=status.intact, **common)

    matches = None
    if expected_unsigned_sha256 is not None:
        want = expected_unsigned_sha256.strip().lower()
        matches = any(hashlib.sha256(pdf[:end]).hexdigest() == want for end in _prefix_candidates(pdf, status.contents_at))
        if not matches:
            return _result(MSG_MISMATCH, intact=status.intact, matches=False, **common)

    if trust_required and not trusted:
        return _result(MSG_UNTRUSTED, intact=status.intact, matches=matches, **common)
    note = None if trusted else NOTE_UNTRUSTED
    return _result(MSG_OK, ok=True, intact=status.intact, matches=matches, note=note, **common)


def seal_from_report(pdf: bytes, *, readable: bool, statuses: Sequence[SignatureStatus],
                     expected_unsigned_sha256: str | None = None, trust_required: bool = True,
                     field_name: str = DEFAULT_FIELD_NAME) -> VerifyResult:
    """What :func:`verify_pdf` says of the seal of ``pdf``, read off :func:`signatures_report` of the same bytes (whose
    ``field_name`` signature it validated against the seal's trust roots) rather than validating the seal again.
    ``trust_required``: the report had the seal's roots (verify_pdf's ``trust_roots`` given). A file without that
    field is judged on its first signature, as verify_pdf does, but never trusted as the seal: the report validated
    that signature against its own field's roots."""
    if not readable or not statuses:
        if _looks_signed(pdf):
            return _result(MSG_TAMPERED, signed=True)
        return _result(MSG_UNREADABLE if not readable else MSG_NOT_SIGNED)
    status = next((s for s in statuses if s.field == field_name), None) or replace(statuses[0], trusted=False)
    if not status.validated:
        return _result(MSG_TAMPERED, signed=True)
    return _seal_result(pdf, status, expected_unsigned_sha256=expected_unsigned_sha256, trust_required=trust_required)


def verify_with_backend(
    pdf: bytes,
    *,
    expected_unsigned_sha256: str | None = None,
    backend: SigningBackend | None = None,
) -> VerifyResult:
    """:func:`verify_pdf` trusting the (configured) backend's certificates, if it exposes ``trust_roots()``."""
    backend = backend if backend is not None else get_backend()
    roots_fn = getattr(backend, "trust_roots", None)
    roots = roots_fn() if callable(roots_fn) else None
    return verify_pdf(pdf, expected_unsigned_sha256=expected_unsigned_sha256, trust_roots=roots)


# --------------------------------------------------------------------------- the customer party's own signature


def _party_appearance(pdf: bytes, field_name: str, stamp: tuple[str, str], place=_UNKNOWN):
    """(new field spec, stamp style) at the customer's column of the signature block, or None (invisible)."""
    from .seal import signature_box, signature_image  # noqa: PLC0415

    found = signature_box(pdf) if place is _UNKNOWN else _place(place)
    if found is None:
        return None
    from pyhanko import stamp as pyhanko_stamp  # noqa: PLC0415
    from pyhanko.sign import fields  # noqa: PLC0415

    page, box = found
    spec = fields.SigFieldSpec(sig_field_name=field_name, on_page=page, box=box)
    style = pyhanko_stamp.StaticStampStyle(background=_image_content(signature_image(*stamp)), background_opacity=1,
                                           border_width=0)
    return spec, style


def sign_as_party(pdf: bytes, *, private_key, certificate, chain: Iterable = (), reason: str, location: str,
                  field_name: str = PARTY_FIELD_NAME, stamp: tuple[str, str] | None = None, place=_UNKNOWN) -> bytes:
    """``pdf`` signed (PAdES, incremental update) with a party's own key and certificate (e.g. an enterprise's,
    issued by the bank's sandbox CA), with ``chain`` embedded. ``stamp`` = (name, second line) draws the
    signature visibly in the customer's column of the signature block when the template has one; ``place``
    is that column's place when the caller knows it (contracts.seal.signature_places), else it is found."""
    signer = make_signer(private_key, certificate, chain)
    appearance = _party_appearance(pdf, field_name, stamp, place) if stamp else None
    return _sign_with(signer, pdf, reason=reason, location=location, field_name=field_name, appearance=appearance)


@dataclass(frozen=True)
class SignatureStatus:
    """One PDF signature as validated: ``ok`` when intact, trusted and nothing but permitted changes (further
    signatures) came after it."""

    field: str
    signer: str
    issuer: str
    serial: str
    signed_at: dt.datetime | None
    intact: bool
    trusted: bool
    covers_whole_file: bool
    #: later revisions only add signatures or fill fields (pyHanko's difference analysis)
    changes_permitted: bool
    ok: bool
    #: as VerifyResult's: the certificates it rests on are all valid in [valid_from, valid_until]
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None
    #: False when pyHanko could not validate it at all (every other field is then empty or False)
    validated: bool = True
    #: where the signature's /Contents start (its ByteRange's first gap): the signed revision ends before it
    contents_at: int | None = None
    #: the time of an embedded, intact timestamp token (a TSA's), if any
    timestamped_at: dt.datetime | None = None


def _cn(name) -> str:
    native = name.native
    return native.get("common_name") or native.get("organization_name") or name.human_friendly


def _signature_status(sig, status) -> SignatureStatus:
    """One embedded signature (pyHanko's) as its validation ``status`` found it."""
    from pyhanko.sign.validation.status import SignatureCoverageLevel  # noqa: PLC0415

    cert = status.signing_cert
    intact = bool(status.intact and status.valid)
    covers = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    permitted = covers or (status.coverage == SignatureCoverageLevel.ENTIRE_REVISION and bool(status.docmdp_ok))
    stamped = status.timestamp_validity
    return SignatureStatus(
        field=sig.field_name, signer=_cn(cert.subject), issuer=_cn(cert.issuer), serial=format(cert.serial_number, "x"),
        signed_at=status.signer_reported_dt, intact=intact, trusted=bool(status.trusted), covers_whole_file=covers,
        changes_permitted=permitted, ok=intact and bool(status.trusted) and permitted,
        **dict(zip(("valid_from", "valid_until"), _certificate_window(status), strict=True)),
        contents_at=int(sig.byte_range[1]),
        timestamped_at=stamped.timestamp if stamped is not None and stamped.intact else None)


def signatures_report(pdf: bytes, *, trust_roots: Iterable | dict) -> tuple[bool, list[SignatureStatus]]:
    """Validate every signature of ``pdf`` with pyHanko against ``trust_roots`` (offline): certificates, or a dict
    of them by signature field name (key None: any other field), so that each party's signature must chain to
    its own authority. Returns (readable, statuses in signing order); an unreadable file is (False, [])."""
    from pyhanko.pdf_utils.reader import PdfFileReader  # noqa: PLC0415
    from pyhanko.sign.validation import validate_pdf_signature  # noqa: PLC0415
    from pyhanko_certvalidator import ValidationContext  # noqa: PLC0415

    by_field = trust_roots if isinstance(trust_roots, dict) else {None: trust_roots}
    by_field = {k: [_to_asn1_cert(c) for c in v] for k, v in by_field.items()}
    try:
        sigs = PdfFileReader(io.BytesIO(pdf), strict=False).embedded_signatures
    except Exception:
        return False, []
    out: list[SignatureStatus] = []
    for sig in sigs:
        roots = by_field.get(sig.field_name, by_field.get(None, []))
        vc = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")
        try:
            status = _run_sync(lambda sig=sig, vc=vc: validate_pdf_signature(sig, signer_validation_context=vc))
            out.append(_signature_status(sig, status))
        except Exception:
            out.append(SignatureStatus(sig.field_name, "", "", "", None, False, False, False, False, False, validated=False))
    return True, out
