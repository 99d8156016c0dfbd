"""Approvals: routing by the authority matrix, the fast track, four-eyes decisions, committee votes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from applications.models import LoanApplication
from applications.selectors import manual_negative_hits
from applications.services import application_transition, lock_application
from loanservice import crypto, refcache, roles
from loanservice.audit import audit_record
from loanservice.business_date import business_date
from loanservice.errors import ApplicationError, Conflict
from loanservice.models import Notification, SlaClock
from loanservice.money import money_display
from loanservice.notifications import in_default_language, notify
from loanservice.prepared import PreparedRows
from underwriting.models import Score
from underwriting.selectors import lpr_on
from underwriting.services import rate_of, spread_bp_of

from . import rules as case_rules
from .models import (
    ROUTE_LEVELS,
    TIER_ROLE,
    ApprovalCase,
    AuthorityMatrixVersion,
    AuthorityRule,
    CommitteeResolution,
    ConflictOfInterest,
    CreditCommittee,
    Decision,
    ReasonCode,
    ReferralRule,
    RelatedParty,
    RoutingRecord,
)

User = get_user_model()

COMMITTEE_STAGE = "committee_approval"  # the SLA stage whose due time is the committee's voting deadline


@dataclass(frozen=True)
class RouteFacts:
    """What the authority matrix routes on, as it stood when the case was routed. The matrix's amount bands compare
    against `exposure`, the borrower's total (this request + what it already has, summed by the conductor:
    casework.exposure); without one (cases routed before it was kept) the request alone."""

    product_id: int
    branch_id: int | None
    amount: Decimal
    grade: str
    customer_rating: str | None = None
    related_party: bool = False
    exposure: Decimal | None = None

    def __post_init__(self):
        if self.exposure is None:
            object.__setattr__(self, "exposure", self.amount)

    def as_json(self) -> dict:
        return {"product_id": self.product_id, "branch_id": self.branch_id, "amount": f"{self.amount:.2f}",
                "grade": self.grade, "customer_rating": self.customer_rating, "related_party": self.related_party,
                "exposure": f"{self.exposure:.2f}"}

    @classmethod
    def from_json(cls, data: dict) -> RouteFacts:
        return cls(product_id=data["product_id"], branch_id=data.get("branch_id"), amount=Decimal(data["amount"]),
                   grade=data["grade"], customer_rating=data.get("customer_rating"),
                   related_party=bool(data.get("related_party")),
                   exposure=Decimal(data["exposure"]) if data.get("exposure") else None)


@dataclass
class RouteResult:
    route: str  # auto, branch, head_office, committee, auto_decline
    matrix_version: int | None
    referrals: list[dict] = field(default_factory=list)  # why the fast track did not apply
    rule_note: str = ""
    rule: AuthorityRule | None = None
    facts: RouteFacts | None = None


class DecisionOutcome(StrEnum):
    """What one decision did to the case."""

    APPROVED = "approved"  # final approval: the offer is made
    DECLINED = "declined"  # final decline
    RETURNED = "returned"  # back to the RM for due diligence (a return, or a committee without a quorum)
    ESCALATED = "escalated"  # approved below the final tier: recommended upwards, the case waits at the next tier
    VOTED = "voted"  # a committee member's vote recorded: the case waits for the chair's resolution


@dataclass(frozen=True)
class DecisionResult:
    """What happened, for the conductor: it need not read the case again to learn it."""

    outcome: DecisionOutcome
    application: LoanApplication  # the locked row, as written
    case: ApprovalCase
    from_tier: str
    to_tier: str
    decision: Decision | None = None  # the approver's record (a committee resolution has none)
    resolution: CommitteeResolution | None = None

    @property
    def closed(self) -> bool:
        """The case left approval: approved, declined or returned to the RM."""
        return self.outcome in (DecisionOutcome.APPROVED, DecisionOutcome.DECLINED, DecisionOutcome.RETURNED)


def _reason(code: str, zh: str, en: str) -> dict:
    return {"code": code, "message": zh, "message_en": en}


# ---------------------------------------------------------------- the authority matrix as versioned data
def authority_matrix_active() -> AuthorityMatrixVersion:
    version = refcache.cached(("authority_matrix_active",), lambda: AuthorityMatrixVersion.objects.filter(is_active=True)
                              .order_by("-number").first())
    if version is None:
        raise ApplicationError(_("未配置授权矩阵 / No authority matrix is active."))
    return version


def _rule_row(rule: AuthorityRule) -> dict:
    return {"priority": rule.priority, "product": rule.product_id, "branch": rule.branch_id,
            "min_amount": None if rule.min_amount is None else f"{rule.min_amount:.2f}",
            "max_amount": None if rule.max_amount is None else f"{rule.max_amount:.2f}", "grades": rule.grades,
            "customer_ratings": rule.customer_ratings, "related_party": rule.related_party, "route": rule.route,
            "note": rule.note}


@transaction.atomic
def matrix_version_draft_create(*, by, based_on: AuthorityMatrixVersion | None = None, note: str = "") -> AuthorityMatrixVersion:
    """A new draft (草稿) copied row by row from `based_on` (the active version by default)."""
    based_on = based_on or authority_matrix_active()
    # Numbers are handed out under a lock on the newest version so two drafts never share one.
    last = AuthorityMatrixVersion.objects.select_for_update().order_by("-number").first()
    draft = AuthorityMatrixVersion.objects.create(number=(last.number if last else 0) + 1, based_on=based_on,
                                                  note=note or f"based on v{based_on.number}", created_by=by)
    AuthorityRule.objects.bulk_create([
        AuthorityRule(version=draft, priority=r.priority, product_id=r.product_id, branch_id=r.branch_id,
                      min_amount=r.min_amount, max_amount=r.max_amount, grades=list(r.grades),
                      customer_ratings=list(r.customer_ratings), related_party=r.related_party, route=r.route, note=r.note)
        for r in based_on.rules.order_by("priority", "id")
    ])
    audit_record(actor=by, action="authority_matrix.draft", obj=draft, to_state="draft",
                 data={"number": draft.number, "based_on": based_on.number})
    return draft


def _draft_locked(version: AuthorityMatrixVersion) -> AuthorityMatrixVersion:
    version = AuthorityMatrixVersion.objects.select_for_update().get(pk=version.pk)
    if not version.is_draft:
        raise Conflict(_("已启用的版本不能修改，请复制为新草稿 / An activated version is frozen; copy it to a new draft."),
                       state=version.state)
    return version


@transaction.atomic
def authority_rule_save(*, version: AuthorityMatrixVersion, by, rule: AuthorityRule | None = None, **fields) -> AuthorityRule:
    """Add a row to a draft, or change one of its rows; validated and audited (before, after)."""
    version = _draft_locked(version)
    before = _rule_row(rule) if rule is not None and rule.pk else {}
    rule = rule or AuthorityRule(version=version)
    if rule.version_id != version.pk:
        raise ApplicationError(_("该规则不属于此版本 / The rule belongs to another version."), errors={"rule": [str(rule.pk)]})
    for name, value in fields.items():
        setattr(rule, name, value)
    try:
        rule.full_clean()
    except DjangoValidationError as exc:
        raise ApplicationError(_("授权规则有误 / The authority rule is not valid."),
                               errors={k: [str(m) for m in v] for k, v in exc.message_dict.items()}) from None
    rule.save()
    audit_record(actor=by, action="authority_matrix.rule_change" if before else "authority_matrix.rule_add", obj=version,
                 data={"rule": rule.pk, "before": before, "after": _rule_row(rule)})
    return rule


@transaction.atomic
def authority_rule_delete(*, version: AuthorityMatrixVersion, by, rule: AuthorityRule) -> None:
    version = _draft_locked(version)
    row = _rule_row(rule)
    rule.delete()
    audit_record(actor=by, action="authority_matrix.rule_delete", obj=version, data={"before": row})


@transaction.atomic
def matrix_version_activate(*, version: AuthorityMatrixVersion, by, reason: str = "") -> AuthorityMatrixVersion:
    """Put a draft in force. The version it replaces is retired; cases already routed keep their version."""
    versions = {v.pk: v for v in AuthorityMatrixVersion.objects.select_for_update().order_by("number")}
    version = versions[version.pk]
    if not version.is_draft:
        raise Conflict(_("只有草稿可以启用 / Only a draft can be activated."), state=version.state)
    rules = list(version.rules.order_by("priority", "id"))
    if not rules:
        raise ApplicationError(_("草稿没有任何授权规则 / The draft has no rules."), errors={"rules": [_("至少一条 / At least one.")]})
    errors = {}
    for rule in rules:
        try:
            rule.clean()
        except DjangoValidationError as exc:
            errors[f"rule_{rule.pk}"] = [str(m) for msgs in exc.message_dict.values() for m in msgs]
    if errors:
        raise ApplicationError(_("授权规则有误 / Some rules are not valid."), errors=errors)
    now = timezone.now()
    previous = next((v for v in versions.values() if v.is_active), None)
    if previous is not None:
        AuthorityMatrixVersion.objects.filter(pk=previous.pk).update(is_active=False, retired_at=now)
        audit_record(actor=by, action="authority_matrix.retire", obj=previous, from_state="active", to_state="retired",
                     data={"replaced_by": version.number})
    AuthorityMatrixVersion.objects.filter(pk=version.pk).update(is_active=True, activated_at=now, activated_by=by)
    version.refresh_from_db()
    audit_record(actor=by, action="authority_matrix.activate", obj=version, from_state="draft", to_state="active", reason=reason,
                 data={"number": version.number, "replaces": previous.number if previous else None,
                       "rules": [_rule_row(r) for r in rules]})
    return version


# ---------------------------------------------------------------- routing
def _related_parties(*, values: list[str | None], indexes: list[str | None]):
    """The insider list's active entries whose USCC is one of `values` or whose ID number's blind index is one of
    `indexes` (the enterprise's USCC and its legal representative's ID number, each looked for in both)."""
    return (RelatedParty.objects.filter(Q(uscc__in=values) | Q(id_number_bidx__in=indexes), is_active=True)
            .exclude(uscc="", id_number=""))


def _related_party_keys(enterprise) -> tuple[list[str | None], list[str | None]]:
    values = [enterprise.uscc or None, enterprise.legal_rep_id_number or None]
    return values, [crypto.blind_index(v) if v else None for v in values]


def _conflicts(*, enterprise_id: int):
    return ConflictOfInterest.objects.filter(enterprise_id=enterprise_id, is_active=True)


def _related_party_reason(name: str, relation: str) -> dict:
    label = dict(RelatedParty.RELATIONS).get(relation, relation)
    return _reason("RELATED_PARTY", f"关联方：{name}（{label}）", f"Related party: {name} ({relation})")


def _conflict_reason(username: str, why: str) -> dict:
    return _reason("CONFLICT_OF_INTEREST", f"{username} 申报了利益冲突：{why}",
                   f"{username} declared a conflict of interest: {why}")


_PARTY, _CONFLICT = 1, 2


def _related_party_rows(uscc, rep_id, uscc_index, rep_index, enterprise_id):
    columns = ("row_kind", "row_text", "row_detail", "row_at", "id")
    parties = _related_parties(values=[uscc, rep_id], indexes=[uscc_index, rep_index]).annotate(
        row_kind=Value(_PARTY), row_text=F("name"), row_detail=F("relation"), row_at=F("created_at"))
    conflicts = _conflicts(enterprise_id=enterprise_id).annotate(
        row_kind=Value(_CONFLICT), row_text=F("user__username"), row_detail=F("reason"), row_at=F("declared_at"))
    return (parties.values_list(*columns).union(conflicts.values_list(*columns), all=True)
            .order_by("row_kind", "row_at", "id"))


_RELATED_PARTY_ROWS = PreparedRows(_related_party_rows, str, str, str, str, int)


def related_party_reasons(*, enterprise) -> list[dict]:
    """Why a case is a related-party or conflict-of-interest case (关联方 / 利益冲突); empty when it is not. The
    insider list and the declared conflicts in one statement (UNION ALL), compiled once per process
    (loanservice.prepared.PreparedRows): the parties first, then the conflicts, each in the order they were entered."""
    (uscc, rep_id), (uscc_index, rep_index) = _related_party_keys(enterprise)
    reasons = []
    for kind, text, detail, _at, _id in _RELATED_PARTY_ROWS.rows(uscc, rep_id, uscc_index, rep_index, enterprise.pk):
        reasons.append(_related_party_reason(text, detail) if kind == _PARTY else _conflict_reason(text, detail))
    return reasons


def customer_rating_of(score: Score) -> str | None:
    """The customer rating the matrix routes on: the tax credit rating (纳税信用等级) from the tax data."""
    rating = (score.features or {}).get("tax_grade")
    return str(rating) if rating else None


def route_facts(*, application: LoanApplication, score: Score, related_party: bool | None = None,
                exposure: Decimal | None = None) -> RouteFacts:
    """`exposure`: the borrower's total with this request (the conductor's casework.exposure); the request alone
    when not given."""
    if related_party is None:
        related_party = bool(related_party_reasons(enterprise=application.enterprise))
    return RouteFacts(product_id=application.product_id, branch_id=application.branch_id, amount=application.amount,
                      grade=score.grade, customer_rating=customer_rating_of(score), related_party=related_party,
                      exposure=exposure)


def _compare(value, operator: str, threshold) -> bool:
    if operator == "is_true":
        return value is True or value in ("true", "True", 1)
    if value is None or isinstance(value, bool):
        return False
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return False
    return {"lt": number < threshold, "lte": number <= threshold, "gt": number > threshold, "gte": number >= threshold}[operator]


def referral_warnings(*, score: Score) -> list[dict]:
    """The warnings (ReferralRule rows) this case's data raises; each keeps the case off the fast track. The
    score's snapshots are read unless they are known already (a score just made: application_score keeps them)."""
    rules = refcache.cached(("referral_rules",), lambda: tuple(ReferralRule.objects.filter(is_active=True).order_by("order", "code")))
    if not rules:
        return []
    payloads: dict[str, dict] = {}
    if any(r.source != "features" for r in rules):
        snapshots = [snap for snap in score.snapshots.all() if snap.status == "ok"]
        for snap in sorted(snapshots, key=lambda snap: snap.fetched_at):
            payloads[snap.source] = snap.payload or {}
    warnings = []
    for rule in rules:
        data = (score.features or {}) if rule.source == "features" else payloads.get(rule.source, {})
        if _compare(data.get(rule.field), rule.operator, rule.threshold):
            warnings.append({"code": f"WARNING_{rule.code}", "message": rule.message, "message_en": rule.message_en or rule.message,
                             "value": data.get(rule.field)})
    return warnings


