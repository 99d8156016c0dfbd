"""The audit trail cannot be changed (DESIGN.md "Trust rules"): the database refuses UPDATE and DELETE, every event
is a link in its object's hash chain, days are anchored, audit_verify finds every kind of break and the nightly
check raises the alarm; personal data is stored masked."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from loanservice.audit import (
    audit_anchor_day,
    audit_anchor_through,
    audit_record,
    audit_record_many,
    audit_verify,
    event_hash,
)
from loanservice.audit_integrity import audit_nightly_check
from loanservice.masking import mask_id_number, mask_personal, mask_phone, mask_text
from loanservice.models import AuditAnchor, AuditChainHead, AuditEvent, Branch, Notification
from tests.concurrency import held_elsewhere, run_in_parallel
from tests.conftest import using_postgres

RIC = "120101198003195014"  # a checksum-valid resident identity number (test data: make_resident_id)
USCC = "91310000MA1FL0XX2B"


@contextlib.contextmanager
def unsealed():
    """What someone with the database's owner rights could do: switch the refusal off (inside the test's
    transaction, so it is switched on again when the test rolls back)."""
    with connection.cursor() as c:
        if connection.vendor == "postgresql":
            c.execute("SET LOCAL session_replication_role = replica")  # a superuser's way round triggers
            yield c
            c.execute("SET LOCAL session_replication_role = origin")
            return
        c.execute("DROP TRIGGER loanservice_auditevent_no_update")
        try:
            yield c
        finally:
            c.execute("CREATE TRIGGER loanservice_auditevent_no_update BEFORE UPDATE ON loanservice_auditevent "
                      "BEGIN SELECT RAISE(ABORT, 'append-only table loanservice_auditevent: UPDATE refused'); END")


def _raw(sql: str, params=()) -> None:
    with unsealed() as c:
        c.execute(sql, params)


def _delete(event) -> None:
    """Delete an event behind the application's back (SQLite has no DELETE trigger: docs/security.md)."""
    if connection.vendor == "postgresql":
        _raw("DELETE FROM loanservice_auditevent WHERE id = %s", [event.pk])
    else:
        with connection.cursor() as c:
            c.execute("DELETE FROM loanservice_auditevent WHERE id = %s", [event.pk])


@pytest.fixture
def branch(db):
    return Branch.objects.create(code="T01", name="测试分行")


def test_events_of_one_object_form_a_chain_and_other_objects_their_own(branch):
    other = Branch.objects.create(code="T02", name="另一分行")
    a1 = audit_record(actor=None, action="x.one", obj=branch)
    b1 = audit_record(actor=None, action="x.one", obj=other)
    a2, a3 = audit_record_many([{"actor": None, "action": "x.two", "obj": branch},
                                {"actor": None, "action": "x.three", "obj": branch}])
    assert a1.chain == f"loanservice.branch:{branch.pk}" and b1.chain == f"loanservice.branch:{other.pk}"
    assert [a1.seq, a2.seq, a3.seq] == [1, 2, 3] and b1.seq == 1
    assert a1.prev_hash == "" and a2.prev_hash == a1.hash and a3.prev_hash == a2.hash
    assert len({a1.hash, a2.hash, a3.hash, b1.hash}) == 4
    head = AuditChainHead.objects.get(chain=a1.chain)
    assert (head.seq, head.hash) == (3, a3.hash)
    stored = AuditEvent.objects.filter(pk=a2.pk).values().get()
    assert event_hash(stored, chain=stored["chain"], seq=stored["seq"], prev_hash=stored["prev_hash"]) == a2.hash


