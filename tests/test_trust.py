"""Trust rules (DESIGN.md; issue #19): a signed-out pre-qualification learns only public facts; the person acting for
an enterprise is verified (the sandbox 公安部 check and an SMS code, or an agent with a power of attorney);
authorisations are records (who, scopes, purpose, text version, when), not pre-ticked, withdrawable, and every pull
names the one it used; the borrower signs as its verified representative with a code sent at signing."""

from __future__ import annotations

import copy

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from applications.identity import HttpIdentityProvider, IdentityProviderError, SandboxIdentityProvider
from applications.models import Consent, DataAuthorisation, IdentityVerification
from casework import prequal
from loanservice.models import AuditEvent
from tests.conftest import (
    TINY_PDF,
    client_for,
    consent_via_api,
    draft_via_api,
    last_code,
    sms_outbox,
    verify_via_api,
)
from tests.factories import ApplicantFactory, ApplicationFactory, EnterpriseFactory, uscc_for
from tests.test_prescreen import USCC, good_payloads
from underwriting.models import DataSnapshot
from underwriting.services import snapshot_pull, snapshots_gather, snapshots_refresh_batch

pytestmark = pytest.mark.django_db

PRIVATE_FIELDS = {  # facts a signed-out visitor must never learn, per source
    "tax": {"tax_grade", "months_filed", "tax_paid_12m", "revenue_12m", "major_violation"},
    "credit_bureau": {"current_overdue_amount", "overdue_count_24m", "max_dpd_24m", "inquiries_3m", "outstanding_debt"},
    "judicial": {"enforcement_cases", "litigation_cases_12m"},
    "social_security": {"headcount"}, "internal": {"npl_5y", "existing_exposure"},
}
PUBLIC_CRITERIA = {"years_in_business", "industry_allowed", "registry_status", "abnormal_operations", "dishonest_debtor"}


def _bad_everywhere(today):
    """Every non-public source says something damning; the registry and the dishonest-debtor list are clean."""
    payloads = good_payloads(today)
    payloads["tax"].update(tax_grade="D", major_violation=True, months_filed=3)
    payloads["credit_bureau"].update(current_overdue_amount="88888.00", inquiries_3m=19, max_dpd_24m=120)
    payloads["judicial"].update(enforcement_cases=7, litigation_cases_12m=9)
    payloads["internal"].update(npl_5y=True)
    return payloads


# ---------------------------------------------------------------- 1. pre-qualification on public data
def test_a_signed_out_prequalification_never_returns_a_bureau_court_or_tax_fact(products, monkeypatch, client):
    payloads = _bad_everywhere(timezone.localdate())
    asked = []

    def fetch(uscc, sources):
        asked.append(sorted(sources))
        return {s: copy.deepcopy(payloads.get(s)) for s in sources}

    monkeypatch.setattr(prequal, "_fetch", fetch)
    r = APIClient().post("/api/v1/prequalify/", {"uscc": USCC, "consent": True}, format="json")
    body = r.json()
    assert r.status_code == 200
    assert asked == [["judicial", "registry"]]  # the bureau, the tax office and the courts' case files were not even asked
    codes = {x["code"] for x in body["reasons"]} | {x["code"] for p in body["products"] for x in p["reasons"]}
    assert codes <= PUBLIC_CRITERIA and body["likely_eligible"] is True
    assert all(p["indicative_limit"] is None for p in body["products"])  # a limit would reveal revenue and tax
    # the gaps name the criteria not checked (their codes, like "tax_grade"), never a value: leave them out here
    text = str({**{k: v for k, v in body.items() if k != "gaps"},
                "products": [{k: v for k, v in p.items() if k != "gaps"} for p in body["products"]]})
    for source, fields in PRIVATE_FIELDS.items():
        for field in fields:
            assert field not in text, (source, field)
    assert "88888" not in text and payloads["registry"]["legal_rep_id_number"] not in text
    assert body["basis"] == "public" and body["authorisation"] is None
    assert [c["source"] for c in body["checked"]] == ["registry", "judicial"]
    assert {"credit_bureau", "tax", "judicial_detail"} <= {c["source"] for c in body["not_checked"]}
    # a dishonest debtor is a public fact: it is said
    payloads["judicial"]["dishonest_debtor"] = True
    body = APIClient().post("/api/v1/prequalify/", {"uscc": USCC, "consent": True}, format="json").json()
    assert "dishonest_debtor" in {x["code"] for x in body["reasons"]}
    # the page says what was checked and what was not
    html = client.post("/prequalify/", {"uscc": USCC, "consent": "on"}).content.decode()
    checked = html[html.index('id="prequal-checked"'):]
    assert "工商登记" in checked[:300] and "失信被执行人名单" in checked[:300]
    unchecked = html[html.index('id="prequal-not-checked"'):][:600]
    assert "征信" in unchecked and "税务" in unchecked and "需登录" in unchecked