def fast_track_blockers(*, application: LoanApplication, score: Score, related: list[dict] | None = None) -> list[dict]:
    """Every reason, other than amount and grade (the matrix's auto rows), that the no-touch path (信秒贷)
    does not apply: DESIGN.md's product, data-complete, no-warning and no-negative-list conditions."""
    blockers = []
    add = blockers.append
    if not application.product.fast_track:
        add(_reason("PRODUCT_NOT_FAST_TRACK", "该产品不适用自动审批", "The product has no fast track"))
    for source in score.missing_sources:
        add(_reason(f"DATA_MISSING_{source.upper()}", f"数据源缺失：{source}", f"Data source missing: {source}"))
    for gap in application.prescreen.get("gaps", []):
        add(_reason(f"PRESCREEN_UNKNOWN_{gap['code'].upper()}", f"预审项无法判断：{gap['message']}",
                    f"Pre-screen item undetermined: {gap.get('message_en') or gap['message']}"))
    if application.prescreen and not application.prescreen.get("passed", False):
        add(_reason("NEGATIVE_LIST_HIT", "命中负面清单或准入规则", "A negative-list or admission rule was hit"))
    if not application.prescreen:
        add(_reason("PRESCREEN_MISSING", "没有预审结果", "There is no pre-screen result"))
    enterprise = application.enterprise
    hits = manual_negative_hits(uscc=enterprise.uscc, id_number=enterprise.legal_rep_id_number)
    for hit in hits:  # entered after the pre-screen ran
        add(_reason("NEGATIVE_LIST_HIT", f"本行负面清单：{hit}", f"On the bank's negative list: {hit}"))
    for warning in referral_warnings(score=score):
        add({k: warning[k] for k in ("code", "message", "message_en")})
    for reason in related if related is not None else related_party_reasons(enterprise=enterprise):
        add(reason)
    if score.recommended_limit is not None and application.amount > score.recommended_limit:
        add(_reason("AMOUNT_ABOVE_LIMIT", f"申请金额高于测算额度 {money_display(score.recommended_limit)}",
                    f"The amount is above the recommended limit of {money_display(score.recommended_limit)}"))
    return blockers


