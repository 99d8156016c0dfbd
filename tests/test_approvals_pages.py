"""The approver's pages: the queue per tier with SLA countdown and filters (a constant number of queries),
and the one-screen review page with its decision form, committee tally and chair's resolution."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.approvals_support import fast_passwords  # noqa: F401
from tests.factories import PendingApprovalFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


def _ids(html: str) -> set[int]:
    import re

    return {int(x) for x in re.findall(r'id="queue-row-(\d+)"', html)}


def test_queue_filters_sla_countdown_and_constant_queries(client, products, org):
    from loanservice.sla import sla_clock_start, sla_clock_stop

    client.force_login(org["demo_branch_approver"])
    small = PendingApprovalFactory(applicant__username="o1", seed=41, amount="1500000.00")
    client.get("/staff/approvals/")  # warm the calendar cache
    with CaptureQueriesContext(connection) as one:
        page = client.get("/staff/approvals/")
    assert _ids(page.content.decode()) == {small.pk}
    big = PendingApprovalFactory(applicant__username="o2", seed=42, amount="2800000.00")
    supply = PendingApprovalFactory(applicant__username="o3", seed=43, product="supply-chain-order", amount="900000.00",
                                    term_months=12, repayment_method="interest_only")
    with CaptureQueriesContext(connection) as three:
        page = client.get("/staff/approvals/")
    assert _ids(page.content.decode()) == {small.pk, big.pk, supply.pk}
    assert len(three) == len(one)

    assert _ids(client.get("/staff/approvals/", {"product": "supply-chain-order"}).content.decode()) == {supply.pk}
    assert _ids(client.get("/staff/approvals/", {"amount_min": "1000000", "amount_max": "2000000"}).content.decode()) == {small.pk}
    assert _ids(client.get("/staff/approvals/", {"branch": small.branch_id, "tier": "branch"}).content.decode()) == {
        small.pk, big.pk, supply.pk}
    assert client.get("/staff/approvals/", {"amount_min": "abc"}).status_code == 200  # unreadable filters are ignored

    # The big case's clock as if it had started two weeks ago: overdue, shown as a breach and filterable.
    sla_clock_stop(case_id=big.pk)
    sla_clock_start(case_id=big.pk, stage="branch_approval", branch=big.branch, product_code=big.product.code,
                    now=timezone.now() - dt.timedelta(days=14))
    page = client.get("/staff/approvals/", {"overdue": "1"}).content.decode()
    assert _ids(page) == {big.pk}
    assert "超时" in page


def test_review_page_in_one_screen_with_keyboard_ready_form(client, products, org):
    application = PendingApprovalFactory(seed=44)
    client.force_login(org["demo_branch_approver"])
    html = client.get(f"/staff/approvals/{application.pk}/").content.decode()
    for element in ('id="decision-approve"', 'id="decision-decline"', 'id="decision-return"', 'id="submit-decision"',
                    'id="approved_amount"', 'id="comment"', 'id="routing"', 'id="visit-answers"', 'id="open-timeline"',
                    'id="request-info-form"', 'id="condition-ADD_GUARANTOR"', 'id="reason-HIGH_LEVERAGE"'):
        assert element in html, element
    assert "v1" in html and "经营场所是否与登记一致？" in html and "经营稳定，建议批准。" in html

    r = client.post(f"/staff/cases/{application.pk}/action/decide/",
                    {"decision": "approve", "approved_amount": "1600000.00", "conditions": ["ACCOUNT_SUPERVISION"],
                     "comment": "同意", "next": f"/staff/approvals/{application.pk}/"})
    assert r.status_code == 302 and r["Location"].endswith("/staff/approvals/")
    application.refresh_from_db()
    assert application.status == "approved" and str(application.offer_amount) == "1600000.00"
    assert application.approval_cases.get().conditions[0]["code"] == "ACCOUNT_SUPERVISION"


def test_review_page_explains_why_a_user_cannot_decide(client, products, org):
    from approvals.services import conflict_declare

    application = PendingApprovalFactory(seed=45)
    conflict_declare(user=org["demo_branch_approver"], enterprise=application.enterprise, reason="亲属关系")
    client.force_login(org["demo_branch_approver"])
    html = client.get(f"/staff/approvals/{application.pk}/").content.decode()
    assert 'id="cannot-decide"' in html and "利益冲突" in html and 'id="submit-decision"' not in html


def test_request_info_from_the_review_page(client, products, org):
    application = PendingApprovalFactory(seed=46)
    client.force_login(org["demo_branch_approver"])
    r = client.post(f"/staff/cases/{application.pk}/action/request_info/",
                    {"message": "请补充近半年纳税申报表", "next": f"/staff/approvals/{application.pk}/"})
    assert r.status_code == 302 and r["Location"].endswith(f"/staff/approvals/{application.pk}/")
    application.refresh_from_db()
    assert application.status == "awaiting_info"
    html = client.get("/staff/approvals/").content.decode()
    assert application.pk in _ids(html) and "待客户补充资料" in html and "已暂停" in html


def test_committee_tally_and_the_chairs_resolution_form(client, products, org):
    from approvals.services import committee_configure
    from tests.conftest import client_for

    committee_configure(by=org["demo_admin"], chair=org["demo_committee_1"])
    application = PendingApprovalFactory(seed=47, related_party=True)
    url = f"/api/v1/applications/{application.pk}/decide/"
    assert client_for(org["demo_branch_approver"]).post(url, {"decision": "approve"}, format="json").status_code == 200
    for member in ("demo_committee_1", "demo_committee_2", "demo_committee_3"):
        assert client_for(org[member]).post(url, {"decision": "approve"}, format="json").status_code == 200
    client.force_login(org["demo_committee_2"])
    html = client.get(f"/staff/approvals/{application.pk}/").content.decode()
    assert 'id="committee"' in html and 'id="resolution-form"' not in html and 'id="cannot-decide"' in html
    client.force_login(org["demo_committee_1"])
    html = client.get(f"/staff/approvals/{application.pk}/").content.decode()
    assert 'id="resolution-form"' in html and "同意 3" in html
    r = client.post(f"/staff/cases/{application.pk}/action/resolve/", {"text": "一致同意", "next": f"/staff/approvals/{application.pk}/"})
    assert r.status_code == 302
    application.refresh_from_db()
    assert application.status == "approved"
    assert 'id="resolution"' in client.get(f"/staff/approvals/{application.pk}/").content.decode()


def test_the_review_page_preselects_nothing_and_takes_the_rate_as_a_percentage(client, products, org):
    """批准 was preselected and the rate typed as a fraction (0.0435); codes showed instead of words."""
    import re

    application = PendingApprovalFactory(seed=48)
    client.force_login(org["demo_branch_approver"])
    html = client.get(f"/staff/approvals/{application.pk}/").content.decode()
    assert not re.search(r'name="decision"[^>]*checked', html)
    assert 'name="rate_percent"' in html and "0.0435" not in html
    assert "years_in_business" not in html and "经营满2年" in html  # the pre-screen by the criteria's names
    r = client.post(f"/staff/cases/{application.pk}/action/decide/", {"comment": "同意"}, follow=True)
    application.refresh_from_db()
    assert application.status == "pending_approval" and "decision" in r.content.decode()
    r = client.post(f"/staff/cases/{application.pk}/action/decide/",
                    {"decision": "approve", "rate_percent": "4.8", "comment": "同意"})
    assert r.status_code == 302
    application.refresh_from_db()
    assert application.status == "approved" and str(application.offer_rate) == "0.048000"
