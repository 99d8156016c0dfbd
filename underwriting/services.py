"""Underwriting services: data pulls and pushes, scoring, limit and price, collateral and guarantors,
the RM's notes and requests for information, site visits, and the scorecard's champion and challenger."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from decimal import ROUND_DOWN, Decimal
from types import SimpleNamespace

from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from applications.models import (
    Consent,
    DocumentRequirement,
    Enterprise,
    InfoRequest,
    LoanApplication,
    NegativeListEntry,
)
from applications.services import prescreen_run
from loanservice import refcache
from loanservice.audit import audit_record, audit_record_many
from loanservice.bulk import rows_insert
from loanservice.business_date import business_date
from loanservice.errors import ApplicationError, Conflict
from loanservice.prepared import PreparedRows

from . import providers as provider_lib
from . import scorecard
from .features import derive_features
from .models import (
    GRADE_LETTERS,
    CaseNote,
    Collateral,
    DataSnapshot,
    DataSourceConfig,
    Guarantor,
    InfoRequestItem,
    PDTermStructure,
    PricingPolicy,
    QuestionnaireQuestion,
    Score,
    ScorecardModel,
    SiteVisit,
)
from .selectors import (
    latest_ok_snapshots,
    lpr_on,
    questionnaire_for,
    scorecard_challenger,
    scorecard_champion,
)
from .sources import SOURCES, validate_payload

log = logging.getLogger(__name__)
CENT = Decimal("0.01")
DUE_DILIGENCE_STATES = (LoanApplication.Status.UNDER_REVIEW, LoanApplication.Status.AWAITING_INFO)


class SourcesUnavailable(Exception):
    """Sources failed for a reason that may pass (timeout, 5xx, circuit open): retry before referring."""

    def __init__(self, gaps: dict[str, str]):
        super().__init__("; ".join(f"{s}: {e}" for s, e in gaps.items()))
        self.gaps = gaps


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


# ---------------------------------------------------------------- data sources
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


class CacheBreakerStore:
    """Circuit-breaker state in the Django cache (Redis in production), so every web and worker process
    sees one circuit per source; with the local-memory cache it is per process."""

    prefix = "underwriting:breaker:"

    def get(self, key: str) -> dict | None:
        return cache.get(self.prefix + key)

    def set(self, key: str, value: dict) -> None:
        cache.set(self.prefix + key, value, timeout=24 * 3600)


def source_breaker(config: DataSourceConfig) -> provider_lib.CircuitBreaker:
    # A wall clock, not a monotonic one: the state is shared between processes.
    return provider_lib.CircuitBreaker(failure_threshold=max(1, config.breaker_threshold),
                                       reset_after=float(config.breaker_reset_seconds), clock=time.time,
                                       state_store=CacheBreakerStore())


def provider_for(config: DataSourceConfig):
    if config.provider == "http":
        return provider_lib.HttpProvider(config.base_url, timeout=float(config.timeout_seconds), retries=config.retries,
                                         backoff=float(config.backoff_seconds), breaker=source_breaker(config))
    return provider_lib.SandboxProvider()


def authorisation_for(*, enterprise: Enterprise, source: str, application: LoanApplication | None) -> int | None:
    """数据授权: the live authorisation a pull of `source` may name, on this application (or, for monitoring without
    one, the latest on any application of the enterprise); None when there is none (withdrawn, never given)."""
    consents = Consent.objects.filter(source=source, authorisation__isnull=False)  # the default manager: live only
    consents = (consents.filter(application=application) if application is not None
                else consents.filter(application__enterprise=enterprise))
    return consents.order_by("-granted_at", "-id").values_list("authorisation_id", flat=True).first()


PULL_REFUSALS = {"no_consent", "inactive", "not_pushed", "not_configured"}  # the codes _pull_refusal gives


def _pull_refusal(config: DataSourceConfig, *, authorisation: int | None) -> tuple[str, str] | None:
    """Why a source may not be asked now (error code, message), or None when it may. Every source here is
    refused without a live authorisation: the public ones a signed-out visitor sees are read by the
    pre-qualification, which stores nothing (casework/prequal.py)."""
    if authorisation is None:
        return ("no_consent", "no live authorisation for this source; not pulled")
    if not config.is_active:
        return ("inactive", "the data source is switched off")
    if config.provider == "push":
        return ("not_pushed", "no pushed snapshot within the freshness window")
    if config.provider == "http" and not config.base_url:
        return ("not_configured", "no base_url configured for the http provider")
    return None


def _snapshot_fetch(*, enterprise: Enterprise, source: str, config: DataSourceConfig, authorisation: int | None,
                    as_of: dt.date, hints: dict, providers: dict | None = None, **fields) -> DataSnapshot:
    """One pull, not saved yet: the provider's payload, or the refusal or failure as a failed snapshot naming
    the gap (never raised). The one place a provider is asked for a stored snapshot: `authorisation` is the live
    DataAuthorisation (id) that allows it, named on the snapshot; None refuses. `providers`: a per-source cache
    of providers for a batch; `fields`: the snapshot's other fields (application, fetched_at)."""
    failure = _pull_refusal(config, authorisation=authorisation)
    payload: dict = {}
    if failure is None:
        try:
            providers = {} if providers is None else providers
            provider = providers.get(source) or providers.setdefault(source, provider_for(config))
            payload = provider.fetch(source, enterprise.uscc, as_of=as_of, hints=hints)
        except provider_lib.ProviderError as exc:
            failure = (exc.code, str(exc)[:300])
    return DataSnapshot(enterprise=enterprise, source=source, as_of=as_of, provider=config.provider, payload=payload,
                        status=DataSnapshot.OK if failure is None else DataSnapshot.FAILED,
                        error_code=failure[0] if failure else "", error=failure[1] if failure else "",
                        authorisation_id=authorisation, **fields)


