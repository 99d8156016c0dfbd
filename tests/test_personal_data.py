"""Personal data (DESIGN.md "Trust rules", docs/security.md "Personal data"): natural persons' ID numbers, phones
and names encrypted at rest, found by blind index, masked per role on pages and in the API, revealed only to the
roles that may (audited), keys rotated, and anonymised past the retention schedule."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from applications.models import Enterprise, IdentityVerification
from applications.selectors import related_enterprises
from casework.retention import personal_data_retention
from loanservice import crypto
from loanservice.masking import mask_id_number, mask_phone
from loanservice.models import AuditEvent, Profile, RetentionRule
from marketing.models import ContactAttempt, Prospect
from marketing.services import prospect_list_import
from postloan.models import Loan
from tests.conftest import client_for
from tests.factories import (
    ApplicantFactory,
    ApplicationFactory,
    EnterpriseFactory,
    FastTrackLoanFactory,
    uscc_for,
)
from underwriting.models import DataSnapshot, Guarantor
from underwriting.providers import make_resident_id
from underwriting.services import guarantor_add

pytestmark = pytest.mark.django_db

GUARANTOR_ID = make_resident_id(8801, birth_year=1975)


def raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


@pytest.fixture
def case(products, org):
    """A submitted case with a person guarantor added by its RM, and the owner verified as legal representative."""
    application = ApplicationFactory(seed=31, stage="submitted")
    guarantor = guarantor_add(application=application, by=org["demo_rm"], kind="person", name="王保证",
                              id_number=GUARANTOR_ID, relationship="实际控制人")
    return application, guarantor


# ------------------------------------------------------------------------------------------------ at rest
def test_a_raw_read_shows_ciphertext_not_the_id_number_phone_or_name(case):
    application, guarantor = case
    enterprise = application.enterprise
    rep_id = enterprise.legal_rep_id_number
    stored = raw("applications_enterprise", "legal_rep_id_number", enterprise.pk)
    assert rep_id and rep_id not in stored and crypto.is_token(stored)
    assert crypto.decrypt(stored) == rep_id
    assert raw("applications_enterprise", "legal_rep_name", enterprise.pk) != enterprise.legal_rep_name
    assert raw("applications_enterprise", "legal_rep_id_number_bidx", enterprise.pk) == crypto.blind_index(rep_id)
    assert GUARANTOR_ID not in raw("underwriting_guarantor", "id_number", guarantor.pk)
    assert "王保证" not in raw("underwriting_guarantor", "name", guarantor.pk)
    verification = IdentityVerification.objects.filter(enterprise=enterprise).first()
    for column in ("person_name", "id_number", "phone"):
        value = getattr(verification, column)
        assert value and value not in raw("applications_identityverification", column, verification.pk)
    profile = application.applicant.profile
    assert profile.phone not in raw("loanservice_profile", "phone", profile.pk)
    # read back through the model: the clear value
    assert Enterprise.objects.get(pk=enterprise.pk).legal_rep_id_number == rep_id
    assert Guarantor.objects.get(pk=guarantor.pk).id_number == GUARANTOR_ID


def test_lookups_go_by_blind_index_and_nothing_else(products, org):
    first = EnterpriseFactory(seed=41)
    second = EnterpriseFactory(seed=42)
    rep_id = first.legal_rep_id_number
    assert list(Enterprise.objects.filter(legal_rep_id_number=rep_id)) == [first]
    assert list(Enterprise.objects.filter(legal_rep_id_number=rep_id.lower())) == [first]  # check digit X, case
    assert set(Enterprise.objects.filter(legal_rep_id_number__in=[rep_id, second.legal_rep_id_number])) == {first, second}
    assert related_enterprises(enterprise=first) == []
    # the same person becomes the second firm's legal representative: the related party is found by its index
    second.legal_rep_id_number = rep_id
    second.save()
    assert related_enterprises(enterprise=first) == [second]
    with pytest.raises(FieldError):
        list(Enterprise.objects.filter(legal_rep_id_number__icontains=rep_id[:6]))
    with pytest.raises(FieldError):
        list(IdentityVerification.objects.filter(id_number=rep_id))  # no blind index: never compares ciphertext
    # a phone already registered is found (the sign-up's duplicate check)
    ApplicantFactory(username="dup_phone", phone="13912340001")
    assert Profile.objects.filter(phone="13912340001").exists()
    assert not Profile.objects.filter(phone="13912340002").exists()


def test_key_rotation_reencrypts_under_the_newest_key(settings, products, org):
    old, new = settings.FIELD_ENCRYPTION_KEYS[0], Fernet.generate_key().decode()  # everything so far is under `old`
    enterprise = EnterpriseFactory(seed=43)
    rep_id = enterprise.legal_rep_id_number
    before = raw("applications_enterprise", "legal_rep_id_number", enterprise.pk)
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert Enterprise.objects.get(pk=enterprise.pk).legal_rep_id_number == rep_id  # old tokens still read
    call_command("personal_data_rotate", stdout=open("/dev/null", "w"))  # noqa: SIM115
    after = raw("applications_enterprise", "legal_rep_id_number", enterprise.pk)
    assert after != before and Fernet(new.encode()).decrypt(after.encode()).decode() == rep_id
    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key dropped: everything still reads
    assert Enterprise.objects.get(pk=enterprise.pk).legal_rep_id_number == rep_id
    assert AuditEvent.objects.filter(action="personal_data.rotate").exists()
    # a new blind-index key: lookups miss until the rows are re-indexed
    settings.BLIND_INDEX_KEY = "another-blind-index-key"
    assert not Enterprise.objects.filter(legal_rep_id_number=rep_id).exists()
    call_command("personal_data_rotate", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert list(Enterprise.objects.filter(legal_rep_id_number=rep_id)) == [enterprise]


# ------------------------------------------------------------------------------------------------ masked per role
STAFF = ["demo_rm", "demo_branch_approver", "demo_head_approver", "demo_committee_1", "demo_ops", "demo_risk"]


@pytest.mark.parametrize("who", STAFF)
def test_the_api_shows_staff_masked_values(case, org, who):
    application, guarantor = case
    enterprise = application.enterprise
    rep_id = enterprise.legal_rep_id_number
    client = client_for(org[who])
    r = client.get("/api/v1/enterprises/")
    assert r.status_code == 200
    mine = [e for e in r.json() if e["id"] == enterprise.pk]
    assert mine and mine[0]["legal_rep_id_number"] == mask_id_number(rep_id)
    assert rep_id not in r.content.decode()
    r = client.get(f"/api/v1/applications/{application.pk}/guarantors/")
    assert r.status_code == (403 if who == "demo_ops" else 200)  # operations work contracts, not due diligence
    if r.status_code == 200:
        assert r.json()["items"][0]["id_number"] == mask_id_number(GUARANTOR_ID)
        assert GUARANTOR_ID not in r.content.decode()
    # the registry snapshot holds the legal representative's ID number; the case profile shows it masked
    assert any(rep_id in str(s.payload) for s in DataSnapshot.objects.filter(enterprise=enterprise))
    r = client.get(f"/api/v1/applications/{application.pk}/profile/")
    assert r.status_code == (403 if who == "demo_ops" else 200)
    if r.status_code == 200:
        assert rep_id not in r.content.decode() and mask_id_number(rep_id) in r.content.decode()


def test_the_owner_sees_its_own_value_whole(case):
    application, _ = case
    r = client_for(application.applicant).get("/api/v1/enterprises/")
    assert [e["legal_rep_id_number"] for e in r.json()] == [application.enterprise.legal_rep_id_number]


@pytest.mark.parametrize("who", STAFF)
def test_staff_pages_show_masked_values_and_the_show_form_only_to_roles_that_may(case, org, client, who):
    application, guarantor = case
    rep_id = application.enterprise.legal_rep_id_number
    client.force_login(org[who])
    r = client.get(f"/staff/cases/{application.pk}/")
    assert r.status_code == 200
    page = r.content.decode()
    assert GUARANTOR_ID not in page and rep_id not in page  # nor in the data snapshots shown
    assert mask_id_number(GUARANTOR_ID) in page
    assert ("/staff/personal-data/reveal/" in page) == (who in ("demo_rm", "demo_ops"))


def test_a_prospect_page_masks_the_contact_phone(org, client):
    rm = org["demo_rm"]
    content = f"uscc,name,contact_name,contact_phone\n{uscc_for(seed=91)},园区企业,李联系,13912345678\n".encode()
    prospect_list_import(kind="industrial_park", partner_name="园区", file_name="p.csv", content=content, by=rm)
    prospect = Prospect.objects.get(name="园区企业")
    assert "13912345678" not in raw("marketing_prospect", "contact_phone", prospect.pk)
    client.force_login(prospect.relationship_manager or rm)
    page = client.get(f"/staff/marketing/prospects/{prospect.pk}/").content.decode()
    assert "13912345678" not in page and mask_phone("13912345678") in page


# ------------------------------------------------------------------------------------------------ reveal, audited
def test_reveal_gives_the_value_to_the_rm_and_records_who_what_why(case, org):
    application, guarantor = case
    enterprise = application.enterprise
    rm = client_for(org["demo_rm"])
    body = {"kind": "enterprise", "id": enterprise.pk, "field": "legal_rep_id_number", "reason": "核对合同主体"}
    r = rm.post("/api/v1/personal-data/reveal/", body, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["value"] == enterprise.legal_rep_id_number
    event = AuditEvent.objects.filter(action="personal_data.reveal").latest("id")
    assert event.actor == org["demo_rm"] and event.reason == "核对合同主体"
    assert event.object_type == "applications.enterprise" and event.object_id == str(enterprise.pk)
    assert event.data == {"field": "legal_rep_id_number"}
    assert enterprise.legal_rep_id_number not in str(event.data) + event.reason
    r = rm.post("/api/v1/personal-data/reveal/", {**body, "reason": " "}, format="json")
    assert r.status_code == 400 and "reason" in r.json()["errors"]
    r = rm.post("/api/v1/personal-data/reveal/", {**body, "field": "name"}, format="json")
    assert r.status_code == 404


@pytest.mark.parametrize("who", ["demo_branch_approver", "demo_head_approver", "demo_committee_1", "demo_risk"])
def test_reveal_is_refused_to_roles_without_the_right_and_the_refusal_audited(case, org, who):
    application, guarantor = case
    r = client_for(org[who]).post("/api/v1/personal-data/reveal/", {
        "kind": "guarantor", "id": guarantor.pk, "field": "id_number", "reason": "想看看"}, format="json")
    assert r.status_code == 403
    assert GUARANTOR_ID not in r.content.decode()
    assert AuditEvent.objects.filter(action="personal_data.reveal_refused", actor=org[who]).exists()
    assert not AuditEvent.objects.filter(action="personal_data.reveal").exists()


def test_reveal_not_yours_is_404_and_applicants_are_refused(case, org):
    application, guarantor = case
    from django.contrib.auth import get_user_model

    other_rm = get_user_model().objects.get(username="bj01_rm")
    body = {"kind": "guarantor", "id": guarantor.pk, "field": "id_number", "reason": "核对"}
    assert client_for(other_rm).post("/api/v1/personal-data/reveal/", body, format="json").status_code == 404
    assert client_for(application.applicant).post("/api/v1/personal-data/reveal/", body, format="json").status_code == 403
    assert client_for(None).post("/api/v1/personal-data/reveal/", body, format="json").status_code in (401, 403)


def test_the_page_reveal_swaps_the_value_in_for_the_rm_only(case, org, client):
    application, guarantor = case
    url, which = "/staff/personal-data/reveal/", {"kind": "guarantor", "id": guarantor.pk, "field": "id_number"}
    client.force_login(org["demo_rm"])
    assert client.post(url, {"kind": "guarantor"}).status_code == 400  # malformed: refused at the edge
    r = client.post(url, {**which, "reason": ""})  # no reason: still masked, the form again with the message
    assert r.status_code == 200 and GUARANTOR_ID not in r.content.decode()
    assert mask_id_number(GUARANTOR_ID) in r.content.decode() and 'name="reason"' in r.content.decode()
    r = client.post(url, {**which, "reason": "核对身份证件"})
    assert r.status_code == 200 and GUARANTOR_ID in r.content.decode()
    assert AuditEvent.objects.filter(action="personal_data.reveal", actor=org["demo_rm"],
                                     object_type="underwriting.guarantor").exists()
    client.force_login(org["demo_branch_approver"])
    r = client.post(url, {**which, "reason": "核对"})
    assert r.status_code == 403 and GUARANTOR_ID not in r.content.decode()


# ------------------------------------------------------------------------------------------------ retention
def _ended(enterprise: Enterprise, *, years_ago: float, loan: Loan | None = None) -> None:
    """Moves the relationship's end back in time (dates only: the services never write past dates)."""
    when = timezone.now() - dt.timedelta(days=int(365.25 * years_ago))
    Enterprise.objects.filter(pk=enterprise.pk).update(created_at=when)
    enterprise.applications.update(updated_at=when)
    if loan is not None:
        Loan.objects.filter(pk=loan.pk).update(status=Loan.Status.CLOSED, closed_on=when.date())


