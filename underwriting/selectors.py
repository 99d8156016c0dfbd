"""Reads for underwriting: snapshots, the enterprise profile, models, questionnaires."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from applications.models import Enterprise, LoanApplication, LoanProduct

from .expert_scorecard import expert_spec
from .features import PROFILE_FIELDS, derive_features
from .models import DataSnapshot, QuestionnaireQuestion, Score, ScorecardModel, SiteVisit
from .sources import SOURCES


def latest_snapshot(enterprise: Enterprise, source: str) -> DataSnapshot | None:
    return DataSnapshot.objects.filter(enterprise=enterprise, source=source).order_by("-as_of", "-fetched_at", "-id").first()


def latest_snapshots(enterprise: Enterprise) -> dict[str, DataSnapshot | None]:
    found: dict[str, DataSnapshot | None] = dict.fromkeys(SOURCES)
    for snap in DataSnapshot.objects.filter(enterprise=enterprise).order_by("source", "-as_of", "-fetched_at", "-id"):
        if found.get(snap.source) is None:
            found[snap.source] = snap
    return found


def scorecard_champion() -> ScorecardModel:
    model = ScorecardModel.objects.filter(is_active=True).order_by("-version").first()
    if model is None:  # a fresh database: the seeded expert table is the champion
        model = ScorecardModel.objects.create(name="expert-sme-v1", spec=expert_spec(), is_active=True,
                                              metrics={"kind": "expert"})
    return model


def scorecard_challenger() -> ScorecardModel | None:
    return ScorecardModel.objects.filter(is_challenger=True, is_active=False).order_by("-version").first()


def application_score_of(application: LoanApplication) -> Score | None:
    scores = getattr(application, "_prefetched_objects_cache", {}).get("scores")
    if scores is not None:
        return next((s for s in scores if not s.is_shadow), None)
    return Score.objects.filter(application=application, is_shadow=False).select_related("model").first()


def questionnaire_for(product: LoanProduct) -> list[QuestionnaireQuestion]:
    return list(QuestionnaireQuestion.objects.filter(Q(product=product) | Q(product__isnull=True)).order_by("order", "id"))


def last_visit(application: LoanApplication) -> SiteVisit | None:
    return application.visits.order_by("-visited_at").first()


def enterprise_profile(enterprise: Enterprise) -> dict:
    """企业画像: derived features with labels, and the raw snapshots they came from."""
    snaps = latest_snapshots(enterprise)
    payloads = {s: (snap.payload if snap and snap.status == DataSnapshot.OK else None) for s, snap in snaps.items()}
    features = derive_features(payloads, as_of=timezone.localdate())
    rows = [{"feature": f, "label": zh, "label_en": en, "unit": unit, "value": features.get(f)} for f, zh, en, unit in PROFILE_FIELDS]
    return {"features": features, "rows": rows, "snapshots": snaps, "payloads": payloads}
