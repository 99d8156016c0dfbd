"""The PDF signature validations of the contract pages and the verify API kept in the cache (contracts.selectors.
pdf_signatures_report; the verify API reads the bank seal's check off the same validation): keyed by the SHA-256 of the exact bytes read and the trust roots' fingerprint,
for at most an hour and never past a certificate's validity; a tampered file or other roots are validated afresh,
and the worker validates a newly signed file on commit so that the first view is a hit."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from tests.conftest import borrower_sign_via_api, client_for
from tests.contracts_support import accept, contracts_of
from tests.factories import ApplicationFactory, owner_view

pytestmark = pytest.mark.django_db


def _pages(user):
    from django.test import Client

    c = Client()
    c.force_login(user)
    return c


def _sealed_case(org, *, seed=7, warm=False, capture=None):
    pk, owner, client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=seed))
    detail = accept(client, pk)
    assert borrower_sign_via_api(client, detail["contract"]).status_code == 200
    ops = client_for(org["demo_ops"])
    if warm:
        with capture(execute=True):
            assert ops.post(f"/api/v1/contracts/{detail['contract']}/sign/", {"agree": True}, format="json").status_code == 200
    else:
        assert ops.post(f"/api/v1/contracts/{detail['contract']}/sign/", {"agree": True}, format="json").status_code == 200
    contract = next(c for c in contracts_of(pk) if c.pk == detail["contract"])
    return contract, owner, client


@pytest.fixture
def validations(monkeypatch):
    """The files pyHanko validated, by SHA-256, in order (a spy on the real signatures_report)."""
    from contracts import selectors
    from contracts.pdf import pdf_sha256

    seen: list[str] = []
    real = selectors.signatures_report

    def spy(pdf, **kwargs):
        seen.append(pdf_sha256(pdf))
        return real(pdf, **kwargs)

    monkeypatch.setattr(selectors, "signatures_report", spy)
    return seen


def test_a_repeated_view_is_a_hit_and_says_when_it_was_checked(products, org, validations):
    from django.core.cache import cache

    contract, owner, _client = _sealed_case(org)
    cache.clear()
    validations.clear()
    page = _pages(owner)
    first = page.get(f"/portal/contracts/{contract.pk}/")
    assert first.status_code == 200 and validations == [contract.signed_sha256]
    checked_at = first.context["pdf"]["checked_at"]
    assert first.context["pdf"]["ok"] and checked_at is not None
    assert 'id="pdf-signatures-checked-at"' in first.content.decode()
    for url in (f"/portal/contracts/{contract.pk}/", f"/staff/contracts/{contract.pk}/"):
        again = (page if "portal" in url else _pages(org["demo_ops"])).get(url)
        assert again.status_code == 200 and again.context["pdf"]["checked_at"] == checked_at
        assert again.context["pdf"]["ok"] and "文件已被篡改" not in again.content.decode()
    assert validations == [contract.signed_sha256]  # the staff page and the owner's second view validated nothing


def test_a_tampered_file_is_validated_afresh_and_shown_altered_at_once(products, org, validations):
    contract, owner, client = _sealed_case(org)
    page = _pages(owner)
    assert page.get(f"/portal/contracts/{contract.pk}/").context["pdf"]["ok"]  # the valid result is now cached
    validations.clear()
    path = contract.signed_pdf.path
    data = bytearray(open(path, "rb").read())
    data[400] ^= 0x01
    open(path, "wb").write(bytes(data))
    html = page.get(f"/portal/contracts/{contract.pk}/").content.decode()
    assert "文件已被篡改" in html
    assert len(validations) == 1 and validations[0] != contract.signed_sha256  # the altered bytes, not the cached hit
    r = client.post(f"/api/v1/contracts/{contract.pk}/verify/", format="json")
    assert r.status_code == 200 and r.json()["altered"] and not r.json()["ok"]
    assert validations == validations[:1]  # the verify API found the altered file's validation in the cache


def test_other_trust_roots_are_validated_afresh(products, org, settings, tmp_path, validations):
    """The bank's seal certificate changes (a new key directory: a new dev seal): the same bytes are validated
    against the new roots at once, and the seal made with the old key is no longer trusted."""
    contract, owner, client = _sealed_case(org)
    page = _pages(owner)
    assert page.get(f"/portal/contracts/{contract.pk}/").context["pdf"]["ok"]
    validations.clear()
    from loanservice.pki import ca_dir

    settings.SANDBOX_CA_DIR = ca_dir()  # the enterprise's CA stays; only the bank's seal certificate changes
    settings.CONTRACT_SIGNING_KEY_DIR = tmp_path / "other-keys"
    view = page.get(f"/portal/contracts/{contract.pk}/")
    assert validations == [contract.signed_sha256]  # same bytes, other roots: a miss
    pdf = view.context["pdf"]
    assert not pdf["ok"] and not pdf["altered"]
    rows = {s["field"]: s for s in pdf["signatures"]}
    assert rows["BorrowerSignature"]["ok"] and not rows["BankSeal"]["trusted"]
    assert "证书不受信任" in view.content.decode()
    r = client.post(f"/api/v1/contracts/{contract.pk}/verify/", format="json").json()
    assert not r["ok"] and not r["altered"] and r["checks"]["seal_ok"] is False


def test_an_entry_expires_after_the_hour(products, org, validations):
    from contracts.selectors import SIGNATURES_CHECK_TTL, contract_pdf_signatures

    contract, owner, _client = _sealed_case(org)
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False) as clock:
        validations.clear()
        first = contract_pdf_signatures(contract)
        clock.shift(SIGNATURES_CHECK_TTL - 5)
        assert contract_pdf_signatures(contract)["checked_at"] == first["checked_at"] and len(validations) == 1
        clock.shift(10)
        later = contract_pdf_signatures(contract)
        assert len(validations) == 2 and later["checked_at"] > first["checked_at"] and later["ok"]


def test_an_entry_never_outlives_a_certificate_it_rests_on(products, org):
    """A signature by a certificate expiring in half an hour is kept for half an hour, not the hour: the next
    view after the expiry validates again and finds the certificate no longer valid."""
    from cryptography.x509.oid import NameOID
    from django.core.cache import cache
    from django.core.files.base import ContentFile

    from contracts.pdf import pdf_sha256
    from contracts.selectors import contract_pdf_signatures
    from contracts.signing import sign_as_party
    from loanservice.pki import sandbox_ca

    pk, owner, client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=7))
    contract_id = accept(client, pk)["contract"]
    contract = next(c for c in contracts_of(pk) if c.pk == contract_id)
    issued = sandbox_ca().issue([(NameOID.COMMON_NAME, contract.terms["borrower"]["name"])], valid_days=1)
    signed = sign_as_party(contract.pdf.open("rb").read(), private_key=issued.key, certificate=issued.certificate,
                           chain=[sandbox_ca().root_certificate()], reason="x", location="CN")
    contract.borrower_signed_pdf.save("short-lived.pdf", ContentFile(signed), save=False)
    contract.borrower_signed_sha256 = pdf_sha256(signed)
    contract.save(update_fields=["borrower_signed_pdf", "borrower_signed_sha256"])
    not_after = issued.certificate.not_valid_after_utc
    cache.clear()
    with time_machine.travel(not_after - dt.timedelta(minutes=30), tick=False) as clock:
        report = contract_pdf_signatures(contract)
        assert report["ok"]
        clock.shift(29 * 60)
        assert contract_pdf_signatures(contract)["checked_at"] == report["checked_at"]  # still a hit
        clock.shift(2 * 60)  # the certificate has expired; so has the entry
        after = contract_pdf_signatures(contract)
        assert after["checked_at"] > report["checked_at"]
        assert not after["ok"] and not after["altered"] and not after["signatures"][0]["trusted"]
        html = _pages(owner).get(f"/portal/contracts/{contract.pk}/").content.decode()
        assert "证书不受信任" in html


def test_validation_ttl():
    from contracts.selectors import SIGNATURES_CHECK_TTL, validation_ttl

    now = dt.datetime(2027, 1, 7, 12, tzinfo=dt.UTC)
    years = (now - dt.timedelta(days=30), now + dt.timedelta(days=1000))
    assert validation_ttl([], now=now) == SIGNATURES_CHECK_TTL
    assert validation_ttl([years, (None, None)], now=now) == SIGNATURES_CHECK_TTL
    assert validation_ttl([years, (years[0], now + dt.timedelta(minutes=10))], now=now) == 600
    assert validation_ttl([(now + dt.timedelta(minutes=5), years[1])], now=now) == 300  # not valid yet: until it is
    assert validation_ttl([(years[0], now - dt.timedelta(seconds=1))], now=now) == 0  # expired: keep nothing


def test_the_trust_roots_fingerprint(tmp_path):
    from contracts.signing import trust_roots_fingerprint
    from loanservice.pki import SandboxCA, sandbox_ca

    ours, other = sandbox_ca().root_certificate(), SandboxCA(tmp_path / "other").root_certificate()
    from cryptography.hazmat.primitives.serialization import Encoding

    assert trust_roots_fingerprint([ours, other]) == trust_roots_fingerprint([other.public_bytes(Encoding.PEM), ours])
    assert trust_roots_fingerprint([ours]) != trust_roots_fingerprint([other])
    assert trust_roots_fingerprint({"A": [ours], "B": [other]}) != trust_roots_fingerprint({"A": [other], "B": [ours]})
    assert trust_roots_fingerprint(None) != trust_roots_fingerprint([])


def test_the_worker_validates_a_new_file_on_commit_so_the_first_view_is_a_hit(
        products, org, validations, django_capture_on_commit_callbacks):
    contract, owner, _client = _sealed_case(org, warm=True, capture=django_capture_on_commit_callbacks)
    assert contract.signed_sha256 in validations  # the task ran after the seal's commit
    validations.clear()
    view = _pages(owner).get(f"/portal/contracts/{contract.pk}/")
    assert view.context["pdf"]["ok"] and validations == []
    assert [s["field"] for s in view.context["pdf"]["signatures"]] == ["BorrowerSignature", "BankSeal"]


def test_the_first_view_after_the_seal_validates_the_sealed_file(products, org, validations):
    """Between the two signatures the page shows the enterprise's signed file; once sealed, the first view is of
    the sealed bytes (another hash), never the earlier result."""
    pk, owner, client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=7))
    detail = accept(client, pk)
    assert borrower_sign_via_api(client, detail["contract"]).status_code == 200
    page = _pages(owner)
    before = page.get(f"/portal/contracts/{detail['contract']}/").context["pdf"]
    assert before["file"] == "borrower_signed" and [s["field"] for s in before["signatures"]] == ["BorrowerSignature"]
    ops = client_for(org["demo_ops"])
    assert ops.post(f"/api/v1/contracts/{detail['contract']}/sign/", {"agree": True}, format="json").status_code == 200
    validations.clear()
    after = page.get(f"/portal/contracts/{detail['contract']}/").context["pdf"]
    contract = next(c for c in contracts_of(pk) if c.pk == detail["contract"])
    assert validations == [contract.signed_sha256]
    assert after["ok"] and after["file"] == "signed"
    assert [s["field"] for s in after["signatures"]] == ["BorrowerSignature", "BankSeal"]


@pytest.fixture
def pyhanko_validations(monkeypatch):
    """Every signature pyHanko validates (a counter on validate_pdf_signature, which the signing module imports
    at each use)."""
    from pyhanko.sign import validation

    calls: list[str] = []
    real = validation.validate_pdf_signature

    def counted(sig, *args, **kwargs):
        calls.append(sig.field_name)
        return real(sig, *args, **kwargs)

    monkeypatch.setattr(validation, "validate_pdf_signature", counted)
    return calls


def test_the_verify_api_validates_each_signature_once_on_a_miss(products, org, pyhanko_validations):
    """The seal check is read off the validation the signatures report made: before, a miss validated the bank's seal
    a second time for the API's own seal check."""
    from django.core.cache import cache

    contract, _owner, client = _sealed_case(org)
    cache.clear()
    pyhanko_validations.clear()
    body = client.post(f"/api/v1/contracts/{contract.pk}/verify/", format="json").json()
    assert body["ok"] and body["checks"]["seal_ok"] and body["checks"]["sealed_hash_ok"] and "电子签章有效" in body["message"]
    assert sorted(pyhanko_validations) == ["BankSeal", "BorrowerSignature"]  # one validation per signature
    assert client.post(f"/api/v1/contracts/{contract.pk}/verify/", format="json").json()["ok"]
    assert len(pyhanko_validations) == 2  # and a hit validates nothing