def test_retention_anonymises_exactly_what_is_past_its_date(products, org):
    assert {r.kind: r.years for r in RetentionRule.objects.all()} == {
        "customer_with_loans": 10, "customer_without_loans": 3, "prospect": 2}
    old_loan = FastTrackLoanFactory(owner=ApplicantFactory(username="ret_old_loan"), seed=61)
    recent_loan = FastTrackLoanFactory(owner=ApplicantFactory(username="ret_recent_loan"), seed=62)
    live_loan = FastTrackLoanFactory(owner=ApplicantFactory(username="ret_live_loan"), seed=63)
    _ended(old_loan.enterprise, years_ago=10.2, loan=old_loan)
    _ended(recent_loan.enterprise, years_ago=9.8, loan=recent_loan)
    _ended(live_loan.enterprise, years_ago=12)  # its loan is still active: the relationship has not ended
    never_old = EnterpriseFactory(seed=64)
    never_recent = EnterpriseFactory(seed=65)
    _ended(never_old, years_ago=3.2)
    _ended(never_recent, years_ago=2.8)
    rm = org["demo_rm"]
    content = (f"uscc,name,contact_name,contact_phone\n{uscc_for(seed=92)},旧名单企业,赵旧,13912340011\n"
               f"{uscc_for(seed=93)},新名单企业,钱新,13912340012\n").encode()
    prospect_list_import(kind="industrial_park", partner_name="园区", file_name="r.csv", content=content, by=rm)
    old_prospect, new_prospect = Prospect.objects.get(name="旧名单企业"), Prospect.objects.get(name="新名单企业")
    Prospect.objects.filter(pk=old_prospect.pk).update(created_at=timezone.now() - dt.timedelta(days=800))
    ContactAttempt.objects.create(prospect=new_prospect, by=rm, channel="phone", outcome="no_answer",
                                  at=timezone.now() - dt.timedelta(days=400))
    Prospect.objects.filter(pk=new_prospect.pk).update(created_at=timezone.now() - dt.timedelta(days=900))
    old_rep_id = old_loan.enterprise.legal_rep_id_number
    audit_before = list(AuditEvent.objects.order_by("id").values_list("id", "hash"))

    done = personal_data_retention()

    assert sorted(done["enterprise"]) == sorted([old_loan.enterprise_id, never_old.pk])
    assert done["prospect"] == [old_prospect.pk]
    gone = Enterprise.objects.get(pk=old_loan.enterprise_id)
    assert gone.anonymised_at and gone.legal_rep_id_number == "" and gone.legal_rep_name == ""
    assert raw("applications_enterprise", "legal_rep_id_number_bidx", gone.pk) == ""
    assert not Enterprise.objects.filter(legal_rep_id_number=old_rep_id).exists()
    assert all(v.id_number == v.phone == v.person_name == "" for v in IdentityVerification.objects.filter(enterprise=gone))
    assert Loan.objects.filter(pk=old_loan.pk).exists()  # the records stay
    for snap in DataSnapshot.objects.filter(enterprise=gone):
        assert old_rep_id not in str(snap.payload)
    for kept in (recent_loan.enterprise, live_loan.enterprise, never_recent):
        kept = Enterprise.objects.get(pk=kept.pk)
        assert kept.anonymised_at is None and kept.legal_rep_id_number
    old_prospect.refresh_from_db()
    new_prospect.refresh_from_db()
    assert old_prospect.contact_phone == old_prospect.contact_name == "" and old_prospect.anonymised_at
    assert new_prospect.contact_phone == "13912340012"
    events = AuditEvent.objects.filter(action="personal_data.anonymise")
    assert events.count() == 3
    assert {e.data["rule"] for e in events} == {"customer_with_loans", "customer_without_loans", "prospect"}
    # the audit trail was only appended to, never changed
    assert list(AuditEvent.objects.filter(id__lte=audit_before[-1][0]).order_by("id").values_list("id", "hash")) == audit_before
    # run again: nothing more
    assert personal_data_retention() == {"enterprise": [], "prospect": []}


