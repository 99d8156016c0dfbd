"""Revoking a loan's auto-debit authorisation (自动扣款授权): the borrower of the loan from their loan page or the API,
operations from the staff loan page or the API; audited, under the loan's row lock; close of business then skips the
loan; another borrower never reaches it (404)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from loanservice.errors import ApplicationError, Conflict
from loanservice.models import AuditEvent
from postloan.cob import cob_partition_run, cob_start
from postloan.models import AutoDebitAttempt, Loan, Repayment
from postloan.services import loan_auto_debit_set
from tests.conftest import client_for
from tests.factories import ApplicantFactory, FastTrackLoanFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def loan(products, org):
    return FastTrackLoanFactory(owner=ApplicantFactory(username="adr_owner"), seed=171, amount="120000.00")


def _close(until: dt.date) -> None:
    run = cob_start(until=until, by=None)
    for part in run.partitions.all():
        cob_partition_run(partition_id=part.pk)


def test_the_borrower_revokes_and_close_of_business_skips_the_loan(loan, settings):
    settings.ALLOW_SIMULATED_BUSINESS_DATE = True
    settings.CORE_BANKING_SANDBOX_FUNDS = "full"
    assert loan.auto_debit
    loan, changed = loan_auto_debit_set(loan=loan, enabled=False, reason="改为对公转账", by=loan.borrower)
    assert changed and not Loan.objects.get(pk=loan.pk).auto_debit
    event = AuditEvent.objects.filter(action="loan.auto_debit.revoke", object_id=str(loan.pk)).get()
    assert (event.from_state, event.to_state, event.actor_id) == ("granted", "revoked", loan.borrower_id)
    assert loan_auto_debit_set(loan=loan, enabled=False, by=loan.borrower)[1] is False  # nothing to change: no event
    assert AuditEvent.objects.filter(action__startswith="loan.auto_debit.", object_id=str(loan.pk)).count() == 1
    first = loan.installments.order_by("n").first()
    _close(first.due_date + dt.timedelta(days=2))
    assert not AutoDebitAttempt.objects.filter(loan=loan).exists() and not Repayment.objects.filter(loan=loan).exists()
    loan.refresh_from_db()
    assert loan.dpd == 2
    # granted again: the next close of business debits what is due
    loan_auto_debit_set(loan=loan, enabled=True, by=loan.borrower)
    _close(first.due_date + dt.timedelta(days=3))
    attempt = AutoDebitAttempt.objects.get(loan=loan)
    assert attempt.status == "debited" and attempt.on == first.due_date + dt.timedelta(days=3)
    assert AuditEvent.objects.filter(action="loan.auto_debit.grant", object_id=str(loan.pk)).exists()


def test_only_the_borrower_of_the_loan_and_operations_may_change_it(loan, org):
    other = ApplicantFactory(username="adr_other")
    for user in (other, org["demo_risk"], org["demo_rm"]):
        with pytest.raises(ApplicationError):
            loan_auto_debit_set(loan=loan, enabled=False, by=user)
    assert Loan.objects.get(pk=loan.pk).auto_debit
    assert loan_auto_debit_set(loan=loan, enabled=False, by=org["demo_ops"])[1]
    Loan.objects.filter(pk=loan.pk).update(status=Loan.Status.CLOSED)
    with pytest.raises(Conflict):
        loan_auto_debit_set(loan=Loan.objects.get(pk=loan.pk), enabled=True, by=org["demo_ops"])


def test_the_api_answers_the_borrower_and_operations_not_another_borrower(loan, org):
    url = f"/api/v1/loans/{loan.pk}/auto-debit/"
    other = ApplicantFactory(username="adr_other_api")
    assert client_for(None).post(url, {"enabled": False}, format="json").status_code in (401, 403)
    assert client_for(other).post(url, {"enabled": False}, format="json").status_code == 404
    assert client_for(org["demo_risk"]).post(url, {"enabled": False}, format="json").status_code == 403
    bad = client_for(loan.borrower).post(url, {"enabled": "maybe"}, format="json")
    assert bad.status_code == 400 and "enabled" in bad.json()["errors"]
    assert client_for(loan.borrower).post(url, {}, format="json").status_code == 400
    off = client_for(loan.borrower).post(url, {"enabled": False, "reason": "换账户"}, format="json")
    assert off.status_code == 200 and off.json() == {"id": loan.pk, "auto_debit": False, "changed": True}
    again = client_for(loan.borrower).post(url, {"enabled": False}, format="json")
    assert again.status_code == 200 and again.json()["changed"] is False
    detail = client_for(loan.borrower).get(f"/api/v1/loans/{loan.pk}/").json()
    assert detail["auto_debit"] is False
    on = client_for(org["demo_ops"]).post(url, {"enabled": True}, format="json")
    assert on.status_code == 200 and on.json()["auto_debit"] is True
    Loan.objects.filter(pk=loan.pk).update(status=Loan.Status.CLOSED)
    assert client_for(org["demo_ops"]).post(url, {"enabled": False}, format="json").status_code == 409


def test_the_borrower_revokes_from_the_loan_page_and_operations_from_the_staff_page(loan, org, client):
    client.force_login(loan.borrower)
    page = client.get(reverse("portal:loan", args=[loan.pk])).content.decode()
    assert "取消自动扣款" in page and 'id="auto-debit"' in page
    response = client.post(reverse("postloan:portal_auto_debit", args=[loan.pk]), {"enabled": "0"})
    assert response.status_code == 302 and not Loan.objects.get(pk=loan.pk).auto_debit
    page = client.get(reverse("portal:loan", args=[loan.pk])).content.decode()
    assert "自动扣款已取消" in page and "恢复自动扣款" in page and "已取消自动扣款授权" in page
    # another borrower cannot reach the loan
    client.force_login(ApplicantFactory(username="adr_other_page"))
    assert client.post(reverse("postloan:portal_auto_debit", args=[loan.pk]), {"enabled": "1"}).status_code == 404
    # operations grant it again from the staff loan page; risk sees the state but no button
    client.force_login(org["demo_risk"])
    page = client.get(reverse("postloan:loan", args=[loan.pk])).content.decode()
    assert 'id="auto-debit-state"' in page and 'id="auto-debit"' not in page
    client.force_login(org["demo_ops"])
    page = client.get(reverse("postloan:loan", args=[loan.pk])).content.decode()
    assert 'id="auto-debit"' in page and "恢复自动扣款" in page
    client.post(reverse("postloan:loan_action", args=[loan.pk, "auto_debit"]), {"enabled": "1", "reason": "客户要求"})
    assert Loan.objects.get(pk=loan.pk).auto_debit
    event = AuditEvent.objects.filter(action="loan.auto_debit.grant", object_id=str(loan.pk)).get()
    assert event.actor_id == org["demo_ops"].pk and event.reason == "客户要求"