def _auto_rule_reasons(rules: list[AuthorityRule], facts: RouteFacts) -> list[dict]:
    """Why no auto row of the matrix takes the case, named with the row's limits."""
    autos = [r for r in rules if r.route == "auto" and (r.product_id in (None, facts.product_id))
             and (r.branch_id in (None, facts.branch_id))]
    if not autos or any(r.matches(**_match_args(facts)) for r in autos):
        return []
    reasons = []
    limit = max((r.max_amount for r in autos if r.max_amount is not None), default=None)
    if limit is not None and all(r.max_amount is not None and facts.exposure > r.max_amount for r in autos):
        if facts.exposure > facts.amount:  # a top-up: what the borrower already has counts
            reasons.append(_reason(
                "AMOUNT_ABOVE_FAST_TRACK",
                f"总敞口 {money_display(facts.exposure)}（本次 {money_display(facts.amount)} + 存量 "
                f"{money_display(facts.exposure - facts.amount)}）超过自动审批上限 {money_display(limit)}",
                f"The total exposure of {money_display(facts.exposure)} (this request {money_display(facts.amount)} + "
                f"existing {money_display(facts.exposure - facts.amount)}) is above the fast-track limit of "
                f"{money_display(limit)}"))
        else:
            reasons.append(_reason("AMOUNT_ABOVE_FAST_TRACK", f"金额超过自动审批上限 {money_display(limit)}",
                                   f"The amount is above the fast-track limit of {money_display(limit)}"))
    if all(r.grades and facts.grade not in r.grades for r in autos):
        reasons.append(_reason("GRADE_NOT_FAST_TRACK", f"评级为 {facts.grade}", f"Grade {facts.grade}"))
    if all(r.customer_ratings and facts.customer_rating not in r.customer_ratings for r in autos):
        reasons.append(_reason("RATING_NOT_FAST_TRACK", f"客户评级为 {facts.customer_rating or '—'}",
                               f"Customer rating {facts.customer_rating or '-'}"))
    return reasons


