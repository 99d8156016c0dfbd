"""Policy what-if: replay a period's decided cases under a draft matrix or a score cut-off, with the later
performance of the cases whose route would change; the management command; activation afterwards."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.approvals_support import fast_passwords  # noqa: F401
from tests.conftest import borrower_sign_via_api, client_for
from tests.factories import ApplicantFactory, ApprovalsCaseFactory, PendingApprovalFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]
FAST = dict(product="xinmiaodai", amount="300000.00", term_months=12, grades="AB", tier="prime")


@pytest.fixture
def history(products, org):
    """Two fast-track approvals (one now a loan 45 days past due) and one branch approval."""
    from casework import lifecycle
    from postloan.models import Loan

    owner = ApplicantFactory(username="owner1")
    auto_loan = ApprovalsCaseFactory(applicant=owner, seed=1, **FAST, stage="submitted")
    auto_offer = ApprovalsCaseFactory(applicant=owner, seed=2, **FAST, stage="submitted")
    assert auto_loan.route == auto_offer.route == "auto"
    client = client_for(owner)
    contract = client.post(f"/api/v1/applications/{auto_loan.pk}/accept-offer/").json()["contract"]
    assert borrower_sign_via_api(client, contract).status_code == 200
    lifecycle.fast_track_complete(contract)  # the worker's step after the customer signs
    loan = Loan.objects.get(application=auto_loan)
    # Days past due are postloan's monitoring to compute; here the loan is as that job would leave it.
    Loan.objects.filter(pk=loan.pk).update(dpd=45, bucket="M2", classification="special_mention")
    manual = PendingApprovalFactory(applicant__username="owner2", seed=7)
    r = client_for(org["demo_branch_approver"]).post(f"/api/v1/applications/{manual.pk}/decide/", {"decision": "approve"},
                                                     format="json")
    assert r.status_code == 200
    return {"auto_loan": auto_loan, "auto_offer": auto_offer, "manual": manual, "loan": loan}


def _draft_auto_limit(org, limit: str):
    from approvals.services import authority_rule_save, matrix_version_draft_create

    draft = matrix_version_draft_create(by=org["demo_risk"], note=f"自动审批上限 {limit}")
    authority_rule_save(version=draft, by=org["demo_risk"], rule=draft.rules.get(route="auto"), max_amount=Decimal(limit))
    return draft


def test_replay_under_a_draft_counts_routes_rates_and_the_changed_cases_performance(history, org):
    from casework.whatif import policy_whatif

    today = timezone.localdate()
    draft = _draft_auto_limit(org, "200000")
    result = policy_whatif(date_from=today - dt.timedelta(days=1), date_to=today, version=draft)
    routes = {r["route"]: (r["actual"], r["replay"]) for r in result["routes"]}
    assert result["cases"] == 3
    assert routes["auto"] == (2, 0) and routes["branch"] == (1, 3)
    assert result["auto_share"] == {"actual": Decimal("0.6667"), "replay": Decimal("0.0000")}
    assert result["approval_rate"] == {"actual": Decimal("1.0000"), "replay": Decimal("1.0000")}
    changed = {c["id"]: c for c in result["changed"]}
    assert set(changed) == {history["auto_loan"].pk, history["auto_offer"].pk}
    assert changed[history["auto_loan"].pk]["loan"] == history["loan"].pk and changed[history["auto_loan"].pk]["dpd"] == 45
    assert changed[history["auto_offer"].pk]["loan"] is None
    assert result["changed_performance"] == {"count": 2, "with_loan": 1, "dpd_gt_0": 1, "dpd_gt_30": 1, "max_dpd": 45,
                                             "avg_dpd": Decimal("45.0")}

    # Under the active matrix nothing changes; a period without decisions is empty.
    from approvals.services import authority_matrix_active

    same = policy_whatif(date_from=today, date_to=today, version=authority_matrix_active())
    assert same["changed"] == [] and same["cases"] == 3
    assert policy_whatif(date_from=today - dt.timedelta(days=30), date_to=today - dt.timedelta(days=2),
                         version=draft)["cases"] == 0


def test_a_score_cut_off_declines_automatically_below_it(history, org):
    from approvals.services import authority_matrix_active
    from casework.whatif import policy_whatif

    today = timezone.localdate()
    points = sorted(a.scores.get(is_shadow=False).points for a in (history["auto_loan"], history["auto_offer"], history["manual"]))
    result = policy_whatif(date_from=today, date_to=today, version=authority_matrix_active(), cutoff_points=points[1])
    routes = {r["route"]: r["replay"] for r in result["routes"]}
    assert routes["auto_decline"] == 1
    assert result["approval_rate"]["replay"] == Decimal("0.6667")


def test_the_replay_runs_a_constant_number_of_queries(history, org):
    from casework.whatif import policy_whatif

    today = timezone.localdate()
    draft = _draft_auto_limit(org, "200000")
    with CaptureQueriesContext(connection) as three:
        policy_whatif(date_from=today, date_to=today, version=draft)
    ApprovalsCaseFactory(applicant=ApplicantFactory(username="owner3"), seed=3, **FAST, stage="submitted")
    with CaptureQueriesContext(connection) as four:
        assert policy_whatif(date_from=today, date_to=today, version=draft)["cases"] == 4
    assert len(four) == len(three)


def test_command_prints_the_replay_and_activates_on_request(history, org):
    from approvals.services import authority_matrix_active

    draft = _draft_auto_limit(org, "200000")
    out = StringIO()
    call_command("policy_whatif", "--matrix", str(draft.number), "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["version"] == draft.number and data["changed_performance"]["count"] == 2
    out = StringIO()
    call_command("policy_whatif", "--cutoff-points", "1", stdout=out)  # the newest draft by default
    assert f"matrix v{draft.number} (draft)" in out.getvalue() and "route changes: 2" in out.getvalue()
    call_command("policy_whatif", "--matrix", str(draft.number), "--activate", "--by", "demo_risk", stdout=StringIO())
    assert authority_matrix_active().number == draft.number


def test_risk_replays_on_the_page_and_activates_the_draft(client, history, org):
    from approvals.services import authority_matrix_active

    draft = _draft_auto_limit(org, "200000")
    client.force_login(org["demo_risk"])
    page = client.get("/staff/risk/whatif/", {"version": draft.number})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="whatif-changed"' in html and f"/staff/risk/whatif/activate/{draft.number}/" in html
    assert str(history["auto_loan"].pk) in html
    r = client.post(f"/staff/risk/whatif/activate/{draft.number}/", {"reason": "回测：自动化率下降可接受"})
    assert r.status_code == 302
    assert authority_matrix_active().number == draft.number
    r = client.post("/staff/risk/whatif/draft/", {"note": "下一版"})
    assert r.status_code == 302 and "version=" in r["Location"]
    client.force_login(org["demo_branch_approver"])
    assert client.get("/staff/risk/whatif/").status_code == 404
