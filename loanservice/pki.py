"""The bank's sandbox certificate authority (沙箱 CA): a root key and self-signed root certificate generated once and
kept on disk like the development seal (contracts.signing.DevSelfSignedBackend: PEM files, mode 0600, in a 0700
directory, created under a file lock so concurrent workers do not race), and the certificates it issues:

* one per enterprise, for the enterprise's own signature on its contracts (contracts.services);
* one for the audit trail's daily anchors (loanservice.audit).

Directory: ``settings.SANDBOX_CA_DIR``, else ``ca/`` inside ``CONTRACT_SIGNING_KEY_DIR``. Every web and worker
process must share it, as they share the seal's key directory. A real deployment replaces it by a licensed CA and
keys in an HSM (docs/security.md). Keys are ECDSA P-256 (quick to generate on first use; pyHanko and every PDF
reader verify them).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT_KEY, ROOT_CERT = "ca-key.pem", "ca-cert.pem"
ROOT_NAME = "loanservice sandbox CA"
ORGANISATION = "loanservice (sandbox)"


def ca_dir() -> Path:
    from django.conf import settings  # noqa: PLC0415 - read lazily: tests and deployments override it

    configured = getattr(settings, "SANDBOX_CA_DIR", "")
    if configured:
        return Path(configured)
    return Path(getattr(settings, "CONTRACT_SIGNING_KEY_DIR", Path(settings.BASE_DIR) / "var" / "keys")) / "ca"


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` atomically with mode 0600 (readers never see a partial file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)  # whatever the umask
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(directory: Path):
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(directory / ".ca.lock", "a+b") as lock:
        with contextlib.suppress(ImportError):
            import fcntl  # noqa: PLC0415

            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        yield


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def load_cert(pem: str | bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)


def _key_usage(*, sign_certs: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=not sign_certs, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=sign_certs, crl_sign=sign_certs,
                         encipher_only=False, decipher_only=False)


@dataclass(frozen=True)
class Issued:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


class SandboxCA:
    """The root (generated on first use, reused afterwards) and the certificates it issues."""

    def __init__(self, directory: Path | str | None = None, *, valid_days: int = 3650) -> None:
        self.directory = Path(directory) if directory else ca_dir()
        self.valid_days = valid_days

    # ---------------------------------------------------------------- the root
    def _root_paths(self) -> tuple[Path, Path]:
        return self.directory / ROOT_KEY, self.directory / ROOT_CERT

    def ensure_root(self) -> tuple[Path, Path]:
        key_path, cert_path = self._root_paths()
        if key_path.is_file() and cert_path.is_file():
            return key_path, cert_path
        with _locked(self.directory):
            if not (key_path.is_file() and cert_path.is_file()):  # another process may have made them
                cert_path.unlink(missing_ok=True)
                key = ec.generate_private_key(ec.SECP256R1())
                name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                                  x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
                                  x509.NameAttribute(NameOID.COMMON_NAME, ROOT_NAME)])
                now = dt.datetime.now(dt.UTC)
                cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                        .serial_number(x509.random_serial_number())
                        .not_valid_before(now - dt.timedelta(minutes=5))
                        .not_valid_after(now + dt.timedelta(days=self.valid_days * 2))
                        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                        .add_extension(_key_usage(sign_certs=True), critical=True)
                        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                        .sign(key, hashes.SHA256()))
                write_private(key_path, key_pem(key))
                write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))  # last: "both exist" = done
        return key_path, cert_path

    def root_certificate(self) -> x509.Certificate:
        _key_path, cert_path = self.ensure_root()
        return load_cert(cert_path.read_bytes())

    def _root_key(self):
        key_path, _cert_path = self.ensure_root()
        return serialization.load_pem_private_key(key_path.read_bytes(), password=None)

    # ---------------------------------------------------------------- issuing
    def issue(self, subject: list[tuple], *, valid_days: int | None = None) -> Issued:
        """A new key pair and an end-entity signing certificate (digitalSignature + nonRepudiation) for
        ``subject``: a list of (NameOID, value)."""
        root = self.root_certificate()
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        not_after = min(now + dt.timedelta(days=valid_days or self.valid_days), root.not_valid_after_utc)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(oid, value) for oid, value in subject]))
                .issuer_name(root.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(not_after)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(_key_usage(sign_certs=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root.public_key()), critical=False)
                .sign(self._root_key(), hashes.SHA256()))
        return Issued(key, cert)

    def issued_by_root(self, cert: x509.Certificate, *, at: dt.datetime | None = None) -> bool:
        """Whether ``cert`` carries this root's signature and was valid at ``at`` (default now)."""
        root = self.root_certificate()
        if cert.issuer != root.subject:
            return False
        try:
            cert.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            return False
        at = at or dt.datetime.now(dt.UTC)
        return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc

    # ---------------------------------------------------------------- keys kept for the holders
    def _key_path(self, name: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,80}", name) or name.startswith("."):
            raise ValueError(f"bad key name {name!r}")
        return self.directory / "keys" / f"{name}.pem"

    def store_key(self, name: str, key) -> None:
        path = self._key_path(name)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(path, key_pem(key))

    def load_key(self, name: str):
        return serialization.load_pem_private_key(self._key_path(name).read_bytes(), password=None)

    def has_key(self, name: str) -> bool:
        return self._key_path(name).is_file()


def sandbox_ca() -> SandboxCA:
    return SandboxCA()


AUDIT_KEY, AUDIT_CERT = "audit-anchor", "audit-cert.pem"


def audit_signer(ca: SandboxCA | None = None) -> Issued:
    """The key and certificate that sign the audit trail's daily anchors (CN=loanservice audit anchors), issued by
    the sandbox CA once and reused (a new one only when it is missing or has expired)."""
    ca = ca or sandbox_ca()
    ca.ensure_root()  # before taking the lock: making the root takes it too
    cert_path = ca.directory / AUDIT_CERT
    with _locked(ca.directory):
        if cert_path.is_file() and ca.has_key(AUDIT_KEY):
            cert = load_cert(cert_path.read_bytes())
            if ca.issued_by_root(cert):
                return Issued(ca.load_key(AUDIT_KEY), cert)
        issued = ca.issue([(NameOID.COUNTRY_NAME, "CN"), (NameOID.ORGANIZATION_NAME, ORGANISATION),
                           (NameOID.COMMON_NAME, "loanservice audit anchors")])
        ca.store_key(AUDIT_KEY, issued.key)
        write_private(cert_path, issued.certificate.public_bytes(serialization.Encoding.PEM))
    return issued


def sign_bytes(key, data: bytes) -> bytes:
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def signature_valid(cert: x509.Certificate, signature: bytes, data: bytes) -> bool:
    try:
        cert.public_key().verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, TypeError, ValueError):
        return False
    return True


def name_attribute(cert: x509.Certificate, oid) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def issuer_common_name(cert: x509.Certificate) -> str:
    values = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else cert.issuer.rfc4514_string()