def _match_args(facts: RouteFacts) -> dict:
    return {"product_id": facts.product_id, "branch_id": facts.branch_id, "amount": facts.exposure, "grade": facts.grade,
            "related_party": facts.related_party, "customer_rating": facts.customer_rating}


def route_evaluate(*, rules: list[AuthorityRule], facts: RouteFacts, blockers: list[dict]) -> tuple[str, AuthorityRule | None, list[dict]]:
    """The matrix applied to one case: the first row (by priority) that matches routes it; an auto row
    applies only when nothing blocks the fast track. Pure: the what-if replays cases through it."""
    for rule in rules:
        if not rule.matches(**_match_args(facts)):
            continue
        if rule.route == "auto" and blockers:
            continue  # the no-touch path needs every condition; fall through to a person
        if rule.route in ("auto", "auto_decline"):
            return rule.route, rule, []
        return rule.route, rule, [*_auto_rule_reasons(rules, facts), *blockers]
    return "committee", None, [*_auto_rule_reasons(rules, facts), *blockers]


def route_decide(*, application: LoanApplication, score: Score, version: AuthorityMatrixVersion | None = None,
                 exposure: Decimal | None = None, exposure_parts: dict | None = None) -> RouteResult:
    """Route a scored case by the active matrix and keep the record of how (RoutingRecord). `exposure` is the
    borrower's total with this request and `exposure_parts` its breakdown (the conductor's casework.exposure), kept
    on the record so the route can be explained later."""
    version = version or authority_matrix_active()
    rules = list(refcache.cached(("authority_rules", version.pk), lambda: tuple(version.rules.all().order_by("priority", "id"))))
    related = related_party_reasons(enterprise=application.enterprise)
    facts = route_facts(application=application, score=score, related_party=bool(related), exposure=exposure)
    blockers = fast_track_blockers(application=application, score=score, related=related)
    route, rule, referrals = route_evaluate(rules=rules, facts=facts, blockers=blockers)
    RoutingRecord.objects.create(application=application, matrix_version=version.number, rule=rule,
                                 rule_note=rule.note if rule else "fallback", route=route,
                                 facts={**facts.as_json(), "blockers": blockers,  # replayable by the what-if
                                        **({"exposure_parts": exposure_parts} if exposure_parts else {})},
                                 referrals=referrals, model_version=score.model.version)
    return RouteResult(route=route, matrix_version=version.number, referrals=referrals,
                       rule_note=rule.note if rule else "fallback", rule=rule, facts=facts)


def _offer_set(application: LoanApplication, *, amount: Decimal, term: int, rate: Decimal | None = None,
               spread_bp: Decimal | None = None) -> None:
    """The offer's terms and its rate basis (DESIGN.md "Rates"): the LPR of the product's tenor last published on or
    before the business date, and the spread in basis points. An approver names the annual rate and the spread is
    derived (rate - LPR); the recommendation names the spread and the rate is derived (LPR + spread, within the
    product's band)."""
    product = application.product
    lpr = lpr_on(product.lpr_tenor, business_date())
    if rate is None:
        rate = min(max(rate_of(lpr=lpr.rate, spread_bp=spread_bp), product.rate_floor), product.rate_cap)
    application.offer_amount = amount
    application.offer_rate = rate
    application.offer_lpr_tenor, application.offer_lpr_rate, application.offer_lpr_date = lpr.tenor, lpr.rate, lpr.published_on
    application.offer_spread_bp = spread_bp_of(rate=rate, lpr=lpr.rate)
    application.offer_rate_type = product.rate_type
    application.offer_repricing_months = product.repricing_months if product.rate_type == "floating" else None
    application.offer_term_months = term
    application.offer_repayment_method = application.repayment_method
    application.offer_valid_until = timezone.localdate() + dt.timedelta(days=application.product.offer_valid_days)


def _recommended_price(score: Score | None) -> dict:
    """The recommendation as _offer_set takes it: its spread over the LPR (older scores: their rate)."""
    if score is None:
        return {}
    if score.recommended_spread_bp is not None:
        return {"spread_bp": score.recommended_spread_bp}
    return {"rate": score.recommended_rate} if score.recommended_rate is not None else {}


def auto_decide(*, application: LoanApplication, score: Score, result: RouteResult) -> LoanApplication:
    """The no-touch decision (信秒贷) or the automatic decline of grade E; called on a locked row.
    Like any decision it carries its reason codes and the model and matrix versions."""
    versions = {"model": score.model.version, "matrix": result.matrix_version, "rule": result.rule_note,
                **({"exposure": f"{result.facts.exposure:.2f}"} if result.facts is not None else {})}
    application.route = "auto"
    if result.route == "auto":
        _offer_set(application, amount=application.amount, term=application.term_months, **_recommended_price(score))
        application_transition(application=application, transition="approve", actor=None, reason="AUTO_APPROVE", data=versions)
        Decision.objects.create(application=application, decision="approve", automatic=True, reason_codes=["AUTO_APPROVE"],
                                approved_amount=application.amount, rate=application.offer_rate, term_months=application.term_months,
                                model_version=score.model.version, matrix_version=result.matrix_version,
                                comment=result.rule_note)
        notify(user=application.applicant, kind="decision",
               title=_("您的贷款申请 #%(id)s 已获批准 / Application #%(id)s is approved") % {"id": application.pk},
               url=reverse("portal:application", args=[application.pk]))
    else:
        codes = ["GRADE_E"] + [r["code"] for r in score.reasons[:3]]
        application_transition(application=application, transition="decline", actor=None, reason=",".join(codes), data=versions)
        Decision.objects.create(application=application, decision="decline", automatic=True, reason_codes=codes,
                                model_version=score.model.version, matrix_version=result.matrix_version,
                                comment=result.rule_note)
        notify(user=application.applicant, kind="decision",
               title=_("您的贷款申请 #%(id)s 未获批准 / Application #%(id)s was declined") % {"id": application.pk},
               body="\n".join(r["message"] for r in score.reasons[:3]), url=reverse("portal:application", args=[application.pk]))
    return application


# ---------------------------------------------------------------- manual approval
def approval_case_open(*, application: LoanApplication, route: str, prepared_by, matrix_version: int | None,
                       model_version: int | None) -> ApprovalCase:
    version = AuthorityMatrixVersion.objects.filter(number=matrix_version).first() if matrix_version else None
    case = ApprovalCase.objects.create(application=application, route=route, tier=ROUTE_LEVELS[route][0], prepared_by=prepared_by,
                                       matrix_version=version, model_version=model_version)
    audit_record(actor=prepared_by, action="approval.open", obj=case, to_state=case.status,
                 data={"application": application.pk, "route": route, "tier": case.tier, "matrix": matrix_version})
    _notify_tier(case, application)
    return case