def snapshot_pull(*, enterprise: Enterprise, source: str, application: LoanApplication | None, by,
                  as_of: dt.date | None = None, config: DataSourceConfig | None = None) -> DataSnapshot:
    """Ask the configured provider now, under the live authorisation for that source. A failure, or no live
    authorisation, is recorded as a failed snapshot (a named gap), never raised."""
    config = config or source_config(source)
    authorisation = authorisation_for(enterprise=enterprise, source=source, application=application)
    return snapshots_pull(enterprise=enterprise, pulls=[(source, config, authorisation)], application=application, by=by,
                          as_of=as_of)[source]


_SNAPSHOT_COLUMNS = ("enterprise_id", "source", "as_of", "fetched_at", "provider", "status", "payload", "error",
                     "error_code", "application_id", "authorisation_id")


def _snapshots_insert(snapshots: list[DataSnapshot]) -> None:
    """bulk_create's INSERT without its per-call building (loanservice.bulk.rows_insert, PostgreSQL): each value
    prepared by its field as save() would, the new ids given back to the instances."""
    if connection.vendor != "postgresql":
        DataSnapshot.objects.bulk_create(snapshots)
        return
    fields = [DataSnapshot._meta.get_field(name) for name in _SNAPSHOT_COLUMNS]
    pks = rows_insert(DataSnapshot, _SNAPSHOT_COLUMNS, [
        tuple(field.get_db_prep_save(getattr(snap, field.attname), connection) for field in fields) for snap in snapshots],
        returning=True)
    for snap, pk in zip(snapshots, pks, strict=True):
        snap.pk = pk
        snap._state.adding, snap._state.db = False, connection.alias


def snapshots_pull(*, enterprise: Enterprise, pulls: Sequence[tuple[str, DataSourceConfig, int | None]],
                   application: LoanApplication | None, by, as_of: dt.date | None = None) -> dict[str, DataSnapshot]:
    """Pull several sources of one enterprise now: (source, its config, the live authorisation id or None) each.
    Every pull is stored as a snapshot (failed ones name the gap) with its own audit event; the snapshots and
    the events are written in one INSERT each (a submission pulls seven sources)."""
    as_of = as_of or timezone.localdate()
    snapshots, timings = [], []
    hints = _hints(enterprise)
    for source, config, authorisation in pulls:
        started = time.perf_counter()
        snap = _snapshot_fetch(enterprise=enterprise, source=source, config=config, authorisation=authorisation,
                               as_of=as_of, hints=hints, application=application)
        if snap.status == DataSnapshot.FAILED and snap.error_code not in PULL_REFUSALS:
            log.warning("data source %s failed for %s: %s %s", source, enterprise.uscc, snap.error_code, snap.error)
        snapshots.append(snap)
        timings.append(round((time.perf_counter() - started) * 1000))
    with transaction.atomic():  # written after the pulls, in one short transaction of its own
        _snapshots_insert(snapshots)
        audit_record_many([
            {"actor": by, "action": "data.pull", "obj": enterprise,
             "data": {"source": snap.source, "snapshot": snap.pk, "status": snap.status, "code": snap.error_code,
                      "provider": snap.provider, "ms": ms, "application": getattr(application, "pk", None),
                      "authorisation": snap.authorisation_id}}
            for snap, ms in zip(snapshots, timings, strict=True)])
    return {snap.source: snap for snap in snapshots}


def data_source_configs() -> dict[str, DataSourceConfig]:
    """source → its configuration (freshness, retries), cached per process (read only)."""
    return refcache.cached(("data_source_configs",), lambda: {c.source: c for c in DataSourceConfig.objects.all()})


def snapshot_fresh(snap: DataSnapshot | None, config: DataSourceConfig, today: dt.date) -> bool:
    return snap is not None and snap.status == DataSnapshot.OK and (today - snap.as_of).days <= config.freshness_days


def application_authorisations(application: LoanApplication) -> dict[str, int]:
    """The live authorisation (id) per source on this application."""
    return dict(Consent.objects.filter(application=application, authorisation__isnull=False)
                .order_by("granted_at", "id").values_list("source", "authorisation_id"))


def snapshots_gather(*, application: LoanApplication, by, sources=None,
                     authorised: dict[str, int] | None = None) -> dict[str, DataSnapshot]:
    """Per source, the snapshot to use: a fresh one on file (pushed or pulled earlier) as it is,
    otherwise pulled now. Every source maps to a snapshot; a failed one is the named gap. Only the sources
    with a live authorisation on this application are used or pulled (`authorised`: those authorisations as the
    caller has just read them, application_authorisations' answer)."""
    enterprise = application.enterprise
    if authorised is None:
        authorised = application_authorisations(application)
    configs = data_source_configs()
    on_file = latest_ok_snapshots(enterprise)
    today = timezone.localdate()
    result: dict[str, DataSnapshot] = {}
    pulls = []
    for source in sources or SOURCES:
        config = configs.get(source) or DataSourceConfig(source=source)
        snap = on_file.get(source)
        if source in authorised and snapshot_fresh(snap, config, today):
            result[source] = snap
        else:  # no live authorisation: the pull records the gap without asking anyone
            pulls.append((source, config, authorised.get(source)))
    if pulls:
        result.update(snapshots_pull(enterprise=enterprise, pulls=pulls, application=application, by=by))
    return {source: result[source] for source in sources or SOURCES}


