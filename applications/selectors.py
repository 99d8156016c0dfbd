"""Reads for intake: checklists, visible applications, the negative list."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import CharField, Count, Q, QuerySet, Sum, Value
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from loanservice import crypto, refcache, roles
from loanservice.models import SlaClock, SlaTarget
from loanservice.prepared import PreparedRead, PreparedRows
from loanservice.sla import DEFAULT_TARGETS, sla_clock_remaining, sla_target_days
from loanservice.text import phone_display

from .models import (
    DATA_SOURCES,
    ApplicationDocument,
    AuthorisationText,
    Consent,
    DataAuthorisation,
    DocumentRequirement,
    Enterprise,
    IdentityVerification,
    LoanApplication,
    LoanProduct,
    NegativeListEntry,
)


def verified_identity(*, user, enterprise: Enterprise) -> IdentityVerification | None:
    """The latest passed verification of `user` acting for `enterprise`, or None. A legal representative's lapses
    when the enterprise's registered representative changes (another ID number on file); an agent's counts only
    once operations approved the power of attorney (identity_review_decide)."""
    if not getattr(user, "is_authenticated", False):
        return None
    for record in IdentityVerification.objects.filter(user=user, enterprise=enterprise,
                                                      result=IdentityVerification.PASSED).order_by("-created_at", "-id")[:5]:
        if record.method == IdentityVerification.AGENT:
            if record.review_status == IdentityVerification.REVIEW_APPROVED:  # operations approved the power of attorney
                return record
        elif record.id_number == (enterprise.legal_rep_id_number or "").upper():
            return record
    return None


def identity_review_pending(*, user, enterprise: Enterprise) -> IdentityVerification | None:
    """The user's agent verification for `enterprise` awaiting operations' review of the power of attorney."""
    return (IdentityVerification.objects.filter(user=user, enterprise=enterprise, result=IdentityVerification.PASSED,
                                                review_status=IdentityVerification.REVIEW_PENDING)
            .order_by("-created_at", "-id").first())


def identity_reviews_pending(*, limit: int = 200) -> list[IdentityVerification]:
    """Agents' powers of attorney awaiting review, oldest first (one query)."""
    return list(IdentityVerification.objects.filter(result=IdentityVerification.PASSED,
                                                    review_status=IdentityVerification.REVIEW_PENDING)
                .select_related("enterprise", "user").order_by("created_at", "id")[:limit])


def authorisation_text_current() -> AuthorisationText | None:
    return AuthorisationText.objects.filter(is_current=True).order_by("-published_at").first()


def authorisations_live(*, enterprise: Enterprise) -> list[DataAuthorisation]:
    """The enterprise's authorisations in force, newest first, with the sources still live on each."""
    return list(DataAuthorisation.objects.filter(enterprise=enterprise, withdrawn_at__isnull=True)
                .prefetch_related("consents").order_by("-granted_at", "-id"))


def owner_authorisation_live(*, uscc: str, user) -> tuple[int | None, list[str]]:
    """For a signed-in owner of the enterprise with this USCC: its latest live data authorisation (id) and every
    source still authorised on its applications; (None, []) when there is none."""
    if not getattr(user, "is_authenticated", False):
        return None, []
    live = list(Consent.objects.filter(application__enterprise__uscc=uscc, application__enterprise__owner=user,
                                       authorisation__isnull=False, authorisation__withdrawn_at__isnull=True)
                .order_by("-granted_at", "-id").values_list("authorisation_id", "source"))
    if not live:
        return None, []
    return live[0][0], sorted({source for _id, source in live})


def applicable_checklist(product: LoanProduct, *, amount: Decimal | None = None,
                         legal_form: str | None = None) -> list[DocumentRequirement]:
    """Exactly the checklist the application will ask for (conditions on amount and legal form applied).

    The product page, the wizard's documents step and the submit check all read it from here."""
    prefetched = getattr(product, "_prefetched_objects_cache", {}).get("checklist")
    checklist = prefetched if prefetched is not None else refcache.cached(
        ("checklist", product.pk), lambda: tuple(product.checklist.all()))
    return [req for req in checklist if req.applies_to(amount=amount, legal_form=legal_form)]


# The manual negative list kept per process while it is small enough to hold (loanservice.refcache: any write to it
# bumps the generation on commit); a bigger list is asked of the database, as before, by its indexes.
NEGATIVE_LIST_CACHED_MAX = 20_000