def test_a_verified_authorised_owner_gets_the_fuller_check_until_it_withdraws(products, monkeypatch):
    payloads = _bad_everywhere(timezone.localdate())
    monkeypatch.setattr(prequal, "_fetch", lambda uscc, sources: {s: copy.deepcopy(payloads.get(s)) for s in sources})
    owner = ApplicantFactory(username="prequal_trust")
    application = ApplicationFactory(applicant=owner, enterprise=EnterpriseFactory(owner=owner, uscc=USCC),
                                     product="xinmiaodai", amount="300000.00", term_months=12,
                                     repayment_method="equal_installment")
    client = client_for(owner)
    body = client.post("/api/v1/prequalify/", {"uscc": USCC, "consent": True}, format="json").json()
    assert body["basis"] == "authorised" and body["authorisation"]
    assert "tax_grade" in {x["code"] for x in body["reasons"]}
    # another signed-in user, not the owner, is a visitor for this enterprise
    other = client_for(ApplicantFactory(username="prequal_other"))
    assert other.post("/api/v1/prequalify/", {"uscc": USCC, "consent": True}, format="json").json()["basis"] == "public"
    assert client.post(f"/api/v1/applications/{application.pk}/consent/withdraw/", {}, format="json").status_code == 200
    body = client.post("/api/v1/prequalify/", {"uscc": USCC, "consent": True}, format="json").json()
    assert body["basis"] == "public" and "tax_grade" not in {x["code"] for x in body["reasons"]}


def test_a_partial_authorisation_checks_those_sources_and_the_public_registers(products, monkeypatch):
    payloads = _bad_everywhere(timezone.localdate())
    asked = []

    def fetch(uscc, sources):
        asked.append(sorted(sources))
        return {s: copy.deepcopy(payloads.get(s)) for s in sources}

    monkeypatch.setattr(prequal, "_fetch", fetch)
    owner = ApplicantFactory(username="prequal_partial")
    application = ApplicationFactory(applicant=owner, enterprise=EnterpriseFactory(owner=owner, uscc=USCC), consent=False,
                                     product="xinmiaodai", amount="300000.00", term_months=12,
                                     repayment_method="equal_installment")
    from tests.factories import consent_given

    consent_given(application, ["tax"])
    body = client_for(owner).post("/api/v1/prequalify/", {"uscc": USCC, "consent": True}, format="json").json()
    assert asked == [["judicial", "registry", "tax"]] and body["basis"] == "authorised"
    assert [c["source"] for c in body["checked"]] == ["registry", "tax", "judicial"]
    assert {"credit_bureau", "judicial_detail"} <= {c["source"] for c in body["not_checked"]}
    codes = {x["code"] for x in body["reasons"]}
    assert "tax_grade" in codes and "no_current_overdue" not in codes and "88888" not in str(body)


