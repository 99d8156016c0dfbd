"""Analytics on a small known portfolio: six cases played through the real services at fixed times (the clock travels
with time-machine), so the funnel, the stage times, the SLA breaches, the decisions and the NPL ratio are known in
advance from the plan below, not from the code under test."""

from __future__ import annotations

import datetime as dt
import re
import statistics
from decimal import Decimal

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from tests.conftest import client_for
from tests.factories import ApplicantFactory, sign_as_borrower, uscc_for

pytestmark = pytest.mark.django_db

MON = dt.date(2026, 3, 9)  # a week with no holiday: Mon 9 - Fri 13 March 2026


def at(day: dt.date, hour: float) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(int(hour), int(round((hour % 1) * 60)))))


def travel(moment):
    import time_machine

    return time_machine.travel(moment, tick=False)


# Due-diligence clocks of the plan, in business days (24 h a business day): M1 Mon 10:00 → Tue 10:00, M2 Mon 10:00 →
# Wed 16:00, M3 Mon 10:00 → Mon 22:00 and, after the return, Tue 09:00 → Tue 11:00.
PLANNED_DD_DAYS = [1.0, 2.25, 0.5, 2 / 24]


@pytest.fixture
def portfolio(products, org):
    from applications.models import LoanApplication
    from casework import demo, lifecycle
    from postloan.models import Loan
    from postloan.monitoring import delinquency_refresh
    from postloan.services import repayment_record
    from underwriting.providers import make_uscc

    users = org
    owner = ApplicantFactory(username="analytics_owner")
    rm = users["demo_rm"]
    approver = users["demo_branch_approver"]
    ops = users["demo_ops"]

    def enterprise(seed, uscc):
        from applications.services import enterprise_create
        from tests.factories import enterprise_payload

        return enterprise_create(owner=owner, **enterprise_payload(uscc, seed=seed, name=f"分析测试企业{seed}"))

    def draft(ent, product, amount, term, method):
        return demo._draft(owner, ent, product, amount, term, method)

    cases = {}
    with override_settings(CONTRACT_RENDERER="casework.demo.history_contract_pdf"):  # placeholder PDFs, as the demo history
        with travel(at(MON, 9)):
            cases["D"] = draft(enterprise(1, uscc_for("ABC", seed=31, tier="good")), "xinmiaodai", "100000", 6, "equal_installment")
            seed = 40
            while True:  # a firm the pre-screen turns away
                p = demo._submit(draft(enterprise(seed, make_uscc(seed, tier="bad")), "xinmiaodai", "100000", 6, "equal_installment"), owner)
                if p.status == LoanApplication.Status.PRESCREEN_DECLINED:
                    cases["P"] = p
                    break
                seed += 1
                assert seed < 80
            a = demo._submit(draft(enterprise(2, uscc_for("AB", seed=32)), "xinmiaodai", "300000", 12, "equal_installment"), owner)
            assert a.status == LoanApplication.Status.APPROVED and a.route == "auto"
            cases["A"] = a
            lifecycle.offer_accept(application_id=a.pk, user=owner)
            contract = a.contracts.order_by("id").first()
            sign_as_borrower(contract, owner)
            lifecycle.fast_track_complete(contract.pk)
        manual = {}
        with travel(at(MON, 10)):
            for i, key in enumerate(("M1", "M2", "M3")):
                app = demo._submit(draft(enterprise(3 + i, uscc_for("ABC", seed=33 + i, tier="good")), "supply-chain-order",
                                         "800000", 6, "interest_only"), owner)
                assert app.status == LoanApplication.Status.UNDER_REVIEW and app.route == "branch", (key, app.route)
                manual[key] = app
        with travel(at(MON, 22)):
            demo._to_approval(manual["M3"], users)
        with travel(at(MON + dt.timedelta(days=1), 9)):
            lifecycle.case_decide(application_id=manual["M3"].pk, user=approver, decision="return",
                                  reason_codes=[demo._reason("return")[0]], comment="补充现金流分析")
        with travel(at(MON + dt.timedelta(days=1), 10)):
            demo._to_approval(manual["M1"], users)
        with travel(at(MON + dt.timedelta(days=1), 11)):
            lifecycle.case_send_to_approval(application_id=manual["M3"].pk, user=rm, recommendation="已补充")
        with travel(at(MON + dt.timedelta(days=1), 14)):
            lifecycle.case_decide(application_id=manual["M1"].pk, user=approver, decision="approve", comment="同意")
            lifecycle.case_decide(application_id=manual["M3"].pk, user=approver, decision="approve", comment="同意")
        with travel(at(MON + dt.timedelta(days=2), 16)):
            demo._to_approval(manual["M2"], users)
        with travel(at(MON + dt.timedelta(days=3), 10)):
            lifecycle.case_decide(application_id=manual["M2"].pk, user=approver, decision="decline",
                                  reason_codes=demo._reason("decline"), comment="不予批准")
        with travel(at(MON + dt.timedelta(days=3), 11)):
            lifecycle.offer_accept(application_id=manual["M1"].pk, user=owner)
            contract = manual["M1"].contracts.order_by("id").first()
            sign_as_borrower(contract, owner)
            lifecycle.contract_sign(contract_id=contract.pk, user=ops, party="bank")
            lifecycle.disbursement_release(application_id=manual["M1"].pk, user=ops, idempotency_key="analytics-m1")
    cases.update(manual)
    # Loan A is repaid on every due date; loan M1 (interest only) never pays: it ends far past due.
    loan_a = Loan.objects.get(application=cases["A"])
    today = timezone.localdate()
    for inst in loan_a.installments.filter(due_date__lt=today).order_by("n"):
        with travel(at(inst.due_date, 11)):
            inst.refresh_from_db()
            repayment_record(loan=loan_a, amount=inst.due_remaining, paid_on=inst.due_date, reference=f"A-{inst.n}", by=ops)
    delinquency_refresh(today=today)
    return {k: LoanApplication.objects.get(pk=v.pk) for k, v in cases.items()}