@pytest.mark.skipif(not using_postgres(), reason="the database links the event (sha256() on PostgreSQL)")
def test_an_event_is_appended_in_one_statement_and_a_batch_in_two(branch):
    from django.test.utils import CaptureQueriesContext

    with transaction.atomic(), CaptureQueriesContext(connection) as one:
        e1 = audit_record(actor=None, action="x.one", obj=branch, data={"名": "中文", "rate": 0.0435}, ip="10.0.0.1")
    with transaction.atomic(), CaptureQueriesContext(connection) as many:
        e2, e3 = audit_record_many([{"actor": None, "action": "x.two", "obj": branch},
                                    {"actor": None, "action": "x.three", "obj": branch, "to_state": "approved"}])
    assert (len(one), len(many)) == (1, 2)
    stored = {r["id"]: r for r in AuditEvent.objects.filter(pk__in=[e1.pk, e2.pk, e3.pk]).values()}
    for event in (e1, e2, e3):
        row = stored[event.pk]
        assert (row["seq"], row["prev_hash"], row["hash"], row["hash_version"]) == (event.seq, event.prev_hash, event.hash, 2)
        assert event_hash(row, chain=row["chain"], seq=row["seq"], prev_hash=row["prev_hash"]) == event.hash
    assert [e1.seq, e2.seq, e3.seq] == [1, 2, 3] and e2.prev_hash == e1.hash and e3.prev_hash == e2.hash
    head = AuditChainHead.objects.get(chain=e1.chain)
    assert (head.seq, head.hash, head.prev_hash) == (3, e3.hash, e2.hash)
    assert audit_verify().ok


def test_events_hashed_before_version_2_still_verify_and_chain_on(branch):
    """Events written before the one-statement append (hash version 1) stay as they were; new ones link to them."""
    at = timezone.now()
    row = {"actor_id": None, "actor_label": "system", "action": "x.old", "object_type": "loanservice.branch",
           "object_id": str(branch.pk), "from_state": "", "to_state": "", "reason": "", "data": {"a": 1}, "ip": None,
           "at": at}
    chain = f"loanservice.branch:{branch.pk}"
    old_hash = event_hash(row, chain=chain, seq=1, prev_hash="")  # no hash_version: the first definition
    old = AuditEvent.objects.create(chain=chain, seq=1, prev_hash="", hash=old_hash, hash_version=1, **row)
    AuditChainHead.objects.create(chain=chain, seq=1, hash=old_hash)
    new = audit_record(actor=None, action="x.new", obj=branch)
    assert (new.seq, new.prev_hash, new.hash_version) == (2, old_hash, 2)
    assert audit_verify().ok
    _raw("UPDATE loanservice_auditevent SET action = 'x.rewritten' WHERE id = %s", [old.pk])
    assert [(b.kind, b.event_id) for b in audit_verify().breaks] == [("altered", old.pk)]


def test_events_about_no_object_chain_per_action_and_day(db):
    e = audit_record(actor=None, action="cob.start")
    assert e.chain == f"-:cob.start:{timezone.localtime(e.at).date().isoformat()}"


def test_the_database_refuses_update_and_delete(branch):
    event = audit_record(actor=None, action="x.one", obj=branch, data={"a": 1})
    with pytest.raises((DatabaseError, IntegrityError)), transaction.atomic(), connection.cursor() as c:
        c.execute("UPDATE loanservice_auditevent SET reason = 'rewritten' WHERE id = %s", [event.pk])
    if connection.vendor == "postgresql":
        with pytest.raises((DatabaseError, IntegrityError)), transaction.atomic(), connection.cursor() as c:
            c.execute("DELETE FROM loanservice_auditevent WHERE id = %s", [event.pk])
        anchor = audit_anchor_day(timezone.localdate())
        with pytest.raises((DatabaseError, IntegrityError)), transaction.atomic(), connection.cursor() as c:
            c.execute("UPDATE loanservice_auditanchor SET digest = 'x' WHERE id = %s", [anchor.pk])
    assert AuditEvent.objects.get(pk=event.pk).reason == ""