# ---------------------------------------------------------------- 2. identity verification
@pytest.fixture
def owner_api(products):
    owner = ApplicantFactory(username="trust_owner")
    return client_for(owner), EnterpriseFactory(owner=owner, seed=91)


def _code(client, enterprise, phone="13900000091"):
    with sms_outbox() as sent:
        r = client.post(f"/api/v1/enterprises/{enterprise.pk}/verify-representative/code/", {"phone": phone}, format="json")
    assert r.status_code == 202 and sent[-1][0] == phone
    return last_code(sent)


def test_the_legal_representative_is_verified_by_name_id_and_an_sms_code(owner_api):
    client, enterprise = owner_api
    url = f"/api/v1/enterprises/{enterprise.pk}/verify-representative/"
    assert client.get(url).json() == {"verified": False, "verification": None}
    body = {"name": enterprise.legal_rep_name, "id_number": enterprise.legal_rep_id_number, "phone": "13900000091"}
    code = _code(client, enterprise)
    r = client.post(url, {**body, "sms_code": "000000" if code != "000000" else "111111"}, format="json")
    assert r.status_code == 400 and "sms_code" in r.json()["errors"]
    assert not IdentityVerification.objects.exists()  # a wrong code reaches no provider
    r = client.post(url, {**body, "sms_code": code}, format="json")
    assert r.status_code == 201, r.content
    out = r.json()
    assert out["verified"] is True and out["verification"]["method"] == "legal_rep"
    assert out["verification"]["provider"] == "sandbox" and out["verification"]["provider_reference"].startswith("SBX-")
    record = IdentityVerification.objects.get()
    assert (record.user, record.enterprise, record.result, record.phone) == (enterprise.owner, enterprise, "passed", "13900000091")
    assert client.get(url).json()["verification"]["id"] == record.pk
    assert AuditEvent.objects.filter(action="identity.verify", object_id=str(enterprise.pk)).exists()
    # a code is used once
    assert client.post(url, {**body, "sms_code": code}, format="json").status_code == 400


def test_someone_else_or_a_false_name_is_refused_and_the_attempt_kept(owner_api):
    client, enterprise = owner_api
    url = f"/api/v1/enterprises/{enterprise.pk}/verify-representative/"
    from underwriting.providers import make_resident_id

    stranger = {"name": "李四", "id_number": make_resident_id(4242, birth_year=1985), "phone": "13900000091"}
    r = client.post(url, {**stranger, "sms_code": _code(client, enterprise)}, format="json")
    assert r.status_code == 400 and "name" in r.json()["errors"]
    impostor = {"name": "张冒名", "id_number": enterprise.legal_rep_id_number, "phone": "13900000092"}
    r = client.post(url, {**impostor, "sms_code": _code(client, enterprise, "13900000092")}, format="json")
    assert r.status_code == 400
    assert list(IdentityVerification.objects.order_by("id").values_list("result", "reason")) == [
        ("failed", "not_legal_rep"), ("failed", "name_mismatch")]
    assert client.get(url).json()["verified"] is False
    # not the owner's enterprise: 404
    assert client_for(ApplicantFactory(username="nosy")).get(url).status_code == 404


def test_an_agent_verifies_with_a_power_of_attorney(owner_api):
    client, enterprise = owner_api
    url = f"/api/v1/enterprises/{enterprise.pk}/verify-representative/"
    from django.core.files.uploadedfile import SimpleUploadedFile

    from underwriting.providers import make_resident_id

    agent = {"method": "agent", "name": "王经办", "id_number": make_resident_id(5151, birth_year=1990), "phone": "13900000093"}
    r = client.post(url, {**agent, "sms_code": "123456"}, format="multipart")
    assert r.status_code == 400 and "power_of_attorney" in r.json()["errors"]
    poa = SimpleUploadedFile("poa.pdf", TINY_PDF, content_type="application/pdf")
    r = client.post(url, {**agent, "sms_code": _code(client, enterprise, "13900000093"), "power_of_attorney": poa},
                    format="multipart")
    assert r.status_code == 201, r.content
    record = IdentityVerification.objects.get()
    assert record.method == "agent" and record.power_of_attorney and len(record.power_of_attorney_sha256) == 64