def open_case(application: LoanApplication) -> ApprovalCase | None:
    return application.approval_cases.filter(status=ApprovalCase.Status.PENDING).order_by("-created_at").first()


def tier_members(*, tier: str, branch_id: int | None):
    """Who decides at a tier: its role's users, of the case's branch for the branch tier."""
    qs = User.objects.filter(is_active=True, groups__name=TIER_ROLE[tier])
    if tier == "branch":
        qs = qs.filter(profile__branch_id=branch_id)
    return qs.distinct().order_by("pk")


def _notify_tier(case: ApprovalCase, application: LoanApplication) -> None:
    with in_default_language():
        title = (_("案件 #%(id)s 待您审批（%(tier)s）/ Case #%(id)s awaits your decision")
                 % {"id": application.pk, "tier": case.get_tier_display()})
    excluded = {case.prepared_by_id, application.relationship_manager_id}
    for user in tier_members(tier=case.tier, branch_id=application.branch_id):
        if user.pk not in excluded:
            notify(user=user, kind="approval_queue", title=title, url=reverse("staff:review", args=[application.pk]), email=False)


def _catalogue_conditions(conditions: list[dict]) -> tuple[list[dict], list[str]]:
    """Conditions (checked {code, text} from DecisionSerializer) as the catalogue knows them (kind condition)."""
    items, errors = [], []
    catalogue = {rc.code: rc for rc in ReasonCode.objects.filter(code__in=[c["code"] for c in conditions], kind="condition")}
    for condition in conditions:
        code, text = condition["code"], condition.get("text") or ""
        if code not in catalogue:
            errors.append(_("未知的附加条件：%(c)s / Unknown condition: %(c)s") % {"c": code})
            continue
        items.append({"code": code, "text": text or catalogue[code].text, "text_en": catalogue[code].text_en})
    return items, errors


REASON_KIND_FOR = {"decline": "decline", "return": "return"}


def _decision_fits(*, decision: str, reason_codes: list[str], approved_amount: Decimal | None, rate: Decimal | None,
                   term_months: int | None, conditions: list[dict], application: LoanApplication) -> dict:
    """A checked decision (approvals.serializers.DecisionSerializer) against what only the service knows: the
    reason-code and condition catalogues, the product's bounds and the request."""
    errors: dict[str, list[str]] = {}
    reason_codes = list(dict.fromkeys(reason_codes))
    kinds = dict(ReasonCode.objects.filter(code__in=reason_codes).values_list("code", "kind"))
    unknown = [c for c in reason_codes if c not in kinds]
    if unknown:
        errors["reason_codes"] = [_("未知的原因代码：%(c)s / Unknown reason codes: %(c)s") % {"c": ", ".join(unknown)}]
    elif decision in REASON_KIND_FOR:
        wanted = REASON_KIND_FOR[decision]
        if not any(kinds[c] == wanted for c in reason_codes):
            errors["reason_codes"] = [_("拒绝或退回须选择原因代码 / Choose at least one reason code to decline or return.")]
        wrong = [c for c in reason_codes if kinds[c] != wanted]
        if wrong:
            errors["reason_codes"] = [_("%(c)s 不是%(k)s类原因代码 / %(c)s is not a %(k)s reason code.") % {"c": ", ".join(wrong), "k": wanted}]
    clean = {"reason_codes": reason_codes}
    product = application.product
    if approved_amount is not None:
        if not product.min_amount <= approved_amount <= application.amount:
            errors["approved_amount"] = [_("批准金额须不低于产品下限且不超过申请金额 / The approved amount must be within the product's minimum and the request.")]
        clean["approved_amount"] = approved_amount
    if rate is not None:
        if not product.rate_floor <= rate <= product.rate_cap:
            errors["rate"] = [_("利率须在产品利率区间内（%(lo)s–%(hi)s）/ The rate must be within the product's band.")
                              % {"lo": product.rate_floor, "hi": product.rate_cap}]
        clean["rate"] = rate
    if term_months is not None:
        if not product.min_term_months <= term_months <= application.term_months:
            errors["term_months"] = [_("期限须不短于产品下限且不超过申请期限 / The term must be within the product's minimum and the request.")]
        clean["term_months"] = term_months
    clean["conditions"], condition_errors = _catalogue_conditions(conditions)
    if condition_errors:
        errors["conditions"] = condition_errors
    if errors:
        raise ApplicationError(_("审批意见有误 / The decision is not valid."), errors=errors)
    return clean


def _forbidden(message: str, field_message: str, field_name: str = "decision") -> ApplicationError:
    return ApplicationError(message, errors={field_name: [field_message]}, code="forbidden")


def authority_check(*, user, case: ApprovalCase, application: LoanApplication) -> None:
    """May this user decide (or vote) on the case at its current tier (approvals.decide_case)? Four eyes, one
    decision each, no declared conflict of interest, and the branch's own cases only at the branch tier. When
    not, the first rule that says no names the reason."""
    case.application = application  # the locked row: the rules read the case's RM, enterprise and branch from it
    if roles.can(user, "approvals.decide_case", case):
        return
    _refuse(user, case, [
        (case_rules.holds_tier_role, _("您没有该层级的审批权限 / You have no authority at this tier."),
         _("需要 %(r)s 权限 / Needs the %(r)s role.") % {"r": TIER_ROLE[case.tier]}),
        (case_rules.did_not_prepare, _("四眼原则：经办人不能审批自己准备的案件 / Four eyes: the preparer cannot decide this case."),
         _("四眼原则 / Four eyes")),
        (case_rules.has_no_conflict, _("您已申报与该企业存在利益冲突，须回避 / You declared a conflict of interest with this enterprise."),
         _("利益冲突回避 / Conflict of interest")),
        (case_rules.has_not_decided, _("您已对该案件作出过决定 / You have already decided on this case."), _("不能重复审批 / No second decision.")),
        (case_rules.is_in_case_branch, _("该案件不属于您的分行 / This case belongs to another branch."), _("分行不符 / Wrong branch.")),
    ])