def _filters(**extra):
    from analytics.selectors import filters_parse

    parsed = filters_parse({"date_from": "2026-03-01", "date_to": "2026-03-31", **extra})
    assert not parsed.errors
    return parsed.filters


def test_funnel_counts_every_stage_a_case_reached(portfolio):
    from analytics.selectors import funnel

    total = {row["stage"]: row["n"] for row in funnel(_filters())["total"]}
    # D draft; P pre-screen declined; A auto → loan; M1 approved → loan; M2 declined; M3 returned, then approved, not accepted.
    assert total == {"started": 6, "submitted": 5, "prescreen_passed": 4, "approved": 3, "accepted": 2, "disbursed": 2}
    by_product = {row["product"]: row for row in funnel(_filters())["by_product"]}
    assert by_product["xinmiaodai"]["started"] == 3 and by_product["xinmiaodai"]["disbursed"] == 1
    assert by_product["supply-chain-order"]["approved"] == 2 and by_product["supply-chain-order"]["disbursed"] == 1
    assert funnel(_filters(product="secured-operating"))["total"][0]["n"] == 0
    assert [r["month"] for r in funnel(_filters())["by_month"]] == ["2026-03"]


def test_stage_turnaround_median_and_p90_come_from_the_sla_clocks(portfolio):
    from analytics.selectors import turnaround

    result = turnaround(_filters())
    dd = next(s for s in result["stages"] if s["stage"] == "due_diligence")["business_days"]
    assert dd["n"] == len(PLANNED_DD_DAYS)
    assert dd["median"] == round(statistics.median(PLANNED_DD_DAYS), 2)
    assert dd["p90"] == round(float(np.percentile(PLANNED_DD_DAYS, 90)), 2)
    breaches = next(b for b in result["breaches"] if b["stage"] == "due_diligence")
    assert (breaches["closed"], breaches["breached"]) == (4, 1)  # only M2 took longer than the 2-day target
    branch = next(s for s in result["stages"] if s["stage"] == "branch_approval")["business_days"]
    # Branch approval clocks: M3 Mon 22:00 → Tue 09:00 (returned), M1 Tue 10:00 → 14:00, M3 Tue 11:00 → 14:00,
    # M2 Wed 16:00 → Thu 10:00.
    planned = [11 / 24, 4 / 24, 3 / 24, 18 / 24]
    assert branch["n"] == 4 and branch["median"] == round(statistics.median(planned), 2)
    assert result["rework"]["cases"] == 4
    assert result["rework"]["returns"] == {"events": 1, "cases_with": 1, "per_case": 0.25}
    assert result["rework"]["info_requests"]["events"] == 0