def snapshots_ensure(*, application: LoanApplication, by, sources=None,
                     authorised: dict[str, int] | None = None) -> dict[str, dict | None]:
    """The payload per source: a fresh snapshot as it is, otherwise pulled now. None = a gap."""
    return {s: (snap.payload if snap.status == DataSnapshot.OK else None)
            for s, snap in snapshots_gather(application=application, by=by, sources=sources, authorised=authorised).items()}


def snapshots_transient_gaps(snapshots: dict[str, DataSnapshot]) -> dict[str, str]:
    return {s: snap.error for s, snap in snapshots.items() if snap.transient}


def snapshots_refresh_batch(*, pulls: Sequence[tuple[Enterprise, str, int | None]], as_of: dt.date | None = None, by=None,
                            purpose: str = "monitoring") -> list[DataSnapshot]:
    """Pull many (enterprise, source, application id) at once, e.g. the nightly post-loan refresh, under the rules
    of snapshot_pull: the live authorisation on that application (None: on any application of the enterprise),
    the source's configured provider, and a refusal or failure stored as a failed snapshot naming the gap.
    Set-based: one query for the consents and one for the configurations, whatever the batch size; the
    snapshots bulk-inserted with one audit event for the batch (counts per source and status) instead of one
    per pull. The enterprises need their identity and declared fields loaded (uscc and the provider hints).
    Returns the new snapshots in the order asked."""
    pulls = list(pulls)
    if not pulls:
        return []
    as_of = as_of or timezone.localdate()
    started = time.perf_counter()
    sources = {source for _enterprise, source, _application in pulls}
    if unknown := sources - set(SOURCES):
        raise ValueError(f"unknown data sources: {sorted(unknown)}")
    stored = {c.source: c for c in DataSourceConfig.objects.filter(source__in=sources)}
    configs = {source: stored.get(source) or DataSourceConfig(source=source) for source in sources}
    application_ids = {application for _enterprise, _source, application in pulls if application is not None}
    bare = {enterprise.pk for enterprise, _source, application in pulls if application is None}
    live = Consent.objects.filter(source__in=sources, authorisation__isnull=False).order_by("granted_at", "id")
    consented = {(a, s): auth for a, s, auth in live.filter(application_id__in=application_ids)
                 .values_list("application_id", "source", "authorisation_id")} if application_ids else {}
    consented_any = {(e, s): auth for e, s, auth in live.filter(application__enterprise_id__in=bare)
                     .values_list("application__enterprise_id", "source", "authorisation_id")} if bare else {}
    providers: dict[str, object] = {}
    hints: dict[int, dict] = {}
    now = timezone.now()
    snapshots = []
    for enterprise, source, application_id in pulls:
        config = configs[source]
        allowed = (consented.get((application_id, source)) if application_id is not None
                   else consented_any.get((enterprise.pk, source)))
        if enterprise.pk not in hints:
            hints[enterprise.pk] = _hints(enterprise)
        snapshots.append(_snapshot_fetch(
            enterprise=enterprise, source=source, config=config, authorisation=allowed, as_of=as_of, hints=hints[enterprise.pk],
            providers=providers, application_id=application_id, fetched_at=now))
    tally: dict[str, dict[str, int]] = {}
    for snap in snapshots:
        key = snap.status if snap.status == DataSnapshot.OK else snap.error_code
        tally.setdefault(snap.source, {}).setdefault(key, 0)
        tally[snap.source][key] += 1
    if any(key != DataSnapshot.OK for per_source in tally.values() for key in per_source):
        log.warning("batch pull (%s) for %s: %s", purpose, as_of, tally)
    with transaction.atomic():
        DataSnapshot.objects.bulk_create(snapshots, batch_size=1000)
        ids = [snap.pk for snap in snapshots if snap.pk is not None]
        audit_record(actor=by, action="data.pull.batch", object_type="underwriting.datasnapshot",
                     object_id=f"{min(ids)}-{max(ids)}" if ids else "",
                     data={"purpose": purpose, "as_of": as_of.isoformat(), "fetched_at": now.isoformat(), "pulls": len(snapshots),
                           "by_source": tally, "ms": round((time.perf_counter() - started) * 1000)})
    return snapshots


# ---------------------------------------------------------------- limit, price, score
def pricing_policy(on: dt.date | None = None) -> PricingPolicy:
    on = on or timezone.localdate()
    policy = refcache.cached(("pricing_policy", on), lambda: PricingPolicy.objects.filter(effective_on__lte=on)
                             .order_by("-effective_on").first())
    if policy is None:
        raise ApplicationError(_("未配置定价政策 / No pricing policy is configured."))
    return policy


BP = Decimal("10000")  # basis points in 1 (a spread of 135 bp is 0.0135)


def spread_bp_of(*, rate: Decimal, lpr: Decimal) -> Decimal:
    """The spread in basis points that puts `rate` over `lpr` (negative below it), to a hundredth of a point."""
    return ((rate - lpr) * BP).quantize(Decimal("0.01"))


def rate_of(*, lpr: Decimal, spread_bp: Decimal) -> Decimal:
    """Rate = LPR + spread (basis points / 10000)."""
    return (lpr + Decimal(spread_bp) / BP).quantize(Decimal("0.000001"))


def price_recommend(*, grade: str, product, policy: PricingPolicy, on: dt.date | None = None) -> dict:
    """The recommended price as a spread over the LPR of the product's tenor last published on or before `on` (the
    business date): the grade's spread, the rate kept within the product's floor and cap (the spread follows).
    → {lpr_tenor, lpr_rate, lpr_date, spread_bp, rate}."""
    lpr = lpr_on(product.lpr_tenor, on or business_date())
    spread = Decimal(str(policy.spreads.get(grade, policy.spreads.get("E", "0.06"))))
    rate = min(max(lpr.rate + spread, product.rate_floor), product.rate_cap).quantize(Decimal("0.000001"))
    return {"lpr_tenor": lpr.tenor, "lpr_rate": lpr.rate, "lpr_date": lpr.published_on,
            "spread_bp": spread_bp_of(rate=rate, lpr=lpr.rate), "rate": rate}