@dataclass(frozen=True)
class _NegativeList:
    by_uscc: dict  # uscc → ((created_at, id, reason, expires_on), …)
    by_id_number: dict  # the ID number's blind index → the same


def _negative_list_read() -> _NegativeList | None:
    rows = list(NegativeListEntry.objects.order_by("created_at", "id").values_list(
        "created_at", "id", "reason", "expires_on", "uscc", "id_number_bidx")[:NEGATIVE_LIST_CACHED_MAX + 1])
    if len(rows) > NEGATIVE_LIST_CACHED_MAX:
        return None
    by_uscc: dict = {}
    by_id_number: dict = {}
    for created_at, pk, reason, expires_on, uscc, bidx in rows:
        entry = (created_at, pk, reason, expires_on)
        if uscc:
            by_uscc.setdefault(uscc, []).append(entry)
        if bidx:
            by_id_number.setdefault(bidx, []).append(entry)
    return _NegativeList({k: tuple(v) for k, v in by_uscc.items()}, {k: tuple(v) for k, v in by_id_number.items()})


def manual_negative_hits(*, uscc: str, id_number: str = "", id_numbers: list[str] | None = None) -> list[str]:
    """Reasons of the manual negative-list entries in force for this USCC or these ID numbers (oldest first)."""
    today = timezone.localdate()
    ids = [i for i in [id_number, *(id_numbers or [])] if i]
    listed = refcache.cached(("negative_list",), _negative_list_read)
    if listed is None:  # too long to hold in every process
        match = Q(uscc=uscc, uscc__gt="") if uscc else Q(pk__in=[])
        if ids:
            match |= Q(id_number__in=ids)
        entries = NegativeListEntry.objects.filter(match).filter(Q(expires_on__isnull=True) | Q(expires_on__gte=today))
        return [e.reason for e in entries.order_by("created_at", "id")]
    found = {}
    for entry in listed.by_uscc.get(uscc, ()) if uscc else ():
        found[entry[1]] = entry
    for bidx in {crypto.blind_index(i) for i in ids} - {""}:
        for entry in listed.by_id_number.get(bidx, ()):
            found[entry[1]] = entry
    return [reason for _at, _pk, reason, expires_on in sorted(found.values(), key=lambda e: (e[0], e[1]))
            if expires_on is None or expires_on >= today]


@dataclass(frozen=True)
class DraftInputs:
    """What a submission checks on a draft besides its row: the consents in force (source → the authorisation
    (id) naming it, None for a consent recorded without one) and the checklist requirements its documents meet."""

    consents: dict[str, int | None]
    uploaded: frozenset[int]

    def authorisations(self) -> dict[str, int]:
        """The live authorisation per source (what the data pulls are made under)."""
        return {source: auth for source, auth in self.consents.items() if auth is not None}


# A draft's live consents and its documents' requirements in one statement, compiled once per process.
_DRAFT_INPUTS = PreparedRows(
    lambda pk: Consent.objects.filter(application_id=pk, withdrawn_at__isnull=True).order_by()
    .values_list("source", "authorisation_id")
    .union(ApplicationDocument.objects.filter(application_id=pk).order_by()
           .values_list(Value(None, output_field=CharField()), "requirement_id"), all=True),
    int)


def draft_inputs(application_id: int) -> DraftInputs:
    """A draft's live consents and uploaded documents in one statement (both are written only under the draft's row
    lock: consent_grant, consent_withdraw, document_upload, document_delete)."""
    rows = _DRAFT_INPUTS.rows(application_id)
    return DraftInputs(consents={source: ref for source, ref in rows if source is not None},
                       uploaded=frozenset(ref for source, ref in rows if source is None))


def products_published() -> QuerySet[LoanProduct]:
    return LoanProduct.objects.filter(is_active=True).prefetch_related("checklist", "criteria")


# One column of a case, compiled once per process: the hot checks of a request (whose case, its status now).
_CASE_APPLICANT = PreparedRows(lambda pk: LoanApplication.objects.filter(pk=pk).values_list("applicant_id"), int)
_CASE_STATUS = PreparedRows(lambda pk: LoanApplication.objects.filter(pk=pk).values_list("status"), int)


def _case_column(pk: int, read: PreparedRows):
    if not 0 < pk < 2**63:  # beyond any id the column can hold: no such case (not a database error)
        return None
    rows = read.rows(pk)
    return rows[0][0] if rows else None