def test_the_retention_command_dry_run_changes_nothing(products, org):
    enterprise = EnterpriseFactory(seed=66)
    _ended(enterprise, years_ago=4)
    call_command("personal_data_retention", "--dry-run", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert Enterprise.objects.get(pk=enterprise.pk).anonymised_at is None
    call_command("personal_data_retention", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert Enterprise.objects.get(pk=enterprise.pk).anonymised_at is not None


def test_the_data_migration_encrypts_rows_written_in_clear(products, org):
    """Rows from before the fields were encrypted (clear text, no blind index) are encrypted and indexed by the
    function the migrations run (loanservice.personal_data.encrypt_rows)."""
    from loanservice.personal_data import encrypt_rows

    enterprise = EnterpriseFactory(seed=44)
    rep_id = enterprise.legal_rep_id_number
    with connection.cursor() as cursor:
        cursor.execute("UPDATE applications_enterprise SET legal_rep_id_number = %s, legal_rep_name = %s, "
                       "legal_rep_id_number_bidx = '' WHERE id = %s", [rep_id, "张三", enterprise.pk])
    assert Enterprise.objects.get(pk=enterprise.pk).legal_rep_id_number == rep_id  # clear rows still read
    assert encrypt_rows(Enterprise) == Enterprise.objects.count()
    stored = raw("applications_enterprise", "legal_rep_id_number", enterprise.pk)
    assert crypto.is_token(stored) and crypto.decrypt(stored) == rep_id
    assert crypto.decrypt(raw("applications_enterprise", "legal_rep_name", enterprise.pk)) == "张三"
    assert list(Enterprise.objects.filter(legal_rep_id_number=rep_id)) == [enterprise]


def test_contract_terms_show_staff_the_guarantors_id_number_masked_and_the_pdf_keeps_it(products, org):
    application = ApplicationFactory(seed=7, stage="submitted")
    guarantor_add(application=application, by=org["demo_rm"], kind="person", name="王保证", id_number=GUARANTOR_ID)
    application = ApplicationFactory.advance(application, to="contracting", approver=org["demo_branch_approver"])
    from contracts.models import Contract

    guarantee = Contract.objects.filter(application=application, kind="guarantee").first()
    assert guarantee is not None and GUARANTOR_ID in str(guarantee.terms)  # the legal document's data: whole
    for who in ("demo_rm", "demo_branch_approver", "demo_ops", "demo_risk"):
        r = client_for(org[who]).get(f"/api/v1/contracts/{guarantee.pk}/")
        assert r.status_code == 200, (who, r.status_code)
        assert GUARANTOR_ID not in r.content.decode() and mask_id_number(GUARANTOR_ID) in r.content.decode()