def rate_recommend(*, grade: str, product, policy: PricingPolicy, on: dt.date | None = None) -> Decimal:
    """Rate = the product's LPR + the grade's spread, within the product's floor and cap."""
    return price_recommend(grade=grade, product=product, policy=policy, on=on)["rate"]


_COLLATERAL = PreparedRows(lambda pk: Collateral.objects.filter(application_id=pk).values_list("valuation", "ltv"), int)


def collateral_value(application: LoanApplication) -> Decimal:
    """What the bank lends against the recorded collateral: Σ valuation × LTV (each Collateral.lendable_value)."""
    if "collateral" in getattr(application, "_prefetched_objects_cache", {}):
        return sum((c.lendable_value for c in application.collateral.all()), Decimal("0.00"))
    return sum(((valuation * ltv).quantize(Decimal("0.01")) for valuation, ltv in _COLLATERAL.rows(application.pk)),
               Decimal("0.00"))


def limit_breakdown(*, application: LoanApplication, payloads: dict, policy: PricingPolicy,
                    collateral: Decimal | None = None) -> dict:
    """The recommended limit and the figures it came from (shown to the RM and approver).

    Cash-flow capacity = min(revenue × revenue share, tax paid × tax multiple) less a share of the existing
    debt (bureau outstanding debt and the bank's own exposure); collateral can lift it to Σ valuation × LTV;
    never above the product maximum. Rounded down to the thousand."""
    tax = payloads.get("tax") or {}
    bureau = payloads.get("credit_bureau") or {}
    internal = payloads.get("internal") or {}
    revenue = Decimal(tax.get("revenue_12m", application.enterprise.annual_revenue))
    tax_paid = Decimal(tax["tax_paid_12m"]) if tax else None
    debt = Decimal(bureau.get("outstanding_debt", "0")) + Decimal(internal.get("existing_exposure", "0"))
    by_revenue = revenue * policy.revenue_share
    by_tax = tax_paid * policy.tax_multiple if tax_paid is not None else by_revenue
    capacity = max(min(by_revenue, by_tax) - debt * policy.debt_share, Decimal("0"))
    secured = collateral if collateral is not None else collateral_value(application)
    limit = min(application.product.max_amount, max(capacity, secured))
    limit = (limit / 1000).to_integral_value(rounding=ROUND_DOWN) * 1000
    return {
        "revenue": f"{revenue:.2f}", "tax_paid": None if tax_paid is None else f"{tax_paid:.2f}",
        "existing_debt": f"{debt:.2f}", "by_revenue": f"{by_revenue:.2f}", "by_tax": f"{by_tax:.2f}",
        "cash_flow_capacity": f"{capacity:.2f}", "collateral_value": f"{secured:.2f}",
        "product_max": f"{application.product.max_amount:.2f}", "limit": f"{limit:.2f}",
        "policy": policy.effective_on.isoformat(),
    }


def limit_recommend(*, application: LoanApplication, payloads: dict, policy: PricingPolicy,
                    collateral_value: Decimal | None = None) -> Decimal:
    """Product maximum, revenue and tax paid, less existing debt; collateral can lift it."""
    return Decimal(limit_breakdown(application=application, payloads=payloads, policy=policy,
                                   collateral=collateral_value)["limit"])


def _reasons(result) -> list[dict]:
    return [{"code": r.code, "feature": r.feature, "points_lost": r.points_lost, "message": r.text_zh,
             "message_en": r.text_en} for r in result.reasons]


def _score_with(model: ScorecardModel, application, features, payloads, missing, gaps, *, shadow: bool, policy) -> Score:
    result = scorecard.score_one(model.compiled(), features)
    basis = {} if shadow else limit_breakdown(application=application, payloads=payloads, policy=policy)
    price = None if shadow else price_recommend(grade=result.grade, product=application.product, policy=policy)
    # Created, not got-or-created: the caller's savepoint turns a score already there ((application, model) is
    # unique) into the IntegrityError it handles, without a read and a second savepoint first.
    return Score.objects.create(
        application=application, model=model,
        is_shadow=shadow, points=result.points, grade=result.grade, pd=result.pd, dimensions=result.dimensions,
        reasons=_reasons(result), features=features, missing_sources=missing, data_gaps=gaps, limit_basis=basis,
        recommended_limit=Decimal(basis["limit"]) if basis else None,
        recommended_rate=None if shadow else price["rate"],
        recommended_spread_bp=None if shadow else price["spread_bp"],
    )


_SCORED = PreparedRows(lambda pk: Score.objects.filter(application_id=pk, is_shadow=False).values_list("pk")[:1], int)


def _snapshots_known(score: Score, snapshots: list[DataSnapshot]) -> None:
    """Keep a new score's snapshots on it as Django keeps a prefetched relation, so that `score.snapshots.all()`
    (routing's referral rules) answers without reading back what was just written."""
    known = score.snapshots.all()
    known._result_cache, known._prefetch_done = list(snapshots), True
    score._prefetched_objects_cache = {**getattr(score, "_prefetched_objects_cache", {}),
                                       Score.snapshots.field.name: known}