def test_the_http_identity_provider_reads_the_gateway_and_fails_closed(monkeypatch):
    from underwriting.providers import make_resident_id

    good = make_resident_id(77, birth_year=1980)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert SandboxIdentityProvider().verify(name="张三", id_number=good).matched is True
    assert SandboxIdentityProvider().verify(name="张三", id_number=bad).reason == "invalid_id"

    class Answer:
        def __init__(self, body):
            self.body = body

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return self.body

    seen = {}

    def urlopen(request, timeout):
        seen["url"], seen["timeout"] = request.full_url, timeout
        return Answer(b'{"matched": true, "reference": "GA-1"}')

    monkeypatch.setattr("urllib.request.urlopen", urlopen)
    answer = HttpIdentityProvider("https://id.bank.example/", timeout=3).verify(name="张三", id_number=good)
    assert answer.matched and answer.reference == "GA-1" and seen == {"url": "https://id.bank.example/verify", "timeout": 3}
    monkeypatch.setattr("urllib.request.urlopen", lambda request, timeout: Answer(b"<html>"))
    with pytest.raises(IdentityProviderError):
        HttpIdentityProvider("https://id.bank.example").verify(name="张三", id_number=good)


# ---------------------------------------------------------------- 3. authorisations
def test_consent_needs_a_verified_person_and_records_the_authorisation(owner_api):
    client, enterprise = owner_api
    pk = draft_via_api(client, uscc=uscc_for("AB", seed=92), seed=92, consent=False)
    r = client.post(f"/api/v1/applications/{pk}/consent/", {"scopes": ["tax", "credit_bureau"]}, format="json")
    assert r.status_code == 400 and "verification" in r.json()["errors"]
    assert not Consent.all_objects.filter(application_id=pk).exists()
    r = consent_via_api(client, pk, ["tax", "credit_bureau"])
    assert r.status_code == 201, r.content
    out = r.json()
    assert out["scopes"] == ["credit_bureau", "tax"] and len(out["authorisations"]) == 1
    authorisation = DataAuthorisation.objects.get()
    verification = IdentityVerification.objects.get(result="passed", enterprise=authorisation.enterprise)
    assert authorisation.verification == verification and authorisation.granted_by == verification.user
    assert authorisation.scopes == ["tax", "credit_bureau"] and authorisation.purpose == "loan_application"
    text = client.get("/api/v1/authorisation-text/").json()
    assert authorisation.text_version == text["version"] == out["authorisations"][0]["text_version"] and text["body"]
    assert set(Consent.objects.filter(application_id=pk).values_list("authorisation_id", flat=True)) == {authorisation.pk}


def test_the_consent_page_is_not_pre_ticked_and_shows_the_text_and_the_signer(products, client):
    application = ApplicationFactory(consent=False, seed=93)
    client.force_login(application.applicant)
    r = client.get(f"/portal/applications/{application.pk}/consent/")
    assert r.status_code == 302 and r["Location"].endswith("/verify/")  # verification comes first
    html = client.get(r["Location"]).content.decode()
    assert 'id="verify-form"' in html and application.enterprise.legal_rep_name in html
    from casework.demo.cases import verify_representative

    verify_representative(application.applicant, application.enterprise)
    html = client.get(f"/portal/applications/{application.pk}/consent/").content.decode()
    form = html[html.index('id="consent-form"'):html.index("</form>", html.index('id="consent-form"'))]
    assert 'name="scopes"' in form and "checked" not in form
    assert 'id="authorisation-text"' in html and "2026-2" in html and 'id="consent-signer"' in html


