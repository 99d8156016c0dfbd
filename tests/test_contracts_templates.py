"""Contract templates: versioned per product and kind, edited by admins as HTML with named fields; a
template that leaves out a key term or tries to reach files is refused; published versions never change."""

from __future__ import annotations

import pytest

from tests.contracts_support import accept, contracts_of
from tests.factories import FastTrackApplicationFactory, owner_view

pytestmark = pytest.mark.django_db


def test_seeded_templates_use_every_required_field(db):
    from contracts.models import ContractTemplate
    from contracts.services import REQUIRED_FIELDS, contract_template_check, template_fields_used

    seeded = {t.kind: t for t in ContractTemplate.objects.filter(product__isnull=True, is_active=True)}
    assert set(seeded) == {"loan", "guarantee", "mortgage", "credit_line"}
    for kind, template in seeded.items():
        contract_template_check(kind=kind, html=template.html)
        assert set(REQUIRED_FIELDS[kind]) <= template_fields_used(template.html)


@pytest.mark.parametrize("html, named", [
    ("{% if %}{% endif %}", "if"),  # does not compile
    ("<p>{{ borrower.name }}</p>", "amount_words"),
    ("{% for s in schedule %}{{ s.n }}{% endfor %}{{ amount }}", "borrower.uscc"),
])
def test_a_template_missing_key_terms_or_not_compiling_is_refused(db, html, named):
    from contracts.services import contract_template_check
    from loanservice.errors import ApplicationError

    with pytest.raises(ApplicationError) as exc:
        contract_template_check(kind="loan", html=html)
    messages = " ".join(exc.value.errors["html"])
    assert named in messages
    if "{{" in html:  # compiled: exactly the key terms it leaves out are named
        assert ("schedule" in messages) is ("schedule" not in html) and ("borrower.name" in messages) is ("borrower.name" not in html)


def test_templates_cannot_load_tags_or_include_files(db):
    from django.template import Context, TemplateDoesNotExist, TemplateSyntaxError

    from contracts.services import template_engine

    engine = template_engine()
    with pytest.raises(TemplateSyntaxError):
        engine.from_string("{% load static %}{% static 'x' %}")
    with pytest.raises(TemplateDoesNotExist):
        engine.from_string('{% include "/etc/passwd" %}').render(Context({}))
    assert engine.from_string("{{ name }}").render(Context({"name": "<b>甲</b>"})) == "&lt;b&gt;甲&lt;/b&gt;"


def test_publishing_a_product_template_makes_a_new_version_and_issued_contracts_keep_theirs(products, org):
    from contracts.models import ContractTemplate
    from contracts.services import contract_template_publish

    pk, owner, client = owner_view(FastTrackApplicationFactory(seed=1))
    base = ContractTemplate.objects.get(kind="loan", product__isnull=True, is_active=True)
    html = base.html.replace("第二条 借款金额", "第二条 借款金额（信秒贷专用）")
    v1 = contract_template_publish(kind="loan", html=html, product=products["xinmiaodai"], title="信秒贷借款合同", by=org["demo_admin"])
    v2 = contract_template_publish(kind="loan", html=html + "<p>补充条款</p>", product=products["xinmiaodai"], by=org["demo_admin"])
    v1.refresh_from_db()
    assert (v1.version, v2.version, v1.is_active, v2.is_active) == (1, 2, False, True)
    base.refresh_from_db()
    assert base.is_active  # the generic template still serves the other products

    accept(client, pk)
    contract = contracts_of(pk)[0]
    assert contract.template_id == v2.pk and contract.terms["title"] == "流动资金借款合同"
    issued = contract.pdf.open("rb").read()
    contract_template_publish(kind="loan", html=html, product=products["xinmiaodai"], by=org["demo_admin"])
    contract.refresh_from_db()
    assert contract.template_id == v2.pk and contract.pdf.open("rb").read() == issued


def test_admin_publishes_new_versions_and_never_edits_one_in_place(products, org, client):
    from contracts.models import ContractTemplate
    from loanservice.models import AuditEvent

    admin_user = org["demo_admin"]
    client.force_login(admin_user)
    base = ContractTemplate.objects.get(kind="guarantee", product__isnull=True, is_active=True)
    page = client.get(f"/admin/contracts/contracttemplate/add/?copy_from={base.pk}")
    assert page.status_code == 200 and "guarantor.id_number" in page.content.decode()

    r = client.post("/admin/contracts/contracttemplate/add/", {"kind": "guarantee", "product": "", "title": "", "note": "缺字段",
                                                               "html": "<p>{{ guarantor.name }}</p>"})
    assert r.status_code == 200 and "guarantor.id_number" in r.content.decode()  # refused, the missing fields named
    r = client.post("/admin/contracts/contracttemplate/add/", {"kind": "guarantee", "product": "", "title": "保证合同（2025版）",
                                                               "note": "修订保证期间", "html": base.html + "<p>附加条款</p>"})
    assert r.status_code == 302
    new = ContractTemplate.objects.get(kind="guarantee", product__isnull=True, is_active=True)
    base.refresh_from_db()
    assert new.version == base.version + 1 and not base.is_active and new.created_by == admin_user
    assert AuditEvent.objects.filter(action="contract_template.publish", object_id=str(new.pk)).exists()

    # A published version's text cannot be changed through admin: only its active flag.
    r = client.post(f"/admin/contracts/contracttemplate/{new.pk}/change/", {"is_active": "on", "html": "<p>改掉</p>"})
    assert r.status_code == 302
    new.refresh_from_db()
    assert new.html.endswith("<p>附加条款</p>")
