"""CSV import from core banking (preview, bad line, idempotent re-import), renewal eligibility and the
renewal application, the satisfaction survey, the borrower's portal page, and the nightly job on a real
Celery worker."""

from __future__ import annotations

import datetime as dt
import os
import re

import pytest
import time_machine

from loanservice.errors import ApplicationError, Conflict
from tests.conftest import client_for, using_postgres
from tests.test_postloan_repayments import DISBURSED

pytestmark = pytest.mark.django_db


@pytest.fixture
def loan(products, org):
    from tests.factories import ApplicantFactory, FastTrackLoanFactory

    with time_machine.travel(dt.datetime.combine(DISBURSED, dt.time(2)), tick=False):
        return FastTrackLoanFactory(owner=ApplicantFactory(username="pl_svc"), seed=51)


def test_csv_import_preview_bad_line_apply_and_reimport(loan, org):
    from postloan.imports import repayment_import_apply, repayment_import_preview
    from postloan.models import RepaymentImport

    ops = org["demo_ops"]
    first, second = loan.installments.get(n=1), loan.installments.get(n=2)
    good = (f"loan_id,reference,amount,paid_on\n{loan.pk},CB-1,{first.total:.2f},{first.due_date}\n"
            f"{loan.pk},CB-2,{second.total:.2f},{second.due_date}\n").encode()
    bad = good + f"{loan.pk},CB-3,12.345,{second.due_date}\n99999,CB-4,10.00,{second.due_date}\n".encode()
    with time_machine.travel(dt.datetime.combine(second.due_date, dt.time(12)), tick=False):
        with pytest.raises(ApplicationError):
            repayment_import_preview(file_name="x.csv", content=b"foo,bar\n1,2\n", by=ops)
        batch = repayment_import_preview(file_name="bad.csv", content=bad, by=ops)
        assert batch.status == "rejected" and batch.summary["errors"] == 2
        assert [(r["line"], sorted(r["errors"])) for r in batch.lines if r["errors"]] == [(4, ["amount"]), (5, ["loan_id"])]
        with pytest.raises(Conflict):
            repayment_import_apply(batch=batch, by=ops)
        assert loan.repayments.count() == 0  # a bad line never applies half a file

        batch = repayment_import_preview(file_name="good.csv", content=good, by=ops)
        assert batch.status == "previewed" and batch.summary["ok"] == 2 and loan.repayments.count() == 0
        batch = repayment_import_apply(batch=batch, by=ops)
        assert batch.status == "applied" and batch.summary["applied"] == 2
        assert loan.repayments.count() == 2 and set(loan.repayments.values_list("channel", flat=True)) == {"import"}

        again = repayment_import_preview(file_name="good.csv", content=good, by=ops)  # the same file again
        assert again.summary["recorded"] == 2 and again.summary["ok"] == 0
        again = repayment_import_apply(batch=again, by=ops)
        assert again.summary["applied"] == 0 and loan.repayments.count() == 2
        gbk = "贷款编号,流水号,金额,还款日期\n".encode("gb18030") + f"{loan.pk},CB-1,{first.total:.2f},{first.due_date}\n".encode()
        assert repayment_import_preview(file_name="gbk.csv", content=gbk, by=ops).summary["recorded"] == 1
    with pytest.raises(ApplicationError):
        repayment_import_preview(file_name="x.csv", content=good, by=loan.borrower)
    assert RepaymentImport.objects.filter(status="applied").count() == 2
    page = client_for(ops)
    page.force_login(ops)
    assert page.get("/postloan/imports/").status_code == 200 and page.get(f"/postloan/imports/{batch.pk}/").status_code == 200


def test_renewal_eligibility_and_the_prefilled_application(loan, org):
    from postloan.models import EarlyWarning, RenewalOffer, WarningRule
    from postloan.services import renewal_eligibility, renewal_offers_make, renewal_request

    codes = lambda r: {x["code"] for x in r["reasons"]}  # noqa: E731
    assert "outside_window" in codes(renewal_eligibility(loan=loan, today=DISBURSED + dt.timedelta(days=30)))
    near = loan.maturity_date - dt.timedelta(days=30)
    assert "overdue" not in codes(renewal_eligibility(loan=loan, today=near, check_admission=False))
    # the schedule unpaid until `near`: installments were late, so not eligible
    assert "late_history" in codes(renewal_eligibility(loan=loan, today=near, check_admission=False))

    # pay every installment on time up to the window, through the real service
    from postloan.services import repayment_record

    for inst in loan.installments.filter(due_date__lt=near).order_by("n"):
        with time_machine.travel(dt.datetime.combine(inst.due_date, dt.time(12)), tick=False):
            repayment_record(loan=loan, amount=inst.total, paid_on=inst.due_date, reference=f"R{inst.n}", by=org["demo_ops"])
    loan.refresh_from_db()
    with time_machine.travel(dt.datetime.combine(near, dt.time(12)), tick=False):
        result = renewal_eligibility(loan=loan)
        assert result["eligible"], result["reasons"]
        red = EarlyWarning.objects.create(loan=loan, rule=WarningRule.objects.get(code="enforcement_new"), severity="red",
                                          fingerprint="x", detected_on=near)
        assert "red_warning" in codes(renewal_eligibility(loan=loan))
        red.status = "closed"
        red.save()
        assert renewal_offers_make(today=near)["offered"] == 1 and renewal_offers_make(today=near)["offered"] == 0
        with pytest.raises(ApplicationError):
            renewal_request(loan=loan, by=org["demo_rm"])
        offer = renewal_request(loan=loan, by=loan.borrower)
        application = offer.application
        assert application.status == "draft" and application.amount == loan.outstanding_principal
        assert application.enterprise_id == loan.enterprise_id and application.channel == "renewal"
        assert renewal_request(loan=loan, by=loan.borrower).pk == offer.pk  # asking twice gives the same application
        assert RenewalOffer.objects.filter(loan=loan).count() == 1
        r = client_for(loan.borrower).get(f"/api/v1/loans/{loan.pk}/renewal/")
        assert r.status_code == 200 and r.json()["eligible"] is True
        portal = client_for(loan.borrower)
        portal.force_login(loan.borrower)
        page = portal.get(f"/portal/loans/{loan.pk}/")
        assert page.status_code == 200 and "next-due" in page.content.decode()
        html = page.content.decode()  # money grouped with two decimals, the rate as a percentage
        assert f"<dd>¥{loan.principal:,.2f}</dd>" in html and f"<dd>{loan.annual_rate * 100:.2f}%</dd>" in html
        assert portal.get(f"/postloan/my/loans/{loan.pk}/renewal/").status_code == 200


