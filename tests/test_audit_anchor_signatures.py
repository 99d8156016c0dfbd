"""Signed daily anchors (issue #19): each anchor of the audit trail is signed with the audit key the bank's sandbox CA
issued; audit_verify checks the signature, so an anchor changed after the fact — even one recomputed together with
the events and chain heads it anchors — is found."""

from __future__ import annotations

import base64
import contextlib

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from loanservice import pki
from loanservice.audit import (
    anchor_digest,
    audit_anchor_day,
    audit_anchor_through,
    audit_record,
    audit_verify,
    event_hash,
)
from loanservice.models import AuditAnchor, AuditAnchorSignature, AuditChainHead, AuditEvent, Branch

pytestmark = pytest.mark.django_db


@contextlib.contextmanager
def unsealed(*tables):
    """Switch the database's refusal off, as someone with the owner's rights could (inside the test's transaction)."""
    with connection.cursor() as c:
        if connection.vendor == "postgresql":
            c.execute("SET LOCAL session_replication_role = replica")
            yield c
            c.execute("SET LOCAL session_replication_role = origin")
            return
        for t in tables:
            c.execute(f"DROP TRIGGER IF EXISTS {t}_no_update")
        try:
            yield c
        finally:
            for t in tables:
                c.execute(f"CREATE TRIGGER {t}_no_update BEFORE UPDATE ON {t} "
                          f"BEGIN SELECT RAISE(ABORT, 'append-only table {t}: UPDATE refused'); END")


@pytest.fixture
def branch(db):
    return Branch.objects.create(code="T01", name="测试分行")


def _kinds():
    return [b.kind for b in audit_verify().breaks]


def test_an_anchor_is_signed_by_the_audit_key_of_the_bank_ca(branch, capsys):
    audit_record(actor=None, action="x.one", obj=branch)
    anchor = audit_anchor_day(timezone.localdate())
    record = AuditAnchorSignature.objects.get(anchor=anchor)
    cert = pki.load_cert(record.certificate_pem)
    assert pki.sandbox_ca().issued_by_root(cert)
    payload = f"loanservice-audit-anchor/v1\n{anchor.day.isoformat()}\n{anchor.digest}\n{anchor.chains}\n{anchor.events}"
    assert pki.signature_valid(cert, base64.b64decode(record.signature), payload.encode())
    assert audit_verify().ok
    call_command("audit_verify")
    assert "audit trail intact" in capsys.readouterr().out
    # The audit key is issued once and reused for the next anchor.
    assert pki.audit_signer().certificate == cert


def test_an_anchor_rewritten_with_its_events_and_heads_is_found_by_its_signature(branch):
    """An insider rewrites an event, recomputes its hash, moves the head and recomputes the day's anchor: chains and
    anchor agree again, but the bank's signature over the anchor no longer does."""
    audit_record(actor=None, action="x.one", obj=branch)
    e2 = audit_record(actor=None, action="x.two", obj=branch, to_state="approved")
    anchor = audit_anchor_day(timezone.localdate())
    row = AuditEvent.objects.filter(pk=e2.pk).values().get()
    row["to_state"] = "declined"
    forged = event_hash(row, chain=e2.chain, seq=e2.seq, prev_hash=e2.prev_hash)
    with unsealed("loanservice_auditevent", "loanservice_auditanchor") as c:
        c.execute("UPDATE loanservice_auditevent SET to_state = 'declined', hash = %s WHERE id = %s", [forged, e2.pk])
        AuditChainHead.objects.filter(chain=e2.chain).update(hash=forged)
        c.execute("UPDATE loanservice_auditanchor SET digest = %s WHERE id = %s", [anchor_digest(anchor.day)[0], anchor.pk])
    result = audit_verify()
    assert [(b.kind, b.chain) for b in result.breaks] == [("signature", f"day {anchor.day.isoformat()}")]
    assert "does not match the bank's signature" in result.breaks[0].detail
    with pytest.raises(CommandError, match="1 break"):
        call_command("audit_verify")


def test_a_changed_count_on_an_anchor_is_found(branch):
    audit_record(actor=None, action="x.one", obj=branch)
    anchor = audit_anchor_day(timezone.localdate())
    with unsealed("loanservice_auditanchor") as c:
        c.execute("UPDATE loanservice_auditanchor SET events = events + 1 WHERE id = %s", [anchor.pk])
    assert _kinds() == ["signature"]


def test_an_unsigned_anchor_is_a_break_until_signed_and_one_signed_by_another_ca_stays_one(branch, tmp_path):
    audit_record(actor=None, action="x.one", obj=branch)
    today = timezone.localdate()
    digest, chains, events = anchor_digest(today)
    # An anchor stored before anchors were signed (or one slipped in behind the service).
    anchor = AuditAnchor.objects.create(day=today, digest=digest, chains=chains, events=events)
    result = audit_verify()
    assert [b.kind for b in result.breaks] == ["signature"] and "not signed" in result.breaks[0].detail
    # Somebody signs it with a key of their own CA: still not the bank's.
    rogue = pki.SandboxCA(tmp_path / "rogue")
    issued = rogue.issue([])
    payload = f"loanservice-audit-anchor/v1\n{today.isoformat()}\n{digest}\n{chains}\n{events}".encode()
    with transaction.atomic():
        forged = AuditAnchorSignature.objects.create(
            anchor=anchor, signature=base64.b64encode(pki.sign_bytes(issued.key, payload)).decode(),
            certificate_pem=pki.cert_pem(issued.certificate))
        result = audit_verify()
        assert "not issued by the bank's CA" in result.breaks[0].detail
        transaction.set_rollback(True)
    assert forged.pk
    # The nightly anchoring signs what was left unsigned, when it still matches the trail.
    audit_anchor_through(today)
    assert AuditAnchorSignature.objects.filter(anchor=anchor).exists() and audit_verify().ok


def test_the_database_refuses_to_change_an_anchor_signature(branch):
    audit_record(actor=None, action="x.one", obj=branch)
    record = audit_anchor_day(timezone.localdate()).signature
    with pytest.raises(RuntimeError):
        record.save()
    with pytest.raises(RuntimeError):
        record.delete()
    with pytest.raises((DatabaseError, IntegrityError)), transaction.atomic(), connection.cursor() as c:
        c.execute("UPDATE loanservice_auditanchorsignature SET signature = 'x' WHERE id = %s", [record.pk])
    if connection.vendor == "postgresql":
        with pytest.raises((DatabaseError, IntegrityError)), transaction.atomic(), connection.cursor() as c:
            c.execute("DELETE FROM loanservice_auditanchorsignature WHERE id = %s", [record.pk])
