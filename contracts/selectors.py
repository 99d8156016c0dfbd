"""Reads of the contracts stage: the operations queue, a case's contract package, outbound records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from django.core.cache import cache
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import gettext as _

from applications.models import LoanApplication
from loanservice.pki import sandbox_ca

from .models import Contract, CoreBankingOutbound, DisbursementOrder
from .pdf import pdf_sha256
from .signing import (
    DEFAULT_FIELD_NAME,
    PARTY_FIELD_NAME,
    VerifyResult,
    get_backend,
    seal_from_report,
    signatures_report,
    trust_roots_fingerprint,
)


def contracting_cases(*, limit: int = 200) -> list[LoanApplication]:
    """Cases in contracting with their current contracts (two queries whatever the count)."""
    current = Contract.objects.exclude(status=Contract.Status.VOIDED).order_by("id")
    return list(LoanApplication.objects.filter(status=LoanApplication.Status.CONTRACTING)
                .select_related("enterprise", "product", "branch")
                .prefetch_related(Prefetch("contracts", queryset=current, to_attr="current_contracts"))
                .order_by("updated_at")[:limit])


def disbursements_pending(*, limit: int = 200) -> list[DisbursementOrder]:
    return list(DisbursementOrder.objects.filter(status=DisbursementOrder.Status.PENDING)
                .select_related("application__enterprise", "application__product", "contract")
                .order_by("created_at")[:limit])


def disbursements_recent(*, limit: int = 20) -> list[DisbursementOrder]:
    return list(DisbursementOrder.objects.filter(status=DisbursementOrder.Status.RELEASED)
                .select_related("application__enterprise", "outbound").order_by("-released_at")[:limit])


def core_banking_pending(*, older_than: dt.datetime, limit: int = 500) -> list[int]:
    return list(CoreBankingOutbound.objects.filter(status=CoreBankingOutbound.Status.PENDING, created_at__lt=older_than)
                .values_list("pk", flat=True)[:limit])


def signature_trust_roots() -> dict:
    """Whom each PDF signature must chain to: the enterprise's signature to the bank's sandbox CA, the bank's seal
    to the signing backend's certificates (the dev seal itself, or the CA roots of the PKCS#12)."""
    backend = get_backend()
    roots_fn = getattr(backend, "trust_roots", None)
    return {PARTY_FIELD_NAME: [sandbox_ca().root_certificate()],
            DEFAULT_FIELD_NAME: list(roots_fn()) if callable(roots_fn) else []}


#: The longest a PDF signature validation is served from the cache. The result depends on the exact bytes and the
#: trust roots (both in the key) and on the time only through the certificates' validity, which bounds the lifetime
#: too (validation_ttl: until the earliest not_after). The hour caps what the key does not capture: code or policy
#: changes to how signatures are validated (a pyHanko upgrade, revocation checking added to a backend).
SIGNATURES_CHECK_TTL = 3600


def validation_ttl(windows: Iterable[tuple[dt.datetime | None, dt.datetime | None]], *, now: dt.datetime) -> int:
    """Seconds a validation made ``now`` stays true: until the earliest moment a certificate it rests on expires
    or becomes valid (each window is (valid_from, valid_until)), at most SIGNATURES_CHECK_TTL; 0: do not keep it."""
    ttl = float(SIGNATURES_CHECK_TTL)
    for valid_from, valid_until in windows:
        if valid_until is not None:
            ttl = min(ttl, (valid_until - now).total_seconds())
        if valid_from is not None and valid_from > now:
            ttl = min(ttl, (valid_from - now).total_seconds())
    return max(int(ttl), 0)


def _validation_cached(what: str, sha256: str, trust_roots, compute: Callable[[], tuple[Any, list]]) -> tuple[Any, dt.datetime]:
    """(result, when it was checked) of a pyHanko validation of the file whose bytes hash to ``sha256``, kept in
    the cache under that hash and the trust roots' fingerprint, so that other bytes or other roots are validated
    afresh. ``compute`` gives (result, certificate windows) and runs on a miss."""
    key = f"contracts:pdfsig:v2:{what}:{sha256}:{trust_roots_fingerprint(trust_roots)}"  # v2: SignatureStatus grew
    hit = cache.get(key)
    if hit is not None:
        return hit
    result, windows = compute()
    checked_at = timezone.now()
    ttl = validation_ttl(windows, now=checked_at)
    if ttl > 0:
        cache.set(key, (result, checked_at), ttl)
    return result, checked_at


