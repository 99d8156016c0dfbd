"""Underwriting services: data pulls and pushes, scoring, limit and price, site visits."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import ROUND_DOWN, Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from applications.models import Enterprise, LoanApplication
from loanservice.audit import audit_record
from loanservice.errors import ApplicationError, Conflict

from . import providers as provider_lib
from . import scorecard
from .features import derive_features
from .models import DataSnapshot, DataSourceConfig, PricingPolicy, QuestionnaireQuestion, Score, ScorecardModel, SiteVisit
from .selectors import latest_snapshot, questionnaire_for, scorecard_champion, scorecard_challenger
from .sources import SOURCES, validate_payload

log = logging.getLogger(__name__)
FAST_TRACK_MAX = Decimal("1000000")


def _hints(enterprise: Enterprise) -> dict:
    return {
        "legal_rep_id_number": enterprise.legal_rep_id_number,
        "founded_on": enterprise.founded_on.isoformat(),
        "industry_code": enterprise.industry_code,
        "employees": enterprise.employees,
        "annual_revenue": str(enterprise.annual_revenue),
    }


def source_config(source: str) -> DataSourceConfig:
    config = DataSourceConfig.objects.filter(source=source).first()
    return config or DataSourceConfig(source=source)


@transaction.atomic
def snapshot_push(*, enterprise: Enterprise, source: str, as_of, payload, by, ip: str | None = None) -> DataSnapshot:
    """An integration or risk pushes a snapshot in the source's normalised schema (400 naming the field)."""
    if source not in SOURCES:
        raise ApplicationError(_("未知数据源 / Unknown data source."), errors={"source": [_("可选：%(s)s / One of: %(s)s") % {"s": ", ".join(SOURCES)}]})
    if isinstance(as_of, str):
        try:
            as_of = dt.date.fromisoformat(as_of)
        except ValueError:
            as_of = None
    if not isinstance(as_of, dt.date):
        raise ApplicationError(_("数据日期无效 / Invalid as_of date."), errors={"as_of": [_("请使用 YYYY-MM-DD 格式 / Use YYYY-MM-DD.")]})
    if as_of > timezone.localdate():
        raise ApplicationError(_("数据日期不能晚于今天 / as_of cannot be in the future."), errors={"as_of": [_("不能晚于今天 / Not in the future.")]})
    if not isinstance(payload, dict):
        raise ApplicationError(_("数据格式无效 / The payload must be an object."), errors={"payload": [_("须为 JSON 对象 / Must be a JSON object.")]})
    clean, errors = validate_payload(source, payload)
    if errors:
        raise ApplicationError(_("数据不符合该数据源的格式 / The payload does not match the source's schema."),
                               errors={f"payload.{field}": msgs for field, msgs in errors.items()})
    snap = DataSnapshot.objects.create(enterprise=enterprise, source=source, as_of=as_of, provider="push", payload=clean)
    audit_record(actor=by, action="data.push", obj=enterprise, ip=ip, data={"source": source, "snapshot": snap.pk, "as_of": as_of.isoformat()})
    return snap


_BREAKERS: dict[str, provider_lib.CircuitBreaker] = {}


def _provider_for(config: DataSourceConfig):
    if config.provider == "http":
        return provider_lib.HttpProvider(config.base_url, timeout=float(config.timeout_seconds), retries=config.retries,
                                         breaker=_BREAKERS.setdefault(config.source, provider_lib.CircuitBreaker()))
    return provider_lib.SandboxProvider()


def snapshot_pull(*, enterprise: Enterprise, source: str, application: LoanApplication | None, by,
                  as_of: dt.date | None = None) -> DataSnapshot:
    """Ask the configured provider now. A failure is recorded as a failed snapshot (a named gap), never raised."""
    config = source_config(source)
    as_of = as_of or timezone.localdate()
    if config.provider == "push" or not config.is_active:
        snap = DataSnapshot.objects.create(enterprise=enterprise, source=source, as_of=as_of, provider=config.provider,
                                           status=DataSnapshot.FAILED, application=application,
                                           error="no pushed snapshot within the freshness window")
    else:
        try:
            payload = _provider_for(config).fetch(source, enterprise.uscc, as_of=as_of, hints=_hints(enterprise))
            snap = DataSnapshot.objects.create(enterprise=enterprise, source=source, as_of=as_of, provider=config.provider,
                                               payload=payload, application=application)
        except provider_lib.ProviderError as exc:
            log.warning("data source %s failed for %s: %s", source, enterprise.uscc, exc)
            snap = DataSnapshot.objects.create(enterprise=enterprise, source=source, as_of=as_of, provider=config.provider,
                                               status=DataSnapshot.FAILED, error=str(exc)[:300], application=application)
    audit_record(actor=by, action="data.pull", obj=enterprise,
                 data={"source": source, "snapshot": snap.pk, "status": snap.status, "application": getattr(application, "pk", None)})
    return snap