def test_the_wizard_verifies_with_a_code_then_moves_on_to_consent(products, client, settings):
    settings.DEBUG = False
    application = ApplicationFactory(consent=False, seed=94)
    enterprise = application.enterprise
    client.force_login(application.applicant)
    url = f"/portal/applications/{application.pk}/verify/"
    with sms_outbox() as sent:
        client.post(url, {"send": "1", "phone": "13900000094", "name": enterprise.legal_rep_name})
    r = client.post(url, {"method": "legal_rep", "name": enterprise.legal_rep_name, "phone": "13900000094",
                          "id_number": enterprise.legal_rep_id_number, "sms_code": last_code(sent)})
    assert r.status_code == 302 and r["Location"].endswith("/consent/")
    assert IdentityVerification.objects.filter(enterprise=enterprise, result="passed").exists()


def test_a_pull_without_a_live_authorisation_is_refused_and_withdrawal_stops_pulls(products):
    application = ApplicationFactory(product="xinmiaodai", amount="300000.00", term_months=12,
                                     repayment_method="equal_installment", seed=95)
    enterprise = application.enterprise
    snap = snapshot_pull(enterprise=enterprise, source="credit_bureau", application=application, by=None)
    live = Consent.objects.get(application=application, source="credit_bureau").authorisation_id
    assert snap.status == "ok" and snap.authorisation_id == live  # the pull names the authorisation it used
    event = AuditEvent.objects.filter(action="data.pull").latest("id")
    assert event.data["authorisation"] == live
    client = client_for(application.applicant)
    r = client.post(f"/api/v1/applications/{application.pk}/consent/withdraw/", {"scopes": ["credit_bureau"]}, format="json")
    assert r.status_code == 200 and r.json()["withdrawn"] == ["credit_bureau"] and "credit_bureau" not in r.json()["scopes"]
    refused = snapshot_pull(enterprise=enterprise, source="credit_bureau", application=application, by=None)
    assert refused.status == "failed" and refused.error_code == "no_consent" and refused.payload == {}
    assert snapshots_gather(application=application, by=None, sources=["credit_bureau"])["credit_bureau"].error_code == "no_consent"
    batch = snapshots_refresh_batch(pulls=[(enterprise, "credit_bureau", application.pk), (enterprise, "credit_bureau", None),
                                           (enterprise, "tax", application.pk)])
    assert [s.error_code for s in batch] == ["no_consent", "no_consent", ""]
    # what was fetched stays with the decision it served, still naming its authorisation
    snap.refresh_from_db()
    assert snap.status == "ok" and snap.payload and snap.authorisation_id == live
    # the authorisation itself is withdrawn once none of its sources is left
    assert DataAuthorisation.objects.get(pk=live).withdrawn_at is None  # tax and others still live
    assert client.post(f"/api/v1/applications/{application.pk}/consent/withdraw/", {}, format="json").status_code == 200
    assert DataAuthorisation.objects.get(pk=live).withdrawn_at is not None
    assert not application.consents.exists() and Consent.all_objects.filter(application=application).count() == 7
    assert client.post(f"/api/v1/applications/{application.pk}/consent/withdraw/", {}, format="json").status_code == 409
    assert snapshot_pull(enterprise=enterprise, source="tax", application=application, by=None).error_code == "no_consent"
    assert AuditEvent.objects.filter(action="consent.withdraw").count() == 2


def test_the_portal_withdraws_an_authorisation(products, client):
    application = ApplicationFactory(stage="submitted", seed=96)
    client.force_login(application.applicant)
    html = client.get(f"/portal/applications/{application.pk}/").content.decode()
    assert 'id="consent-withdraw"' in html
    r = client.post(f"/portal/applications/{application.pk}/action/withdraw_consent/", follow=True)
    assert r.status_code == 200 and "已撤回数据查询授权" in r.content.decode()
    assert not application.consents.exists()


