"""The loan book's reconciliation alarm, the asset-quality report (API and page) and the finance pages (trial
balance, reconciliation, close of business, provisions) with their CSV and XLSX downloads (issue #17)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.test import Client
from openpyxl import load_workbook

from ledger.services import Cr, Dr, entry_post
from loanservice.audit import AuditEvent
from loanservice.business_date import business_date, business_date_set
from loanservice.models import Notification
from postloan.cob import cob_partition_run, cob_progress, cob_start
from postloan.models import CobReconciliation, CobRun, Loan, LoanProvision, ProvisionOverlay, ProvisionPolicy
from postloan.reconciliation import reconcile
from postloan.reports import asset_quality
from tests.approvals_support import staff_user
from tests.conftest import client_for
from tests.factories import ApplicantFactory, FastTrackLoanFactory

D = Decimal


@pytest.fixture
def simulated(settings):
    settings.ALLOW_SIMULATED_BUSINESS_DATE = True


@pytest.fixture
def loans(products, org):
    return [FastTrackLoanFactory(owner=ApplicantFactory(username=f"fin_owner{k}"), seed=90 + k, amount=f"{200000 + k * 50000}.00")
            for k in range(2)]


def _close(until: dt.date) -> CobRun:
    run = cob_start(until=until, by=None)
    for part in run.partitions.all():
        cob_partition_run(partition_id=part.pk)
    run.refresh_from_db()
    return run


def _page(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# ---------------------------------------------------------------- reconciliation
def test_after_close_of_business_the_sub_ledger_agrees_with_the_gl(loans, simulated):
    first = loans[0].installments.order_by("n").first()
    run = _close(first.due_date + dt.timedelta(days=40))  # accrual, overdue, penalty and provisions all posted
    result = run.reconciliation
    assert result.balanced and result.difference_count == 0
    assert D(result.totals["principal"]["gl"]) == sum((x.outstanding_principal for x in Loan.objects.all()), D(0))
    assert D(result.totals["penalty"]["gl"]) > 0 and D(result.totals["allowance"]["gl"]) > 0
    assert cob_progress(run)["reconciled"] is True


def test_a_planted_difference_marks_the_run_raises_the_alarm_and_shows_on_the_pages(loans, simulated, users):
    loan = loans[1]
    until = loan.disbursed_on + dt.timedelta(days=3)
    # a posting to the principal control account that no loan movement explains (a cent on the loan's reference)
    entry_post(kind="manual", value_date=until, lines=[Dr("1301", D("0.01")), Cr("2011", D("0.01"))], reference=f"loan:{loan.pk}")
    run = _close(until)
    result = CobReconciliation.objects.get(run=run)
    assert not result.balanced and result.difference_count == 1
    assert result.differences == [{"loan": loan.pk, "item": "principal", "sub": str(loan.outstanding_principal),
                                   "gl": str(loan.outstanding_principal + D("0.01")), "difference": "-0.01"}]
    assert result.totals["principal"]["difference"] == "-0.01"
    assert cob_progress(run)["reconciled"] is False
    assert AuditEvent.objects.filter(action="cob.reconciliation.difference").count() == 1
    alarmed = set(Notification.objects.filter(kind="reconciliation_alarm").values_list("user__username", flat=True))
    assert {"demo_ops", "demo_risk"} <= alarmed and "demo_rm" not in alarmed
    body = _page(users["demo_ops"]).get("/staff/finance/reconciliation/").content.decode()
    assert "不平" in body and f"#{loan.pk}" in body and "-0.01" in body
    cob = _page(users["demo_ops"]).get("/staff/finance/cob/").content.decode()
    assert "bg-danger" in cob
    # a balancing correction: the next check agrees again
    entry_post(kind="manual", value_date=until, lines=[Dr("2011", D("0.01")), Cr("1301", D("0.01"))], reference=f"loan:{loan.pk}")
    assert reconcile(on=until).balanced


def test_a_posting_outside_any_loan_shows_in_the_totals(loans, simulated):
    until = loans[0].disbursed_on + dt.timedelta(days=1)
    _close(until)
    entry_post(kind="manual", value_date=until, lines=[Dr("1132", D("5.00")), Cr("6011", D("5.00"))], reference="")
    result = reconcile(on=until)
    assert not result.balanced and result.difference_count == 0
    assert result.totals["interest"]["difference"] == "-5.00"


# ---------------------------------------------------------------- asset quality
def test_asset_quality_by_category_with_the_ratios(loans, simulated):
    until = loans[0].disbursed_on + dt.timedelta(days=1)
    _close(until)
    Loan.objects.filter(pk=loans[1].pk).update(classification="substandard")
    report = asset_quality()
    rows = {r["category"]: r for r in report["categories"]}
    balances = {x.pk: x.outstanding_principal for x in Loan.objects.all()}
    assert rows["normal"]["count"] == 1 and rows["normal"]["balance"] == balances[loans[0].pk]
    assert rows["substandard"]["count"] == 1 and rows["substandard"]["balance"] == balances[loans[1].pk]
    held = sum((LoanProvision.objects.filter(loan=x).latest("on").ecl for x in loans), D(0))
    assert report["allowance"] == held
    total = sum(balances.values(), D(0))
    assert report["npl_ratio"] == (balances[loans[1].pk] / total).quantize(D("0.0001"))
    assert report["provision_coverage"] == (held / balances[loans[1].pk]).quantize(D("0.0001"))
    assert report["loan_provision_ratio"] == (held / total).quantize(D("0.0001"))
    # a date before the last close reads the measurements
    earlier = asset_quality(on=until - dt.timedelta(days=1))
    assert earlier["source"] == "measurements" and earlier["total_balance"] == 0


def test_asset_quality_api(loans, simulated, users):
    _close(loans[0].disbursed_on + dt.timedelta(days=1))
    ProvisionOverlay.objects.create(on=business_date() - dt.timedelta(days=1), required=D("100.00"), ecl_total=D("0"), held_before=D("0"),
                                    amount=D("100.00"))
    ProvisionOverlay.objects.filter(status="proposed").update(status="approved")
    response = client_for(users["demo_risk"]).get("/api/v1/reports/asset-quality/")
    assert response.status_code == 200
    body = response.json()
    assert [c["category"] for c in body["categories"]] == ["normal", "special_mention", "substandard", "doubtful", "loss"]
    assert body["categories"][0]["count"] == 2 and body["npl_ratio"] == "0.0000" and body["provision_coverage"] is None
    assert D(body["allowance"]) == D(body["categories"][0]["provision"]) + D("100.00") and body["overlay"] == "100.00"
    assert body["on"] == (business_date() - dt.timedelta(days=1)).isoformat()
    assert client_for(users["demo_rm"]).get("/api/v1/reports/asset-quality/").status_code == 403
    assert client_for(users["demo_ops"]).get("/api/v1/reports/asset-quality/").status_code == 403
    assert client_for(users["demo_admin"]).get("/api/v1/reports/asset-quality/").status_code == 200
    bad = client_for(users["demo_risk"]).get("/api/v1/reports/asset-quality/?on=2027-02-30")
    assert bad.status_code == 400 and "on" in bad.json()["errors"]


def test_the_schema_documents_the_asset_quality_report(db):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/reports/asset-quality/"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["on"]
    assert "provision_coverage" in schema["components"]["schemas"]["AssetQuality"]["properties"]


# ---------------------------------------------------------------- pages
@pytest.mark.parametrize(("url", "allowed", "refused"), [
    ("/staff/finance/", ["demo_ops", "demo_risk", "demo_admin"], ["demo_rm", "demo_applicant"]),
    ("/staff/finance/cob/", ["demo_ops", "demo_risk"], ["demo_rm", "demo_head_approver"]),
    ("/staff/finance/trial-balance/", ["demo_ops", "demo_risk"], ["demo_rm"]),
    ("/staff/finance/reconciliation/", ["demo_ops", "demo_risk"], ["demo_rm"]),
    ("/staff/finance/asset-quality/", ["demo_risk", "demo_admin"], ["demo_ops", "demo_rm"]),
    ("/staff/finance/provisions/", ["demo_risk"], ["demo_ops", "demo_rm"]),
])
def test_who_sees_each_finance_page(loans, users, url, allowed, refused):
    for name in allowed:
        assert _page(users[name]).get(url).status_code == 200, name
    for name in refused:
        assert _page(users[name]).get(url).status_code == 404, name
    assert Client().get(url).status_code == 302  # to the login


def test_the_header_links_the_finance_pages_for_their_roles(loans, users):
    assert "/staff/finance/" in _page(users["demo_ops"]).get("/staff/operations/").content.decode()
    assert "/staff/finance/" not in _page(users["demo_rm"]).get("/staff/cases/").content.decode()


def test_the_asset_quality_page_shows_labels_money_and_rates_with_a_chart(loans, simulated, users):
    _close(loans[0].disbursed_on + dt.timedelta(days=1))
    Loan.objects.filter(pk=loans[1].pk).update(classification="doubtful")
    body = _page(users["demo_risk"]).get("/staff/finance/asset-quality/").content.decode()
    assert "可疑 doubtful" in body or "可疑" in body
    assert "special_mention" not in body.split("asset-quality-data")[0]  # no raw codes in the visible page
    balance = Loan.objects.get(pk=loans[1].pk).outstanding_principal
    assert f"{balance:,.2f}" in body
    assert "%" in body and "chart.umd.min.js" in body and "asset-quality-chart" in body


def test_the_downloads_are_csv_and_xlsx(loans, simulated, users):
    until = loans[0].disbursed_on + dt.timedelta(days=1)
    _close(until)
    risk = _page(users["demo_risk"])
    response = risk.get(f"/staff/finance/trial-balance/csv/?on={until.isoformat()}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][0].startswith("科目代码") and rows[-1][2] == rows[-1][3]  # the totals balance
    assert any(r[0] == "1301" for r in rows)
    book = load_workbook(io.BytesIO(risk.get("/staff/finance/asset-quality/xlsx/").content))
    sheet = book.active
    assert sheet["A1"].value.startswith("资产质量")
    assert sheet["A3"].value.startswith("正常") and sheet["C3"].number_format == "#,##0.00"
    assert D(str(sheet["C3"].value)) == sum((x.outstanding_principal for x in Loan.objects.all()), D(0))
    recon = risk.get("/staff/finance/reconciliation/xlsx/")
    assert recon.status_code == 200 and recon["Content-Type"].startswith("application/vnd.openxmlformats")
    assert risk.get("/staff/finance/trial-balance/pdf/").status_code == 404


def test_the_close_of_business_page_moves_the_business_date_after_confirmation(loans, simulated, users):
    ops = _page(users["demo_ops"])
    before = business_date_set(business_date() + dt.timedelta(days=1))  # the loans opened today: tomorrow has work
    page = ops.get("/staff/finance/cob/").content.decode()
    assert before.isoformat() in page and "data-confirm=" in page  # the confirmation modal (static/js/app.js; no inline script)
    assert ops.post("/staff/finance/cob/run/", {}).status_code == 302
    assert business_date() == before and not CobRun.objects.exists()  # not confirmed
    response = ops.post("/staff/finance/cob/run/", {"confirm": "yes"})  # the tasks run eagerly on commit
    assert response.status_code == 302
    run = CobRun.objects.get()
    for part in run.partitions.filter(finished_at__isnull=True):
        cob_partition_run(partition_id=part.pk)
    assert business_date() == before + dt.timedelta(days=1)
    page = ops.get("/staff/finance/cob/").content.decode()
    assert f"#{run.pk}" in page and "1 / 1" in page and "2 / 2" in page and "width: 100%" in page
    assert _page(users["demo_risk"]).post("/staff/finance/cob/run/", {"confirm": "yes"}).status_code == 404


def test_the_provisions_page_takes_the_overlay_through_four_eyes(loans, simulated, users):
    ProvisionPolicy.objects.create(effective_from=loans[0].disbursed_on, ratio_normal=D("0.0300"))
    from postloan.provisions import overlay_propose

    _close(loans[0].disbursed_on + dt.timedelta(days=1))
    overlay = overlay_propose(on=loans[0].disbursed_on + dt.timedelta(days=1))
    risk, other = _page(users["demo_risk"]), _page(staff_user("risk_page_two", "risk", "HO"))
    assert "按比例应计提" in risk.get("/staff/finance/provisions/").content.decode()
    risk.post(f"/staff/finance/provisions/overlays/{overlay.pk}/submit/", {"reason": "月末补提"})
    overlay.refresh_from_db()
    assert overlay.status == "pending"
    risk.post(f"/staff/finance/provisions/overlays/{overlay.pk}/approve/", {})
    overlay.refresh_from_db()
    assert overlay.status == "pending"  # not the submitter
    other.post(f"/staff/finance/provisions/overlays/{overlay.pk}/approve/", {"comment": "同意"})
    overlay.refresh_from_db()
    assert overlay.status == "approved" and overlay.decided_by.username == "risk_page_two"
    assert risk.post(f"/staff/finance/provisions/overlays/{overlay.pk}/delete/", {}).status_code == 404