def snapshots_ensure(*, application: LoanApplication, by, sources: list[str] | None = None) -> dict[str, dict | None]:
    """The payload per consented source: a fresh snapshot as it is, otherwise pulled now. None = a gap."""
    consented = set(application.consents.values_list("source", flat=True))
    result: dict[str, dict | None] = {}
    today = timezone.localdate()
    for source in sources or SOURCES:
        if source not in consented:
            result[source] = None
            continue
        config = source_config(source)
        snap = latest_snapshot(application.enterprise, source)
        if snap is None or (today - snap.as_of).days > config.freshness_days:
            snap = snapshot_pull(enterprise=application.enterprise, source=source, application=application, by=by)
        result[source] = snap.payload if snap.status == DataSnapshot.OK else None
    return result


# ---------------------------------------------------------------- limit, price, score
def pricing_policy(on: dt.date | None = None) -> PricingPolicy:
    on = on or timezone.localdate()
    policy = PricingPolicy.objects.filter(effective_on__lte=on).order_by("-effective_on").first()
    if policy is None:
        raise ApplicationError(_("未配置定价政策 / No pricing policy is configured."))
    return policy


def rate_recommend(*, grade: str, product, policy: PricingPolicy) -> Decimal:
    spread = Decimal(str(policy.spreads.get(grade, policy.spreads.get("E", "0.06"))))
    rate = policy.lpr_1y + spread
    return min(max(rate, product.rate_floor), product.rate_cap).quantize(Decimal("0.000001"))


def limit_recommend(*, application: LoanApplication, payloads: dict, policy: PricingPolicy,
                    collateral_value: Decimal = Decimal("0")) -> Decimal:
    """Product maximum, capped by revenue and tax paid, less existing debt; collateral can lift it."""
    tax = payloads.get("tax") or {}
    bureau = payloads.get("credit_bureau") or {}
    revenue = Decimal(tax.get("revenue_12m", application.enterprise.annual_revenue))
    tax_paid = Decimal(tax.get("tax_paid_12m", "0"))
    debt = Decimal(bureau.get("outstanding_debt", "0"))
    capacity = min(revenue * policy.revenue_share, tax_paid * policy.tax_multiple if tax else revenue * policy.revenue_share)
    capacity = max(capacity - debt * Decimal("0.5"), Decimal("0"))
    capacity = max(capacity, collateral_value * policy.collateral_ltv)
    limit = min(application.product.max_amount, capacity)
    return (limit / 1000).to_integral_value(rounding=ROUND_DOWN) * 1000


def _score_with(model: ScorecardModel, application, features, payloads, missing, *, shadow: bool, policy) -> Score:
    # A version's spec never changes, so its compiled form is cached by version.
    result = scorecard.score_one(scorecard.compile_spec(model.spec, key=("scorecard", model.version)), features)
    score, _created = Score.objects.get_or_create(
        application=application, model=model,
        defaults=dict(
            is_shadow=shadow, points=result.points, grade=result.grade, pd=result.pd, dimensions=result.dimensions,
            reasons=[{"code": r.code, "feature": r.feature, "points_lost": r.points_lost, "message": r.text_zh,
                      "message_en": r.text_en} for r in result.reasons],
            features=features, missing_sources=missing,
            recommended_limit=None if shadow else limit_recommend(application=application, payloads=payloads, policy=policy),
            recommended_rate=None if shadow else rate_recommend(grade=result.grade, product=application.product, policy=policy),
        ),
    )
    return score