# ---------------------------------------------------------------- 4. verified signers
@pytest.fixture
def contracting(products, org):
    application = ApplicationFactory(stage="contracting", fast_track=True, product="xinmiaodai", amount="300000.00",
                                     term_months=12, repayment_method="equal_installment", grades="AB", tier="prime", seed=97)
    return application, application.contracts.get(kind="loan")


def test_an_unverified_account_cannot_sign_for_the_borrower(contracting):
    application, contract = contracting
    client = client_for(application.applicant)
    IdentityVerification.objects.filter(user=application.applicant).update(result="failed")  # as if never verified
    r = client.post(f"/api/v1/contracts/{contract.pk}/sign/code/", format="json")
    assert r.status_code == 409 and r.json()["state"] == "signer_not_verified"
    r = client.post(f"/api/v1/contracts/{contract.pk}/sign/", {"agree": True, "sms_code": "123456"}, format="json")
    assert r.status_code == 409 and "身份核验" in r.json()["detail"]
    contract.refresh_from_db()
    assert contract.status == "issued" and not contract.signatures.exists()


def test_the_verified_representative_signs_with_the_code_sent_at_signing(contracting):
    application, contract = contracting
    client = client_for(application.applicant)
    verification = IdentityVerification.objects.get(user=application.applicant, result="passed")
    with sms_outbox() as sent:
        r = client.post(f"/api/v1/contracts/{contract.pk}/sign/code/", format="json")
    assert r.status_code == 202 and r.json()["phone"] == f"{verification.phone[:3]} **** {verification.phone[7:]}"
    assert sent[-1][0] == verification.phone  # to the verified phone, never one typed now
    wrong = "000000" if last_code(sent) != "000000" else "111111"
    r = client.post(f"/api/v1/contracts/{contract.pk}/sign/", {"agree": True, "sms_code": wrong}, format="json")
    assert r.status_code == 400 and "sms_code" in r.json()["errors"]
    r = client.post(f"/api/v1/contracts/{contract.pk}/sign/", {"agree": True, "sms_code": last_code(sent)}, format="json")
    assert r.status_code == 200, r.content
    signature = contract.signatures.get(party="borrower")
    assert signature.verification == verification and signature.verification_method == "legal_rep+sms"
    event = AuditEvent.objects.filter(action="contract.sign.borrower").latest("id")
    assert event.data["verification"] == verification.pk and event.data["verified_by"] == "legal_rep+sms"
    from casework import lifecycle

    lifecycle.fast_track_complete(contract.pk)  # the worker's step (no commit in this test)
    bank = contract.signatures.get(party="bank")
    assert bank.verification is None and bank.verification_method == ""  # the system's seal


def test_another_users_verification_does_not_let_them_sign(contracting):
    application, contract = contracting
    stranger = ApplicantFactory(username="not_the_borrower")
    assert client_for(stranger).post(f"/api/v1/contracts/{contract.pk}/sign/code/", format="json").status_code == 404


def test_the_portal_sign_button_needs_the_signing_code(contracting, client, settings):
    settings.DEBUG = False
    application, contract = contracting
    client.force_login(application.applicant)
    base = f"/portal/applications/{application.pk}/action/"
    r = client.post(base + "sign/", {"agree": "on"}, follow=True)
    assert "签署验证码" in r.content.decode()
    contract.refresh_from_db()
    assert contract.status == "issued"
    with sms_outbox() as sent:
        client.post(base + "sign_code/")
    client.post(base + "sign/", {"agree": "on", "sms_code": last_code(sent)})
    contract.refresh_from_db()
    assert contract.status != "issued" and contract.signatures.get(party="borrower").verification_method == "legal_rep+sms"


def test_verify_via_api_helper_round_trip(products):
    """The helper the journeys use goes through the public endpoints (code, then verification)."""
    owner = ApplicantFactory(username="helper_owner")
    enterprise = EnterpriseFactory(owner=owner, seed=98)
    out = verify_via_api(client_for(owner), enterprise.pk)
    assert out["verified"] is True and DataSnapshot.objects.count() == 0
