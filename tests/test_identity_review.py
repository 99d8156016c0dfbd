"""Operations review an agent's power of attorney before the agent may authorise or sign (issue #19, DESIGN.md "Trust
rules"): pending until reviewed; four eyes (never the enterprise's RM, never the agent); a reason either way; audited;
the queue page and the API; who may do it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from applications.models import IdentityVerification
from applications.selectors import verified_identity
from loanservice.models import AuditEvent
from tests.conftest import TINY_PDF, client_for, last_code, sms_outbox
from tests.factories import ApplicantFactory, EnterpriseFactory

pytestmark = pytest.mark.django_db
AGENT_PHONE = "13900000093"


@pytest.fixture
def agent_case(products, org):
    """An applicant who is the enterprise's agent (not its legal representative), verified with a power of attorney."""
    from underwriting.providers import make_resident_id

    owner = ApplicantFactory(username="agent_owner")
    enterprise = EnterpriseFactory(owner=owner, seed=93)
    enterprise.relationship_manager = org["demo_rm"]
    enterprise.save(update_fields=["relationship_manager"])
    client = client_for(owner)
    with sms_outbox() as sent:
        assert client.post(f"/api/v1/enterprises/{enterprise.pk}/verify-representative/code/", {"phone": AGENT_PHONE},
                           format="json").status_code == 202
    body = {"method": "agent", "name": "王经办", "id_number": make_resident_id(5151, birth_year=1990),
            "phone": AGENT_PHONE, "sms_code": last_code(sent),
            "power_of_attorney": SimpleUploadedFile("poa.pdf", TINY_PDF, content_type="application/pdf")}
    r = client.post(f"/api/v1/enterprises/{enterprise.pk}/verify-representative/", body, format="multipart")
    assert r.status_code == 201, r.content
    assert r.json()["verified"] is False and r.json()["verification"]["review_status"] == "pending"
    return owner, enterprise, client, IdentityVerification.objects.get(enterprise=enterprise)


def test_an_agent_stays_pending_and_cannot_act_until_operations_approve(agent_case, org):
    owner, enterprise, client, record = agent_case
    assert record.passed and record.review_status == "pending" and not record.in_force
    assert verified_identity(user=owner, enterprise=enterprise) is None
    url = f"/api/v1/enterprises/{enterprise.pk}/verify-representative/"
    assert client.get(url).json() == {"verified": False, "verification": None}

    ops = client_for(org["demo_ops"])
    queue = ops.get("/api/v1/identity-reviews/")
    assert queue.status_code == 200 and [r["id"] for r in queue.json()] == [record.pk]
    assert queue.json()[0]["enterprise"]["uscc"] == enterprise.uscc and queue.json()[0]["agent"] == "王经办"

    r = ops.post(f"/api/v1/identity-reviews/{record.pk}/", {"decision": "approve", "reason": ""}, format="json")
    assert r.status_code == 400 and "reason" in r.json()["errors"]
    r = ops.post(f"/api/v1/identity-reviews/{record.pk}/", {"decision": "approve", "reason": "委托书盖章、签字齐全"},
                 format="json")
    assert r.status_code == 200 and r.json()["review_status"] == "approved"
    assert r.json()["reviewed_by"] == org["demo_ops"].username
    assert verified_identity(user=owner, enterprise=enterprise).pk == record.pk
    assert client.get(url).json()["verified"] is True
    assert ops.get("/api/v1/identity-reviews/").json() == []
    r = ops.post(f"/api/v1/identity-reviews/{record.pk}/", {"decision": "reject", "reason": "再审"}, format="json")
    assert r.status_code == 409  # reviewed once
    event = AuditEvent.objects.get(action="identity.review")
    assert (event.actor, event.from_state, event.to_state, event.reason) == (
        org["demo_ops"], "pending", "approved", "委托书盖章、签字齐全")
    assert event.data["verification"] == record.pk


