"""Reads for underwriting: snapshots, the enterprise profile, models, questionnaires, the PSI report."""

from __future__ import annotations

import datetime as dt
import json

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from applications.models import LPR_TENORS, Enterprise, LoanApplication, LoanProduct
from loanservice import refcache
from loanservice.errors import ApplicationError
from loanservice.masking import mask_personal
from loanservice.models import AuditEvent
from loanservice.prepared import PreparedRead

from . import charts
from .expert_scorecard import expert_spec
from .features import PROFILE_FIELDS, derive_features
from .models import (
    CaseNote,
    Collateral,
    DataSnapshot,
    Guarantor,
    LoanPrimeRate,
    QuestionnaireQuestion,
    Score,
    ScorecardModel,
)
from .scorecard import DIMENSIONS
from .sources import SOURCE_LABELS, SOURCES


def lpr_on(tenor: str, on: dt.date) -> LoanPrimeRate:
    """The LPR of `tenor` last published on or before `on` (贷款市场报价利率, from the LPR table)."""
    if tenor not in dict(LPR_TENORS):
        raise ApplicationError(_("未知的LPR期限 %(t)s / Unknown LPR tenor %(t)s.") % {"t": tenor}, errors={"lpr_tenor": [tenor]})
    found = refcache.cached(("lpr", tenor, on), lambda: LoanPrimeRate.objects.filter(tenor=tenor, published_on__lte=on)
                            .order_by("-published_on").first())
    if found is None:
        label = dict(LPR_TENORS)[tenor]
        raise ApplicationError(
            _("%(d)s 及之前没有已公布的%(t)s，请运营人员在后台录入 / No %(t)s was published on or before %(d)s: operations "
              "must enter it in the admin.") % {"d": on.isoformat(), "t": label}, errors={"lpr": [on.isoformat()]})
    return found


def latest_snapshot(enterprise: Enterprise, source: str) -> DataSnapshot | None:
    return DataSnapshot.objects.filter(enterprise=enterprise, source=source).order_by("-as_of", "-fetched_at", "-id").first()


_OK_SNAPSHOTS = PreparedRead(lambda enterprise_id: DataSnapshot.objects.filter(enterprise_id=enterprise_id, status=DataSnapshot.OK)
                             .order_by("source", "-as_of", "-fetched_at", "-id"))


def latest_ok_snapshots(enterprise: Enterprise) -> dict[str, DataSnapshot | None]:
    """The newest successful snapshot per source (failed pulls are kept as gaps, never used as data). Every
    submission and scoring reads them: compiled once per process (loanservice.prepared)."""
    found: dict[str, DataSnapshot | None] = dict.fromkeys(SOURCES)
    for snap in _OK_SNAPSHOTS.all(enterprise.pk):
        if found.get(snap.source) is None:
            found[snap.source] = snap
    return found


def scorecard_champion() -> ScorecardModel:
    model = refcache.cached(("scorecard_champion",), lambda: ScorecardModel.objects.filter(is_active=True)
                            .order_by("-version").first())
    if model is None:  # a fresh database: the seeded expert table is the champion
        model = ScorecardModel.objects.create(name="expert-sme-v1", spec=expert_spec(), is_active=True,
                                              metrics={"kind": "expert"})
    return model


def scorecard_model(version: int | None = None) -> ScorecardModel | None:
    """The scorecard model of this version (None if there is none), or the champion when no version is named."""
    if version is None:
        return scorecard_champion()
    return ScorecardModel.objects.filter(version=version).first()


def scorecard_challenger() -> ScorecardModel | None:
    return refcache.cached(("scorecard_challenger",), lambda: ScorecardModel.objects.filter(
        is_challenger=True, is_active=False).order_by("-version").first())


def application_score_of(application: LoanApplication) -> Score | None:
    scores = getattr(application, "_prefetched_objects_cache", {}).get("scores")
    if scores is not None:
        return next((s for s in scores if not s.is_shadow), None)
    return Score.objects.filter(application=application, is_shadow=False).select_related("model").first()


def questionnaire_for(product: LoanProduct) -> list[QuestionnaireQuestion]:
    return list(QuestionnaireQuestion.objects.filter(Q(product=product) | Q(product__isnull=True)).order_by("order", "id"))


def _num(payload: dict | None, field: str) -> float | None:
    try:
        return float(payload[field]) if payload and payload.get(field) is not None else None
    except (TypeError, ValueError):
        return None