def application_score(*, application: LoanApplication, by=None) -> Score:
    """Score with the champion (and the challenger in shadow). Idempotent: a second run returns the same score."""
    existing = Score.objects.filter(application=application, is_shadow=False).select_related("model").first()
    if existing:
        return existing
    payloads = snapshots_ensure(application=application, by=by)
    missing = [s for s, p in payloads.items() if p is None]
    features = derive_features(payloads, as_of=timezone.localdate())
    policy = pricing_policy()
    champion = scorecard_champion()
    try:
        with transaction.atomic():
            score = _score_with(champion, application, features, payloads, missing, shadow=False, policy=policy)
    except IntegrityError:  # a concurrent run scored first
        return Score.objects.get(application=application, model=champion)
    snaps = [latest_snapshot(application.enterprise, s) for s in SOURCES]
    score.snapshots.set([s for s in snaps if s is not None])
    challenger = scorecard_challenger()
    if challenger and challenger.pk != champion.pk:
        try:
            with transaction.atomic():
                _score_with(challenger, application, features, payloads, missing, shadow=True, policy=policy)
        except Exception:  # the shadow must never disturb the decision
            log.exception("challenger scoring failed for application %s", application.pk)
    audit_record(actor=by, action="application.score", obj=application,
                 data={"model": champion.version, "grade": score.grade, "points": score.points, "missing": missing})
    return score


def visit_waivable(*, application: LoanApplication, score: Score | None) -> bool:
    """Visits are waived for the fast track and for grade A under 1,000,000 (DESIGN.md)."""
    if score is None:
        return False
    return (application.product.fast_track and application.route == "auto") or (
        score.grade == "A" and application.amount < FAST_TRACK_MAX
    )


def _answers_validate(questions: list[QuestionnaireQuestion], answers: dict) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    known = {q.code for q in questions}
    for code in answers:
        if code not in known:
            errors[f"answers.{code}"] = [_("问卷中没有此问题 / Not a question of this questionnaire.")]
    for q in questions:
        value = answers.get(q.code)
        if value in (None, ""):
            if q.required:
                errors[f"answers.{q.code}"] = [_("此题必答 / This question must be answered.")]
            continue
        if q.qtype == "yes_no" and not isinstance(value, bool):
            errors[f"answers.{q.code}"] = [_("请回答是或否 / Answer yes or no.")]
        elif q.qtype == "number":
            try:
                Decimal(str(value))
            except Exception:
                errors[f"answers.{q.code}"] = [_("请填写数字 / Enter a number.")]
        elif q.qtype == "choice" and value not in q.choices:
            errors[f"answers.{q.code}"] = [_("请从选项中选择 / Choose one of the options.")]
    return errors


@transaction.atomic
def site_visit_record(*, application: LoanApplication, by, mode: str, notes: str = "", answers: dict | None = None) -> SiteVisit:
    application = LoanApplication.objects.select_for_update().get(pk=application.pk)
    if application.status != LoanApplication.Status.UNDER_REVIEW:
        raise Conflict(_("只有审查中的申请可以记录走访 / Visits are recorded while the case is under review."), state=application.status)
    if mode not in dict(SiteVisit.MODES):
        raise ApplicationError(_("走访方式无效 / Invalid visit mode."), errors={"mode": [_("可选：onsite, video, waived")]})
    answers = answers or {}
    if mode == "waived":
        score = Score.objects.filter(application=application, is_shadow=False).first()
        if not visit_waivable(application=application, score=score):
            raise ApplicationError(_("该案件风险需要现场或视频走访，不能免于走访 / This case needs an on-site or video visit; it cannot be waived."),
                                   errors={"mode": [_("不能免于走访 / A visit cannot be waived here.")]})
    else:
        errors = _answers_validate(questionnaire_for(application.product), answers)
        if not notes.strip():
            errors["notes"] = [_("请填写走访记录 / Write the visit notes.")]
        if errors:
            raise ApplicationError(_("问卷未完成 / The questionnaire is incomplete."), errors=errors)
    visit = SiteVisit.objects.create(application=application, mode=mode, notes=notes.strip(), answers=answers, visited_by=by)
    audit_record(actor=by, action="application.site_visit", obj=application, data={"mode": mode, "visit": visit.pk})
    return visit