def application_score(*, application: LoanApplication, by=None, snapshots: dict[str, DataSnapshot] | None = None) -> Score:
    """Score with the champion (and the challenger in shadow) on the given or gathered snapshots.
    Idempotent: a second run returns the same score and pulls nothing."""
    if _SCORED.rows(application.pk):  # rarely: scored before (the cheap check first, the instances only then)
        return Score.objects.filter(application=application, is_shadow=False).select_related("model").first()
    if snapshots is None:
        snapshots = snapshots_gather(application=application, by=by)
    payloads = {s: (snap.payload if snap.status == DataSnapshot.OK else None) for s, snap in snapshots.items()}
    missing = [s for s in SOURCES if payloads.get(s) is None]
    gaps = {s: {"code": snap.error_code or "failed", "error": snap.error, "snapshot": snap.pk}
            for s, snap in snapshots.items() if snap.status != DataSnapshot.OK}
    for s in missing:
        gaps.setdefault(s, {"code": "not_gathered", "error": "not gathered", "snapshot": None})
    features = derive_features(payloads, as_of=timezone.localdate())
    policy = pricing_policy()
    champion = scorecard_champion()
    try:
        with transaction.atomic():
            score = _score_with(champion, application, features, payloads, missing, gaps, shadow=False, policy=policy)
    except IntegrityError:  # a concurrent run scored first
        return Score.objects.get(application=application, model=champion)
    used = [snap for snap in snapshots.values() if snap.status == DataSnapshot.OK]
    score.snapshots.add(*used)  # a new score: one INSERT
    _snapshots_known(score, used)
    challenger = scorecard_challenger()
    if challenger and challenger.pk != champion.pk:
        try:
            with transaction.atomic():
                _score_with(challenger, application, features, payloads, missing, gaps, shadow=True, policy=policy)
        except IntegrityError:  # already scored in shadow by this model
            pass
        except Exception:  # the shadow must never disturb the decision
            log.exception("challenger scoring failed for application %s", application.pk)
    audit_record(actor=by, action="application.score", obj=application,
                 data={"model": champion.version, "grade": score.grade, "points": score.points, "missing": missing,
                       "challenger": challenger.version if challenger and challenger.pk != champion.pk else None,
                       "snapshots": sorted(snap.pk for snap in snapshots.values())})
    return score


def score_decision_time_record(*, score: Score, seconds: Decimal) -> None:
    """How long the routed decision took from submission (信秒贷's "about a second", measured)."""
    Score.objects.filter(pk=score.pk).update(decision_seconds=seconds.quantize(Decimal("0.001")))


def limit_refresh(*, application: LoanApplication, by) -> Score | None:
    """Recompute the champion score's recommended limit after the collateral changed (same snapshots)."""
    score = Score.objects.filter(application=application, is_shadow=False).prefetch_related("snapshots").first()
    if score is None:
        return None
    payloads = {s.source: s.payload for s in score.snapshots.all()}
    basis = limit_breakdown(application=application, payloads=payloads, policy=pricing_policy())
    before = score.recommended_limit
    score.limit_basis = basis
    score.recommended_limit = Decimal(basis["limit"])
    score.save(update_fields=["limit_basis", "recommended_limit"])
    if before != score.recommended_limit:
        audit_record(actor=by, action="application.limit_refresh", obj=application,
                     data={"from": None if before is None else f"{before:.2f}", "to": basis["limit"],
                           "collateral_value": basis["collateral_value"]})
    return score


# ---------------------------------------------------------------- scorecard models (champion / challenger)
@transaction.atomic
def scorecard_activate(*, model: ScorecardModel, by) -> ScorecardModel:
    """Make this version the champion: it scores every new application; the previous one steps down."""
    model = ScorecardModel.objects.select_for_update().get(pk=model.pk)
    scorecard.validate_spec(model.spec)
    previous = list(ScorecardModel.objects.select_for_update().filter(is_active=True).exclude(pk=model.pk))
    ScorecardModel.objects.filter(pk__in=[m.pk for m in previous]).update(is_active=False)
    model.is_active, model.is_challenger = True, False
    model.save(update_fields=["is_active", "is_challenger"])
    audit_record(actor=by, action="scorecard.activate", obj=model, data={"version": model.version,
                                                                         "previous": [m.version for m in previous]})
    return model


@transaction.atomic
def scorecard_challenger_set(*, model: ScorecardModel | None, by) -> ScorecardModel | None:
    """Score this version in shadow next to the champion (None: no challenger)."""
    previous = list(ScorecardModel.objects.select_for_update().filter(is_challenger=True))
    ScorecardModel.objects.filter(pk__in=[m.pk for m in previous]).update(is_challenger=False)
    if model is not None:
        model = ScorecardModel.objects.select_for_update().get(pk=model.pk)
        if model.is_active:
            raise ApplicationError(_("冠军模型不能同时作为挑战者 / The champion cannot also be the challenger."),
                                   errors={"is_challenger": [_("请选择非冠军版本 / Choose a version that is not the champion.")]})
        scorecard.validate_spec(model.spec)
        model.is_challenger = True
        model.save(update_fields=["is_challenger"])
    audit_record(actor=by, action="scorecard.challenger", obj=model, object_type="" if model else "underwriting.scorecardmodel",
                 data={"version": model.version if model else None, "previous": [m.version for m in previous]})
    return model


@transaction.atomic
def scorecard_model_create(*, name: str, spec: dict, metrics: dict | None = None, development: dict | None = None,
                           by=None) -> ScorecardModel:
    """A new model version, inactive until activated in admin (champion) or set as the challenger."""
    try:
        scorecard.validate_spec(spec)
    except ValueError as exc:
        raise ApplicationError(_("评分卡格式无效 / The scorecard spec is not valid."), errors={"spec": [str(exc)]}) from exc
    model = ScorecardModel.objects.create(name=name, spec=spec, metrics=metrics or {}, development=development or {},
                                          is_active=False)
    audit_record(actor=by, action="scorecard.create", obj=model,
                 data={"version": model.version, "name": name, "auc": (metrics or {}).get("auc")})
    return model