def application_applicant_id(pk: int) -> int | None:
    """Who applied for case `pk` (None: no such case)."""
    return _case_column(pk, _CASE_APPLICANT)


def application_status(pk: int) -> str | None:
    """The case's status as committed now (None: no such case)."""
    return _case_column(pk, _CASE_STATUS)


_CASE = PreparedRead(lambda pk: LoanApplication.objects.select_related("product", "enterprise", "applicant").filter(pk=pk))


def application_read(pk: int) -> LoanApplication:
    """The case with its product, enterprise and applicant, not locked (what the conductor reads before it
    gathers data; compiled once per process: loanservice.prepared)."""
    return _CASE.get(pk)


def applications_visible_to(user) -> QuerySet[LoanApplication]:
    """The object rule for cases: an applicant sees its own; staff see their branch (head office roles,
    risk and admin see all)."""
    qs = LoanApplication.objects.select_related("enterprise", "product", "relationship_manager", "branch")
    return roles.scope_to(qs, user, owner="applicant", branch_exclude={"status": LoanApplication.Status.DRAFT})


def enterprises_visible_to(user) -> QuerySet[Enterprise]:
    return roles.scope_to(Enterprise.objects.all(), user, owner="owner", bank_wide=roles.BANK_WIDE | {roles.INTEGRATION})


def enterprises_reassignable_by(user) -> QuerySet[Enterprise]:
    qs = Enterprise.objects.select_related("relationship_manager__profile", "branch", "owner")
    role_set = roles.user_roles(user)
    if roles.ADMIN in role_set:
        return qs
    match = Q(relationship_manager__profile__supervisor=user)
    if roles.BRANCH_APPROVER in role_set and roles.user_branch_id(user):
        match |= Q(branch_id=roles.user_branch_id(user))
    return qs.filter(match)


def relationship_managers_with_load(*, branch_id: int | None = None) -> QuerySet:
    """Active RMs (of a branch, when given) with their open case load, lightest first."""

    qs = get_user_model().objects.filter(groups__name=roles.RM, is_active=True)
    if branch_id:
        qs = qs.filter(profile__branch_id=branch_id)
    return (qs.select_related("profile", "profile__branch")
            .annotate(load=Count("rm_cases", filter=Q(rm_cases__status__in=LoanApplication.OPEN_STATES)))
            .order_by("load", "id"))


# ---------------------------------------------------------------- the applicant's status tracker
TRACKER_STAGES = [
    ("apply", gettext_lazy("填写申请 / Application")),
    ("prescreen", gettext_lazy("预审 / Pre-screen")),
    ("review", gettext_lazy("审查 / Review")),
    ("approval", gettext_lazy("审批 / Approval")),
    ("offer", gettext_lazy("批复 / Offer")),
    ("contract", gettext_lazy("签约 / Contract")),
    ("disbursement", gettext_lazy("放款 / Disbursement")),
]
_STAGE_OF_STATUS = {
    "draft": "apply", "prescreen_declined": "prescreen", "under_review": "review", "pending_approval": "approval",
    "declined": "approval", "approved": "offer", "expired": "offer", "contracting": "contract", "signed": "disbursement",
}
TIER_HOLDERS = {
    "branch": gettext_lazy("分行审批人 / the branch approver"),
    "head_office": gettext_lazy("总行审批人 / the head office approver"),
    "committee": gettext_lazy("贷款审查委员会 / the credit committee"),
}


def _person(user) -> str:
    if user is None:
        return ""
    profile = getattr(user, "profile", None)
    name = (getattr(profile, "display_name", "") or user.get_full_name() or user.get_username())
    phone = getattr(profile, "phone", "")
    return f"{name}（{phone_display(phone)}）" if phone else name


def _current_stage(application: LoanApplication) -> str | None:
    status = application.status
    if status == LoanApplication.Status.AWAITING_INFO:
        return "approval" if application.info_return_status == "pending_approval" else "review"
    if status == LoanApplication.Status.WITHDRAWN:
        return None
    return _STAGE_OF_STATUS.get(status)


def sla_targets_map() -> dict[tuple[str, str], Decimal]:
    """Every SLA target by (stage, product code; "" for the default), in one query."""

    return {(t.stage, t.product_code): t.business_days for t in SlaTarget.objects.all()}