def test_the_seal_read_off_the_report_is_what_verify_pdf_says(products, org, settings, tmp_path):
    """seal_from_report gives verify_with_backend's answer, field for field, on a valid seal, a seal by other keys,
    a file that is not the contract's, an altered file, an unsigned and an unreadable one."""
    from contracts.selectors import signature_trust_roots
    from contracts.signing import DEFAULT_FIELD_NAME, seal_from_report, signatures_report, verify_with_backend

    contract, _owner, _client = _sealed_case(org)
    sealed, original = contract.signed_pdf.open("rb").read(), contract.pdf.open("rb").read()
    altered = bytearray(sealed)
    altered[400] ^= 0x01

    def both(pdf: bytes, expected: str):
        readable, statuses = signatures_report(pdf, trust_roots=signature_trust_roots())
        derived = seal_from_report(pdf, readable=readable, statuses=statuses, expected_unsigned_sha256=expected)
        return derived, verify_with_backend(pdf, expected_unsigned_sha256=expected)

    cases = {"valid": (sealed, contract.sha256), "other original": (sealed, "0" * 64), "altered": (bytes(altered), contract.sha256),
             "unsigned": (original, contract.sha256), "unreadable": (b"not a pdf", contract.sha256)}
    for name, (pdf, expected) in cases.items():
        derived, direct = both(pdf, expected)
        assert derived == direct, name
    assert both(sealed, contract.sha256)[0].ok and both(sealed, contract.sha256)[0].trusted
    settings.CONTRACT_SIGNING_KEY_DIR = tmp_path / "other-keys"  # the bank's seal certificate replaced
    derived, direct = both(sealed, contract.sha256)
    assert derived == direct and not derived.ok and not derived.trusted and derived.intact
    assert signature_trust_roots()[DEFAULT_FIELD_NAME]  # (the backend has roots: trust is required)


