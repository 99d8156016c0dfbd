"""Pre-qualification (预审) before applying: USCC plus consent → likely eligible or not with each failing criterion
named; signed out on public registers only (registry, dishonest-debtor list), signed in with a live authorisation
on the sources authorised, with an indicative limit; rate limited per client; nothing kept but the consent
record; the result starts an application with the data prefilled."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

import pytest
from django.core import signing
from django.utils import timezone
from rest_framework.test import APIClient

from applications.models import Consent, Enterprise, LoanApplication, NegativeListEntry
from applications.services import negative_list_add, prescreen_run, prospect_from_data
from casework import prequal
from loanservice.models import AuditEvent
from tests.conftest import client_for
from tests.factories import ApplicantFactory, ApplicationFactory, EnterpriseFactory
from tests.test_prescreen import USCC, good_payloads
from underwriting.models import DataSnapshot, DataSourceConfig
from underwriting.providers import SandboxProvider, make_uscc

pytestmark = pytest.mark.django_db


def fake_fetch(payloads: dict, asked: list | None = None):
    def fetch(uscc, sources):
        if asked is not None:
            asked.append(sorted(sources))
        return {s: copy.deepcopy(payloads.get(s)) for s in sources}
    return fetch


@pytest.fixture
def asked():
    return []


@pytest.fixture
def data(monkeypatch, asked):
    """The sources' answers, controlled by the test (the providers are exercised elsewhere)."""
    payloads = good_payloads(timezone.localdate())
    monkeypatch.setattr(prequal, "_fetch", fake_fetch(payloads, asked))
    return payloads


@pytest.fixture
def authorised(products):
    """A signed-in owner of the enterprise with USCC, verified, who authorised every source on a draft."""
    owner = ApplicantFactory(username="prequal_authorised")
    application = ApplicationFactory(applicant=owner, enterprise=EnterpriseFactory(owner=owner, uscc=USCC),
                                     product="xinmiaodai", amount="300000.00", term_months=12,
                                     repayment_method="equal_installment")
    assert application.enterprise.uscc == USCC and application.consents.count() == 7
    return client_for(application.applicant)


def _post(client, **body):
    return client.post("/api/v1/prequalify/", {"uscc": USCC, "consent": True, **body}, format="json")


def test_eligible_enterprise_gets_an_indicative_limit_per_product_and_an_apply_token(products, data, authorised):
    r = _post(authorised)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["likely_eligible"] is True and body["reasons"] == []
    by_code = {p["code"]: p for p in body["products"]}
    assert set(by_code) == set(products)
    for code, product in products.items():
        limit = Decimal(by_code[code]["indicative_limit"])
        assert 0 < limit <= product.max_amount and limit % 10000 == 0
    assert body["apply_token"] and prequal.prequal_token_read(body["apply_token"])["uscc"] == USCC


def test_the_limit_follows_tax_paid_revenue_and_existing_debt(products, monkeypatch, authorised):
    def limit_with(changes=None):
        payloads = good_payloads(timezone.localdate())
        for (source, field), value in (changes or {}).items():
            payloads[source][field] = value
        monkeypatch.setattr(prequal, "_fetch", fake_fetch(payloads))
        result = _post(authorised).json()
        return Decimal(next(p for p in result["products"] if p["code"] == "secured-operating")["indicative_limit"] or 0)

    base = limit_with()
    assert limit_with({("tax", "tax_paid_12m"): "100000.00"}) < base  # tax paid binds here
    assert limit_with({("credit_bureau", "outstanding_debt"): "1500000.00"}) < base
    assert limit_with({("tax", "tax_paid_12m"): "900000.00", ("tax", "revenue_12m"): "4000000.00"}) < \
        limit_with({("tax", "tax_paid_12m"): "900000.00", ("tax", "revenue_12m"): "9000000.00"})


def test_each_failing_criterion_is_named_and_no_token_is_given(products, data, org, authorised):
    data["tax"]["tax_grade"] = "D"
    negative_list_add(by=org["demo_risk"], uscc=USCC, reason="骗贷嫌疑")
    body = _post(authorised).json()
    assert body["likely_eligible"] is False and body["apply_token"] is None
    assert {r["code"] for r in body["reasons"]} == {"tax_grade", "manual_list"}
    assert all(r["message"] and r["message_en"] for r in body["reasons"])
    for p in body["products"]:
        assert p["likely_eligible"] is False and p["indicative_limit"] is None
        assert {r["code"] for r in p["reasons"]} == {"tax_grade", "manual_list"}
    # the applicant sees the rule's message, never the reason risk wrote
    assert "骗贷嫌疑" not in str(body)


def test_missing_sources_are_gaps_to_verify_not_failures(products, data, authorised):
    data["credit_bureau"] = None
    data["tax"] = None
    body = _post(authorised).json()
    assert body["likely_eligible"] is True
    assert {"no_current_overdue", "bureau_inquiries", "tax_grade", "tax_months"} <= {g["code"] for g in body["gaps"]}
    assert all(p["needs_verification"] and p["indicative_limit"] is None for p in body["products"])


@pytest.mark.parametrize("body, field", [({"uscc": "123"}, "uscc"), ({"uscc": ""}, "uscc"), ({"consent": False}, "consent")])
def test_bad_input_is_a_400_naming_the_field(products, data, body, field):
    r = _post(APIClient(), **body)
    assert r.status_code == 400 and field in r.json()["errors"]
    assert not AuditEvent.objects.filter(action="prequalify.check").exists()