def _target_days(stage: str, product_code: str, targets: dict | None) -> Decimal:
    if targets is None:
        return sla_target_days(stage=stage, product_code=product_code)
    return targets.get((stage, product_code)) or targets.get((stage, "")) or DEFAULT_TARGETS[stage]


def application_tracker(application: LoanApplication, *, clock=None, now=None, targets: dict | None = None) -> dict:
    """Where the case is, who holds it, what is expected next and the SLA for that step (the portal's tracker).

    `clock` is the case's running SLA clock, if any, and `targets` the SLA targets (`sla_targets_map`): the
    caller fetches them once, so lists stay at a constant number of queries."""

    S = LoanApplication.Status
    status = application.status
    stage = _current_stage(application)
    codes = [code for code, _label in TRACKER_STAGES]
    failed = status in (S.PRESCREEN_DECLINED, S.DECLINED, S.EXPIRED)
    if status == S.DISBURSED:
        index = len(codes)
    elif stage is None:
        index = -1
    else:
        index = codes.index(stage)
    stages = []
    for i, (code, label) in enumerate(TRACKER_STAGES):
        state = "done" if i < index else "current" if i == index else "todo"
        if i == index and failed:
            state = "failed"
        stages.append({"code": code, "label": label, "state": state})
    rm = _person(application.relationship_manager)
    holder, expected, sla_stage, due_on = "", "", "", None
    if status == S.DRAFT:
        holder, expected = _("您 / You"), _("完成各步骤后提交，预审结果即时可见 / Finish the steps and submit; the pre-screen answers at once")
    elif status == S.UNDER_REVIEW and not application.route:
        holder = _("系统 / The system")
        expected = _("自动获取数据并评分，通常几秒内完成 / Data is fetched and scored automatically, usually within seconds")
    elif status == S.UNDER_REVIEW:
        holder = _("客户经理 %(rm)s / Relationship manager %(rm)s") % {"rm": rm or "—"}
        expected = _("尽职调查（必要时现场或视频走访），然后提交审批 / Due diligence (a site or video visit when needed), "
                     "then sending the case to approval")
        sla_stage = "due_diligence"
    elif status == S.AWAITING_INFO:
        holder = _("您 / You")
        expected = _("请在本页回复客户经理的补充资料请求 / Answer the relationship manager's request for information "
                     "on this page")
        open_requests = [r for r in application.info_requests.all() if r.responded_at is None]  # prefetch-friendly
        due_on = open_requests[-1].due_on if open_requests else None
    elif status == S.PENDING_APPROVAL:
        holder = TIER_HOLDERS.get(application.route, TIER_HOLDERS["branch"])
        expected = _("在授权范围内审批：批准、拒绝或退回补充 / A decision within their authority: approve, decline or "
                     "return for more work")
        sla_stage = {"head_office": "head_office_approval", "committee": "committee_approval"}.get(
            application.route, "branch_approval")
    elif status == S.APPROVED:
        holder = _("您 / You")
        expected = _("确认批复（金额、利率、期限），接受后生成合同 / Review the offer (amount, rate, term); accepting it "
                     "issues the contract")
        due_on = application.offer_valid_until
    elif status == S.CONTRACTING:
        holder = _("您，随后是银行 / You, then the bank")
        expected = _("阅读并签署电子合同，银行随后盖章 / Read and sign the e-contract; the bank then seals it")
        sla_stage = "contracting"
    elif status == S.SIGNED and application.product.is_credit_line:  # a line stays signed: drawn from, not paid out
        holder = _("您 / You")
        expected = _("额度合同已生效：可在额度内随时用款，还款后额度恢复 / The line is in force: draw within the limit at "
                     "any time; what you repay can be drawn again")
    elif status == S.SIGNED:
        holder = _("系统 / The system") if application.route == "auto" else _("运营部门 / Operations")
        expected = _("放款到您的账户 / Paying the loan out to your account")
        sla_stage = "disbursement"
    elif status == S.DISBURSED:
        holder, expected = _("您 / You"), _("按还款计划还款 / Repay on the schedule")
    elif status == S.PRESCREEN_DECLINED:
        expected = _("未通过预审，原因见下方 / The pre-screen was not passed; the reasons are below")
    elif status == S.DECLINED:
        expected = _("未获批准，原因见下方 / Not approved; the reasons are below")
    elif status == S.EXPIRED:
        expected = _("批复已过期，可重新申请 / The offer expired; you can apply again")
    elif status == S.WITHDRAWN:
        expected = _("申请已撤回 / The application was withdrawn")
    sla = None
    if clock is not None and clock.stopped_at is None:
        sla = {"stage": clock.stage, "target_days": clock.target_days, "due_at": clock.due_at,
               "breached": clock.breached_at is not None, "paused": clock.paused_at is not None,
               "remaining_hours": round(sla_clock_remaining(clock, now=now).total_seconds() / 3600, 1)}
    elif sla_stage:
        sla = {"stage": sla_stage, "target_days": _target_days(sla_stage, application.product.code, targets),
               "due_at": None, "breached": False, "paused": False, "remaining_hours": None}
    done = sum(1 for s in stages if s["state"] == "done")
    return {
        "status": status, "stages": stages, "stage": stage, "holder": holder, "expected": expected, "due_on": due_on,
        "sla": sla, "relationship_manager": rm, "terminal": not application.is_open,
        "percent": round(100 * done / len(stages)),
    }