def _profile_charts(payloads: dict, features: dict, score: Score | None, history: list[DataSnapshot]) -> dict:
    tax, internal, social = payloads.get("tax"), payloads.get("internal"), payloads.get("social_security")
    prev, last = _("前12个月 prev. 12m"), _("近12个月 last 12m")
    out = {
        "revenue": charts.bar_pair(_("营业收入 Revenue"), (prev, _num(tax, "revenue_prev_12m")), (last, _num(tax, "revenue_12m"))),
        "inflow": charts.bar_pair(_("结算流入 Settlement inflow"), (prev, _num(internal, "settlement_inflow_prev_12m")),
                                  (last, _num(internal, "settlement_inflow_12m"))),
        "headcount": charts.bar_pair(_("参保人数 Insured headcount"), (_("12个月前 12m ago"), _num(social, "headcount_12m_ago")),
                                     (_("现在 now"), _num(social, "headcount")), unit="count"),
        "leverage": charts.meter(_("负债收入比 Debt to revenue"), features.get("leverage"),
                                 bands=[(0.5, charts.GOOD), (1.2, "#bf8700"), (3.0, charts.BAD)], maximum=2.0),
    }
    revenue_points = [(snap.as_of.isoformat(), float(snap.payload["revenue_12m"])) for snap in history
                      if snap.source == "tax" and snap.payload.get("revenue_12m") is not None]
    out["revenue_history"] = charts.sparkline(_("历次税务快照中的收入 Revenue across tax snapshots"), revenue_points)
    if score is not None:
        compiled = score.model.compiled()
        best: dict[str, float] = dict.fromkeys(DIMENSIONS, 0.0)
        for f in compiled.features:
            best[f.dimension] += f.best
        lang = "en" if (get_language() or "").startswith("en") else "zh"
        out["dimensions"] = charts.hbars(_("评分维度 Scorecard dimensions"),
                                         [(DIMENSIONS[d][lang], float(score.dimensions.get(d, 0)), best[d]) for d in DIMENSIONS])
    return out


def enterprise_profile(enterprise: Enterprise, *, score: Score | None = None) -> dict:
    """企业画像: derived features with labels, small charts, and the raw snapshots they came from.

    With a score, the profile shows exactly the snapshots that score used (and its gaps); without one,
    the newest successful snapshot per source."""
    snaps: dict[str, DataSnapshot | None] = dict.fromkeys(SOURCES)
    gaps: dict = {}
    if score is not None:
        for snap in score.snapshots.all():
            snaps[snap.source] = snap
        gaps = score.data_gaps or {s: {"code": "missing", "error": ""} for s in score.missing_sources}
    else:
        snaps = latest_ok_snapshots(enterprise)
        gaps = {s: {"code": "none_on_file", "error": ""} for s, snap in snaps.items() if snap is None}
    payloads = {s: (snap.payload if snap and snap.status == DataSnapshot.OK else None) for s, snap in snaps.items()}
    features = derive_features(payloads, as_of=timezone.localdate())
    rows = [{"feature": f, "label": zh, "label_en": en, "unit": unit, "value": features.get(f)} for f, zh, en, unit in PROFILE_FIELDS]
    history = list(DataSnapshot.objects.filter(enterprise=enterprise, status=DataSnapshot.OK, source="tax")
                   .order_by("-as_of", "-id")[:12])[::-1]
    raw = [{"source": s, "label": SOURCE_LABELS[s][0], "label_en": SOURCE_LABELS[s][1], "snapshot": snaps[s],
            "json": json.dumps(mask_personal(payloads[s]), ensure_ascii=False, indent=1) if payloads[s] is not None else "",
            "gap": gaps.get(s)} for s in SOURCES]
    return {"features": features, "rows": rows, "snapshots": snaps, "payloads": payloads, "gaps": gaps, "raw": raw,
            "charts": _profile_charts(payloads, features, score, history), "score": score}


def case_workspace(application: LoanApplication) -> dict:
    """What the RM's case page shows beyond the case API: collateral, guarantors, notes, visits, open requests."""


    collateral = list(Collateral.objects.filter(application=application).select_related("added_by"))
    routed = (AuditEvent.objects.filter(object_type="applications.loanapplication", object_id=str(application.pk),
                                        action="application.route").order_by("-id").first())
    return {
        "referrals": (routed.data or {}).get("referrals", []) if routed else [],
        "collateral": collateral,
        "collateral_value": sum((c.lendable_value for c in collateral), 0),
        "guarantors": list(Guarantor.objects.filter(application=application)),
        "notes": list(CaseNote.objects.filter(application=application).select_related("author")),
        "visits": list(application.visits.select_related("visited_by")),
        "info_requests": list(application.info_requests.prefetch_related("items__requirement", "items__document")),
        "checklist": list(application.product.checklist.all()),
    }


# ---------------------------------------------------------------- population stability (PSI)
def scorecard_recent_columns(model: ScorecardModel, *, since: dt.datetime | None = None,
                             until: dt.datetime | None = None) -> tuple[dict[str, list], int]:
    """Feature columns of the scores a model gave (as champion or in shadow) in a period."""
    qs = Score.objects.filter(model=model)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    names = [f["name"] for f in model.spec["features"]]
    columns: dict[str, list] = {n: [] for n in names}
    n = 0
    for features in qs.values_list("features", flat=True).iterator(chunk_size=2000):
        n += 1
        for name in names:
            columns[name].append((features or {}).get(name))
    return columns, n