def test_the_fast_track_validates_the_final_files_after_the_release_not_each_step(
        products, org, validations, monkeypatch, django_capture_on_commit_callbacks):
    """信秒贷: the places are kept when the contract is rendered (no task for them); neither the enterprise's signed
    file nor the sealed one is validated on the way to the release (the worker's CPU is the release's then);
    the final files are, once the release is done, so the owner's first view is still a hit."""
    from applications.models import LoanApplication
    from loanservice import dispatch
    from tests.factories import FastTrackApplicationFactory

    sent: list[str] = []
    real = dispatch._send

    def spy(task, args, kwargs):
        sent.append(task.name.rsplit(".", 1)[-1])
        return real(task, args, kwargs)

    monkeypatch.setattr(dispatch, "_send", spy)
    pk, owner, client = owner_view(FastTrackApplicationFactory(seed=41))
    with django_capture_on_commit_callbacks(execute=True):
        detail = accept(client, pk)
    assert "contract_places_prepare" not in sent
    with django_capture_on_commit_callbacks(execute=True):
        assert borrower_sign_via_api(client, detail["contract"]).status_code == 200
    assert LoanApplication.objects.get(pk=pk).status == "disbursed"
    prepared = [i for i, name in enumerate(sent) if name == "contract_signatures_prepare"]
    assert len(prepared) == len(contracts_of(pk)) and min(prepared) > sent.index("fast_track_complete")
    contract = next(c for c in contracts_of(pk) if c.pk == detail["contract"])
    assert validations == [contract.signed_sha256]  # the sealed file only, after the release
    validations.clear()
    view = _pages(owner).get(f"/portal/contracts/{contract.pk}/")
    assert view.context["pdf"]["ok"] and validations == []
