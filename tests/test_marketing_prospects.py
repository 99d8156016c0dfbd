"""Precision marketing: partner lists, settlement customers without a loan, scoring on the data the policy allows,
the RM's queue by expected value, contacts, invitations into the wizard, and the conversion shown in analytics."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import signing

from tests.factories import ApplicantFactory, uscc_for

pytestmark = pytest.mark.django_db


def other_rm():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="bj01_rm")


def _csv(rows: list[str], header: str = "uscc,name,contact_name,contact_phone,industry_code,annual_revenue,employees") -> bytes:
    return "\n".join([header, *rows]).encode("utf-8")


def _shanghai_usccs(count: int, start: int = 800000) -> list[str]:
    from underwriting.providers import make_uscc

    found, seed = [], start
    while len(found) < count:
        code = make_uscc(seed, tier="prime")
        if code[2:4] == "31":
            found.append(code)
        seed += 1
    return found


@pytest.fixture
def park_list(products, org):
    from marketing.services import prospect_list_import

    codes = _shanghai_usccs(3)
    content = _csv([f"{codes[0]},上海甲公司,王一,13900000001,C3399,8000000,40",
                    f"{codes[1]},上海乙公司,王二,13900000002,F5123,3000000,12",
                    f"{codes[2]},上海丙公司,,,,,",
                    "91310000XXXXXXXX00,坏代码公司,,,,,",
                    f"{codes[0]},重复的甲公司,,,,,"])
    return prospect_list_import(kind="industrial_park", partner_name="张江园区", file_name="park.csv", content=content,
                                by=org["demo_rm"])


def test_import_reports_bad_rows_by_row_and_field_and_skips_duplicates(park_list):
    assert (park_list.rows_total, park_list.rows_imported, park_list.rows_duplicate, park_list.rows_rejected) == (5, 3, 1, 1)
    assert park_list.errors and park_list.errors[0]["row"] == 5 and park_list.errors[0]["field"] == "uscc"


def test_import_refuses_a_file_without_the_required_columns(products, org):
    from loanservice.errors import ApplicationError
    from marketing.services import prospect_list_import

    with pytest.raises(ApplicationError) as exc:
        prospect_list_import(kind="industrial_park", partner_name="园区", file_name="x.csv", content=b"name\nfoo", by=org["demo_rm"])
    assert "file" in exc.value.errors
    with pytest.raises(ApplicationError) as exc:
        prospect_list_import(kind="settlement", partner_name="园区", file_name="x.csv", content=_csv([]), by=org["demo_rm"])
    assert "kind" in exc.value.errors


def test_prospects_are_scored_only_on_the_sources_the_policy_allows(park_list, org):
    from marketing.models import MarketingDataPolicy, Prospect

    allowed = set(MarketingDataPolicy.objects.filter(allowed=True).values_list("source", flat=True))
    assert allowed == {"internal", "registry", "judicial"}
    for p in Prospect.objects.filter(prospect_list=park_list):
        assert set(p.data_used["sources"]) <= allowed
        assert {"tax", "credit_bureau"} <= set(p.data_used["not_used"])
        assert p.grade in "ABCDE" and p.points is not None and p.scored_at is not None
        assert p.relationship_manager == org["demo_rm"]  # a Shanghai firm goes to the Shanghai branch's RM
        if p.prequalified and p.data_used["revenue_estimate"]:
            assert p.indicative_limit > 0 and p.indicative_limit % 10000 == 0
            assert p.indicative_limit <= p.product.max_amount
        elif p.prequalified:  # nothing to size a limit on (no declared revenue, no settlement inflow)
            assert p.indicative_limit == 0
        else:
            assert p.indicative_limit == 0 and p.expected_value == 0
    declared = Prospect.objects.get(prospect_list=park_list, name="上海甲公司")
    assert declared.data_used["revenue_basis"] == "declared"


def test_queue_orders_by_expected_value_and_shows_only_my_prospects(park_list, org, client):
    from marketing.models import Prospect
    from marketing.selectors import prospect_queue

    mine = list(prospect_queue(org["demo_rm"], include_closed=True))
    values = [p.expected_value for p in mine]
    assert values == sorted(values, reverse=True) and len(mine) == 3
    assert list(prospect_queue(other_rm(), include_closed=True)) == []
    client.force_login(org["demo_rm"])
    assert client.get("/staff/marketing/").status_code == 200
    first = Prospect.objects.filter(prospect_list=park_list).first()
    assert client.get(f"/staff/marketing/prospects/{first.pk}/").status_code == 200
    client.force_login(other_rm())
    assert client.get(f"/staff/marketing/prospects/{first.pk}/").status_code == 404


def test_queue_page_runs_a_constant_number_of_queries(park_list, org, client, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from marketing.services import prospect_list_import

    client.force_login(org["demo_rm"])
    with CaptureQueriesContext(connection) as before:
        client.get("/staff/marketing/")
    prospect_list_import(kind="trade_association", partner_name="协会", file_name="a.csv",
                         content=_csv([f"{c},协会企业{i},,,,," for i, c in enumerate(_shanghai_usccs(4, start=810000))]),
                         by=org["demo_rm"])
    with CaptureQueriesContext(connection) as after:
        client.get("/staff/marketing/")
    assert len(after) == len(before)


def test_contact_outcomes_move_the_status_and_only_the_rm_records_them(park_list, org):
    from loanservice.errors import ApplicationError
    from loanservice.models import AuditEvent
    from marketing.models import Prospect
    from marketing.services import contact_record

    prospect = next(p for p in Prospect.objects.filter(prospect_list=park_list, prequalified=True) if p.data_used["lead"])
    contact_record(prospect=prospect, by=org["demo_rm"], channel="phone", outcome="no_answer")
    prospect.refresh_from_db()
    assert prospect.status == "contacted"
    contact_record(prospect=prospect, by=org["demo_rm"], channel="visit", outcome="interested", next_action_on="2026-12-01")
    prospect.refresh_from_db()
    assert prospect.status == "interested" and prospect.contacts.count() == 2
    assert AuditEvent.objects.filter(action="prospect.contact", object_id=str(prospect.pk)).count() == 2
    with pytest.raises(ApplicationError) as exc:
        contact_record(prospect=prospect, by=org["demo_rm"], channel="pigeon", outcome="interested")
    assert "channel" in exc.value.errors
    with pytest.raises(ApplicationError):
        contact_record(prospect=prospect, by=other_rm(), channel="phone", outcome="interested")


def test_invitation_opens_the_wizard_prefilled_and_the_application_converts(park_list, org, client):
    from analytics.selectors import filters_parse, marketing_conversion
    from applications.models import LoanApplication
    from marketing.models import Prospect
    from marketing.selectors import conversion_summary
    from marketing.services import INVITE_SALT, invitation_create
    from tests.factories import enterprise_payload

    prospect = Prospect.objects.filter(prospect_list=park_list, prequalified=True).order_by("-expected_value").first()
    url = invitation_create(prospect=prospect, by=org["demo_rm"])
    assert url.startswith("/portal/apply/xinmiaodai/?invite=")
    prospect.refresh_from_db()
    assert prospect.status == "invited" and prospect.invited_at is not None
    owner = ApplicantFactory(username="invited_owner")
    client.force_login(owner)
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert prospect.uscc in html and prospect.name in html
    # The applicant completes the enterprise step and the loan request; the case carries the invitation channel.
    data = enterprise_payload(prospect.uscc, seed=5, name=prospect.name)
    r = client.post("/portal/apply/xinmiaodai/", {**data, "legal_form": "llc"})
    assert r.status_code == 302, r.content.decode()[:500]
    r = client.post(r["Location"], {"amount": "200000.00", "term_months": 6, "repayment_method": "equal_installment",
                                    "purpose": "备货"})
    assert r.status_code == 302
    application = LoanApplication.objects.get(applicant=owner)
    assert application.channel == "invite" and application.enterprise.uscc == prospect.uscc
    totals = conversion_summary()["total"]
    assert (totals["invited"], totals["applied"], totals["disbursed"]) == (1, 1, 0)
    assert marketing_conversion(filters_parse({}).filters)["total"] == totals  # the analytics section reads the same figures
    # A tampered link prefills nothing.
    token = url.split("invite=")[1]
    assert signing.loads(token, salt=INVITE_SALT)["uscc"] == prospect.uscc
    other = ApplicantFactory(username="other_owner")
    client.force_login(other)
    page = client.get(f"/portal/apply/xinmiaodai/?invite={token[:-2]}xx")
    assert page.status_code == 200 and prospect.uscc not in page.content.decode()


def test_settlement_customers_without_a_loan_become_prospects(products, org):
    from loanservice.errors import ApplicationError
    from marketing.models import MarketingDataPolicy, Prospect
    from marketing.services import prospects_derive_from_settlement
    from underwriting.providers import SandboxProvider, make_uscc

    today = __import__("django.utils.timezone", fromlist=["localdate"]).localdate()
    roster = [{"uscc": make_uscc(820000 + i), "name": f"结算客户{i}"} for i in range(12)]
    inflow = {r["uscc"]: Decimal(SandboxProvider().fetch("internal", r["uscc"], as_of=today)["settlement_inflow_12m"]) for r in roster}
    plist = prospects_derive_from_settlement(by=org["demo_risk"], candidates=roster)
    made = set(Prospect.objects.filter(prospect_list=plist).values_list("uscc", flat=True))
    assert made == {u for u, v in inflow.items() if v > 0}
    assert all(p.source_kind == "settlement" for p in Prospect.objects.filter(prospect_list=plist))
    # Run again: nobody twice.
    again = prospects_derive_from_settlement(by=org["demo_risk"], candidates=roster)
    assert again.rows_imported == 0 and again.rows_duplicate == len(made)
    MarketingDataPolicy.objects.filter(source="internal").update(allowed=False)
    with pytest.raises(ApplicationError) as exc:
        prospects_derive_from_settlement(by=org["demo_risk"], candidates=roster)
    assert "source" in exc.value.errors


def test_enterprises_with_a_loan_are_not_settlement_prospects(products, org):
    from applications.models import Enterprise
    from marketing.models import Prospect
    from marketing.services import prospects_derive_from_settlement
    from tests.factories import enterprise_payload

    owner = ApplicantFactory(username="known_owner")
    from applications.services import enterprise_create

    ent = enterprise_create(owner=owner, **enterprise_payload(uscc_for("AB", seed=91), seed=91))
    plist = prospects_derive_from_settlement(by=org["demo_risk"])
    assert plist.rows_total == Enterprise.objects.count()
    assert Prospect.objects.filter(uscc=ent.uscc).exists() == (plist.rows_imported == 1)


# ---------------------------------------------------------------- a score calibrated for what marketing may see (#21)
def test_an_unseen_feature_scores_the_development_samples_average_not_the_missing_points():
    from underwriting.scorecard import score_one, spec_unseen_at_average

    spec = {"format": 1, "name": "t", "base_points": 500,
            "features": [{"name": "bureau", "type": "numeric", "dimension": "credit_standing", "label": {"zh": "征信", "en": "bureau"},
                          "reason_code": "BUREAU", "reason": {"zh": "征信", "en": "bureau"},
                          "bins": [{"upper": 1.0, "points": 40}, {"upper": None, "points": -20}], "missing_points": -30}],
            "grades": [{"grade": "A", "min_points": 530, "pd": "0.01"}, {"grade": "B", "min_points": None, "pd": "0.05"}]}
    development = {"features": {"bureau": {"labels": ["[-inf, 1)", "[1, inf)", "missing"], "counts": [300, 100, 0]}}}
    assert score_one(spec, {}).points == 470  # an applicant who withheld it
    weighted = spec_unseen_at_average(spec, development, ["bureau"])
    assert score_one(weighted, {}).points == 500 + round((300 * 40 + 100 * -20) / 400)  # 525
    assert score_one(spec_unseen_at_average(spec, None, ["bureau"]), {}).points == 510  # the median of its bins' points
    assert spec["features"][0]["missing_points"] == -30  # the champion's spec is not changed
    assert score_one(weighted, {"bureau": 0.5}).points == 540  # a feature that is seen scores as before


def test_prospects_are_not_all_grade_e_and_their_reasons_are_what_marketing_saw(park_list, org):
    from marketing.models import Prospect

    prospects = list(Prospect.objects.filter(prospect_list=park_list))
    assert {p.grade for p in prospects} != {"E"}
    for p in prospects:
        unseen = set(p.data_used["unseen"])
        assert {"tax_grade", "overdue_count_24m"} <= unseen  # tax and bureau are not marketing's to read
        assert all(r["feature"] not in unseen for r in p.data_used["reasons"])


def test_a_prospect_worth_less_than_nothing_is_not_a_lead(park_list, org, client):
    from marketing.models import Prospect

    for p in Prospect.objects.filter(prospect_list=park_list):
        assert p.data_used["lead"] == bool(p.prequalified and p.expected_value >= 0)
        if not p.data_used["lead"]:
            assert p.status == Prospect.Status.DISQUALIFIED
    worthless = Prospect.objects.filter(prospect_list=park_list, prequalified=True).first()
    Prospect.objects.filter(pk=worthless.pk).update(expected_value=Decimal("-100.00"),
                                                    data_used={**worthless.data_used, "lead": False})
    client.force_login(org["demo_rm"])
    html = client.get(f"/staff/marketing/prospects/{worthless.pk}/").content.decode()
    assert 'id="not-a-lead"' in html and 'id="score-reasons"' in html or 'id="not-a-lead"' in html