@transaction.atomic
def scorecard_development_set(*, model: ScorecardModel, summary: dict, by) -> ScorecardModel:
    """Store the development-sample summary a PSI report compares recent scores with."""
    model = ScorecardModel.objects.select_for_update().get(pk=model.pk)
    model.development = summary
    model.save(update_fields=["development"])
    audit_record(actor=by, action="scorecard.development", obj=model, data={"version": model.version, "n": summary.get("n"),
                                                                            "sample": summary.get("sample", "")})
    return model


# ---------------------------------------------------------------- the RM's due diligence
def _case_for_rm(application: LoanApplication, by, *, states=DUE_DILIGENCE_STATES) -> LoanApplication:
    application = LoanApplication.objects.select_for_update(of=("self",)).select_related("product", "enterprise").get(pk=application.pk)
    if application.relationship_manager_id != getattr(by, "pk", None):
        raise ApplicationError(_("只有本案客户经理可以操作 / Only the case's RM can do this."),
                               errors={"application": [_("不是本案客户经理 / Not the case's RM.")]}, code="forbidden")
    if application.status not in states:
        raise Conflict(_("当前状态不能修改尽调信息 / Due diligence cannot be changed in this state."), state=application.status)
    return application


def ltv_cap(policy: PricingPolicy, kind: str) -> Decimal:
    return Decimal(str((policy.collateral_ltv_by_kind or {}).get(kind, policy.collateral_ltv)))


@transaction.atomic
def collateral_add(*, application: LoanApplication, by, kind: str, description: str, valuation: Decimal, appraiser: str,
                   appraised_on: dt.date, ltv: Decimal | None = None, owner_name: str = "",
                   certificate_no: str = "") -> Collateral:
    """押品: the RM records an appraised item for a secured product; the limit is recomputed. The values come
    checked by underwriting.serializers.CollateralSerializer; the product and the policy are checked here."""
    application = _case_for_rm(application, by)
    errors: dict[str, list[str]] = {}
    if not application.product.secured:
        errors["product"] = [_("该产品为信用类产品，无需押品 / This product is unsecured; no collateral is taken.")]
    policy = pricing_policy()
    today = timezone.localdate()
    if (today - appraised_on).days > policy.appraisal_max_age_days:
        errors["appraised_on"] = [_("评估报告已超过 %(n)s 天有效期，请重新评估 / The appraisal is older than %(n)s days; "
                                    "have it re-appraised.") % {"n": policy.appraisal_max_age_days}]
    cap = ltv_cap(policy, kind)
    if ltv is None:
        ltv = cap
    elif ltv > cap:
        errors["ltv"] = [_("该类押品的抵押率不能超过 %(c)s / The LTV for this kind may not exceed %(c)s.") % {"c": cap}]
    if errors:
        raise ApplicationError(_("押品信息有误 / The collateral details are not valid."), errors=errors)
    item = Collateral.objects.create(application=application, kind=kind, description=description, owner_name=owner_name,
                                     certificate_no=certificate_no, valuation=valuation, appraiser=appraiser,
                                     appraised_on=appraised_on, ltv=ltv, added_by=by)
    audit_record(actor=by, action="collateral.add", obj=application,
                 data={"collateral": item.pk, "kind": kind, "valuation": f"{valuation:.2f}", "ltv": str(ltv),
                       "appraiser": appraiser, "appraised_on": appraised_on.isoformat()})
    limit_refresh(application=application, by=by)
    return item


@transaction.atomic
def collateral_remove(*, collateral: Collateral, by) -> None:
    application = _case_for_rm(collateral.application, by)
    audit_record(actor=by, action="collateral.remove", obj=application,
                 data={"collateral": collateral.pk, "kind": collateral.kind, "valuation": f"{collateral.valuation:.2f}"})
    collateral.delete()
    limit_refresh(application=application, by=by)


def guarantor_prescreen(*, kind: str, uscc: str = "", id_number: str = "") -> dict:
    """The guarantor's own pre-screen: the negative list (负面清单) on what the bank knows of it. An enterprise
    guarantor is checked with the negative-list rules on its snapshots on file (no pull: no consent of its own);
    a person by the bank's manual list and the judicial records of enterprises it represents."""

    today = timezone.localdate()
    if kind == Guarantor.ENTERPRISE:
        enterprise = Enterprise.objects.filter(uscc=uscc).first()
        subject = enterprise or SimpleNamespace(uscc=uscc, legal_rep_id_number="", founded_on=None, industry_code="",
                                                employees=None, annual_revenue=None, legal_form="")
        payloads = {s: (snap.payload if snap else None) for s, snap in latest_ok_snapshots(enterprise).items()} if enterprise else {}
        result = prescreen_run(enterprise=subject, product=None, payloads=payloads, today=today)
        rules = [r for r in result["rules"] if r["kind"] == "negative"]
    else:
        active = Q(expires_on__isnull=True) | Q(expires_on__gte=today)
        hits = list(NegativeListEntry.objects.filter(active, id_number=id_number).values_list("reason", flat=True))
        rules = [{"code": "manual_list", "kind": "negative", "outcome": "fail" if hits else "pass",
                  "value": "; ".join(hits) or False, "message": "个人在本行负面清单中",
                  "message_en": "The person is on the bank's negative list"}]
        represented = Enterprise.objects.filter(legal_rep_id_number=id_number)
        dishonest = [e.name for e in represented
                     if (latest_ok_snapshots(e).get("judicial") or SimpleNamespace(payload={})).payload.get("legal_rep_dishonest_debtor")]
        rules.append({"code": "dishonest_debtor", "kind": "negative", "outcome": "fail" if dishonest else "pass",
                      "value": "; ".join(dishonest) or False, "message": "个人被列为失信被执行人",
                      "message_en": "The person is a dishonest judgment debtor"})
    failed = [r for r in rules if r["outcome"] == "fail"]
    return {"passed": not failed, "checked_on": today.isoformat(), "rules": rules,
            "reasons": [{"code": r["code"], "message": r["message"], "message_en": r["message_en"]} for r in failed],
            "gaps": [{"code": r["code"], "message": r["message"], "message_en": r["message_en"]}
                     for r in rules if r["outcome"] == "unknown"]}


