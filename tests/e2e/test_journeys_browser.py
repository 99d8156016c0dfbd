"""The people's journeys in a real browser: each logs in through the login page and ends on the page that
proves the step happened. Data that other people made before the journey is set up through the real
services and the public API (tests/conftest.py helpers), never by poking models."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.e2e.conftest import login, submit_form
from tests.factories import ApplicantFactory, ApplicationFactory, FastTrackApplicationFactory, uscc_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


# ------------------------------------------------------------------ set-up through the real services (tests/factories.py)
def _status(pk: int) -> str:
    from applications.models import LoanApplication

    return LoanApplication.objects.get(pk=pk).status


# ------------------------------------------------------------------ the SME owner on the fast track
def test_sme_owner_from_product_page_to_signed_contract_on_the_fast_track(live_server, page, products, org):
    from applications.models import LoanApplication
    from tests.factories import enterprise_payload

    base = live_server.url
    owner = ApplicantFactory(username="sme_browser")
    ent = enterprise_payload(uscc_for("AB", seed=31), seed=31, name="上海浏览器测试科技有限公司")

    # The product page, before logging in: the checklist says the licence is verified from data.
    page.goto(f"{base}/products/xinmiaodai/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("信秒贷")
    page.get_by_role("link", name="立即申请").click()
    page.wait_for_url(re.compile(r"/login/"))
    page.locator("#id_username").fill(owner.username)
    page.locator("#id_password").fill("S3cure-pass-123")
    submit_form(page, page.locator("main form button[type=submit]"))
    assert "/portal/apply/xinmiaodai/" in page.url

    # Step 1: the enterprise.
    for field in ("name", "uscc", "legal_rep_name", "legal_rep_id_number", "industry_code", "founded_on", "employees",
                  "annual_revenue"):
        page.locator(f"#id_{field}").fill(str(ent[field]))
    page.locator("#id_legal_form").select_option("llc")
    submit_form(page, page.get_by_role("button", name="下一步"))
    assert "enterprise=" in page.url, page.locator("main").inner_text()[:500]

    # Step 2: the request.
    page.locator("#id_amount").fill("300000")
    page.locator("#id_term_months").fill("12")
    page.locator("#id_repayment_method").select_option("equal_installment")
    page.locator("#id_purpose").fill("采购原材料")
    submit_form(page, page.get_by_role("button", name="保存并继续"))
    match = re.search(r"/portal/applications/(\d+)/documents/", page.url)
    assert match, page.locator("main").inner_text()[:500]
    pk = int(match.group(1))

    # Step 3: documents: the fast track needs none (e-licence verified from the registry).
    main = page.locator("main")
    assert main.get_by_text("数据核验，免上传").first.is_visible()
    assert page.locator("main input[type=file]").count() == 0
    submit_form(page, main.get_by_role("link", name="下一步"))

    # Step 4: consent to every source (all ticked by default); step 5: review and submit.
    assert page.locator("input[name=scopes]:checked").count() == page.locator("input[name=scopes]").count() > 0
    submit_form(page, page.get_by_role("button", name="同意授权并继续"))
    assert f"/portal/applications/{pk}/review/" in page.url
    assert page.get_by_text(ent["name"]).first.is_visible()
    submit_form(page, page.get_by_role("button", name="提交申请"))

    # Decided at once: the offer is on the case page.
    page.wait_for_url(re.compile(rf"/portal/applications/{pk}/$"))
    assert _status(pk) == "approved"
    assert "已批准" in page.locator("#status").inner_text()
    submit_form(page, page.locator("#accept-offer"))
    assert _status(pk) == "contracting"

    # Sign: without ticking the box it is refused, with it the contract is signed and the system releases.
    submit_form(page, page.locator("#sign-contract"))
    assert page.locator(".messages .error").count() == 1 and _status(pk) == "contracting"
    page.locator("#agree").check()
    submit_form(page, page.locator("#sign-contract"))
    application = LoanApplication.objects.get(pk=pk)
    assert application.status == "disbursed"
    assert application.contracts.get().signatures.filter(party="borrower", signer=owner).exists()
    assert "已放款" in page.locator("#status").inner_text()

    submit_form(page, page.get_by_role("link", name="查看还款计划"))
    assert "/portal/loans/" in page.url
    assert page.get_by_text("300,000").first.is_visible() or page.get_by_text("300000").first.is_visible()


# ------------------------------------------------------------------ the RM: visit, then send to approval
def test_rm_takes_a_case_through_the_visit_to_approval(live_server, page, products, org):
    pk = ApplicationFactory(seed=7, stage="submitted").pk
    login(page, live_server.url, "demo_rm")
    assert "/staff/cases/" in page.url
    submit_form(page, page.locator(f"main a[href$='/staff/cases/{pk}/']").first)

    # The visit form: every question answered (the questionnaire is data; fill whatever it asks).
    visit = page.locator(f"form[action$='/staff/cases/{pk}/action/visit/']")
    visit.locator("#mode").select_option("video")
    for select in visit.locator("select[name^=q_]").all():
        values = [v for v in select.locator("option").evaluate_all("els => els.map(e => e.value)") if v]
        select.select_option("yes" if "yes" in values else values[0])
    for field in visit.locator("input[name^=q_]").all():
        field.fill("500000" if field.get_attribute("type") == "number" else "制造业客户为主")
    visit.locator("#notes").fill("视频核实：厂房在用，设备正常运转")
    submit_form(page, page.locator("#save-visit"))
    assert page.locator(".messages .success").count() == 1, page.locator("main").inner_text()[:500]

    # Sending without a recommendation names the field; with one it goes to the approver.
    submit_form(page, page.locator("#send-to-approval"))
    assert "recommendation" in page.locator(".messages").inner_text()
    page.locator("#recommendation").fill("经营稳定，抵押充足，建议批准")
    submit_form(page, page.locator("#send-to-approval"))
    assert page.url.rstrip("/").endswith("/staff/cases")
    assert page.locator(".messages .success").count() == 1
    assert _status(pk) == "pending_approval"
    submit_form(page, page.locator(f"main a[href$='/staff/cases/{pk}/']").first)
    assert page.get_by_text("经营稳定，抵押充足，建议批准").first.is_visible()


# ------------------------------------------------------------------ the approver decides
def test_approver_decides_within_authority(live_server, page, products, org):
    from applications.models import LoanApplication

    pk = ApplicationFactory(seed=7, stage="pending_approval").pk
    login(page, live_server.url, "demo_branch_approver")
    assert "/staff/approvals/" in page.url
    submit_form(page, page.locator(f"main a[href$='/staff/approvals/{pk}/']"))

    page.locator("#decision-approve").check()
    page.locator("#approved_amount").fill("1800000.00")
    page.locator("#comment").fill("同意，调减金额")
    submit_form(page, page.locator("#submit-decision"))
    assert page.url.rstrip("/").endswith("/staff/approvals"), page.locator("main").inner_text()[:500]
    assert page.locator(".messages .success").count() == 1
    application = LoanApplication.objects.get(pk=pk)
    assert application.status == "approved" and str(application.offer_amount) == "1800000.00"
    # The decided case has left the queue.
    assert page.locator(f"main a[href$='/staff/approvals/{pk}/']").count() == 0


# ------------------------------------------------------------------ operations: seal, release
def test_operations_seal_and_release_a_disbursement(live_server, page, products, org):
    from postloan.models import Loan

    pk = ApplicationFactory(seed=7, approver=org["demo_branch_approver"], stage="borrower_signed").pk
    login(page, live_server.url, "demo_ops")
    assert "/staff/operations/" in page.url
    submit_form(page, page.locator(f"#bank-sign-{pk}"))
    assert page.locator(".messages .success").count() == 1 and _status(pk) == "signed"

    submit_form(page, page.locator(f"#release-{pk}"))  # a confirmation first: the amount and the payee
    assert "/release/" in page.url and page.locator("#release-amount").inner_text().startswith("¥")
    submit_form(page, page.locator("#confirm-release"))
    assert page.locator(".messages .success").count() == 1, page.locator("main").inner_text()[:500]
    assert _status(pk) == "disbursed"
    loan = Loan.objects.get(application_id=pk)
    assert str(loan.pk) in page.locator(".messages .success").inner_text()
    # Gone from the queue: nothing can be released twice from the page.
    assert page.locator(f"#release-{pk}").count() == 0


# ------------------------------------------------------------------ risk reviews the portfolio
def test_risk_reviews_the_portfolio_and_an_overdue_loan(live_server, page, products, org):
    from casework import lifecycle
    from postloan.models import Loan
    from postloan.monitoring import delinquency_refresh

    application = ApplicationFactory(seed=7, approver=org["demo_branch_approver"], stage="borrower_signed")
    pk, contract = application.pk, application.contracts.get(kind="loan").pk
    lifecycle.contract_sign(contract_id=contract, user=org["demo_ops"], party="bank")
    lifecycle.disbursement_release(application_id=pk, user=org["demo_ops"], idempotency_key="e2e-risk")
    loan = Loan.objects.get(application_id=pk)
    first_due = loan.installments.order_by("n").first().due_date
    delinquency_refresh(today=first_due + dt.timedelta(days=45), loan_ids=[loan.pk])  # the nightly job's first step
    loan.refresh_from_db()
    assert loan.dpd > 0

    login(page, live_server.url, "demo_risk")
    assert "/staff/risk/" in page.url
    assert page.get_by_role("heading", name="五级分类").is_visible()
    overdue = page.locator("#risk-overdue")
    row = overdue.locator("tr").filter(has_text=loan.enterprise.name)
    assert row.count() == 1 and str(loan.dpd) in row.inner_text()


def test_risk_reviews_an_early_warning(live_server, page, products, org):
    """A borrower newly listed as a dishonest judgment debtor: the nightly monitoring's warning step raises a
    warning, and risk finds it from the portfolio page."""
    from django.utils import timezone

    from postloan.models import EarlyWarning
    from postloan.monitoring import warnings_evaluate
    from underwriting.models import DataSnapshot
    from underwriting.services import snapshot_push

    loan_id = FastTrackApplicationFactory(seed=1, stage="disbursed").loan.pk
    from postloan.models import Loan

    loan = Loan.objects.select_related("enterprise").get(pk=loan_id)
    latest = (DataSnapshot.objects.filter(enterprise=loan.enterprise, source="judicial", status=DataSnapshot.OK)
              .order_by("-as_of", "-id").first())
    payload = {**latest.payload, "dishonest_debtor": True, "enforcement_cases": int(latest.payload.get("enforcement_cases") or 0) + 2}
    today = timezone.localdate()
    snapshot_push(enterprise=loan.enterprise, source="judicial", as_of=today, payload=payload, by=org["demo_risk"])
    counts = warnings_evaluate(today=today)  # the nightly job's warning step, on the data risk just pushed
    assert EarlyWarning.objects.filter(loan=loan).exists(), counts

    login(page, live_server.url, "demo_risk")
    assert "/staff/risk/" in page.url
    submit_form(page, page.locator("main").get_by_role("link", name="贷后预警"))
    row = page.locator("main tr").filter(has_text=loan.enterprise.name).filter(has_text="失信")
    assert row.count() == 1, page.locator("main").inner_text()[:800]


# ------------------------------------------------------------------ the committee decides, and the resolution is recorded
def test_committee_members_vote_and_the_chair_is_prompted_to_record_the_resolution(live_server, page, new_page, products, org):
    from approvals.services import committee_configure
    from tests.factories import PendingApprovalFactory

    committee_configure(by=org["demo_admin"], chair=org["demo_committee_1"], quorum=3)
    pk = PendingApprovalFactory(related_party=True, seed=45).pk
    login(page, live_server.url, "demo_branch_approver")
    submit_form(page, page.locator(f"main a[href$='/staff/approvals/{pk}/']"))
    page.locator("#decision-approve").check()
    submit_form(page, page.locator("#submit-decision"))  # recommended to the committee

    for member in ("demo_committee_2", "demo_committee_3", "demo_committee_1"):
        voter = new_page()
        login(voter, live_server.url, member)
        submit_form(voter, voter.locator(f"main a[href$='/staff/approvals/{pk}/']"))
        assert voter.locator("input[name=decision]:checked").count() == 0  # nothing preselected
        voter.locator("#decision-approve").check()
        submit_form(voter, voter.locator("#submit-decision"))
        assert voter.locator(".messages .success").count() == 1, voter.locator("main").inner_text()[:500]

    # The last vote: the chair is told, and the case leads the queue with "resolution to record".
    chair = voter
    chair.goto(f"{live_server.url}/notifications/")
    assert chair.get_by_text(f"#{pk}").first.is_visible()
    chair.goto(f"{live_server.url}/staff/approvals/")
    first_row = chair.locator("#approval-queue tr[id^=queue-row-]").first
    assert first_row.get_attribute("id") == f"queue-row-{pk}" and "待记录决议" in first_row.inner_text()
    submit_form(chair, first_row.locator(f"a[href$='/staff/approvals/{pk}/']"))
    chair.locator("#resolution-text").fill("经贷审会表决，同意发放")
    submit_form(chair, chair.locator("#submit-resolution"))
    assert _status(pk) == "approved"