def test_decisions_auto_share_approval_rates_and_overrides(portfolio):
    from analytics.selectors import decisions

    result = decisions(_filters())
    assert (result["decided"], result["automatic"], result["manual"]) == (4, 1, 3)
    assert result["auto_share"] == 0.25
    routes = {r["route"]: (r["decided"], r["approved"]) for r in result["by_route"]}
    assert routes == {"auto": (1, 1), "branch": (3, 2)}
    grades = {k: portfolio[k].scores.get(is_shadow=False).grade for k in ("M1", "M2", "M3")}
    expected = sum(1 for k, ok in (("M1", True), ("M2", False), ("M3", True))
                   if (ok and grades[k] in "DE") or (not ok and grades[k] in "AB"))
    assert result["overrides"] == expected


def test_portfolio_npl_ratio_buckets_and_vintage(portfolio):
    from analytics.selectors import portfolio as book
    from postloan.models import Loan

    loan_a = Loan.objects.get(application=portfolio["A"])
    loan_m1 = Loan.objects.get(application=portfolio["M1"])
    assert loan_a.dpd == 0 and loan_m1.dpd > 90 and loan_m1.classification in ("substandard", "doubtful", "loss")
    result = book(_filters())
    assert result["active_loans"] == 2
    total = loan_a.outstanding_principal + loan_m1.outstanding_principal
    assert Decimal(result["balance"]) == total
    assert result["npl_ratio"] == round(float(loan_m1.outstanding_principal / total), 4)
    buckets = {b["bucket"]: b["n"] for b in result["by_bucket"]}
    assert buckets["M0"] == 1 and sum(buckets.values()) == 2 and buckets[loan_m1.bucket] == 1
    cohort = result["vintage"]["cohorts"][0]
    assert cohort["cohort"] == "2026-03" and cohort["loans"] == 2
    first_due = loan_m1.installments.order_by("n").first().due_date
    for point in cohort["points"]:
        horizon = _add_months(loan_m1.disbursed_on, point["mob"])
        if horizon > timezone.localdate():
            assert point["loans"] == 0 and point["share"] is None
        else:
            assert point["share"] == (0.5 if horizon >= first_due + dt.timedelta(days=31) else 0.0)


def _add_months(day, months):
    from analytics.selectors import _add_months as add

    return add(day, months)


def test_summary_runs_a_constant_number_of_queries(portfolio, org):
    from analytics.selectors import analytics_summary
    from casework import demo

    with CaptureQueriesContext(connection) as first:
        analytics_summary(_filters())
    owner = ApplicantFactory(username="more_owner")
    with travel(at(MON + dt.timedelta(days=4), 10)):
        from applications.services import enterprise_create
        from tests.factories import enterprise_payload

        for seed in (60, 61):
            ent = enterprise_create(owner=owner, **enterprise_payload(uscc_for("AB", seed=seed), seed=seed))
            demo._submit(demo._draft(owner, ent, "xinmiaodai", "200000", 6, "equal_installment"), owner)
    with CaptureQueriesContext(connection) as second:
        summary = analytics_summary(_filters())
    assert summary["funnel"]["total"][0]["n"] == 8
    assert len(second) == len(first)


