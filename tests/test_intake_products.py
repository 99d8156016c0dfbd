"""Products and the 清单制: three products with their own checklists as data; the public page shows exactly the
checklist the application will ask for; admission criteria and negative list in Chinese and English."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.html import escape

from applications.models import AdmissionCriterion, DocumentRequirement
from applications.selectors import applicable_checklist
from applications.services import application_create, documents_missing, enterprise_create
from tests.conftest import TINY_PDF
from tests.factories import ApplicantFactory, enterprise_payload

pytestmark = pytest.mark.django_db

ROW = re.compile(r'class="checklist-row" data-code="([\w-]+)"')
WIZARD_ROW = re.compile(r'class="checklist-item[^"]*" id="req-[\w-]+" data-code="([\w-]+)"')


def _page_codes(client, code, **params) -> list[str]:
    r = client.get(f"/products/{code}/", params)
    assert r.status_code == 200
    return ROW.findall(r.content.decode())


def test_three_products_with_different_customers_checklists_terms_and_rate_bands(products):
    fast, secured, chain = products["xinmiaodai"], products["secured-operating"], products["supply-chain-order"]
    assert fast.fast_track and fast.max_amount == Decimal("1000000") and not secured.fast_track and secured.secured
    assert secured.max_amount == Decimal("10000000")
    # Fast track: the only line is the business licence, proven by the registry (e-licence): nothing to upload.
    assert [(r.code, r.satisfied_by_source) for r in fast.checklist.all()] == [("business_licence", "registry")]
    assert {r.code for r in secured.checklist.all()} >= {"property_certificate", "appraisal", "financial_statements",
                                                         "bank_statements", "shareholder_resolution"}
    assert {r.code for r in chain.checklist.all()} >= {"core_orders", "invoices"}
    assert "ofd" in chain.checklist.get(code="invoices").accepted_types
    for p in (fast, secured, chain):
        assert p.customers and p.customers_en and p.repayment_methods and p.rate_floor < p.rate_cap
        assert p.min_term_months <= p.max_term_months


@pytest.mark.parametrize("code, amount, legal_form", [
    ("secured-operating", "2000000", "llc"),
    ("secured-operating", "2000000", "sole"),  # no shareholder resolution for a sole proprietorship
    ("supply-chain-order", "500000", "llc"),  # no financial statements below 1,000,000
    ("supply-chain-order", "1500000", "llc"),
    ("xinmiaodai", "300000", "partnership"),
])
def test_the_public_page_shows_exactly_the_checklist_the_application_asks_for(client, products, code, amount, legal_form):
    product = products[code]
    owner = ApplicantFactory(username=f"owner_{code[:6]}_{amount}_{legal_form}")
    from tests.factories import uscc_for

    enterprise = enterprise_create(owner=owner, **enterprise_payload(uscc_for("", seed=abs(hash((code, amount, legal_form))) % 500),
                                                                        legal_form=legal_form))
    application = application_create(applicant=owner, enterprise=enterprise, product=product, amount=Decimal(amount),
                                      term_months=product.min_term_months, repayment_method=product.repayment_methods[0],
                                      purpose="经营周转")
    # 1. The public page, filtered to this amount and legal form.
    on_page = _page_codes(client, code, amount=amount, legal_form=legal_form)
    # 2. The wizard's documents step for the application.
    client.force_login(owner)
    wizard = WIZARD_ROW.findall(client.get(f"/portal/applications/{application.pk}/documents/").content.decode())
    # 3. What submission insists on (no data source proves anything yet, nothing uploaded).
    required = [r.code for r in documents_missing(application, payloads={})]
    assert on_page == wizard == [r.code for r in applicable_checklist(product, amount=Decimal(amount), legal_form=legal_form)]
    assert required == [c for c in on_page if DocumentRequirement.objects.get(product=product, code=c).required]
    # ...and once the registry proves the licence, only the uploads remain.
    assert [r.code for r in documents_missing(application, payloads={"registry": {"status": "active"}})] == \
        [c for c in required if c != "business_licence"]


def test_unfiltered_page_lists_every_line_with_its_conditions_and_the_api_lists_the_same(client, products):
    for code, product in products.items():
        assert _page_codes(client, code) == [r.code for r in product.checklist.all()]
    html = client.get("/products/secured-operating/").content.decode()
    assert "仅适用于：" in html and "有限责任公司" in html  # the shareholder resolution's legal-form condition
    html = client.get("/products/supply-chain-order/").content.decode()
    assert "金额不低于 1,000,000 元时需要" in html
    api = {p["code"]: p for p in client.get("/api/v1/products/").json()}
    for code in products:
        assert [c["code"] for c in api[code]["checklist"]] == _page_codes(client, code)
        line = api[code]["checklist"][0]
        assert {"required", "min_amount", "legal_forms", "accepted_types", "max_size_mb", "satisfied_by_source"} <= set(line)


def test_checklist_filter_answers_over_htmx_and_names_a_bad_amount(client, products):
    r = client.get("/products/supply-chain-order/", {"amount": "1200000", "legal_form": "llc"}, HTTP_HX_REQUEST="true")
    body = r.content.decode()
    assert r.status_code == 200 and "<html" not in body and ROW.findall(body)[-1] == "financial_statements"
    r = client.get("/products/supply-chain-order/", {"amount": "abc"})
    assert "请填写有效金额" in r.content.decode()
    assert _page_codes(client, "supply-chain-order", amount="abc") == [r.code for r in products["supply-chain-order"].checklist.all()]


def test_criteria_and_negative_list_in_the_readers_language_only(client, products):
    """One language at a time (issue #16): the Chinese names in Chinese, the English names in English."""
    for language, shown, hidden in (("zh-hans", "name", "name_en"), ("en", "name_en", "name")):
        client.cookies["django_language"] = language
        html = client.get("/products/xinmiaodai/").content.decode()
        admission = html[html.index('id="admission-criteria"'):html.index('id="negative-list"')]
        negative = html[html.index('id="negative-list"'):]
        for c in AdmissionCriterion.objects.filter(is_active=True):
            section = admission if c.kind == AdmissionCriterion.ADMISSION else negative
            assert f'data-code="{c.code}"' in section
            assert escape(getattr(c, shown)) in section and escape(getattr(c, hidden)) not in section
    client.cookies["django_language"] = "zh-hans"
    html = client.get("/products/xinmiaodai/").content.decode()
    assert "经营满2年" in html and "In business for at least 2 years" not in html and "Admission criteria" not in html


def test_a_criterion_for_one_product_shows_only_on_that_product(client, products):
    c = AdmissionCriterion.objects.create(code="collateral_title", kind="admission", rule="min_years_in_business",
                                          params={"years": 3}, name="抵押物权属清晰", name_en="Clear title to the collateral",
                                          message="抵押物权属不清", message_en="Unclear title")
    c.products.set([products["secured-operating"]])
    assert "抵押物权属清晰" in client.get("/products/secured-operating/").content.decode()
    assert "抵押物权属清晰" not in client.get("/products/xinmiaodai/").content.decode()
    client.cookies["django_language"] = "en"
    assert "Clear title to the collateral" in client.get("/products/secured-operating/").content.decode()


def test_an_upload_not_on_the_checklist_is_refused(api, products):
    from tests.conftest import client_for, draft_via_api
    from tests.factories import uscc_for

    owner = ApplicantFactory(username="owner_offlist")
    client = client_for(owner)
    pk = draft_via_api(client, uscc=uscc_for("", seed=77), consent=False)
    up = SimpleUploadedFile("x.pdf", TINY_PDF, content_type="application/pdf")
    r = client.post(f"/api/v1/applications/{pk}/documents/", {"requirement": "appraisal", "file": up}, format="multipart")
    assert r.status_code == 400 and "requirement" in r.json()["errors"]


def test_product_pages_are_public_and_english_when_chosen(client, products):
    client.cookies["django_language"] = "en"
    html = client.get("/products/secured-operating/").content.decode()
    assert "<h1>Secured operating loan" in html
    assert "Property certificate" in html