def _refuse(user, case: ApprovalCase, reasons, field_name: str = "decision") -> None:
    """The forbidden error of the first predicate that refuses."""
    for predicate, message, field_message in reasons:
        if not predicate(user, case):
            raise _forbidden(message, field_message, field_name)
    raise _forbidden(_("无权执行此操作 / You are not allowed to do this."), _("无权 / Not allowed."), field_name)


def active_committee() -> CreditCommittee:
    committee = CreditCommittee.objects.filter(is_active=True).select_related("chair").order_by("pk").first()
    if committee is None:
        raise ApplicationError(_("未配置贷审会 / No credit committee is configured."), errors={"committee": [_("请在后台配置 / Configure it in admin.")]})
    return committee


@transaction.atomic
def committee_configure(*, by, chair, quorum: int = 3) -> CreditCommittee:
    if not roles.is_committee(chair):
        raise ApplicationError(_("主任委员须为贷审会委员 / The chair must be a committee member."),
                               errors={"chair": [_("不是贷审会委员 / Not a committee member.")]})
    if int(quorum) < 3:
        raise ApplicationError(_("法定人数至少为3 / The quorum is at least 3."), errors={"quorum": ["≥ 3"]})
    committee = CreditCommittee.objects.select_for_update().filter(is_active=True).order_by("pk").first() or CreditCommittee()
    before = {"chair": committee.chair_id, "quorum": committee.quorum} if committee.pk else {}
    committee.chair, committee.quorum = chair, int(quorum)
    committee.save()
    audit_record(actor=by, action="committee.configure", obj=committee, data={"before": before, "after": {"chair": chair.pk, "quorum": committee.quorum}})
    return committee


def resolution_recorders(committee: CreditCommittee, case: ApprovalCase) -> list:
    """Who may record the committee's resolution on this case, by the committee's rule (data, edited in admin):
    the chair and the secretary; or any member who voted on it; or any member. A member with a declared
    conflict on the enterprise is never one of them."""
    members = tier_members(tier="committee", branch_id=None)
    conflicted = set(ConflictOfInterest.objects.filter(enterprise_id=case.application.enterprise_id, is_active=True)
                     .values_list("user_id", flat=True))
    if committee.resolution_recorders == "members":
        chosen = list(members)
    elif committee.resolution_recorders == "voters":
        voters = set(case.decisions.filter(tier="committee").values_list("approver_id", flat=True))
        chosen = [u for u in members if u.pk in voters]
    else:
        ids = {committee.chair_id, committee.secretary_id} - {None}
        chosen = list(User.objects.filter(pk__in=ids, is_active=True).order_by("pk"))
    return [u for u in chosen if u.pk not in conflicted]


def may_record_resolution(user, case: ApprovalCase, committee: CreditCommittee | None = None) -> bool:
    committee = committee or active_committee()
    return any(u.pk == user.pk for u in resolution_recorders(committee, case))


def _notify_resolution_due(case: ApprovalCase, application: LoanApplication, *, kind: str) -> int:
    """The notice to everyone who may record the resolution: the votes are in (or the deadline passed)."""
    committee = active_committee()
    with in_default_language():
        if kind == "committee_resolution_reminder":
            title = (_("提醒：案件 #%(id)s 表决已完成，决议尚未记录 / Reminder: case #%(id)s is voted, its resolution is not recorded")
                     % {"id": application.pk})
        else:
            title = (_("案件 #%(id)s 待记录决议 / Case #%(id)s: resolution to record") % {"id": application.pk})
    sent = 0
    for user in resolution_recorders(committee, case):
        notify(user=user, kind=kind, title=title, url=reverse("staff:review", args=[application.pk]))
        sent += 1
    return sent


def committee_resolutions_due(*, now=None) -> list[ApprovalCase]:
    """Committee cases whose votes are in (a quorum, or the deadline passed) and whose resolution nobody has
    recorded yet, oldest first."""
    now = now or timezone.now()
    due = []
    cases = (ApprovalCase.objects.filter(status=ApprovalCase.Status.PENDING, tier="committee", resolution__isnull=True)
             .select_related("application").prefetch_related("decisions").order_by("created_at", "id"))
    for case in cases:
        if committee_tally(case, now=now)["outcome"] is not None:
            due.append(case)
    return due


def committee_resolution_remind(*, now=None) -> int:
    """The sweeper's step: a case voted (or lapsed) more than the committee's reminder hours ago with no
    resolution recorded reminds everyone who may record it, again every reminder period, so nothing waits
    unseen. Returns the number of cases reminded."""
    now = now or timezone.now()
    committee = CreditCommittee.objects.filter(is_active=True).order_by("pk").first()
    if committee is None:
        return 0
    period = dt.timedelta(hours=committee.resolution_reminder_hours)
    reminded = 0
    for case in committee_resolutions_due(now=now):
        votes = [d.created_at for d in case.decisions.all() if d.tier == "committee"]
        tally = committee_tally(case, now=now)
        ready_at = max(votes) if tally["cast"] >= tally["quorum"] and votes else tally["deadline"]
        if ready_at is None or now - ready_at < period:
            continue
        url = reverse("staff:review", args=[case.application_id])
        if Notification.objects.filter(kind__in=["committee_resolution_reminder", "committee_resolution_due"], url=url,
                                       created_at__gt=now - period).exists():
            continue
        with transaction.atomic():
            _notify_resolution_due(case, case.application, kind="committee_resolution_reminder")
            audit_record(actor=None, action="committee.resolution_reminder", obj=case,
                         data={"application": case.application_id, "ready_at": ready_at.isoformat()})
        reminded += 1
    return reminded


def committee_deadline(case: ApprovalCase):
    """The votes are due by the committee stage's SLA due time (paused while the applicant is asked)."""
    clock = SlaClock.objects.filter(case_id=case.application_id, stage=COMMITTEE_STAGE, stopped_at__isnull=True).first()
    return clock.due_at if clock else None