def test_api_summary_for_staff_only_with_field_errors(portfolio, org):
    risk = client_for(org["demo_risk"])
    r = risk.get("/api/v1/analytics/summary/", {"date_from": "2026-03-01", "date_to": "2026-03-31"})
    assert r.status_code == 200
    body = r.json()
    assert {row["stage"]: row["n"] for row in body["funnel"]["total"]}["disbursed"] == 2
    assert set(body) >= {"funnel", "turnaround", "decisions", "portfolio", "models", "customer_voice", "marketing"}
    r = risk.get("/api/v1/analytics/summary/", {"date_from": "March"})
    assert r.status_code == 400 and "date_from" in r.json()["errors"]
    r = risk.get("/api/v1/analytics/summary/", {"product": "nope"})
    assert r.status_code == 400 and "product" in r.json()["errors"]
    assert client_for(ApplicantFactory(username="nosy")).get("/api/v1/analytics/summary/").status_code == 403
    assert client_for(None).get("/api/v1/analytics/summary/").status_code in (401, 403)


def test_pages_chart_table_and_csv(portfolio, org, client):
    client.force_login(org["demo_risk"])
    r = client.get("/staff/analytics/", {"date_from": "2026-03-01", "date_to": "2026-03-31"})
    assert r.status_code == 200
    html = r.content.decode()
    assert "vendor/chartjs/chart.umd.min.js" in html and 'id="chart-funnel"' in html and 'data-table="funnel"' in html
    assert "cdn" not in html.lower()
    # One section a page, the others a tab away; cells and legends in words, not codes.
    assert 'id="analytics-tabs"' in html and 'data-table="turnaround"' not in html
    r = client.get("/staff/analytics/turnaround/", {"date_from": "2026-03-01", "date_to": "2026-03-31"})
    assert r.status_code == 200 and 'data-table="turnaround"' in r.content.decode()
    assert client.get("/staff/analytics/nope/").status_code == 404
    decisions = re.sub(r"<[^>]+>", " ", client.get("/staff/analytics/decisions/").content.decode())  # the visible text
    assert "route_grade" not in decisions and "branch_approval" not in decisions
    portfolio_page = client.get("/staff/analytics/portfolio/").content.decode()
    assert not re.search(r">\d{5,}(\.\d+)?<", portfolio_page)  # amounts grouped
    r = client.get("/staff/analytics/csv/funnel.csv", {"date_from": "2026-03-01", "date_to": "2026-03-31"})
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = r.content.decode("utf-8-sig").splitlines()
    assert rows[1].endswith(",6,100.0") and rows[-1].split(",")[1] == "2"
    assert client.get("/staff/analytics/csv/nope.csv").status_code == 404
    client.force_login(org["demo_rm"])
    assert client.get("/staff/analytics/").status_code == 404  # RMs work their queues, not the analytics


def test_branch_approver_sees_only_their_branch(portfolio, org):
    from analytics.selectors import filters_parse
    from loanservice.models import Branch

    parsed = filters_parse({"branch": "BJ01"}, user=org["demo_branch_approver"])
    own = Branch.objects.get(pk=org["demo_branch_approver"].profile.branch_id).code
    assert parsed.filters.branch == own
    assert filters_parse({"branch": "BJ01"}, user=org["demo_risk"]).filters.branch == "BJ01"


def test_analytics_cells_show_whole_amounts_alike_small_or_large():
    """An amount kept with two decimals reads "0" and "400" beside "600,000" (not "0.00"); cents stay when there are
    any; an index keeps three decimals."""
    from analytics.views import cell_text

    assert cell_text("600000.00", "limit") == "600,000"
    assert cell_text("0.00", "limit") == "0"
    assert cell_text(Decimal("400.00"), "used") == "400"
    assert cell_text(Decimal("12.50"), "used") == Decimal("12.50")
    assert cell_text(66.67, "utilisation") == 66.67
    assert cell_text(0.1234, "psi") == "0.123"
