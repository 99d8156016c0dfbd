"""postloan.demo.seed_demo_data: every post-loan page has something to show (repayments, arrears, the
classification history, a pending upgrade, early warnings with RM tasks, a renewal offer, survey answers,
imports), made through the real services, and a second seed changes nothing."""

from __future__ import annotations

import pytest
from django.apps import apps

from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _counts() -> dict[str, int]:
    return {m._meta.label: m.objects.count() for m in apps.get_models()
            if m._meta.app_label in ("applications", "underwriting", "contracts", "postloan", "loanservice")}


def test_demo_post_loan_book(products, org):
    from casework.demo.postloan import ARREARS_ENTERPRISE, RENEWAL_ENTERPRISE, seed_demo_data
    from postloan.models import (
        ApprovalRequest,
        EarlyWarning,
        Loan,
        RenewalOffer,
        RepaymentImport,
        SurveyResponse,
        WarningTask,
    )

    seed_demo_data(org)
    renewal = Loan.objects.get(enterprise__name=RENEWAL_ENTERPRISE)
    arrears = Loan.objects.get(enterprise__name=ARREARS_ENTERPRISE)
    assert renewal.borrower == arrears.borrower == org["demo_applicant"]
    assert renewal.repayments.count() >= 9 and renewal.dpd == 0 and renewal.classification == "normal"
    assert RenewalOffer.objects.filter(loan=renewal, kind="renewal").exists()
    assert SurveyResponse.objects.filter(loan=renewal, score__isnull=False).count() == 2

    assert arrears.repayments.count() == 3 and set(arrears.repayments.values_list("channel", flat=True)) == {"api", "import"}
    assert arrears.dpd > 30 and arrears.bucket == "M2" and arrears.classification == "substandard"
    assert list(arrears.classification_history.values_list("kind", "to_category")) == [("floor", "special_mention"),
                                                                                       ("downgrade", "substandard")]
    upgrade = ApprovalRequest.objects.get(loan=arrears, kind="upgrade")
    assert upgrade.status == "pending" and upgrade.requested_by == org["demo_rm"]
    warnings = {w.rule.code: w for w in EarlyWarning.objects.filter(loan=arrears).select_related("rule", "task")}
    assert {"tax_revenue_drop", "headcount_drop", "enforcement_new"} <= set(warnings)
    assert all(w.task.assigned_to == org["demo_rm"] for w in warnings.values())
    assert warnings["headcount_drop"].status == "closed" and warnings["headcount_drop"].task.action == "keep"
    assert warnings["enforcement_new"].status == "open" and warnings["enforcement_new"].severity == "red"
    assert WarningTask.objects.filter(assigned_to=org["demo_rm"], status="open").count() >= 2
    assert set(RepaymentImport.objects.values_list("status", flat=True)) == {"applied", "rejected"}

    pages = {"demo_risk": ["/staff/risk/", "/postloan/warnings/", f"/postloan/loans/{arrears.pk}/", "/postloan/approvals/"],
             "demo_rm": ["/postloan/tasks/", f"/postloan/loans/{arrears.pk}/"], "demo_ops": ["/postloan/imports/"],
             "demo_applicant": [f"/portal/loans/{renewal.pk}/", f"/postloan/my/loans/{renewal.pk}/renewal/"]}
    for username, urls in pages.items():
        client = client_for(org[username])
        client.force_login(org[username])
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, (username, url)
    risk = client_for(org["demo_risk"])
    risk.force_login(org["demo_risk"])
    assert ARREARS_ENTERPRISE in risk.get("/staff/risk/").content.decode()
    assert ARREARS_ENTERPRISE in risk.get("/postloan/approvals/").content.decode()

    before = _counts()
    seed_demo_data(org)
    assert _counts() == before