def test_nothing_is_stored_beyond_the_consent_record(products):
    """Real sandbox data this time: no enterprise, snapshot, case or consent row; one audit event with the
    consent evidence and the outcome only."""
    uscc = make_uscc(5)
    counts = [m.objects.count() for m in (Enterprise, DataSnapshot, LoanApplication, Consent, NegativeListEntry)]
    body = _post(APIClient(), uscc=uscc).json()
    assert [m.objects.count() for m in (Enterprise, DataSnapshot, LoanApplication, Consent, NegativeListEntry)] == counts
    event = AuditEvent.objects.get(action="prequalify.check")
    assert set(event.data) == {"uscc", "consent_version", "scopes", "likely_eligible", "failed", "basis", "authorisation"}
    assert event.data["uscc"] == uscc and event.data["likely_eligible"] == body["likely_eligible"]
    assert event.data["basis"] == "public" and event.data["scopes"] == ["registry", "judicial"]
    assert event.ip == "127.0.0.1" and event.actor is None
    # The answer is the pre-screen on the public part of what the sources give (composed, not re-implemented).
    today = timezone.localdate()
    payloads = {s: prequal.public_view(s, SandboxProvider().fetch(s, uscc, as_of=today, hints={})) for s in prequal.SCOPES}
    for p in body["products"]:
        expected = prescreen_run(enterprise=prospect_from_data(uscc=uscc, payloads=payloads), product=products[p["code"]],
                                 payloads=payloads, manual_list=False)
        assert {r["code"] for r in expected["reasons"]} == {r["code"] for r in p["reasons"]}


def test_a_push_only_source_is_a_gap(products, authorised):
    DataSourceConfig.objects.update_or_create(source="credit_bureau", defaults={"provider": "push"})
    body = _post(authorised).json()
    assert body["basis"] == "authorised" and "no_current_overdue" in {g["code"] for g in body["gaps"]}


def test_rate_limited_per_client_and_a_forged_forwarded_for_does_not_help(products, data, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "prequalify": "2/minute"}}
    client = APIClient()
    assert _post(client).status_code == 200
    assert _post(client, HTTP_X_FORWARDED_FOR="10.0.0.1").status_code == 200
    r = _post(client, HTTP_X_FORWARDED_FOR="10.0.0.2")
    assert r.status_code == 429 and r.json()["detail"]
    other = APIClient(REMOTE_ADDR="10.9.9.9")
    assert _post(other).status_code == 200  # another client has its own allowance
    # The page shares the limit with the API.
    r = other.post("/prequalify/", {"uscc": USCC, "consent": "on"})
    assert r.status_code == 200
    r = other.post("/prequalify/", {"uscc": USCC, "consent": "on"})
    assert r.status_code == 429 and 'id="prequal-throttled"' in r.content.decode()
    assert AuditEvent.objects.filter(action="prequalify.check").count() == 4


def test_the_page_answers_in_place_and_names_errors(client, products, data):
    r = client.get("/prequalify/")
    assert r.status_code == 200 and 'id="prequal-form"' in r.content.decode()
    r = client.post("/prequalify/", {"uscc": USCC})
    html = r.content.decode()
    assert r.status_code == 400 and 'id="err-consent"' in html and "请阅读并同意授权" in html
    assert "Please read" not in html  # the user's language only
    r = client.post("/prequalify/", {"uscc": USCC, "consent": "on"})
    html = r.content.decode()
    assert r.status_code == 200 and 'id="prequal-result"' in html and "可能符合条件" in html
    assert html.count('class="card product-result"') == len(products)
    assert "/portal/apply/xinmiaodai/?prequal=" in html


def test_the_result_starts_an_application_with_the_data_prefilled(client, products, data):
    body = _post(APIClient()).json()
    assert body["basis"] == "public" and all(p["indicative_limit"] is None for p in body["products"])  # no tax data
    # A token as an authorised check hands out it (the same signer), with an indicative limit to suggest.
    limit = "300000.00"
    token = signing.dumps({**prequal.prequal_token_read(body["apply_token"]), "limits": {"xinmiaodai": limit}},
                          salt=prequal.TOKEN_SALT, compress=True)
    owner = ApplicantFactory(username="prequal_owner")
    client.force_login(owner)
    r = client.get("/portal/apply/xinmiaodai/", {"prequal": token})
    html = r.content.decode()
    assert r.status_code == 200 and 'id="prequal-prefill"' in html
    assert f'value="{USCC}"' in html and 'value="C3399"' in html and f'value="{data["registry"]["founded_on"]}"' in html
    assert data["registry"]["legal_rep_id_number"] not in html  # the token carries nothing beyond the public registry
    # The enterprise step, then the request step with the indicative limit as the suggested amount.
    form = {"name": "上海预审测试有限公司", "uscc": USCC, "legal_form": "llc", "legal_rep_name": "王五",
            "legal_rep_id_number": data["registry"]["legal_rep_id_number"], "industry_code": "C3399",
            "founded_on": data["registry"]["founded_on"], "employees": 40, "annual_revenue": "8000000"}
    r = client.post("/portal/apply/xinmiaodai/", form)
    assert r.status_code == 302
    r = client.get(r["Location"])
    assert 'id="indicative-limit"' in r.content.decode()
    assert f'value="{Decimal(limit)}"' in r.content.decode() or f'value="{limit}"' in r.content.decode()


def test_an_altered_or_expired_token_prefills_nothing(client, products, data, monkeypatch):
    token = _post(APIClient()).json()["apply_token"]
    client.force_login(ApplicantFactory(username="prequal_forger"))
    r = client.get("/portal/apply/xinmiaodai/", {"prequal": token[:-2] + "xx"})
    assert USCC not in r.content.decode() and "预审结果已失效" in r.content.decode()
    later = timezone.now() + dt.timedelta(days=8)
    monkeypatch.setattr("django.core.signing.time.time", lambda: later.timestamp())
    assert prequal.prequal_token_read(token) is None