def test_satisfaction_survey_after_disbursement_and_repayments(loan, org):
    from analytics.selectors import customer_voice, filters_parse

    client = client_for(loan.borrower)
    r = client.post(f"/api/v1/loans/{loan.pk}/survey/", {"score": 11}, format="json")
    assert r.status_code == 400 and "score" in r.json()["errors"]
    r = client.post(f"/api/v1/loans/{loan.pk}/survey/", {"score": 9, "comment": "放款很快"}, format="json")
    assert r.status_code == 201 and r.json()["trigger"] == "disbursement"
    assert client.post(f"/api/v1/loans/{loan.pk}/survey/", {"score": 9}, format="json").status_code == 409
    from postloan.services import repayment_record

    for inst in loan.installments.order_by("n")[:3]:
        with time_machine.travel(dt.datetime.combine(inst.due_date, dt.time(12)), tick=False):
            repayment_record(loan=loan, amount=inst.total, paid_on=inst.due_date, reference=f"S{inst.n}", by=org["demo_ops"])
    r = client.post(f"/api/v1/loans/{loan.pk}/survey/", {"score": 3, "comment": "还款提醒太晚"}, format="json")
    assert r.status_code == 201 and r.json()["trigger"] == "repayments"
    voice = customer_voice(filters_parse({}).filters)["by_stage"]
    assert {r["trigger"]: (r["responses"], r["promoters"], r["detractors"], r["nps"]) for r in voice} == {
        "disbursement": (1, 1, 0, 100.0), "repayments": (1, 0, 1, -100.0)}
    assert client_for(org["demo_rm"]).post(f"/api/v1/loans/{loan.pk}/survey/", {"score": 5}, format="json").status_code in (403, 404)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not (os.environ.get("REDIS_URL") and using_postgres()), reason="needs REDIS_URL and Postgres (CI sets both)")
def test_nightly_job_on_a_real_worker(products, org):
    from config.celery import app as celery_app
    from postloan.models import MonitoringRun
    from postloan.tasks import nightly_monitoring
    from tests.factories import ApplicantFactory, FastTrackLoanFactory
    from tests.worker import celery_worker, wait_for

    with time_machine.travel(dt.datetime.combine(DISBURSED, dt.time(2)), tick=False):
        loan = FastTrackLoanFactory(owner=ApplicantFactory(username="pl_worker"), seed=61)
    day = loan.installments.get(n=1).due_date + dt.timedelta(days=40)
    celery_app.conf.task_always_eager = False
    with celery_worker():
        nightly_monitoring.delay(day.isoformat())
        # Wait for the outcome, not a fixed time (load only makes it longer; the bound is for a hang). Only "done" ends
        # the wait: a run that failed on a database error is retried by the task.
        run = wait_for(lambda: MonitoringRun.objects.filter(run_date=day, status="done").first(), timeout=300)
    assert run is not None, MonitoringRun.objects.filter(run_date=day).values("status", "step", "attempts", "error").first()
    assert run.counts["delinquency"]["dpd_changed"] == 1 and run.counts["refresh"] == {"pulled": 6}
    loan.refresh_from_db()
    assert loan.dpd == 40 and loan.bucket == "M2" and loan.classification == "special_mention"


def test_renewal_reasons_in_the_readers_language(loan, settings):
    portal = client_for(loan.borrower)
    portal.force_login(loan.borrower)
    for language, other in (("zh-hans", "Renewal opens"), ("en", "续贷须在")):
        portal.cookies[settings.LANGUAGE_COOKIE_NAME] = language
        html = portal.get(f"/postloan/my/loans/{loan.pk}/renewal/").content.decode()
        reasons = re.findall(r"<li>(.*?)</li>", html, flags=re.S)
        assert reasons and not any(other in r or " / " in r for r in reasons), reasons
