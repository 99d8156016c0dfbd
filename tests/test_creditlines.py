"""Revolving credit lines (授信 / 用信): activation at signing, drawdowns (every rule, idempotency), revolving with
repayments and reversals, limit management with four eyes, the nightly steps, and the API's codes, fields and access."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from creditlines.models import CreditLine
from tests.conftest import client_for
from tests.factories import ApplicantFactory, FastTrackApplicationFactory, sign_as_borrower

pytestmark = pytest.mark.django_db

LINE_PRODUCT = "xinyidai-line"


@pytest.fixture(autouse=True)
def _outbound(settings, tmp_path):
    settings.CORE_BANKING_OUTBOUND_DIR = tmp_path / "outbound"
    settings.CORE_BANKING_BACKEND = "sandbox"


def make_line(*, seed: int = 1, limit: str = "500000.00", owner=None):
    """A fast-track credit-line case taken through the conductor: apply, auto-approve, accept, sign, system seal."""
    from casework import lifecycle

    owner = owner or ApplicantFactory()
    application = FastTrackApplicationFactory(applicant=owner, seed=seed, product=LINE_PRODUCT, amount=limit, term_months=12,
                                              repayment_method="equal_installment", stage="contracting", documents=False)
    contract = application.contracts.get(kind="loan")
    sign_as_borrower(contract, owner)
    assert lifecycle.fast_track_complete(contract.pk) == "signed"
    application.refresh_from_db()
    return application.credit_line


def draw(line, amount="100000.00", *, key="k1", term=6, method="equal_installment", payee=None, user=None):
    from creditlines.services import drawdown_create

    return drawdown_create(line_id=line.pk, user=user or line.borrower, idempotency_key=key, amount=Decimal(amount),
                           term_months=term, repayment_method=method, payee_name=(payee or {}).get("name", ""),
                           payee_account=(payee or {}).get("account", ""))


# ---------------------------------------------------------------- activation
def test_signed_line_case_activates_the_line_and_disburses_nothing(products, org):
    from applications.models import LoanApplication
    from contracts.models import DisbursementOrder
    from postloan.models import Loan

    line = make_line()
    application = line.application
    assert application.status == LoanApplication.Status.SIGNED
    assert line.status == "active" and line.limit == Decimal("500000.00")
    assert line.valid_until > line.valid_from and line.borrower == application.applicant
    assert not Loan.objects.filter(application=application).exists()
    assert not DisbursementOrder.objects.filter(application=application).exists()
    assert line.contract.terms["title"] == "循环借款合同" and line.contract.template.kind == "credit_line"
    assert line.contract.terms["credit_line"]["self_payment_limit"] == "300000.00"
    body = client_for(application.applicant).get(f"/api/v1/applications/{application.pk}/").json()
    assert body["credit_line"] == line.pk and body["loan"] is None and body["status"] == "signed"


def test_products_api_says_the_kind(products, org):
    body = {p["code"]: p for p in client_for(None).get("/api/v1/products/").json()}
    assert body["xinmiaodai"]["kind"] == "term_loan" and body["xinmiaodai"]["line_terms"] is None
    assert body[LINE_PRODUCT]["kind"] == "credit_line"
    assert body[LINE_PRODUCT]["line_terms"]["self_payment_limit"] == "300000.00"


# ---------------------------------------------------------------- drawdowns
def test_drawdown_funds_a_loan_posts_the_ledger_and_uses_the_line(products, org):
    from contracts.models import CoreBankingOutbound
    from creditlines.selectors import line_usage
    from ledger.models import JournalEntry

    line = make_line()
    drawdown, created = draw(line, "120000.00", term=6)
    loan = drawdown.loan
    assert created and loan.principal == Decimal("120000.00") and loan.term_months == 6 and loan.application == line.application
    assert loan.installments.count() == 6 and loan.disbursement.kind == "drawdown" and loan.disbursement.status == "released"
    assert CoreBankingOutbound.objects.filter(order=loan.disbursement).exists()
    entry = JournalEntry.objects.get(key=f"loan:{loan.pk}:disbursement")
    assert entry.kind == "disbursement" and entry.value_date == loan.disbursed_on
    usage = line_usage(line)
    assert usage["used"] == Decimal("120000.00") and usage["available"] == Decimal("380000.00")
    assert drawdown.receipt_number.startswith("JJ")


def test_same_key_same_body_is_the_same_drawdown_other_body_is_409(products, org):
    from creditlines.models import Drawdown
    from loanservice.errors import Conflict

    line = make_line()
    first, created = draw(line, "50000.00", key="same")
    again, created_again = draw(line, "50000.00", key="same")
    assert created and not created_again and again.pk == first.pk and Drawdown.objects.count() == 1
    with pytest.raises(Conflict) as exc:
        draw(line, "60000.00", key="same")
    assert exc.value.code == "key_reused"


@pytest.mark.parametrize("amount, field", [("500.00", "amount")])
def test_below_the_product_minimum_is_400(products, org, amount, field):
    from loanservice.errors import ApplicationError

    line = make_line()
    with pytest.raises(ApplicationError) as exc:
        draw(line, amount)
    assert field in exc.value.errors


def test_method_and_term_outside_the_product_are_400(products, org):
    from loanservice.errors import ApplicationError

    line = make_line()
    with pytest.raises(ApplicationError) as exc:
        draw(line, term=13, method="bullet")
    assert {"term_months", "repayment_method"} <= set(exc.value.errors)


def test_above_available_is_409_with_the_line(products, org):
    from loanservice.errors import Conflict

    line = make_line(limit="200000.00")
    draw(line, "150000.00", key="a")
    with pytest.raises(Conflict) as exc:
        draw(line, "60000.00", key="b")
    assert exc.value.code == "above_available" and exc.value.current["available"] == "50000.00"
    assert "Not enough available" in exc.value.message


def test_entrusted_payment_above_the_self_payment_limit(products, org):
    from loanservice.errors import ApplicationError

    line = make_line(limit="800000.00", seed=2)
    with pytest.raises(ApplicationError) as exc:
        draw(line, "350000.00")
    assert "payee" in exc.value.errors
    drawdown, _ = draw(line, "350000.00", key="p", payee={"name": "上海某某供应商有限公司", "account": "6222000011112222"})
    assert drawdown.entrusted and drawdown.loan.disbursement.account == "6222000011112222"
    assert drawdown.loan.disbursement.account_name == "上海某某供应商有限公司"


def test_frozen_line_refuses(products, org):
    from creditlines.services import line_change
    from loanservice.errors import Conflict

    line = make_line()
    line_change(line=line, kind="freeze", reason="贷后检查发现经营异常", by=org["demo_risk"])
    with pytest.raises(Conflict) as exc:
        draw(line)
    assert exc.value.code == "frozen" and exc.value.state == "frozen"


def test_expired_line_refuses_and_its_drawdowns_run_on(products, org):
    from creditlines.models import CreditLine
    from creditlines.services import lines_expire
    from loanservice.business_date import business_date
    from loanservice.errors import Conflict

    line = make_line()
    drawdown, _ = draw(line, term=12)
    CreditLine.objects.filter(pk=line.pk).update(valid_until=business_date() - dt.timedelta(days=1))
    with pytest.raises(Conflict) as exc:
        draw(line, key="late")
    assert exc.value.code == "expired"
    assert lines_expire() == 1
    line.refresh_from_db()
    drawdown.loan.refresh_from_db()
    assert line.status == "expired" and drawdown.loan.status == "active"
    assert lines_expire() == 0  # idempotent


def test_maturity_beyond_the_cap_is_refused(products, org):
    from applications.models import LoanProduct
    from creditlines.models import CreditLine
    from loanservice.business_date import business_date
    from loanservice.errors import Conflict

    line = make_line()
    LoanProduct.objects.filter(code=LINE_PRODUCT).update(drawdown_maturity_cap_months=0)
    CreditLine.objects.filter(pk=line.pk).update(valid_until=business_date() + dt.timedelta(days=40))
    with pytest.raises(Conflict) as exc:
        draw(line, term=3)
    assert exc.value.code == "maturity_cap"
    assert draw(line, term=1, key="short")[1]


def test_overdue_borrower_and_freezing_warning_refuse(products, org):
    from creditlines.services import lines_freeze_on_warnings
    from loanservice.errors import Conflict
    from postloan.models import EarlyWarning, Loan, WarningRule

    line = make_line()
    drawdown, _ = draw(line, "20000.00")
    Loan.objects.filter(pk=drawdown.loan_id).update(dpd=3)
    with pytest.raises(Conflict) as exc:
        draw(line, key="x")
    assert exc.value.code == "overdue"
    Loan.objects.filter(pk=drawdown.loan_id).update(dpd=0)
    rule = WarningRule.objects.filter(freezes_credit_line=True).first()
    assert rule is not None  # the red rules freeze lines (reference data)
    EarlyWarning.objects.create(loan=drawdown.loan, rule=rule, severity=rule.severity, fingerprint="f", detected_on=dt.date.today())
    with pytest.raises(Conflict) as exc:
        draw(line, key="y")
    assert exc.value.code == "warning"
    assert lines_freeze_on_warnings() == 1
    line.refresh_from_db()
    assert line.status == "frozen" and rule.name.split(" / ")[0] in line.status_reason.split(" / ")[0]


def test_only_the_borrower_draws(products, org):
    from loanservice.errors import ApplicationError

    line = make_line()
    with pytest.raises(ApplicationError) as exc:
        draw(line, user=ApplicantFactory())
    assert exc.value.code == "forbidden"


# ---------------------------------------------------------------- revolving
def test_repaid_principal_is_available_again_and_a_reversal_takes_it_back(products, org):
    from creditlines.selectors import line_usage
    from loanservice.business_date import business_date
    from postloan.services import approval_request_decide, repayment_record, reversal_request

    line = make_line(limit="100000.00")
    drawdown, _ = draw(line, "100000.00", term=6, method="interest_only")
    assert line_usage(line)["available"] == Decimal("0.00")
    loan = drawdown.loan
    repayment, _ = repayment_record(loan=loan, amount=Decimal("40000.00"), paid_on=business_date(), reference="R1",
                                    by=org["demo_ops"])
    loan.refresh_from_db()
    paid_principal = Decimal("100000.00") - loan.outstanding_principal
    assert paid_principal > 0
    assert line_usage(line)["available"] == paid_principal  # available again at once
    draw(line, str(paid_principal), key="again", term=3)
    assert line_usage(line)["available"] == Decimal("0.00")
    request = reversal_request(loan=loan, repayment=repayment, reason="错账冲正", by=org["demo_ops"])
    approval_request_decide(request=request, approve=True, by=org["demo_risk"])
    usage = line_usage(line)
    assert usage["available"] == -paid_principal and usage["used"] == Decimal("100000.00") + paid_principal


def test_used_always_equals_the_drawdowns_outstanding(products, org):
    from creditlines.models import CreditLine
    from creditlines.selectors import drawdown_loans, line_usage, lines_with_usage

    line = make_line()
    for i, amount in enumerate(["10000.00", "25000.50", "7000.00"]):
        draw(line, amount, key=f"k{i}")
    total = sum(loan.outstanding_principal for loan in drawdown_loans(line))
    assert line_usage(line)["used"] == total == Decimal("42000.50")
    assert lines_with_usage(CreditLine.objects.filter(pk=line.pk)).get().used_amount == total


# ---------------------------------------------------------------- limit management
def test_risk_changes_at_once_rm_needs_a_second_person(products, org):
    from creditlines.models import LineChangeRequest
    from creditlines.services import change_request_decide, line_change
    from loanservice.audit import AuditEvent
    from loanservice.errors import ApplicationError

    line = make_line()
    line, change = line_change(line=line, kind="adjust", limit=Decimal("300000.00"), reason="压降", by=org["demo_risk"])
    assert change is None and line.limit == Decimal("300000.00")
    with pytest.raises(ApplicationError):
        line_change(line=line, kind="adjust", limit=Decimal("400000.00"), reason="提额", by=org["demo_risk"])
    line, change = line_change(line=line, kind="freeze", reason="客户经营恶化", by=org["demo_rm"])
    assert change.status == "pending" and line.status == "active"
    with pytest.raises(ApplicationError):
        change_request_decide(request=change, approve=True, by=org["demo_rm"])  # not one's own
    change = change_request_decide(request=change, approve=True, by=org["demo_branch_approver"])
    line.refresh_from_db()
    assert change.status == LineChangeRequest.Status.APPROVED and line.status == "frozen"
    actions = set(AuditEvent.objects.filter(object_type="creditlines.creditline", object_id=str(line.pk)).values_list("action", flat=True))
    assert {"credit_line.open", "credit_line.adjust", "credit_line.change_request", "credit_line.freeze"} <= actions
    line, _ = line_change(line=line, kind="unfreeze", reason="已核实", by=org["demo_risk"])
    assert line.status == "active"


def test_a_change_request_is_decided_once_and_a_rejection_leaves_the_line(products, org):
    from creditlines.models import LineChangeRequest
    from creditlines.services import change_request_decide, line_change
    from loanservice.audit import AuditEvent
    from loanservice.errors import Conflict

    line = make_line()
    line, change = line_change(line=line, kind="adjust", limit=Decimal("300000.00"), reason="压降", by=org["demo_rm"])
    change = change_request_decide(request=change, approve=False, by=org["demo_risk"], comment="暂不压降")
    line.refresh_from_db()
    assert change.status == LineChangeRequest.Status.REJECTED and line.limit == Decimal("500000.00")
    assert change.decided_by == org["demo_risk"] and change.decided_at is not None and change.comment == "暂不压降"
    with pytest.raises(Conflict) as twice:
        change_request_decide(request=change, approve=True, by=org["demo_branch_approver"])
    assert twice.value.state == "rejected"
    assert LineChangeRequest.objects.get(pk=change.pk).decided_by == org["demo_risk"]
    assert AuditEvent.objects.filter(action="credit_line.change_decide", object_id=str(line.pk)).count() == 1


def test_annual_review_tasks_before_expiry(products, org):
    from creditlines.models import CreditLine, LineReviewTask
    from creditlines.services import review_tasks_create
    from loanservice.business_date import business_date

    line = make_line()
    assert review_tasks_create() == 0
    CreditLine.objects.filter(pk=line.pk).update(valid_until=business_date() + dt.timedelta(days=20))
    assert review_tasks_create() == 1 and review_tasks_create() == 0
    task = LineReviewTask.objects.get(line=line)
    assert task.assigned_to == line.relationship_manager
    from django.test import Client

    rm = Client()
    rm.force_login(line.relationship_manager)
    assert f"/staff/credit-lines/{line.pk}/" in rm.get("/staff/cases/").content.decode()  # in the RM's queue


# ---------------------------------------------------------------- the API
def test_api_line_detail_and_access(products, org):
    line = make_line()
    draw(line, "30000.00")
    owner = client_for(line.borrower).get(f"/api/v1/credit-lines/{line.pk}/")
    assert owner.status_code == 200
    body = owner.json()
    assert {"id", "limit", "available", "used", "valid_from", "valid_until", "status", "business_date", "drawdowns"} <= set(body)
    assert body["available"] == "470000.00" and body["used"] == "30000.00" and len(body["drawdowns"]) == 1
    assert client_for(ApplicantFactory()).get(f"/api/v1/credit-lines/{line.pk}/").status_code == 404
    assert client_for(org["demo_risk"]).get(f"/api/v1/credit-lines/{line.pk}/").status_code == 200
    assert client_for(None).get(f"/api/v1/credit-lines/{line.pk}/").status_code == 401


def test_api_drawdown_codes(products, org):
    line = make_line(limit="100000.00")
    api = client_for(line.borrower)
    url = f"/api/v1/credit-lines/{line.pk}/drawdowns/"
    body = {"amount": "60000.00", "term_months": 6, "repayment_method": "equal_installment"}
    assert api.post(url, body, format="json").status_code == 400  # no key
    r = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="a1")
    assert r.status_code == 201 and r.json()["loan"]
    again = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="a1")
    assert again.status_code == 201 and again.json()["loan"] == r.json()["loan"]
    assert api.post(url, {**body, "amount": "1000.00"}, format="json", HTTP_IDEMPOTENCY_KEY="a1").status_code == 409
    refused = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="a2")
    assert refused.status_code == 409 and refused.json()["reason"] == "above_available"
    assert refused.json()["current"]["available"] == "40000.00"
    assert api.post(url, {**body, "term_months": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="a3").status_code == 400
    assert client_for(org["demo_risk"]).post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="r").status_code == 403
    assert client_for(ApplicantFactory()).post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="o").status_code == 404
    loan = client_for(line.borrower).get(f"/api/v1/loans/{r.json()['loan']}/")
    assert loan.status_code == 200 and loan.json()["principal"] == "60000.00"


def test_api_freeze_unfreeze_adjust(products, org):
    line = make_line()
    base = f"/api/v1/credit-lines/{line.pk}"
    assert client_for(line.borrower).post(f"{base}/freeze/", {"reason": "x"}, format="json").status_code == 403
    assert client_for(org["demo_risk"]).post(f"{base}/freeze/", {}, format="json").status_code == 400
    r = client_for(org["demo_risk"]).post(f"{base}/freeze/", {"reason": "预警"}, format="json")
    assert r.status_code == 200 and r.json()["line"]["status"] == "frozen"
    assert client_for(org["demo_risk"]).post(f"{base}/freeze/", {"reason": "again"}, format="json").status_code == 409
    r = client_for(org["demo_rm"]).post(f"{base}/unfreeze/", {"reason": "已解除"}, format="json")
    assert r.status_code == 202 and r.json()["request"]["status"] == "pending"
    rid = r.json()["request"]["id"]
    assert client_for(org["demo_rm"]).post(f"/api/v1/credit-line-requests/{rid}/approve/", {}, format="json").status_code == 403
    r = client_for(org["demo_risk"]).post(f"/api/v1/credit-line-requests/{rid}/approve/", {}, format="json")
    assert r.status_code == 200 and r.json()["line"]["status"] == "active"
    r = client_for(org["demo_risk"]).post(f"{base}/adjust/", {"limit": "600000.00", "reason": "提额"}, format="json")
    assert r.status_code == 400 and "limit" in r.json()["errors"]
    r = client_for(org["demo_risk"]).post(f"{base}/adjust/", {"limit": "200000.00", "reason": "压降"}, format="json")
    assert r.status_code == 200 and r.json()["line"]["limit"] == "200000.00"


def test_receipt_pdf(products, org):
    line = make_line()
    drawdown, _ = draw(line)
    r = client_for(line.borrower).get(f"/api/v1/drawdowns/{drawdown.pk}/receipt/")
    assert r.status_code == 200 and r["Content-Type"] == "application/pdf" and r.content.startswith(b"%PDF")
    assert client_for(ApplicantFactory()).get(f"/api/v1/drawdowns/{drawdown.pk}/receipt/").status_code == 404


# ---------------------------------------------------------------- pages
def test_owner_draws_in_two_steps_on_the_portal(products, org):
    from django.test import Client

    from creditlines.models import Drawdown

    line = make_line()
    page = Client()
    page.force_login(line.borrower)
    home = page.get("/portal/").content.decode()
    assert f"/portal/credit-lines/{line.pk}/" in home
    html = page.get(f"/portal/credit-lines/{line.pk}/").content.decode()
    assert "¥500,000.00" in html and 'id="draw"' in html
    form = {"amount": "20000", "term_months": "6", "repayment_method": "equal_installment", "key": "portal-1"}
    confirm = page.post(f"/portal/credit-lines/{line.pk}/draw/", {**form, "step": "confirm"})
    assert confirm.status_code == 200 and 'id="draw-confirm-button"' in confirm.content.decode()
    assert not Drawdown.objects.exists()  # the confirm step funds nothing
    done = page.post(f"/portal/credit-lines/{line.pk}/draw/", {**form, "step": "draw"})
    drawdown = Drawdown.objects.get()
    assert done.status_code == 302 and done["Location"] == f"/portal/loans/{drawdown.loan_id}/"
    page.post(f"/portal/credit-lines/{line.pk}/draw/", {**form, "step": "draw"})  # a double click: the same key
    assert Drawdown.objects.count() == 1
    refused = page.post(f"/portal/credit-lines/{line.pk}/draw/", {**form, "amount": "480001", "key": "portal-2",
                                                                  "payee_name": "某供应商", "payee_account": "62220000111122"}, follow=True)
    assert "可用额度不足" in refused.content.decode()
    no_payee = page.post(f"/portal/credit-lines/{line.pk}/draw/", {**form, "amount": "310000", "key": "portal-3"}, follow=True)
    assert "受托支付" in no_payee.content.decode() and Drawdown.objects.count() == 1
    loan_html = page.get(f"/portal/loans/{drawdown.loan_id}/").content.decode()
    assert drawdown.receipt_number in loan_html and f"/portal/credit-lines/{line.pk}/" in loan_html  # paid by its receipt number
    receipt = page.get(f"/portal/drawdowns/{drawdown.pk}/receipt/")
    assert receipt.status_code == 200 and receipt.content.startswith(b"%PDF")


def test_staff_line_page_and_forms(products, org):
    from django.test import Client

    from creditlines.models import LineReviewTask
    from loanservice.business_date import business_date

    line = make_line()
    draw(line, "10000.00")
    risk = Client()
    risk.force_login(org["demo_risk"])
    html = risk.get(f"/staff/credit-lines/{line.pk}/").content.decode()
    assert "¥490,000.00" in html and 'id="freeze-reason"' in html
    assert f"/staff/credit-lines/{line.pk}/" in risk.get(f"/staff/cases/{line.application_id}/").content.decode()
    assert risk.post(f"/staff/credit-lines/{line.pk}/change/freeze/", {"reason": "贷后检查"}).status_code == 302
    line.refresh_from_db()
    assert line.status == "frozen"
    task = LineReviewTask.objects.create(line=line, due_on=line.valid_until, assigned_to=org["demo_rm"], created_on=business_date())
    rm = Client()
    rm.force_login(org["demo_rm"])
    assert rm.post(f"/staff/credit-lines/reviews/{task.pk}/complete/", {"note": "经营正常，建议续期"}).status_code == 302
    task.refresh_from_db()
    assert task.status == "done"


# ---------------------------------------------------------------- exposure (routing and authority see the lines)
def test_a_line_counts_at_the_larger_of_its_limit_and_its_outstanding_and_its_drawdowns_not_twice(products, org):
    from casework.exposure import application_exposure
    from postloan.models import Loan

    line = make_line(seed=61, limit="500000.00")
    draw(line, "200000.00", key="e1")
    request = FastTrackApplicationFactory(applicant=line.borrower, enterprise=line.enterprise, amount="100000.00",
                                          stage="draft", seed=62)
    exposure = application_exposure(request)
    # the line at its limit (500,000 > 200,000 drawn); the drawdown is not a term loan, the line's case not an offer
    assert (exposure.credit_lines, exposure.term_loans, exposure.offers_not_taken) == (Decimal("500000.00"), 0, 0)
    # drawn above a lowered limit: the outstanding counts
    CreditLine.objects.filter(pk=line.pk).update(limit=Decimal("150000.00"))
    assert application_exposure(request).credit_lines == Decimal("200000.00")
    # expired: only what is outstanding on it
    CreditLine.objects.filter(pk=line.pk).update(status=CreditLine.Status.EXPIRED, limit=Decimal("500000.00"))
    assert application_exposure(request).credit_lines == Decimal("200000.00")
    Loan.objects.filter(drawdown__line=line).update(outstanding_principal=Decimal("0.00"), status="closed")
    assert application_exposure(request).total == Decimal("100000.00")
