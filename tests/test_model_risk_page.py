"""The model-risk page and API: drift states, back-test traffic lights and the PD term structure, in people's
words (no codes on screen), rates as percentages, for risk, admin and approvers only."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.conftest import client_for
from tests.factories import ApplicantFactory

pytestmark = pytest.mark.django_db

CODES = ("insufficient", "scorecard_pd", ">stable<", ">watch<", ">shift<", ">green<", ">red<", ">yellow<", ">book<",
         ">scorecard<", "None", "n/a")


def test_the_page_shows_the_three_parts_in_words(org, products, client):
    from tests.factories import FastTrackLoanFactory

    FastTrackLoanFactory(seed=11)
    client.force_login(org["demo_risk"])
    home = client.get("/staff/analytics/").content.decode()
    assert "/staff/analytics/model-risk/" in home  # linked from the analytics page
    r = client.get("/staff/analytics/model-risk/")
    assert r.status_code == 200
    html = r.content.decode()
    for part in ('id="drift"', 'id="backtest"', 'id="pd"', 'id="chart-drift"', 'id="chart-pd"', 'id="chart-backtest"',
                 'class="nav nav-tabs"', "vendor/chartjs/chart.umd.min.js"):
        assert part in html, part
    body = html.split('<script id="model-risk-charts"')[0]
    for code in CODES:
        assert code not in body, code
    # the expert card's calibration as percentages: B's 12-month PD is 1.50 %, E's 25.00 %
    assert "1.50%" in body and "25.00%" in body
    assert "数据不足" in body and "评分卡校准" in body
    assert not re.search(r">\s*0\.0\d{3,}\s*<", body)  # no raw fractions in the PD table


def test_an_approved_version_and_a_forward_looking_factor_show(org, client):
    from underwriting.models import ModelRiskPolicy
    from underwriting.services import pd_term_structure_approve, pd_term_structure_create

    today = timezone.localdate()
    curves = {g: [f"{min(1.0, p * m / 12):.6f}" for m in range(1, 25)]
              for g, p in {"A": 0.003, "B": 0.012, "C": 0.035, "D": 0.09, "E": 0.22}.items()}
    s = pd_term_structure_create(name="book", effective_from=today, as_of=today, curves=curves,
                                 basis={"A": "scorecard", "B": "book", "C": "book", "D": "book", "E": "scorecard"},
                                 by=org["demo_risk"])
    pd_term_structure_approve(structure=s, by=org["demo_admin"])
    ModelRiskPolicy.objects.create(effective_from=today - dt.timedelta(days=1), forward_looking_factor=Decimal("1.2"))
    client.force_login(org["demo_risk"])
    html = client.get("/staff/analytics/model-risk/").content.decode()
    assert f"v{s.version}" in html and "1.2000" in html and "账簿估计" in html
    api = client_for(org["demo_risk"]).get("/api/v1/analytics/model-risk/")
    assert api.status_code == 200
    pd = api.json()["pd"]
    b = next(g for g in pd["grades"] if g["grade"] == "B")
    assert pd["version"] == s.version and b["basis"] == "book"
    assert Decimal(b["pd_12m"]) > Decimal("0.012")  # the factor 1.2 raises the hazards
    assert set(api.json()) >= {"drift", "backtest", "pd"}


def test_who_may_see_it(org, client):
    client.force_login(org["demo_rm"])
    assert client.get("/staff/analytics/model-risk/").status_code == 404
    assert client_for(ApplicantFactory(username="nosy2")).get("/api/v1/analytics/model-risk/").status_code == 403
    assert client_for(org["demo_branch_approver"]).get("/api/v1/analytics/model-risk/", {"date_from": "x"}).status_code == 400
