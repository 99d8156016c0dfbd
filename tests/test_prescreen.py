"""Pre-screen (预审): the admission criteria and negative list of DESIGN.md as configurable data, the SME size
class by the official standard per industry, restricted industries by GB/T 4754 prefix, manual negative-list
entries with expiry, and the risk officer's admin changes, every one audited."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from stdnum.cn import ric

from applications.models import AdmissionCriterion, NegativeListEntry
from applications.prescreen import size_class
from applications.services import ProspectEnterprise, negative_list_add, prescreen_run
from loanservice.errors import ApplicationError
from loanservice.masking import mask_id_number
from loanservice.models import AuditEvent

USCC = "91310000MA1FL0BL59"


def _rid(birth: dt.date, county: str = "110105") -> str:
    body = f"{county}{birth:%Y%m%d}123"
    return body + ric.calc_check_digit(body + "0")


def good_payloads(today: dt.date) -> dict:
    return {
        "tax": {"tax_grade": "A", "months_filed": 36, "tax_paid_12m": "200000.00", "revenue_12m": "8000000.00",
                "revenue_prev_12m": "7000000.00", "major_violation": False},
        "registry": {"status": "active", "founded_on": (today - dt.timedelta(days=365 * 6)).isoformat(),
                     "registered_capital": "1000000.00", "legal_rep_id_number": _rid(dt.date(1980, 5, 1)),
                     "legal_rep_changed_12m": False, "abnormal_operations": False, "industry_code": "C3399"},
        "social_security": {"headcount": 40, "headcount_12m_ago": 38},
        "customs": {"export_12m": "0.00", "import_12m": "0.00"},
        "credit_bureau": {"current_overdue_amount": "0.00", "overdue_count_24m": 0, "max_dpd_24m": 0, "inquiries_3m": 1,
                          "outstanding_debt": "500000.00", "guarantees_outstanding": "0.00"},
        "judicial": {"dishonest_debtor": False, "legal_rep_dishonest_debtor": False, "enforcement_cases": 0,
                     "litigation_cases_12m": 0},
        "internal": {"settlement_inflow_12m": "6000000.00", "settlement_inflow_prev_12m": "5500000.00",
                     "avg_deposit_balance_6m": "300000.00", "npl_5y": False, "existing_exposure": "0.00"},
    }


def _run(payloads, *, uscc=USCC, product=None, enterprise=None):
    enterprise = enterprise or ProspectEnterprise(uscc=uscc, legal_rep_id_number=payloads.get("registry", {}).get(
        "legal_rep_id_number", ""), industry_code="C3399", employees=40, annual_revenue=Decimal("8000000"),
        founded_on=timezone.localdate() - dt.timedelta(days=400))
    return prescreen_run(enterprise=enterprise, product=product, payloads=payloads)


def _rule(result, code):
    return next(r for r in result["rules"] if r["code"] == code)


# ---------------------------------------------------------------- SME size by the official standard
@pytest.mark.parametrize("industry, headcount, revenue, expected", [
    # industry (工业): medium from 300 staff AND 20 million; micro below 20 staff OR 3 million
    ("C3399", 300, 20_000_000, "medium_or_large"),
    ("C3399", 299, 50_000_000, "small"),
    ("C3399", 19, 50_000_000, "micro"),
    ("C3399", 100, 2_999_999, "micro"),
    # wholesale (批发): medium from 20 staff and 50 million; micro below 5 staff or 10 million
    ("F5123", 25, 60_000_000, "medium_or_large"),
    ("F5123", 6, 12_000_000, "small"),
    ("F5123", 4, 12_000_000, "micro"),
    # retail (零售): medium from 50 and 5 million; micro below 10 or 1 million
    ("F5261", 60, 6_000_000, "medium_or_large"),
    ("F5261", 12, 900_000, "micro"),
    # software (软件和信息技术服务) vs information transmission (信息传输): micro revenue ceilings differ
    ("I6510", 15, 800_000, "small"),
    ("I6410", 15, 800_000, "micro"),
    # warehousing (仓储) has its own row inside transport (G): the longest prefix wins
    ("G5910", 100, 10_000_000, "medium_or_large"),
    ("G5410", 100, 10_000_000, "small"),
    # property management (物业管理): micro below 100 staff or 5 million
    ("K7020", 120, 6_000_000, "small"),
    ("K7020", 90, 6_000_000, "micro"),
    # agriculture (农林牧渔): revenue only
    ("A0111", 500, 400_000, "micro"),
    ("A0111", 1, 6_000_000, "medium_or_large"),
    # sectors not listed (其他未列明行业): headcount only
    ("M7310", 100, 1, "medium_or_large"),
    ("M7310", 50, 1_000_000_000, "small"),
    ("M7310", 9, 1_000_000_000, "micro"),
])
def test_size_class_follows_the_official_classification_per_industry(industry, headcount, revenue, expected):
    assert size_class(industry, headcount, Decimal(revenue)) == expected


# ---------------------------------------------------------------- the rules on the data
@pytest.mark.django_db
def test_a_clean_enterprise_passes_every_rule_and_each_outcome_keeps_the_value_seen():
    today = timezone.localdate()
    result = _run(good_payloads(today))
    assert result["passed"] is True and result["reasons"] == [] and result["gaps"] == []
    codes = {r["code"] for r in result["rules"]}
    assert {"years_in_business", "legal_rep_age", "tax_grade", "tax_months", "no_current_overdue", "bureau_inquiries",
            "size_class", "industry_allowed", "dishonest_debtor", "abnormal_operations", "major_tax_violation",
            "registry_status", "npl_5y", "manual_list"} <= codes
    assert _rule(result, "tax_grade")["value"] == "A"
    assert _rule(result, "size_class")["value"] == "small"
    assert _rule(result, "legal_rep_age")["value"] == today.year - 1980 - ((today.month, today.day) < (5, 1))


@pytest.mark.django_db
@pytest.mark.parametrize("source, field, value, code, seen", [
    ("tax", "tax_grade", "C", "tax_grade", "C"),
    ("tax", "months_filed", 12, "tax_months", 12),
    ("tax", "major_violation", True, "major_tax_violation", True),
    ("credit_bureau", "current_overdue_amount", "1500.00", "no_current_overdue", "1500.00"),
    ("credit_bureau", "inquiries_3m", 7, "bureau_inquiries", 7),
    ("registry", "status", "liquidation", "registry_status", "liquidation"),
    ("registry", "abnormal_operations", True, "abnormal_operations", True),
    ("registry", "industry_code", "K7010", "industry_allowed", "K7010"),
    ("registry", "industry_code", "C2511", "industry_allowed", "C2511"),
    ("judicial", "legal_rep_dishonest_debtor", True, "dishonest_debtor", "legal_rep"),
    ("judicial", "dishonest_debtor", True, "dishonest_debtor", "enterprise"),
    ("internal", "npl_5y", True, "npl_5y", True),
    ("social_security", "headcount", 400, "size_class", "medium_or_large"),
])
def test_each_admission_and_negative_list_rule_fails_on_its_data(source, field, value, code, seen):
    payloads = good_payloads(timezone.localdate())
    payloads[source][field] = value
    if code == "size_class":
        payloads["tax"]["revenue_12m"] = "50000000.00"
    result = _run(payloads)
    assert result["passed"] is False
    assert [r["code"] for r in result["reasons"]] == [code]
    rule = _rule(result, code)
    assert rule["outcome"] == "fail" and rule["value"] == seen
    assert rule["message"] and rule["message_en"]


@pytest.mark.django_db
def test_too_young_business_and_too_old_legal_rep():
    today = timezone.localdate()
    payloads = good_payloads(today)
    payloads["registry"]["founded_on"] = (today - dt.timedelta(days=300)).isoformat()
    payloads["registry"]["legal_rep_id_number"] = _rid(dt.date(today.year - 70, 1, 1))
    result = _run(payloads)
    assert {r["code"] for r in result["reasons"]} == {"years_in_business", "legal_rep_age"}
    assert _rule(result, "years_in_business")["value"] == 0.8
    assert _rule(result, "legal_rep_age")["value"] == 70


@pytest.mark.django_db
def test_missing_data_is_a_named_gap_never_a_crash_or_a_silent_pass():
    payloads = good_payloads(timezone.localdate())
    payloads["credit_bureau"] = None
    del payloads["judicial"]["legal_rep_dishonest_debtor"]  # a payload without a field the rule reads
    payloads["judicial"]["dishonest_debtor"] = False
    del payloads["tax"]["major_violation"]
    result = _run(payloads)
    assert result["passed"] is True
    gaps = {g["code"] for g in result["gaps"]}
    assert {"no_current_overdue", "bureau_inquiries", "major_tax_violation"} <= gaps
    assert _rule(result, "major_tax_violation")["outcome"] == "unknown"


@pytest.mark.django_db
def test_criteria_are_data_parameters_switches_and_products_edited_not_coded(products):
    today = timezone.localdate()
    payloads = good_payloads(today)
    years = AdmissionCriterion.objects.get(code="years_in_business")
    years.params = {"years": 10}
    years.save()
    result = _run(payloads)
    assert [r["code"] for r in result["reasons"]] == ["years_in_business"]
    assert _rule(result, "years_in_business")["value"] == 6.0
    years.is_active = False
    years.save()
    assert _run(payloads)["passed"] is True
    # A criterion for one product only: evaluated for it, not for the others.
    industry = AdmissionCriterion.objects.get(code="industry_allowed")
    industry.params = {"prefixes": ["C33"]}
    industry.save()
    industry.products.set([products["secured-operating"]])
    assert _run(payloads, product=products["secured-operating"])["reasons"][0]["code"] == "industry_allowed"
    assert _run(payloads, product=products["xinmiaodai"])["passed"] is True


# ---------------------------------------------------------------- manual negative list
@pytest.mark.django_db
def test_manual_entries_by_uscc_and_by_id_number_with_expiry(org):
    today = timezone.localdate()
    risk = org["demo_risk"]
    payloads = good_payloads(today)
    rep_id = payloads["registry"]["legal_rep_id_number"]
    assert _run(payloads)["passed"] is True
    expired = negative_list_add(by=risk, uscc=USCC, reason="旧记录", expires_on=today - dt.timedelta(days=1))
    assert _run(payloads)["passed"] is True
    expired.delete()
    negative_list_add(by=risk, id_number=rep_id, reason="法定代表人涉嫌骗贷", expires_on=today)
    result = _run(payloads)  # expiring today: still in force
    assert [r["code"] for r in result["reasons"]] == ["manual_list"]
    assert _rule(result, "manual_list")["value"] == "法定代表人涉嫌骗贷"
    # The ID the registry holds is checked too, even when the form gave another one.
    enterprise = ProspectEnterprise(uscc=USCC, legal_rep_id_number=_rid(dt.date(1985, 1, 1)), industry_code="C3399",
                                    employees=40, annual_revenue=Decimal("8000000"))
    assert _run(payloads, enterprise=enterprise)["passed"] is False
    event = AuditEvent.objects.filter(action="negative_list.add").last()
    assert event.actor == risk and event.data["id_number"] == mask_id_number(rep_id)  # personal data masked in the audit trail


@pytest.mark.django_db
def test_manual_entry_is_validated(org):
    with pytest.raises(ApplicationError) as exc:
        negative_list_add(by=org["demo_risk"], reason="x", uscc="91310000MA1FL0BL50")
    assert "uscc" in exc.value.errors
    with pytest.raises(ApplicationError) as exc:
        negative_list_add(by=org["demo_risk"], reason="")
    assert set(exc.value.errors) >= {"uscc", "reason"}
    assert not NegativeListEntry.objects.exists()


# ---------------------------------------------------------------- risk maintains it in admin, audited
@pytest.fixture
def risk_client(org, client):
    from casework.demo.applications import seed_demo_data

    seed_demo_data(org)  # gives demo_risk staff status (admin access)
    client.force_login(org["demo_risk"])
    return client


@pytest.mark.django_db
def test_risk_adds_changes_and_deletes_manual_entries_in_admin_and_every_change_is_audited(risk_client, org):
    base = "/admin/applications/negativelistentry/"
    r = risk_client.post(f"{base}add/", {"uscc": "91310000ma1fl0bl59", "id_number": "", "reason": "多头借贷",
                                         "expires_on": ""})
    assert r.status_code == 302, r.content.decode()[:2000]
    entry = NegativeListEntry.objects.get(uscc=USCC)
    assert entry.created_by == org["demo_risk"]
    add = AuditEvent.objects.get(action="admin.add", object_type="applications.negativelistentry")
    assert add.actor == org["demo_risk"] and add.data["after"]["reason"] == "多头借贷"

    r = risk_client.post(f"{base}{entry.pk}/change/", {"uscc": USCC, "id_number": "", "reason": "多头借贷，已核实",
                                                       "expires_on": "2030-12-31"})
    assert r.status_code == 302
    change = AuditEvent.objects.get(action="admin.change", object_type="applications.negativelistentry")
    assert change.data["before"]["reason"] == "多头借贷" and change.data["after"]["reason"] == "多头借贷，已核实"
    assert change.data["after"]["expires_on"] == "2030-12-31"

    r = risk_client.post(f"{base}{entry.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302 and not NegativeListEntry.objects.filter(uscc=USCC).exists()
    assert AuditEvent.objects.get(action="admin.delete", object_type="applications.negativelistentry").data["before"]["uscc"] == USCC


@pytest.mark.django_db
def test_admin_refuses_an_invalid_identifier_and_an_unknown_rule(risk_client):
    r = risk_client.post("/admin/applications/negativelistentry/add/", {"uscc": "123", "id_number": "", "reason": "x"})
    assert r.status_code == 200 and "统一社会信用代码" in r.content.decode()
    assert not NegativeListEntry.objects.filter(reason="x").exists()
    criterion = AdmissionCriterion.objects.get(code="tax_grade")
    r = risk_client.post(f"/admin/applications/admissioncriterion/{criterion.pk}/change/", {
        "code": "tax_grade", "kind": "admission", "rule": "no_such_rule", "params": "{}", "name": "x", "name_en": "",
        "message": "m", "message_en": "", "is_active": "on", "order": 0})
    assert r.status_code == 200 and "未知规则" in r.content.decode()
    r = risk_client.post(f"/admin/applications/admissioncriterion/{criterion.pk}/change/", {
        "code": "tax_grade", "kind": "admission", "rule": "tax_grade_in", "params": '{"grades": ["A", "B"]}',
        "name": criterion.name, "name_en": criterion.name_en, "message": criterion.message,
        "message_en": criterion.message_en, "is_active": "on", "order": 0})
    assert r.status_code == 302
    event = AuditEvent.objects.get(action="admin.change", object_type="applications.admissioncriterion")
    assert event.data["before"]["params"] == {"grades": ["A", "B", "M"]} and event.data["after"]["params"] == {"grades": ["A", "B"]}


@pytest.mark.django_db
def test_other_staff_cannot_touch_the_negative_list(org, client):
    rm = org["demo_rm"]
    rm.is_staff = True
    rm.save()
    client.force_login(rm)
    assert client.get("/admin/applications/negativelistentry/").status_code == 403
    assert client.post("/admin/applications/negativelistentry/add/", {"uscc": USCC, "reason": "x"}).status_code == 403
    assert not NegativeListEntry.objects.exists()