def pdf_signatures_report(data: bytes, *, sha256: str, trust_roots: dict) -> tuple[bool, list, dt.datetime]:
    """:func:`contracts.signing.signatures_report` of ``data`` (whose SHA-256 the caller computed from those very
    bytes), cached (see _validation_cached): (readable, statuses, checked_at)."""
    def compute():
        readable, statuses = signatures_report(data, trust_roots=trust_roots)
        return (readable, statuses), [(s.valid_from, s.valid_until) for s in statuses]

    (readable, statuses), checked_at = _validation_cached("report", sha256, trust_roots, compute)
    return readable, statuses, checked_at


def contract_pdf_signatures(contract: Contract) -> dict:
    """The PDF signatures of the contract's latest signed file (sealed by the bank, else signed by the enterprise),
    each validated with pyHanko against its trust root: signer, certificate issuer, time, intact, trusted; the
    file is read and hashed on every call, the validation kept in the cache under that hash and the roots
    (pdf_signatures_report), ``checked_at`` when it was made. ``altered``
    when the file no longer matches the hash recorded at signing or a signature no longer covers what it signed;
    ``ok`` when every expected signature is there and valid; None (and no signatures) before anyone signed the PDF."""
    return _pdf_signatures(contract, seal=False)[0]


def contract_signatures_verify(contract: Contract) -> tuple[dict, VerifyResult | None]:
    """(:func:`contract_pdf_signatures`, the bank seal's check of the sealed file or None before the seal): the seal's
    check (:func:`contracts.signing.verify_pdf` against the signing backend's roots, and the bytes before it against
    the contract's hash) is read off the same validation, so a miss validates each signature once."""
    return _pdf_signatures(contract, seal=True)


def _pdf_signatures(contract: Contract, *, seal: bool) -> tuple[dict, VerifyResult | None]:
    field, expected = ((contract.signed_pdf, contract.signed_sha256) if contract.signed_pdf
                       else (contract.borrower_signed_pdf, contract.borrower_signed_sha256))
    if not field:
        return {"ok": None, "altered": False, "file": None, "signatures": [], "checked_at": None,
                "message": _("合同文件尚无电子签名 / The contract file carries no signature yet.")}, None
    with field.open("rb") as fh:
        data = fh.read()
    sha256 = pdf_sha256(data)
    hash_ok = sha256 == expected
    readable, statuses, checked_at = pdf_signatures_report(data, sha256=sha256, trust_roots=signature_trust_roots())
    wanted = [PARTY_FIELD_NAME] if contract.borrower_signed_pdf else []
    wanted += [DEFAULT_FIELD_NAME] if contract.signed_pdf else []
    present = [s.field for s in statuses]
    altered = (not hash_ok or not readable or any(not (s.intact and s.changes_permitted) for s in statuses)
               or any(f not in present for f in wanted))
    ok = not altered and all(s.ok for s in statuses)
    if altered:
        message = _("文件已被篡改：电子签名校验未通过 / The file was altered: its signatures do not validate.")
    elif not ok:
        message = _("文件未被修改，但签名证书不受信任 / The file is unchanged, but a signing certificate is not trusted.")
    else:
        message = _("电子签名均有效，文件自签署后未被修改 / Every signature is valid; the file has not been altered "
                    "since signing.")
    parties = {PARTY_FIELD_NAME: contract.customer_party, DEFAULT_FIELD_NAME: "bank"}
    sealed = None
    if seal and contract.signed_pdf:
        sealed = seal_from_report(data, readable=readable, statuses=statuses, expected_unsigned_sha256=contract.sha256,
                                trust_required=callable(getattr(get_backend(), "trust_roots", None)))
    return {"ok": ok, "altered": altered, "message": message, "file": "signed" if contract.signed_pdf else "borrower_signed",
            "hash_ok": hash_ok, "checked_at": checked_at,
            "signatures": [{"field": s.field, "party": parties.get(s.field, ""), "signer": s.signer, "issuer": s.issuer,
                            "serial": s.serial, "signed_at": s.signed_at, "intact": s.intact, "trusted": s.trusted,
                            "ok": s.ok and not altered} for s in statuses]}, sealed
