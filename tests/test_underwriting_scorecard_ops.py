"""Scorecard operations through Django: training with --save/--json on the German credit data, activation
of the champion in admin, the challenger scoring in shadow, the PSI report, and batch scoring that agrees
exactly with score_one."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def german(german_credit_csv):
    return german_credit_csv


def test_train_scorecard_saves_an_inactive_version_with_its_development_sample(german):
    from underwriting.models import ScorecardModel
    from underwriting.selectors import scorecard_champion

    champion = scorecard_champion()
    text = run("train_scorecard", "--csv", str(german), "--target", "creditability", "--bad", "bad", "--folds", "5",
               "--save", "--json")
    summary = json.loads(text.strip().splitlines()[-1])
    assert summary["auc"] >= 0.77 and summary["gini"] == pytest.approx(2 * summary["auc"] - 1)
    assert 0.3 < summary["ks"] < 0.7 and len(summary["folds"]) == 5
    model = ScorecardModel.objects.get(version=summary["saved_version"])
    assert not model.is_active and not model.is_challenger and scorecard_champion().pk == champion.pk
    assert model.metrics["auc"] == summary["auc"] and [f["name"] for f in model.spec["features"]] == summary["features"]
    dev = model.development
    assert dev["n"] == 1000 and dev["sample"] == "german_credit.csv" and set(dev["features"]) == set(summary["features"])
    assert all(sum(f["counts"]) == 1000 for f in dev["features"].values()) and sum(dev["score"]["counts"]) == 1000

    with pytest.raises(CommandError):
        run("train_scorecard", "--csv", str(german), "--target", "no_such_column", "--bad", "bad")


def test_batch_scoring_agrees_exactly_with_score_one_and_resumes(german, tmp_path):
    import pandas as pd

    from underwriting.scorecard import score_one
    from underwriting.services import scorecard_model_create
    from underwriting.training import train_scorecard

    df = pd.read_csv(german)
    result = train_scorecard(df, target="creditability", bad_value="bad", folds=2, seed=1, name="german-batch")
    model = scorecard_model_create(name="german-batch", spec=result.spec, metrics=result.metrics)
    features = df.drop(columns=["creditability"])
    features.loc[::7, "age_in_years"] = np.nan  # missing values take the missing points
    features.loc[::11, "purpose"] = np.nan
    source = tmp_path / "features.csv"
    features.assign(loan_id=[f"L{i:04d}" for i in range(len(df))]).to_csv(source, index=False)
    out = tmp_path / "scores.csv"

    text = run("score_batch", "--csv", str(source), "--out", str(out), "--model", str(model.version), "--id", "loan_id",
               "--chunk", "300", "--verify")
    assert "1,000 new rows" in text and "verified" in text
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 1000 and rows[0]["loan_id"] == "L0000" and rows[-1]["row"] == "999"
    records = pd.read_csv(source, dtype={f["name"]: (float if f["type"] == "numeric" else str) for f in model.spec["features"]})
    for i in (0, 7, 11, 500, 999):
        expected = score_one(model.spec, records.iloc[i].to_dict())
        assert (int(rows[i]["points"]), rows[i]["grade"]) == (expected.points, expected.grade)

    # interrupted after 400 rows: a second run scores only the rest
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(lines[:401]), encoding="utf-8")
    text = run("score_batch", "--csv", str(source), "--out", str(out), "--model", str(model.version), "--id", "loan_id",
               "--chunk", "300")
    assert "resuming after 400 rows" in text and "600 new rows" in text
    assert out.read_text(encoding="utf-8").splitlines(keepends=True) == lines

    with pytest.raises(CommandError):
        run("score_batch", "--csv", str(tmp_path / "none.csv"), "--out", str(out))
    with pytest.raises(CommandError, match=f"no scorecard model version {model.version + 1}"):
        run("score_batch", "--csv", str(source), "--out", str(out), "--model", str(model.version + 1))


@pytest.fixture
def scored(products, org, django_capture_on_commit_callbacks):
    """Two applications scored by the champion through the real submission path."""
    from tests.conftest import client_for, draft_via_api
    from tests.factories import ApplicantFactory, uscc_for

    pks = []
    for seed in (61, 62):
        client = client_for(ApplicantFactory(username=f"ops{seed}"))
        pk = draft_via_api(client, uscc=uscc_for("ABC", seed=seed, tier="good"), seed=seed, product="secured-operating",
                           amount="1500000.00", term=24, method="equal_principal")
        with django_capture_on_commit_callbacks(execute=True):
            client.post(f"/api/v1/applications/{pk}/submit/")
        pks.append(pk)
    return pks


def _expert_variant(shift: int) -> dict:
    from underwriting.expert_scorecard import expert_spec

    spec = expert_spec()
    spec["name"] = f"expert-shifted-{shift}"
    spec["base_points"] += shift
    return spec


def test_activation_in_admin_and_the_challenger_in_shadow(scored, org, products, django_capture_on_commit_callbacks):
    from django.test import Client

    from loanservice.models import AuditEvent
    from tests.conftest import client_for, draft_via_api
    from tests.factories import ApplicantFactory, uscc_for
    from underwriting.models import Score, ScorecardModel
    from underwriting.services import scorecard_model_create

    first = Score.objects.get(application_id=scored[0], is_shadow=False)
    expert = first.model
    challenger = scorecard_model_create(name="lenient", spec=_expert_variant(60))
    champion = scorecard_model_create(name="strict", spec=_expert_variant(-40))
    admin = Client()
    admin.force_login(org["demo_admin"])
    url = "/admin/underwriting/scorecardmodel/"
    assert admin.post(url, {"action": "make_champion", "_selected_action": [champion.pk]}).status_code == 302
    assert admin.post(url, {"action": "make_challenger", "_selected_action": [challenger.pk]}).status_code == 302
    assert admin.post(url, {"action": "make_challenger", "_selected_action": [champion.pk]}).status_code == 302  # refused
    assert list(ScorecardModel.objects.filter(is_active=True)) == [champion]
    assert list(ScorecardModel.objects.filter(is_challenger=True)) == [challenger]
    assert AuditEvent.objects.filter(action="scorecard.activate", object_id=str(champion.pk), actor=org["demo_admin"]).exists()

    client = client_for(ApplicantFactory(username="ops63"))
    pk = draft_via_api(client, uscc=uscc_for("ABC", seed=63, tier="good"), seed=63, product="secured-operating",
                       amount="1500000.00", term=24, method="equal_principal")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/v1/applications/{pk}/submit/")
    decision = Score.objects.get(application_id=pk, is_shadow=False)
    shadow = Score.objects.get(application_id=pk, is_shadow=True)
    assert decision.model == champion and shadow.model == challenger
    assert shadow.points - decision.points == 100 and shadow.features == decision.features
    assert shadow.recommended_limit is None and decision.recommended_limit is not None
    assert client.get(f"/api/v1/applications/{pk}/").json()["score"]["points"] == decision.points  # the shadow is never shown
    assert Score.objects.get(application_id=scored[0], is_shadow=False).model == expert  # earlier decisions stand


def test_psi_report_against_the_stored_development_sample(scored):
    from underwriting.models import Score
    from underwriting.scorecard import psi_report
    from underwriting.selectors import scorecard_champion, scorecard_recent_columns

    with pytest.raises(CommandError):
        run("scorecard_psi")  # the expert card has no development sample yet
    with pytest.raises(CommandError, match="no scorecard model version 999"):
        run("scorecard_psi", "--model", "999")
    text = run("scorecard_psi", "--baseline-sandbox", "200", "--days", "30", "--json")
    report = json.loads(text.strip().splitlines()[-1])
    champion = scorecard_champion()
    assert report["model"] == champion.version and report["n_dev"] == 200 and report["n_recent"] == 2
    assert set(report["features"]) == {f["name"] for f in champion.spec["features"]}
    assert set(report["flags"]) >= {"score", "grade"} and "years_in_business" in text

    # the stored summary gives the same PSI as comparing the raw samples
    from underwriting.management.commands.scorecard_psi import sandbox_columns

    recent, n = scorecard_recent_columns(champion)
    assert n == Score.objects.filter(model=champion).count() == 2
    from django.utils import timezone

    raw = psi_report(champion.spec, sandbox_columns(200, as_of=timezone.localdate()), recent)
    assert report["score"] == pytest.approx(raw["score"])
    for name, value in raw["features"].items():
        assert report["features"][name] == pytest.approx(value)