def open_clocks_by_case(case_ids) -> dict:
    """The running SLA clock of each case, in one query."""

    return {c.case_id: c for c in SlaClock.objects.filter(case_id__in=list(case_ids), stopped_at__isnull=True)
            .order_by("started_at")}


def wizard_resume_step(application: LoanApplication) -> str:
    """Where a saved draft continues: the first step not yet complete."""
    uploaded = set(application.documents.values_list("requirement_id", flat=True))
    for req in applicable_checklist(application.product, amount=application.amount,
                                    legal_form=application.enterprise.legal_form):
        if req.required and not req.satisfied_by_source and req.pk not in uploaded:
            return "documents"
    if verified_identity(user=application.applicant, enterprise=application.enterprise) is None:
        return "verify"
    if set(application.consents.values_list("source", flat=True)) != {code for code, _label in DATA_SOURCES}:
        return "consent"
    return "review"


#: An offer approved and not yet taken: approved (not expired), being contracted, or signed and not yet disbursed.
OFFER_NOT_TAKEN_STATES = [LoanApplication.Status.APPROVED, LoanApplication.Status.CONTRACTING,
                          LoanApplication.Status.SIGNED]


def offers_not_taken(*, exclude_application_ids=()) -> QuerySet[LoanApplication]:
    """Offers approved and not yet taken (approved, contracting, signed, with an offered amount): what the borrower's
    exposure counts of the cases (filter it by enterprise, or by `enterprise_id=OuterRef(...)` inside a statement)."""
    return (LoanApplication.objects.filter(status__in=OFFER_NOT_TAKEN_STATES, offer_amount__isnull=False)
            .exclude(pk__in=list(exclude_application_ids)))


def offers_not_taken_by_enterprise(*, enterprise_ids, exclude_application_ids=()) -> dict[int, Decimal]:
    """The offered amounts of these enterprises' offers approved but not yet taken (one query), for the borrower's
    exposure; `exclude_application_ids`: this request itself, and cases counted elsewhere (an active credit line)."""
    rows = (offers_not_taken(exclude_application_ids=exclude_application_ids)
            .filter(enterprise_id__in=list(enterprise_ids)).values("enterprise_id").annotate(total=Sum("offer_amount")))
    return {row["enterprise_id"]: row["total"] or Decimal("0.00") for row in rows}


def enterprise_group(*, pk: int, rep_index: str | None) -> QuerySet[Enterprise]:
    """The borrower `pk` and its related enterprises (关联企业) as the data shows them: the enterprises with the same
    legal representative (the same resident ID number: one person controls both), given by its blind index
    (`loanservice.crypto.blind_index`; None when the borrower has none: then the borrower alone)."""
    return Enterprise.objects.filter(Q(pk=pk) | Q(legal_rep_id_number_bidx=rep_index))


def related_enterprises(*, enterprise: Enterprise) -> list[Enterprise]:
    """The borrower's related enterprises (关联企业): its group (`enterprise_group`) without itself."""
    if not enterprise.legal_rep_id_number:
        return []
    group = enterprise_group(pk=enterprise.pk, rep_index=crypto.blind_index(enterprise.legal_rep_id_number))
    return list(group.exclude(pk=enterprise.pk).order_by("pk"))