@transaction.atomic
def guarantor_add(*, application: LoanApplication, by, kind: str, name: str, uscc: str = "", id_number: str = "",
                  relationship: str = "", guaranteed_amount: Decimal | None = None) -> Guarantor:
    """保证人: an enterprise (by USCC) or a person (by resident ID), pre-screened on the negative list. The
    values come checked by underwriting.serializers.GuarantorSerializer; the borrower and the guarantors
    already on file are checked here."""
    application = _case_for_rm(application, by)
    errors: dict[str, list[str]] = {}
    if kind == Guarantor.ENTERPRISE and uscc == application.enterprise.uscc:
        errors["uscc"] = [_("借款人不能为自己担保 / The borrower cannot guarantee itself.")]
    key = {"uscc": uscc} if kind == Guarantor.ENTERPRISE else {"id_number": id_number}
    if not errors and application.guarantors.filter(kind=kind, **key).exists():
        errors["uscc" if kind == Guarantor.ENTERPRISE else "id_number"] = [_("该保证人已登记 / This guarantor is already recorded.")]
    if errors:
        raise ApplicationError(_("保证人信息有误 / The guarantor details are not valid."), errors=errors)
    screen = guarantor_prescreen(kind=kind, uscc=uscc, id_number=id_number)
    guarantor = Guarantor.objects.create(application=application, kind=kind, name=name, uscc=uscc, id_number=id_number,
                                         relationship=relationship, guaranteed_amount=guaranteed_amount, prescreen=screen,
                                         prescreen_passed=screen["passed"], added_by=by)
    audit_record(actor=by, action="guarantor.add", obj=application,
                 data={"guarantor": guarantor.pk, "kind": kind, "prescreen_passed": screen["passed"],
                       "reasons": [r["code"] for r in screen["reasons"]]})
    return guarantor


@transaction.atomic
def guarantor_remove(*, guarantor: Guarantor, by) -> None:
    application = _case_for_rm(guarantor.application, by)
    audit_record(actor=by, action="guarantor.remove", obj=application, data={"guarantor": guarantor.pk, "kind": guarantor.kind})
    guarantor.delete()


@transaction.atomic
def case_note_add(*, application: LoanApplication, by, text: str) -> CaseNote:
    """A note on the case (checked by underwriting.serializers.CaseNoteSerializer)."""
    note = CaseNote.objects.create(application=application, author=by, text=text)
    audit_record(actor=by, action="case.note", obj=application, data={"note": note.pk})
    return note


# ---------------------------------------------------------------- requests for information
def info_request_documents(*, application: LoanApplication, documents: list[str]) -> list[DocumentRequirement]:
    """The documents asked for (codes checked by underwriting.serializers.InfoRequestSerializer), as items of
    the product's checklist; a code not on it is refused here, where the checklist is known."""
    by_code = {r.code: r for r in DocumentRequirement.objects.filter(product=application.product, code__in=documents)}
    unknown = [c for c in documents if c not in by_code]
    if unknown:
        raise ApplicationError(_("补充资料请求有误 / The request for information is not valid."), errors={
            "documents": [_("不在该产品材料清单中：%(c)s / Not on the product's checklist: %(c)s") % {"c": ", ".join(unknown)}]})
    return [by_code[c] for c in documents]


def info_request_message(message: str, requirements: list[DocumentRequirement], questions: list[str]) -> str:
    """The request as the applicant reads it in the portal and the notification."""
    lines = [message.strip()] if message.strip() else []
    if requirements:
        lines.append(_("请上传以下材料 / Please upload:") + " " + "；".join(r.name for r in requirements))
    for i, q in enumerate(questions, start=1):
        lines.append(_("问题%(n)s / Question %(n)s:") % {"n": i} + " " + q)
    return "\n".join(lines)


def info_request_items_create(*, info_request: InfoRequest, requirements: list[DocumentRequirement],
                              questions: list[str]) -> list[InfoRequestItem]:
    items = [InfoRequestItem(info_request=info_request, kind=InfoRequestItem.DOCUMENT, requirement=r) for r in requirements]
    items += [InfoRequestItem(info_request=info_request, kind=InfoRequestItem.QUESTION, question=q) for q in questions]
    return InfoRequestItem.objects.bulk_create(items)


def info_request_fulfil(*, application: LoanApplication, user, response: str, answers: dict | None = None) -> None:
    """Before the applicant's answer moves the case on: every requested document uploaded since the request,
    every question answered (by item id in `answers`, or by the written response). 400 naming what is missing."""
    request = application.info_requests.filter(responded_at__isnull=True).order_by("-created_at").first()
    if request is None:
        return
    answers = {str(k): v for k, v in (answers or {}).items()}
    errors: dict[str, list[str]] = {}
    now = timezone.now()
    items = list(request.items.select_related("requirement"))
    for item in items:
        if item.kind == InfoRequestItem.DOCUMENT:
            doc = (application.documents.filter(requirement=item.requirement, uploaded_at__gte=request.created_at)
                   .order_by("-uploaded_at").first())
            if doc is None:
                errors[f"documents.{item.requirement.code}"] = [_("请上传：%(n)s / Please upload: %(n)s") % {"n": item.requirement.name}]
            else:
                item.document, item.fulfilled_at = doc, now
        else:
            answer = str(answers.get(str(item.pk)) or "").strip() or response.strip()
            if not answer:
                errors[f"answers.{item.pk}"] = [_("请回答：%(q)s / Please answer: %(q)s") % {"q": item.question}]
            item.answer, item.fulfilled_at = answer[:4000], now
    if errors:
        raise ApplicationError(_("请先完成补充资料 / Please provide everything that was asked for."), errors=errors)
    InfoRequestItem.objects.bulk_update(items, ["document", "answer", "fulfilled_at"])


