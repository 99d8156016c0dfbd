"""Approvals: routing by the authority matrix, the fast track, four-eyes decisions, committee votes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from applications.models import LoanApplication
from applications.services import application_transition, lock_application
from loanservice import roles
from loanservice.audit import audit_record
from loanservice.errors import ApplicationError, Conflict
from loanservice.notifications import notify
from underwriting.models import Score

from .models import ROUTE_LEVELS, TIER_ROLE, ApprovalCase, AuthorityMatrixVersion, Decision, ReasonCode

OFFER_VALID_DAYS = 30
COMMITTEE_QUORUM = 3


@dataclass
class RouteResult:
    route: str  # auto, branch, head_office, committee, auto_decline
    matrix_version: int | None
    referrals: list[dict] = field(default_factory=list)  # why the fast track did not apply
    rule_note: str = ""


def authority_matrix_active() -> AuthorityMatrixVersion:
    version = AuthorityMatrixVersion.objects.filter(is_active=True).order_by("-number").first()
    if version is None:
        raise ApplicationError(_("未配置授权矩阵 / No authority matrix is active."))
    return version


def fast_track_blockers(*, application: LoanApplication, score: Score) -> list[dict]:
    """Every reason the no-touch path does not apply, named (DESIGN.md's fast-track conditions)."""
    blockers = []

    def add(code, zh, en):
        blockers.append({"code": code, "message": zh, "message_en": en})

    if not application.product.fast_track:
        add("PRODUCT_NOT_FAST_TRACK", "该产品不适用自动审批", "The product has no fast track")
    if application.amount > Decimal("1000000"):
        add("AMOUNT_ABOVE_FAST_TRACK", "金额超过自动审批上限", "The amount is above the fast-track limit")
    if score.grade not in ("A", "B"):
        add("GRADE_NOT_FAST_TRACK", f"评级为 {score.grade}", f"Grade {score.grade}")
    for source in score.missing_sources:
        add(f"DATA_MISSING_{source.upper()}", f"数据源缺失：{source}", f"Data source missing: {source}")
    for gap in application.prescreen.get("gaps", []):
        add(f"PRESCREEN_UNKNOWN_{gap['code'].upper()}", f"预审项无法判断：{gap['message']}", f"Pre-screen item undetermined: {gap['message_en']}")
    if not application.prescreen.get("passed", False):
        add("NEGATIVE_LIST_HIT", "命中负面清单或准入规则", "A negative-list or admission rule was hit")
    if score.recommended_limit is not None and application.amount > score.recommended_limit:
        add("AMOUNT_ABOVE_LIMIT", "申请金额高于测算额度", "The amount is above the recommended limit")
    return blockers


def route_decide(*, application: LoanApplication, score: Score, related_party: bool = False) -> RouteResult:
    version = authority_matrix_active()
    rules = list(version.rules.all().order_by("priority", "id"))
    referrals = fast_track_blockers(application=application, score=score)
    for rule in rules:
        if not rule.matches(product_id=application.product_id, branch_id=application.branch_id,
                            amount=application.amount, grade=score.grade, related_party=related_party):
            continue
        if rule.route == "auto" and referrals:
            continue  # the no-touch path needs every condition; fall through to a person
        return RouteResult(route=rule.route, matrix_version=version.number, referrals=referrals if rule.route != "auto" else [],
                           rule_note=rule.note)
    return RouteResult(route="committee", matrix_version=version.number, referrals=referrals, rule_note="fallback")


def _offer_set(application: LoanApplication, *, amount: Decimal, rate: Decimal, term: int) -> None:
    application.offer_amount = amount
    application.offer_rate = rate
    application.offer_term_months = term
    application.offer_repayment_method = application.repayment_method
    application.offer_valid_until = timezone.localdate() + dt.timedelta(days=OFFER_VALID_DAYS)


def auto_decide(*, application: LoanApplication, score: Score, result: RouteResult) -> LoanApplication:
    """The no-touch decision (信秒贷) or the automatic decline of grade E; called on a locked row."""
    if result.route == "auto":
        _offer_set(application, amount=application.amount, rate=score.recommended_rate, term=application.term_months)
        application.route = "auto"
        application_transition(application=application, transition="approve", actor=None, reason="AUTO_APPROVE",
                               data={"model": score.model.version, "matrix": result.matrix_version})
        Decision.objects.create(application=application, decision="approve", automatic=True, reason_codes=["AUTO_APPROVE"],
                                approved_amount=application.amount, rate=score.recommended_rate, term_months=application.term_months,
                                model_version=score.model.version, matrix_version=result.matrix_version)
        notify(user=application.applicant, kind="decision",
               title=_("您的贷款申请 #%(id)s 已获批准 / Application #%(id)s is approved") % {"id": application.pk},
               url=f"/portal/applications/{application.pk}/")
    else:
        application.route = "auto"
        codes = ["GRADE_E"] + [r["code"] for r in score.reasons[:3]]
        application_transition(application=application, transition="decline", actor=None, reason=",".join(codes),
                               data={"model": score.model.version, "matrix": result.matrix_version})
        Decision.objects.create(application=application, decision="decline", automatic=True, reason_codes=codes,
                                model_version=score.model.version, matrix_version=result.matrix_version)
        notify(user=application.applicant, kind="decision",
               title=_("您的贷款申请 #%(id)s 未获批准 / Application #%(id)s was declined") % {"id": application.pk},
               body="\n".join(r["message"] for r in score.reasons[:3]), url=f"/portal/applications/{application.pk}/")
    return application


def approval_case_open(*, application: LoanApplication, route: str, prepared_by, matrix_version: int | None,
                       model_version: int | None) -> ApprovalCase:
    version = AuthorityMatrixVersion.objects.filter(number=matrix_version).first() if matrix_version else None
    case = ApprovalCase.objects.create(application=application, route=route, tier=ROUTE_LEVELS[route][0], prepared_by=prepared_by,
                                       matrix_version=version, model_version=model_version)
    audit_record(actor=prepared_by, action="approval.open", obj=case, to_state=case.status,
                 data={"application": application.pk, "route": route, "tier": case.tier, "matrix": matrix_version})
    return case


def open_case(application: LoanApplication) -> ApprovalCase | None:
    return application.approval_cases.filter(status=ApprovalCase.Status.PENDING).order_by("-created_at").first()


def _clean_decision_input(*, decision: str, reason_codes, approved_amount, rate, term_months, application) -> dict:
    errors: dict[str, list[str]] = {}
    if decision not in ("approve", "decline", "return"):
        errors["decision"] = [_("可选：approve, decline, return")]
    reason_codes = list(reason_codes or [])
    known = set(ReasonCode.objects.filter(code__in=reason_codes).values_list("code", flat=True))
    unknown = [c for c in reason_codes if c not in known]
    if unknown:
        errors["reason_codes"] = [_("未知的原因代码：%(c)s / Unknown reason codes: %(c)s") % {"c": ", ".join(unknown)}]
    if decision in ("decline", "return") and not reason_codes:
        errors["reason_codes"] = [_("拒绝或退回须选择原因代码 / Choose at least one reason code to decline or return.")]
    clean = {"reason_codes": reason_codes}
    if approved_amount not in (None, ""):
        try:
            amount = Decimal(str(approved_amount))
            if amount <= 0 or amount > application.amount or amount != amount.quantize(Decimal("0.01")):
                raise InvalidOperation
            clean["approved_amount"] = amount
        except (InvalidOperation, ValueError):
            errors["approved_amount"] = [_("批准金额须为正数且不超过申请金额 / The approved amount must be positive and not above the request.")]
    if rate not in (None, ""):
        try:
            value = Decimal(str(rate))
            if not application.product.rate_floor <= value <= application.product.rate_cap:
                raise InvalidOperation
            clean["rate"] = value
        except (InvalidOperation, ValueError):
            errors["rate"] = [_("利率须在产品利率区间内 / The rate must be within the product's rate band.")]
    if term_months not in (None, ""):
        try:
            term = int(term_months)
            if not application.product.min_term_months <= term <= application.term_months:
                raise ValueError
            clean["term_months"] = term
        except (TypeError, ValueError):
            errors["term_months"] = [_("期限须不超过申请期限 / The term must not exceed the requested term.")]
    if errors:
        raise ApplicationError(_("审批意见有误 / The decision is not valid."), errors=errors)
    return clean


def _check_authority(*, user, case: ApprovalCase, application: LoanApplication) -> None:
    if not roles.has_role(user, TIER_ROLE[case.tier]):
        raise ApplicationError(_("您没有该层级的审批权限 / You have no authority at this tier."),
                               errors={"decision": [_("需要 %(r)s 权限 / Needs the %(r)s role.") % {"r": TIER_ROLE[case.tier]}]}, code="forbidden")
    if user.pk in (case.prepared_by_id, application.relationship_manager_id):
        raise ApplicationError(_("四眼原则：经办人不能审批自己准备的案件 / Four eyes: the preparer cannot decide this case."),
                               errors={"decision": [_("四眼原则 / Four eyes")]}, code="forbidden")
    if case.decisions.filter(approver=user).exists():
        raise ApplicationError(_("您已对该案件作出过决定 / You have already decided on this case."),
                               errors={"decision": [_("不能重复审批 / No second decision.")]}, code="forbidden")
    if case.tier == "branch" and roles.user_branch_id(user) not in (None, application.branch_id):
        raise ApplicationError(_("该案件不属于您的分行 / This case belongs to another branch."),
                               errors={"decision": [_("分行不符 / Wrong branch.")]}, code="forbidden")


@transaction.atomic
def approval_decide(*, application: LoanApplication, user, decision: str, reason_codes=None, comment: str = "",
                    approved_amount=None, rate=None, term_months=None, conditions=None) -> Decision:
    """One approver's decision on the open case. Locks the case; a concurrent loser gets 409."""
    application = lock_application(application.pk)
    if application.status != LoanApplication.Status.PENDING_APPROVAL:
        raise Conflict(_("该申请当前不在待审批状态 / This application is not pending approval."), state=application.status)
    case = ApprovalCase.objects.select_for_update().filter(application=application, status=ApprovalCase.Status.PENDING).first()
    if case is None:
        raise Conflict(_("没有待审批的案件 / There is no open approval case."), state=application.status)
    clean = _clean_decision_input(decision=decision, reason_codes=reason_codes, approved_amount=approved_amount, rate=rate,
                                  term_months=term_months, application=application)
    _check_authority(user=user, case=case, application=application)
    score = Score.objects.filter(application=application, is_shadow=False).select_related("model").first()
    levels = ROUTE_LEVELS[case.route]
    is_final_tier = case.tier == levels[-1]
    kind = decision
    if decision == "approve" and not is_final_tier:
        kind = "recommend"
    elif case.tier == "committee" and decision in ("approve", "decline"):
        kind = f"vote_{decision}"
    try:
        with transaction.atomic():
            record = Decision.objects.create(
                case=case, application=application, approver=user, tier=case.tier, decision=kind,
                reason_codes=clean["reason_codes"], comment=comment, approved_amount=clean.get("approved_amount"),
                rate=clean.get("rate"), term_months=clean.get("term_months"), conditions=list(conditions or []),
                model_version=score.model.version if score else None,
                matrix_version=case.matrix_version.number if case.matrix_version else None,
            )
    except IntegrityError:
        raise ApplicationError(_("您已对该案件作出过决定 / You have already decided on this case."),
                               errors={"decision": [_("不能重复审批 / No second decision.")]}, code="forbidden") from None
    audit_record(actor=user, action=f"approval.{kind}", obj=case, reason=",".join(clean["reason_codes"]),
                 data={"application": application.pk, "tier": case.tier, "comment": comment})
    if conditions:
        case.conditions = [*case.conditions, *conditions]

    if decision == "return":
        case.return_to_rm()
        case.save()
        application_transition(application=application, transition="return_to_rm", actor=user, reason=",".join(clean["reason_codes"]))
        notify(user=application.relationship_manager, kind="returned",
               title=_("申请 #%(id)s 被退回 / Application #%(id)s was returned") % {"id": application.pk},
               body=comment, url=f"/staff/cases/{application.pk}/")
        return record
    if kind == "recommend":
        case.tier = levels[levels.index(case.tier) + 1]
        case.save()
        audit_record(actor=user, action="approval.escalate", obj=case, data={"to_tier": case.tier})
        return record
    if case.tier == "committee":
        outcome = committee_outcome(case)
        if outcome is None:
            case.save()
            return record
        decision = outcome
    _finalise(application=application, case=case, decision=decision, user=user, score=score)
    return record


def committee_outcome(case: ApprovalCase) -> str | None:
    """A majority of at least three distinct members' votes; None while undecided."""
    votes = list(case.decisions.filter(tier="committee").values_list("decision", flat=True))
    yes = votes.count("vote_approve")
    no = votes.count("vote_decline")
    if len(votes) < COMMITTEE_QUORUM:
        return None
    if yes > len(votes) / 2:
        return "approve"
    if no >= len(votes) / 2:
        return "decline"
    return None


def _finalise(*, application, case, decision: str, user, score: Score | None) -> None:
    decisions = list(case.decisions.filter(tier=case.tier))
    if decision == "approve":
        amount = min([d.approved_amount for d in decisions if d.approved_amount] or [application.amount])
        rate = next((d.rate for d in reversed(decisions) if d.rate), None) or (score.recommended_rate if score else None)
        term = min([d.term_months for d in decisions if d.term_months] or [application.term_months])
        if rate is None:
            raise ApplicationError(_("请填写利率 / Give a rate."), errors={"rate": [_("此项为必填项 / This field is required.")]})
        _offer_set(application, amount=amount, rate=rate, term=term)
        case.approve()
        case.save()
        application_transition(application=application, transition="approve", actor=user, data={"case": case.pk})
        notify(user=application.applicant, kind="decision",
               title=_("您的贷款申请 #%(id)s 已获批准 / Application #%(id)s is approved") % {"id": application.pk},
               url=f"/portal/applications/{application.pk}/")
    else:
        codes = sorted({c for d in decisions for c in d.reason_codes})
        case.decline()
        case.save()
        application_transition(application=application, transition="decline", actor=user, reason=",".join(codes))
        texts = [rc.text for rc in ReasonCode.objects.filter(code__in=codes)]
        notify(user=application.applicant, kind="decision",
               title=_("您的贷款申请 #%(id)s 未获批准 / Application #%(id)s was declined") % {"id": application.pk},
               body="\n".join(texts), url=f"/portal/applications/{application.pk}/")