def test_the_models_refuse_update_and_delete_too(branch):
    event = audit_record(actor=None, action="x.one", obj=branch)
    with pytest.raises(RuntimeError):
        AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")
    with pytest.raises(RuntimeError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(RuntimeError):
        event.delete()
    with pytest.raises(RuntimeError):
        event.save()


def test_verify_passes_on_an_intact_trail(branch, capsys):
    for i in range(3):
        audit_record(actor=None, action=f"x.{i}", obj=branch, data={"i": i, "rate": 0.0435, "名": "中文"},
                     ip="::ffff:10.0.0.1" if i else "10.0.0.1")
    audit_anchor_day(timezone.localdate())
    result = audit_verify()
    assert result.ok, [str(b) for b in result.breaks]
    assert result.events >= 3 and result.anchors == 1
    call_command("audit_verify")
    assert "audit trail intact" in capsys.readouterr().out


def test_verify_finds_an_altered_event(branch):
    audit_record(actor=None, action="x.one", obj=branch)
    e2 = audit_record(actor=None, action="x.two", obj=branch, to_state="approved")
    _raw("UPDATE loanservice_auditevent SET to_state = 'declined' WHERE id = %s", [e2.pk])
    kinds = [(b.kind, b.event_id) for b in audit_verify().breaks]
    assert kinds == [("altered", e2.pk)]
    with pytest.raises(CommandError, match="1 break"):
        call_command("audit_verify")


def test_verify_finds_an_event_removed_from_the_middle_and_from_the_end(branch):
    e1 = audit_record(actor=None, action="x.one", obj=branch)
    e2 = audit_record(actor=None, action="x.two", obj=branch)
    e3 = audit_record(actor=None, action="x.three", obj=branch)
    _delete(e2)
    breaks = audit_verify().breaks
    assert [(b.kind, b.seq) for b in breaks] == [("gap", 3)]
    _delete(e3)
    # Now the chain reads 1 and stops there: only its head knows there were three.
    assert [(b.kind, b.chain) for b in audit_verify().breaks] == [("head", e1.chain)]


def test_verify_since_checks_the_link_into_the_window(branch):
    e1 = audit_record(actor=None, action="x.one", obj=branch)
    e2 = audit_record(actor=None, action="x.two", obj=branch)
    _raw("UPDATE loanservice_auditevent SET at = %s WHERE id = %s", [e1.at - dt.timedelta(days=10), e1.pk])
    # e1 is now outside the window and altered (its time is hashed); the window still checks e2's link to it.
    since = timezone.localdate() - dt.timedelta(days=2)
    assert audit_verify(since).ok
    _raw("UPDATE loanservice_auditevent SET prev_hash = %s WHERE id = %s", ["0" * 64, e2.pk])
    assert {b.kind for b in audit_verify(since).breaks} == {"altered", "link"}


def test_a_rewritten_chain_no_longer_matches_its_anchor(branch):
    e1 = audit_record(actor=None, action="x.one", obj=branch)
    e2 = audit_record(actor=None, action="x.two", obj=branch)
    audit_anchor_day(timezone.localdate())
    # Cut the tail and move the head back: the chain alone looks whole; the day's anchor does not match.
    _delete(e2)
    AuditChainHead.objects.filter(chain=e1.chain).update(seq=1, hash=e1.hash)
    assert [b.kind for b in audit_verify().breaks] == ["anchor"]


def test_anchors_every_day_not_anchored_yet_once(branch):
    audit_record(actor=None, action="x.one", obj=branch)
    today = timezone.localdate()
    first = audit_anchor_through(today)
    assert [a.day for a in first] == [today] and first[0].chains >= 1
    assert audit_anchor_through(today) == []
    assert AuditAnchor.objects.get(day=today).digest == first[0].digest


def test_the_nightly_check_anchors_yesterday_and_raises_the_alarm_on_a_break(users, branch):
    e1 = audit_record(actor=None, action="x.one", obj=branch)
    result = audit_nightly_check(today=timezone.localdate() + dt.timedelta(days=1))
    assert result["breaks"] == [] and timezone.localdate().isoformat() in result["anchored"]
    assert not Notification.objects.filter(kind="audit_alarm").exists()
    _raw("UPDATE loanservice_auditevent SET actor_label = 'someone else' WHERE id = %s", [e1.pk])
    result = audit_nightly_check(today=timezone.localdate() + dt.timedelta(days=1))
    assert result["breaks"]
    alarmed = set(Notification.objects.filter(kind="audit_alarm").values_list("user__username", flat=True))
    assert {"demo_admin", "demo_risk"} <= alarmed and "demo_rm" not in alarmed
    assert AuditEvent.objects.filter(action="audit.verify.break").exists()


def test_the_nightly_check_is_on_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["audit-nightly"]
    assert entry["task"] == "loanservice.tasks.audit_nightly"
    from loanservice.tasks import audit_nightly

    assert audit_nightly.name == entry["task"]


# --- personal data masked ----------------------------------------------------------------------------------------

def test_mask_helpers():
    assert mask_id_number(RIC) == "120***********5014"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_text(f"法人 {RIC} 电话 13812345678，金额 13800000000.00，代码 {USCC}") == (
        f"法人 120***********5014 电话 138****5678，金额 13800000000.00，代码 {USCC}")
    assert mask_personal({"legal_rep_id_number": "X1234567", "contact_phone": 13812345678, "employees": 40,
                          "nested": [{"mobile": "13912345678"}]}) == {
        "legal_rep_id_number": "X12*4567", "contact_phone": "138****5678",
        "employees": 40, "nested": [{"mobile": "139****5678"}]}


def test_an_admin_change_of_a_users_phone_is_audited_masked(users, client):
    from loanservice.models import Profile

    profile = Profile.objects.get(user=users["demo_rm"])
    old_phone = profile.phone
    admin = users["demo_admin"]
    client.force_login(admin)
    _pass_second_factor(client, admin)
    r = client.post(f"/admin/loanservice/profile/{profile.pk}/change/", {
        "user": profile.user_id, "display_name": profile.display_name, "phone": "13812345678",
        "branch": profile.branch_id or "", "supervisor": profile.supervisor_id or ""})
    assert r.status_code == 302, r.content[:2000]
    event = AuditEvent.objects.filter(action="admin.change", object_type="loanservice.profile").latest("id")
    assert event.data["after"]["phone"] == "138****5678"
    assert event.data["before"]["phone"] == mask_phone(old_phone)
    assert "13812345678" not in str(event.data) and old_phone not in str(event.data)


def test_an_enterprise_record_is_audited_with_the_id_number_masked(users, products):
    from applications.models import Enterprise
    from applications.services import enterprise_create

    ent = enterprise_create(owner=users["demo_applicant"], name="掩码测试有限公司", uscc=USCC, legal_rep_name="张三",
                            legal_rep_id_number=RIC, industry_code="C3399", founded_on=dt.date(2018, 3, 1), employees=5,
                            annual_revenue="1000000.00")
    from django.forms.models import model_to_dict

    event = audit_record(actor=users["demo_admin"], action="admin.change", obj=ent,
                         data={"before": {}, "after": {k: str(v) for k, v in model_to_dict(Enterprise.objects.get(pk=ent.pk)).items()}},
                         reason=f"法人身份证 {RIC}")
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.data["after"]["legal_rep_id_number"] == "120***********5014"
    assert stored.data["after"]["uscc"] == USCC
    assert stored.reason == "法人身份证 120***********5014"
    assert RIC not in str(AuditEvent.objects.filter(object_type="applications.enterprise").values_list("data", "reason"))


def _pass_second_factor(client, user):
    from tests.conftest import pass_second_factor

    pass_second_factor(client, user)


# --- concurrency (PostgreSQL: real row locks) -----------------------------------------------------------------------

@pytest.mark.skipif(not using_postgres(), reason="row locks on PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_on_one_object_take_consecutive_places():
    branch = Branch.objects.create(code="C01", name="并发分行")

    def write(n):
        for i in range(5):
            with transaction.atomic():
                if i % 2:  # a batch (its own path) between single events (appended in one statement)
                    audit_record_many([{"actor": None, "action": f"t{n}.{i}.{j}", "obj": branch} for j in range(2)])
                else:
                    audit_record(actor=None, action=f"t{n}.{i}", obj=branch)

    results = run_in_parallel(4, write, what="an audit writer")
    assert not any(isinstance(r, Exception) for r in results), results
    seqs = list(AuditEvent.objects.filter(chain=f"loanservice.branch:{branch.pk}").order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 29))
    head = AuditChainHead.objects.get(chain=f"loanservice.branch:{branch.pk}")
    last_two = list(AuditEvent.objects.filter(chain=head.chain).order_by("-seq").values_list("hash", flat=True)[:2])
    assert (head.seq, head.hash, head.prev_hash) == (28, last_two[0], last_two[1])
    assert audit_verify().ok


@pytest.mark.skipif(not using_postgres(), reason="row locks on PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_writer_holding_one_chain_does_not_block_another_chain():
    a, b = Branch.objects.create(code="C02", name="甲"), Branch.objects.create(code="C03", name="乙")
    done = []
    with held_elsewhere(lambda: audit_record(actor=None, action="hold", obj=a)):  # a's chain head stays locked
        started = timezone.now()
        with transaction.atomic():
            with connection.cursor() as c:
                c.execute("SET LOCAL lock_timeout = '500ms'")
            audit_record(actor=None, action="other", obj=b)
            done.append((timezone.now() - started).total_seconds())
    assert done and done[0] < 0.5