def visit_waivable(*, application: LoanApplication, score: Score | None) -> bool:
    """Visits are waived for the fast track, and for the product's waiver grades under its waiver amount
    (data on the product; DESIGN.md's default: grade A under 1,000,000)."""
    if score is None:
        return False
    product = application.product
    return (product.fast_track and application.route == "auto") or (
        score.grade in product.visit_waiver_grades and application.amount < product.visit_waiver_below
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
    """A visit (checked by underwriting.serializers.SiteVisitSerializer: the mode, notes for a real visit);
    the answers against the product's questionnaire and a waiver against the case's risk are checked here."""
    application = LoanApplication.objects.select_for_update().get(pk=application.pk)
    if application.status != LoanApplication.Status.UNDER_REVIEW:
        raise Conflict(_("只有审查中的申请可以记录走访 / Visits are recorded while the case is under review."), state=application.status)
    answers = answers or {}
    if mode == "waived":
        score = Score.objects.filter(application=application, is_shadow=False).first()
        if not visit_waivable(application=application, score=score):
            raise ApplicationError(_("该案件风险需要现场或视频走访，不能免于走访 / This case needs an on-site or video visit; it cannot be waived."),
                                   errors={"mode": [_("不能免于走访 / A visit cannot be waived here.")]})
    else:
        errors = _answers_validate(questionnaire_for(application.product), answers)
        if errors:
            raise ApplicationError(_("问卷未完成 / The questionnaire is incomplete."), errors=errors)
    visit = SiteVisit.objects.create(application=application, mode=mode, notes=notes.strip(), answers=answers, visited_by=by)
    audit_record(actor=by, action="application.site_visit", obj=application, data={"mode": mode, "visit": visit.pk})
    return visit


# ---------------------------------------------------------------- PD term structures (违约概率期限结构)
def _pd_curves_validate(curves: dict, basis: dict, horizon: int) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for grade in GRADE_LETTERS:
        curve = curves.get(grade)
        if not isinstance(curve, list) or len(curve) != horizon:
            errors.setdefault("curves", []).append(f"{grade}: {horizon} monthly values needed")
            continue
        try:
            values = [Decimal(str(v)) for v in curve]
        except (ArithmeticError, ValueError):
            errors.setdefault("curves", []).append(f"{grade}: not decimal fractions")
            continue
        if any(not Decimal("0") <= v <= Decimal("1") for v in values) or any(b < a for a, b in zip(values, values[1:], strict=False)):
            errors.setdefault("curves", []).append(f"{grade}: cumulative PDs must rise within 0..1")
        if basis.get(grade) not in (PDTermStructure.BOOK, PDTermStructure.SCORECARD):
            errors.setdefault("basis", []).append(f"{grade}: book or scorecard")
    return errors


@transaction.atomic
def pd_term_structure_create(*, name: str, effective_from: dt.date, as_of: dt.date, curves: dict, basis: dict,
                             sample: dict | None = None, by=None) -> PDTermStructure:
    """A new PD term structure version, a draft until approved (`pd_term_structure_approve`)."""
    horizon = len(curves.get(GRADE_LETTERS[0]) or [])
    errors = _pd_curves_validate(curves, basis, horizon) if horizon else {"curves": ["no curve"]}
    if errors:
        raise ApplicationError(_("违约概率期限结构无效 / The PD term structure is not valid."), errors=errors)
    structure = PDTermStructure.objects.create(
        name=name, effective_from=effective_from, as_of=as_of, horizon_months=horizon,
        curves={g: [str(v) for v in curves[g]] for g in GRADE_LETTERS}, basis={g: basis[g] for g in GRADE_LETTERS},
        sample=sample or {}, created_by=by if getattr(by, "pk", None) else None)
    audit_record(actor=by, action="pd_term_structure.create", obj=structure,
                 data={"version": structure.version, "effective_from": effective_from.isoformat(), "basis": structure.basis})
    return structure


@transaction.atomic
def pd_term_structure_approve(*, structure: PDTermStructure, by) -> PDTermStructure:
    """Approve a draft version: from its `effective_from` on it is the one in force (four eyes: never by the
    person who created it)."""
    structure = PDTermStructure.objects.select_for_update().get(pk=structure.pk)
    if structure.approved_at is not None:
        raise Conflict(_("该版本已批准 / This version is already approved."), state="approved")
    if structure.created_by_id is not None and structure.created_by_id == getattr(by, "pk", None):
        raise ApplicationError(_("不能批准自己创建的版本 / You cannot approve a version you created."),
                               errors={"approved_by": [_("需由另一人批准 / Another person must approve it.")]})
    structure.approved_by, structure.approved_at = by, timezone.now()
    structure.save(update_fields=["approved_by", "approved_at"])
    audit_record(actor=by, action="pd_term_structure.approve", obj=structure, from_state="draft", to_state="approved",
                 data={"version": structure.version, "effective_from": structure.effective_from.isoformat()})
    return structure