def committee_tally(case: ApprovalCase, *, now=None) -> dict:
    """Votes for and against, the quorum, the deadline and what a resolution recorded now would say."""
    committee = active_committee()
    quorum = committee.quorum
    votes = [d for d in case.decisions.all() if d.tier == "committee"]
    yes = sum(1 for d in votes if d.decision == "vote_approve")
    no = sum(1 for d in votes if d.decision == "vote_decline")
    deadline = committee_deadline(case)
    now = now or timezone.now()
    passed = deadline is not None and now > deadline
    if yes + no >= quorum:
        outcome = "approved" if yes * 2 > yes + no else "declined"
    else:
        outcome = "lapsed" if passed else None
    return {"for": yes, "against": no, "cast": yes + no, "quorum": quorum, "deadline": deadline, "deadline_passed": passed,
            "outcome": outcome, "chair_id": committee.chair_id,
            "voters": [d.approver_id for d in votes]}


@transaction.atomic
def approval_decide(*, application: LoanApplication, user, decision: str, reason_codes: list[str] = (), comment: str = "",
                    approved_amount: Decimal | None = None, rate: Decimal | None = None, term_months: int | None = None,
                    conditions: list[dict] = ()) -> DecisionResult:
    """One approver's decision, recommendation or committee vote on the open case, from values checked by
    approvals.serializers.DecisionSerializer, and what it did. The application row is locked first (then its
    approval case), so of two concurrent decisions exactly one wins; the other gets 409 with the state."""
    application = lock_application(application.pk)
    if application.status != LoanApplication.Status.PENDING_APPROVAL:
        raise Conflict(_("该申请当前不在待审批状态 / This application is not pending approval."), state=application.status)
    case = ApprovalCase.objects.select_for_update().filter(application=application, status=ApprovalCase.Status.PENDING).first()
    if case is None:
        raise Conflict(_("没有待审批的案件 / There is no open approval case."), state=application.status)
    clean = _decision_fits(decision=decision, reason_codes=list(reason_codes), approved_amount=approved_amount, rate=rate,
                           term_months=term_months, conditions=list(conditions), application=application)
    authority_check(user=user, case=case, application=application)
    if case.tier == "committee":
        if decision == "return":
            raise ApplicationError(_("贷审会委员只能投同意或反对票；退回由主任委员记录决议 / Committee members vote approve or decline."),
                                   errors={"decision": [_("可选：approve, decline")]})
        deadline = committee_deadline(case)
        if deadline is not None and timezone.now() > deadline:
            raise Conflict(_("投票期限已过 / The voting deadline has passed."), state=application.status)
    score = Score.objects.filter(application=application, is_shadow=False).select_related("model").first()
    kind = decision
    if case.tier == "committee":
        kind = f"vote_{decision}"
    elif decision == "approve" and not case.is_final_tier:
        kind = "recommend"
    try:
        with transaction.atomic():
            record = Decision.objects.create(
                case=case, application=application, approver=user, tier=case.tier, decision=kind,
                reason_codes=clean["reason_codes"], comment=comment, approved_amount=clean.get("approved_amount"),
                rate=clean.get("rate"), term_months=clean.get("term_months"), conditions=clean["conditions"],
                model_version=score.model.version if score else None,
                matrix_version=case.matrix_version.number if case.matrix_version else None,
            )
    except IntegrityError:
        raise _forbidden(_("您已对该案件作出过决定 / You have already decided on this case."), _("不能重复审批 / No second decision.")) from None
    audit_record(actor=user, action=f"approval.{kind}", obj=case, reason=",".join(clean["reason_codes"]),
                 data={"application": application.pk, "tier": case.tier, "comment": comment,
                       "approved_amount": None if record.approved_amount is None else f"{record.approved_amount:.2f}",
                       "rate": None if record.rate is None else str(record.rate), "term_months": record.term_months,
                       "conditions": [c["code"] for c in clean["conditions"]]})
    if clean["conditions"]:
        known = {c["code"] for c in case.conditions}
        case.conditions = [*case.conditions, *[c for c in clean["conditions"] if c["code"] not in known]]

    tier = case.tier

    def result(outcome: DecisionOutcome) -> DecisionResult:
        return DecisionResult(outcome=outcome, application=application, case=case, from_tier=tier, to_tier=case.tier,
                              decision=record)

    if decision == "return":
        _return_to_rm(application=application, case=case, user=user, codes=clean["reason_codes"], comment=comment)
        return result(DecisionOutcome.RETURNED)
    if kind == "recommend":
        case.tier = case.levels[case.levels.index(case.tier) + 1]
        case.save()
        audit_record(actor=user, action="approval.escalate", obj=case, data={"to_tier": case.tier})
        _notify_tier(case, application)
        return result(DecisionOutcome.ESCALATED)
    if case.tier == "committee":
        case.save()
        tally = committee_tally(case)
        if tally["cast"] == tally["quorum"]:
            # The last vote needed: everyone who may record the resolution is told, and the case leads their queue.
            _notify_resolution_due(case, application, kind="committee_resolution_due")
        return result(DecisionOutcome.VOTED)
    _finalise(application=application, case=case, decision=decision, user=user, score=score)
    return result(DecisionOutcome.APPROVED if decision == "approve" else DecisionOutcome.DECLINED)


def _return_to_rm(*, application, case, user, codes: list[str], comment: str) -> None:
    case.return_to_rm()
    case.save()
    application_transition(application=application, transition="return_to_rm", actor=user, reason=",".join(codes))
    with in_default_language():
        notify(user=application.relationship_manager, kind="returned",
               title=_("申请 #%(id)s 被退回 / Application #%(id)s was returned") % {"id": application.pk},
               body=comment, url=reverse("staff:case", args=[application.pk]))


