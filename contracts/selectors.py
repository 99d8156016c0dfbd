"""Reads of the contracts stage: the operations queue, a case's contract package, outbound records."""

from __future__ import annotations

import datetime as dt

from django.db.models import Prefetch
from django.utils.translation import gettext as _

from applications.models import LoanApplication
from loanservice.pki import sandbox_ca

from .models import Contract, CoreBankingOutbound, DisbursementOrder
from .pdf import pdf_sha256
from .signing import DEFAULT_FIELD_NAME, PARTY_FIELD_NAME, get_backend, signatures_report


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


def contract_pdf_signatures(contract: Contract) -> dict:
    """The PDF signatures of the contract's latest signed file (sealed by the bank, else signed by the enterprise),
    each validated with pyHanko against its trust root: signer, certificate issuer, time, intact, trusted. ``altered``
    when the file no longer matches the hash recorded at signing or a signature no longer covers what it signed;
    ``ok`` when every expected signature is there and valid; None (and no signatures) before anyone signed the PDF."""
    field, expected = ((contract.signed_pdf, contract.signed_sha256) if contract.signed_pdf
                       else (contract.borrower_signed_pdf, contract.borrower_signed_sha256))
    if not field:
        return {"ok": None, "altered": False, "file": None, "signatures": [],
                "message": _("合同文件尚无电子签名 / The contract file carries no signature yet.")}
    with field.open("rb") as fh:
        data = fh.read()
    hash_ok = pdf_sha256(data) == expected
    readable, statuses = signatures_report(data, trust_roots=signature_trust_roots())
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
    return {"ok": ok, "altered": altered, "message": message, "file": "signed" if contract.signed_pdf else "borrower_signed",
            "hash_ok": hash_ok,
            "signatures": [{"field": s.field, "party": parties.get(s.field, ""), "signer": s.signer, "issuer": s.issuer,
                            "serial": s.serial, "signed_at": s.signed_at, "intact": s.intact, "trusted": s.trusted,
                            "ok": s.ok and not altered} for s in statuses]}
