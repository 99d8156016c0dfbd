"""The people's journeys in a real browser: each logs in through the login page and ends on the page that
proves the step happened. Data that other people made before the journey is set up through the real
services and the public API (tests/conftest.py helpers), never by poking models."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

from tests.e2e.conftest import login, submit_form
from tests.factories import ApplicationFactory, FastTrackApplicationFactory, uscc_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


# ------------------------------------------------------------------ set-up through the real services (tests/factories.py)
def _status(pk: int) -> str:
    from applications.models import LoanApplication

    return LoanApplication.objects.get(pk=pk).status


# ------------------------------------------------------------------ the SME owner on the fast track
# What a new owner did before issue #16 (the same journey, counted the same way): sign-up 4 typed fields (username,
# phone, e-mail, password); the enterprise 8 typed (name, credit code, representative, ID number, GB/T 4754 industry
# code, founding date, headcount, revenue) and 1 list (legal form); the request 3 typed (amount, term, purpose) and
# 1 list (method); 7 consent boxes came pre-ticked. 15 typed fields.
BEFORE = {"typed fields": 15, "lists": 2, "ticks": 1, "clicks": 11}


class Counted:
    """The page, counting what a person does: each field typed, each list chosen, each box ticked, each click."""

    def __init__(self, page):
        self.page, self.counts = page, {"typed fields": 0, "lists": 0, "ticks": 0, "clicks": 0}

    def type(self, selector: str, text: str) -> None:
        self.page.locator(selector).fill(text)
        self.counts["typed fields"] += 1

    def choose(self, selector: str, value: str) -> None:
        self.page.locator(selector).select_option(value)
        self.counts["lists"] += 1

    def tick(self, selector: str) -> None:
        self.page.locator(selector).check()
        self.counts["ticks"] += 1

    def click(self, locator) -> None:
        submit_form(self.page, locator)
        self.counts["clicks"] += 1


def test_sme_owner_from_the_landing_page_to_funds_on_the_fast_track(live_server, page, products, org, settings):
    """A new owner: the landing page, sign-up with a mobile number and an SMS code, the enterprise filled from the
    registry for a credit code, the request with the purpose from a list, consent, submit, accept, sign, funds."""
    from applications.models import LoanApplication
    from loanservice.notifications import LocmemSmsBackend
    from tests.factories import enterprise_payload

    settings.SMS_BACKEND = "loanservice.notifications.LocmemSmsBackend"
    LocmemSmsBackend.outbox.clear()
    base = live_server.url
    uscc = uscc_for("AB", seed=31)
    owner = Counted(page)
    started = dt.datetime.now()

    page.goto(f"{base}/")
    owner.click(page.locator("main").get_by_role("link", name=re.compile("信秒贷")).first)
    assert page.get_by_role("heading", level=1).inner_text().startswith("信秒贷")
    owner.click(page.get_by_role("link", name="立即申请"))
    assert "/login/" in page.url
    owner.click(page.get_by_role("link", name="用手机号注册"))

    # Sign-up: the number, the code texted to it, a password. Nothing else.
    owner.type("#id_phone", "13812345678")
    owner.click(page.locator("#send-code"))
    code = re.search(r"\d{6}", LocmemSmsBackend.outbox[-1][1]).group(0)
    owner.type("#id_code", code)
    owner.type("#id_password", "S3cure-pass-123")
    owner.click(page.locator("#signup-submit"))
    assert "/portal/apply/xinmiaodai/" in page.url, page.locator("main").inner_text()[:300]

    # Step 1: the credit code and consent; the registry fills the public part, the industry in words; the owner adds
    # what the public record does not show (the representative's ID number, headcount, revenue).
    owner.type("#lookup_uscc", uscc)
    owner.tick("#lookup_consent")
    owner.click(page.locator("#lookup-submit"))
    ent = enterprise_payload(uscc, seed=31)
    for field in ("legal_rep_id_number", "employees", "annual_revenue"):
        owner.type(f"#id_{field}", str(ent[field]))
    record = page.locator("#registry-record").inner_text()
    assert "有限公司" in page.locator("#rec-name").inner_text() and re.search(r"[\u4e00-\u9fff]", page.locator("#rec-industry").inner_text())
    assert not re.search(r"\b[A-T]\d{2,4}\b", record)  # no GB/T 4754 code on screen
    owner.click(page.locator("#wizard-next"))
    assert "enterprise=" in page.url, page.locator("main").inner_text()[:500]

    # Step 2: the amount; the term and the method come set to the product's first; the purpose from a list.
    owner.type("#id_amount", "300000")
    owner.choose("#id_purpose", "采购原材料")
    owner.click(page.get_by_role("button", name="保存并继续"))
    match = re.search(r"/portal/applications/(\d+)/documents/", page.url)
    assert match, page.locator("main").inner_text()[:500]
    pk = int(match.group(1))

    # Step 3: no documents on the fast track (e-licence verified from the registry).
    main = page.locator("main")
    assert main.get_by_text("数据核验，免上传").first.is_visible()
    assert page.locator("main input[type=file]").count() == 0
    owner.click(main.get_by_role("link", name="下一步"))

    # Step 4: who acts for the enterprise: the registered representative and the sign-up mobile come filled in; the
    # code texted to it proves the phone, the citizen register the name and ID number.
    assert f"/portal/applications/{pk}/verify/" in page.url, page.locator("main").inner_text()[:300]
    owner.click(page.locator("#verify-send-code"))
    owner.type("#id_sms_code", re.search(r"\d{6}", LocmemSmsBackend.outbox[-1][1]).group(0))
    owner.click(page.locator("#wizard-next"))
    assert f"/portal/applications/{pk}/consent/" in page.url, page.locator("main").inner_text()[:500]

    # Step 5: the authorisation text is shown; nothing comes ticked; one box agrees to every source.
    assert page.locator("#authorisation-text").is_visible()
    assert page.locator("input[name=scopes]:checked").count() == 0
    owner.tick("#consent-all")
    assert page.locator("input[name=scopes]:checked").count() == page.locator("input[name=scopes]").count() > 0
    owner.click(page.get_by_role("button", name="同意授权并继续"))
    assert f"/portal/applications/{pk}/review/" in page.url
    assert "采购原材料" in page.locator("main").inner_text()
    assert "credit_bureau" not in page.locator("main").inner_text()
    owner.click(page.get_by_role("button", name="提交申请"))

    # Decided at once: the offer shows its terms and which limit is the decision.
    page.wait_for_url(re.compile(rf"/portal/applications/{pk}/$"))
    assert _status(pk) == "approved" and "已批准" in page.locator("#status").inner_text()
    assert "%" in page.locator("#offer-rate").inner_text() and page.locator("#limit-explained").is_visible()
    owner.click(page.locator("#accept-offer"))
    assert _status(pk) == "contracting"
    owner.click(page.locator("#sign-send-code"))  # the signing code, to the verified phone
    owner.type("#sign-sms-code", re.search(r"\d{6}", LocmemSmsBackend.outbox[-1][1]).group(0))
    owner.tick("#agree")
    owner.click(page.locator("#sign-contract"))
    application = LoanApplication.objects.get(pk=pk)
    assert application.status == "disbursed"
    assert "已放款" in page.locator("#status").inner_text()

    owner.click(page.get_by_role("link", name="查看还款计划"))
    assert "/portal/loans/" in page.url and page.get_by_text("¥300,000.00").first.is_visible()
    seconds = (dt.datetime.now() - started).total_seconds()
    after = owner.counts
    print(f"\nfast track, landing page to funds — before: {BEFORE}; after: {after} (browser time {seconds:.0f} s)")
    # Two of them are the SMS codes the trust rules ask for (identity before consent, signature), 8 without them.
    assert after["typed fields"] <= 10 and after["typed fields"] < BEFORE["typed fields"]
    assert after["lists"] + after["ticks"] <= 4


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

    loan_id = FastTrackApplicationFactory(seed=1, stage="disbursed").loans.get().pk
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


# ------------------------------------------------------------------ the overdue borrower pays and is current again
MONEY = re.compile(r"¥[\d,]+\.\d\d")


def _language(page, base: str, language: str) -> None:
    page.context.add_cookies([{"name": "django_language", "value": language, "url": base}])


def _fits(page) -> None:
    """Nothing wider than the phone: the page does not scroll sideways."""
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page is {width[0]} px wide on a {width[1]} px screen"


def test_overdue_borrower_sees_what_is_due_pays_and_is_current_again(live_server, page, new_page, products, org, settings):
    """A fast-track loan made on 2 March 2026, closed of business to 12 days after its first due date (the business
    date stands there, so every amount is the same on any day the test runs). The borrower is told on the portal home,
    sees on the loan page what is due now and how to pay, quotes the payoff and a part prepayment; operations import the
    bank's file with the transfer (the contract number as the reference); the borrower is current again."""
    import time_machine

    from loanservice.business_date import business_date
    from postloan.api import loan_detail
    from postloan.cob import cob_start
    from postloan.models import Loan
    from tests.factories import ApplicantFactory, FastTrackLoanFactory

    settings.ALLOW_SIMULATED_BUSINESS_DATE = True  # close of business through a date the test picks (the demo's setting)
    disbursed = dt.date(2026, 3, 2)
    with time_machine.travel(dt.datetime.combine(disbursed, dt.time(2)), tick=False):
        loan = FastTrackLoanFactory(owner=ApplicantFactory(username="journey-late"), seed=52)
        first = loan.installments.get(n=1)
        late = first.due_date + dt.timedelta(days=12)
        run = cob_start(until=late, by=org["demo_ops"])  # the nightly close, day by day to `late`
    run.refresh_from_db()
    loan.refresh_from_db()
    today = business_date()
    assert run.status == "done" and today == late + dt.timedelta(days=1) and loan.dpd > 0
    contract = loan.disbursement.contract.number
    detail = loan_detail(loan)
    due_now = Decimal(detail["overdue_amount"]) + Decimal(detail["penalty_due"])
    base = live_server.url

    # The portal home: the overdue loan first, with a link to pay.
    login(page, base, "journey-late")
    assert "/portal/" in page.url
    notice = page.locator(f"#overdue-loan-{loan.pk}")
    assert notice.is_visible() and f"已逾期 {loan.dpd} 天" in notice.inner_text()
    submit_form(page, notice.get_by_role("link", name="去还款"))
    assert page.url.rstrip("/").endswith(f"/portal/loans/{loan.pk}")

    # The loan page, in both languages and on a phone: the amount due now, where to send it, with which reference.
    seen = {}
    page.set_viewport_size({"width": 390, "height": 844})
    for language, words in (("zh-hans", ["已逾期", "现在应还", "如何还款", "附言（必填）", "今天一次结清需还", "试算"]),
                            ("en", ["overdue", "Due now", "How to pay", "Reference", "Pay off today", "Quote"])):
        _language(page, base, language)
        page.reload()
        alert = page.locator("#overdue-alert")
        assert alert.is_visible()
        main = page.locator("main").inner_text()
        for word in words:
            assert word in main, (language, word, main[:600])
        if language == "en":
            words_left = main.replace(settings.REPAYMENT_ACCOUNT["name"], "").replace(settings.REPAYMENT_ACCOUNT["bank"], "")
            assert not re.findall(r"[\u4e00-\u9fff]+", words_left), re.findall(r"[\u4e00-\u9fff]+", words_left)  # but the payee's names
        seen[language] = page.locator("#due-now").inner_text()
        assert seen[language] == f"¥{due_now:,.2f}", (language, seen[language])
        assert page.locator("#pay-reference").inner_text() == contract and page.locator("#pay-account").inner_text().strip()
        assert page.locator("#schedule tr.table-danger").count() == 1  # the first installment, overdue
        _fits(page)
    print(f"\noverdue {loan.dpd} days on {today}: due now {seen['zh-hans']} (en {seen['en']}), pay to "
          f"{page.locator('#pay-account').inner_text()} with the reference {contract}")

    # The quotes: paying it all off today, and a part prepayment with the schedule it leaves.
    _language(page, base, "zh-hans")
    page.reload()
    payoff = page.locator("#payoff-total").inner_text()
    assert page.locator("#quotes").is_visible() and MONEY.fullmatch(payoff)
    assert Decimal(payoff[1:].replace(",", "")) > due_now
    page.locator("#prepay-amount").fill("50000")
    page.locator("#prepay-mode").select_option("lower_installment")
    page.locator("#prepayment-form").get_by_role("button", name="试算").click()
    quote = page.locator("#prepayment-quote")
    quote.locator("#prepayment-schedule").wait_for()
    rows = quote.locator("#prepayment-schedule tbody tr").count()
    prepay_due = page.locator("#prepayment-due-now strong").inner_text()
    assert rows > 0 and MONEY.fullmatch(prepay_due) and Decimal(prepay_due[1:].replace(",", "")) > Decimal("50000")
    _fits(page)
    print(f"payoff today {payoff}; prepaying ¥50,000.00 (instalments lower) is {prepay_due} today, {rows} instalments left")

    # Operations: the bank's file with the transfer of the amount due now, previewed, then applied.
    ops = new_page()
    login(ops, base, "demo_ops")
    submit_form(ops, ops.locator("main").get_by_role("link", name="还款导入"))
    csv = f"贷款编号,流水号,金额,还款日期\n{loan.pk},{contract},{due_now},{today.isoformat()}\n"
    ops.locator("#file").set_input_files(files=[{"name": "bank-20260415.csv", "mimeType": "text/csv", "buffer": csv.encode()}])
    submit_form(ops, ops.locator("main form button[type=submit]"))
    assert re.search(r"/postloan/imports/\d+/$", ops.url), ops.locator("main").inner_text()[:500]
    assert "✔" in ops.locator("main table").inner_text() and f"¥{due_now:,.2f}" in ops.locator("main").inner_text()
    submit_form(ops, ops.locator("#apply-import"))
    assert ops.locator(".messages .success").count() == 1, ops.locator("main").inner_text()[:500]
    loan.refresh_from_db()
    assert loan.dpd == 0, loan.dpd

    # Back as the borrower: no alert anywhere, the next payment, the first installment settled.
    page.goto(f"{base}/portal/")
    assert page.locator(f"#overdue-loan-{loan.pk}").count() == 0
    submit_form(page, page.locator("#my-loans").get_by_role("link", name="还款计划"))
    for language, words in (("zh-hans", ["下一期还款", "已结清"]), ("en", ["Next installment", "Paid"])):
        _language(page, base, language)
        page.reload()
        assert page.locator("#overdue-alert").count() == 0
        main = page.locator("main").inner_text()
        for word in words:
            assert word in main, (language, word, main[:600])
        assert page.locator("#schedule tr.table-danger").count() == 0
        row = page.locator("#schedule tbody tr").first
        assert page.locator("#schedule tbody tr").first.locator(".badge.ok").count() == 1, row.inner_text()
        assert contract in page.locator("#repayments").inner_text()
        _fits(page)
    second = Loan.objects.get(pk=loan.pk).installments.get(n=2)
    next_due = page.locator("#next-due .big-number").inner_text()
    assert next_due == f"¥{second.total:,.2f}", (next_due, second.total)
    print(f"paid {seen['zh-hans']} on {today}; now current, next payment {next_due} on {second.due_date}")