@transaction.atomic
def committee_resolve(*, application: LoanApplication, user, text: str) -> DecisionResult:
    """The chair records the committee's resolution: the majority of the votes cast once a quorum of
    distinct members has voted; without a quorum by the deadline the case goes back to the RM."""
    application = lock_application(application.pk)
    if application.status != LoanApplication.Status.PENDING_APPROVAL:
        raise Conflict(_("该申请当前不在待审批状态 / This application is not pending approval."), state=application.status)
    case = ApprovalCase.objects.select_for_update().filter(application=application, status=ApprovalCase.Status.PENDING,
                                                           tier="committee").first()
    if case is None:
        raise Conflict(_("没有待贷审会决议的案件 / There is no case before the committee."), state=application.status)
    committee = active_committee()
    if not may_record_resolution(user, case, committee):
        raise _forbidden(_("按贷审会规则，您不能记录此决议 / By the committee's rule you do not record this resolution."),
                         _("不是决议记录人 / Not one who records the resolution."), "resolution")
    if not (text or "").strip():
        raise ApplicationError(_("请填写决议内容 / Write the resolution."), errors={"text": [_("此项为必填项 / This field is required.")]})
    tally = committee_tally(case)
    if tally["outcome"] is None:
        raise ApplicationError(
            _("尚未达到法定人数（%(cast)s/%(q)s），期限未到 / No quorum yet (%(cast)s of %(q)s) and the deadline has not passed.")
            % {"cast": tally["cast"], "q": tally["quorum"]},
            errors={"resolution": [_("法定人数不足 / No quorum.")]})
    resolution = CommitteeResolution.objects.create(case=case, chair=user, outcome=tally["outcome"], votes_for=tally["for"],
                                                    votes_against=tally["against"], quorum=tally["quorum"], text=text.strip())
    audit_record(actor=user, action="committee.resolution", obj=case, reason=text.strip()[:200],
                 data={"application": application.pk, "outcome": resolution.outcome, "for": tally["for"],
                       "against": tally["against"], "quorum": tally["quorum"]})
    score = Score.objects.filter(application=application, is_shadow=False).select_related("model").first()
    if resolution.outcome == "lapsed":
        _return_to_rm(application=application, case=case, user=user, codes=["COMMITTEE_NO_QUORUM"], comment=text)
        outcome = DecisionOutcome.RETURNED
    else:
        approved = resolution.outcome == "approved"
        _finalise(application=application, case=case, decision="approve" if approved else "decline", user=user, score=score)
        outcome = DecisionOutcome.APPROVED if approved else DecisionOutcome.DECLINED
    return DecisionResult(outcome=outcome, application=application, case=case, from_tier="committee", to_tier="committee",
                          resolution=resolution)


def request_info_check(*, application: LoanApplication, user) -> None:
    """An approver may ask the applicant for information on a case pending at a tier they decide on."""
    case = open_case(application)
    if case is None or application.relationship_manager_id == user.pk:
        return
    request_info_permission(application=application, user=user, case=case)
    audit_record(actor=user, action="approval.request_info", obj=case, data={"application": application.pk, "tier": case.tier})


def request_info_permission(*, application: LoanApplication, user, case: ApprovalCase) -> None:
    """approvals.request_info_on_case; when not, the first rule that says no names the reason."""
    case.application = application
    if roles.can(user, "approvals.request_info_on_case", case):
        return
    _refuse(user, case, [
        (case_rules.holds_tier_role, _("您没有该层级的审批权限 / You have no authority at this tier."),
         _("需要 %(r)s 权限 / Needs the %(r)s role.") % {"r": TIER_ROLE[case.tier]}),
        (case_rules.is_in_case_branch, _("该案件不属于您的分行 / This case belongs to another branch."), _("分行不符 / Wrong branch.")),
        (case_rules.has_no_conflict, _("您已申报与该企业存在利益冲突，须回避 / You declared a conflict of interest with this enterprise."),
         _("利益冲突回避 / Conflict of interest")),
    ], "message")


@transaction.atomic
def conflict_declare(*, user, enterprise, reason: str) -> ConflictOfInterest:
    if not (reason or "").strip():
        raise ApplicationError(_("请说明利益冲突 / Describe the conflict."), errors={"reason": [_("此项为必填项 / This field is required.")]})
    conflict, created = ConflictOfInterest.objects.update_or_create(user=user, enterprise=enterprise,
                                                                    defaults={"reason": reason.strip(), "is_active": True})
    audit_record(actor=user, action="conflict.declare", obj=conflict, data={"enterprise": enterprise.pk, "reason": conflict.reason})
    return conflict


@transaction.atomic
def related_party_add(*, by, name: str, relation: str, uscc: str = "", id_number: str = "", note: str = "") -> RelatedParty:
    party = RelatedParty(name=name, relation=relation, uscc=uscc.strip().upper(), id_number=id_number.strip().upper(), note=note,
                         created_by=by)
    try:
        party.full_clean()
    except DjangoValidationError as exc:
        raise ApplicationError(_("关联方信息有误 / The related party is not valid."),
                               errors={k: [str(m) for m in v] for k, v in exc.message_dict.items()}) from None
    party.save()
    audit_record(actor=by, action="related_party.add", obj=party, data={"uscc": party.uscc, "id_number": party.id_number,
                                                                        "relation": relation})
    return party


def _finalise(*, application, case, decision: str, user, score: Score | None) -> None:
    decisions = list(case.decisions.all())
    if decision == "approve":
        # The final tier's terms govern; a lower amount or shorter term recommended below it still binds.
        approving = [d for d in decisions if d.decision in ("approve", "recommend", "vote_approve")]
        final = [d for d in approving if d.tier == case.tier]
        amount = min([d.approved_amount for d in approving if d.approved_amount] or [application.amount])
        term = min([d.term_months for d in approving if d.term_months] or [application.term_months])
        rate = next((d.rate for d in reversed(final) if d.rate), None) \
            or next((d.rate for d in reversed(approving) if d.rate), None)
        price = {"rate": rate} if rate is not None else _recommended_price(score)
        if not price:
            raise ApplicationError(_("请填写利率 / Give a rate."), errors={"rate": [_("此项为必填项 / This field is required.")]})
        _offer_set(application, amount=amount, term=term, **price)
        rate = application.offer_rate
        case.approve()
        case.save()
        application_transition(application=application, transition="approve", actor=user,
                               data={"case": case.pk, "amount": f"{amount:.2f}", "rate": str(rate), "term_months": term,
                                     "conditions": [c["code"] for c in case.conditions if isinstance(c, dict)]})
        with in_default_language():
            notify(user=application.applicant, kind="decision",
                   title=_("您的贷款申请 #%(id)s 已获批准 / Application #%(id)s is approved") % {"id": application.pk},
                   url=reverse("portal:application", args=[application.pk]))
    else:
        codes = sorted({c for d in decisions if d.decision in ("decline", "vote_decline") for c in d.reason_codes})
        case.decline()
        case.save()
        application_transition(application=application, transition="decline", actor=user, reason=",".join(codes))
        texts = [rc.text for rc in ReasonCode.objects.filter(code__in=codes)]
        with in_default_language():
            notify(user=application.applicant, kind="decision",
                   title=_("您的贷款申请 #%(id)s 未获批准 / Application #%(id)s was declined") % {"id": application.pk},
                   body="\n".join(texts), url=reverse("portal:application", args=[application.pk]))