def test_a_rejected_agent_cannot_sign_or_authorise(agent_case, org):
    from applications.services import identity_review_decide
    from contracts.services import signing_code_send
    from loanservice.errors import Conflict

    owner, enterprise, client, record = agent_case
    identity_review_decide(verification=record, by=org["demo_ops"], approve=False, reason="委托书未加盖公章")
    record.refresh_from_db()
    assert record.review_status == "rejected" and not record.in_force
    assert verified_identity(user=owner, enterprise=enterprise) is None
    application = SimpleNamespace(enterprise=enterprise, pk=0)  # what signing asks of the case
    with pytest.raises(Conflict) as exc:
        signing_code_send(application=application, user=owner)
    assert exc.value.state == "signer_not_verified"


def test_four_eyes_the_enterprise_rm_and_the_agent_may_not_review(agent_case, org):
    from django.contrib.auth.models import Group

    from loanservice import roles

    owner, enterprise, client, record = agent_case
    # The RM who prepared the enterprise's case also holds the operations role: still refused.
    rm = org["demo_rm"]
    rm.groups.add(Group.objects.get(name=roles.OPERATIONS))
    r = client_for(rm).post(f"/api/v1/identity-reviews/{record.pk}/", {"decision": "approve", "reason": "ok"},
                            format="json")
    assert r.status_code == 403
    # The agent's own account, even were it given the role.
    owner.groups.add(Group.objects.get(name=roles.OPERATIONS))
    r = client_for(owner).post(f"/api/v1/identity-reviews/{record.pk}/", {"decision": "approve", "reason": "ok"},
                               format="json")
    assert r.status_code == 403
    record.refresh_from_db()
    assert record.review_status == "pending" and not AuditEvent.objects.filter(action="identity.review").exists()


@pytest.mark.parametrize("who", ["anonymous", "applicant", "demo_rm", "demo_branch_approver", "demo_risk", "demo_ops"])
def test_who_may_see_and_decide_reviews(agent_case, org, who):
    owner, enterprise, client, record = agent_case
    user = {"anonymous": None, "applicant": owner}.get(who, org.get(who))
    api = client_for(user)
    listing = api.get("/api/v1/identity-reviews/")
    decide = api.post(f"/api/v1/identity-reviews/{record.pk}/", {"decision": "reject", "reason": "x"}, format="json")
    page = Client()
    if user is not None:
        page.force_login(user)
    queue = page.get("/staff/identity-reviews/")
    document = page.get(f"/staff/identity-reviews/{record.pk}/power-of-attorney/")
    if who == "demo_ops":
        assert (listing.status_code, decide.status_code, queue.status_code, document.status_code) == (200, 200, 200, 200)
        assert document.content == TINY_PDF
        assert AuditEvent.objects.filter(action="identity.power_of_attorney.download").count() == 1
    elif who == "anonymous":
        assert (listing.status_code, decide.status_code) == (401, 401)
        assert queue.status_code == 302 and queue["Location"].startswith("/login/")
    else:
        assert (listing.status_code, decide.status_code) == (403, 403)
        assert queue.status_code in (403, 404) and document.status_code in (403, 404)
        record.refresh_from_db()
        assert record.review_status == "pending"


def test_the_review_page_lists_and_decides(agent_case, org):
    owner, enterprise, client, record = agent_case
    page = Client()
    page.force_login(org["demo_ops"])
    html = page.get("/staff/identity-reviews/").content.decode()
    assert f'id="identity-review-{record.pk}"' in html and enterprise.name in html
    r = page.post(f"/staff/identity-reviews/{record.pk}/decide/", {"decision": "approve", "reason": ""})
    assert r.status_code == 302
    record.refresh_from_db()
    assert record.review_status == "pending"  # no reason: refused
    page.post(f"/staff/identity-reviews/{record.pk}/decide/", {"decision": "approve", "reason": "核对无误"})
    record.refresh_from_db()
    assert record.review_status == "approved" and record.reviewed_by == org["demo_ops"]
    assert 'id="identity-reviews-empty"' in page.get("/staff/identity-reviews/").content.decode()
