"""Precision marketing services: import partner lists, derive prospects from settlement customers without a
loan, score each prospect with the pre-qualification rules and the champion scorecard on the data the bank may
use for marketing, assign it to an RM, record contacts, and issue signed invitations to the application wizard."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
from decimal import ROUND_DOWN, Decimal
from types import SimpleNamespace

from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from applications.identifiers import check_uscc, region_of_uscc
from applications.models import DATA_SOURCES, Enterprise, LoanProduct
from applications.services import branch_for_region, prescreen_run, relationship_manager_pick
from loanservice import roles
from loanservice.audit import audit_record
from loanservice.csvfiles import csv_text
from loanservice.errors import ApplicationError
from loanservice.money import parse_money
from postloan.models import Loan
from underwriting import providers as provider_lib
from underwriting import scorecard
from underwriting.features import derive_features
from underwriting.selectors import latest_snapshot, scorecard_champion
from underwriting.services import limit_recommend, pricing_policy, provider_for, rate_recommend, source_config

from .models import LIST_KINDS, ContactAttempt, MarketingDataPolicy, MarketingSettings, Prospect, ProspectList

log = logging.getLogger(__name__)
# Read back by casework.portal_views.apply_start (the application wizard): keep the two in step.
INVITE_SALT = "loanservice.invite"
INVITE_MAX_AGE = 30 * 24 * 3600
MAX_IMPORT_ROWS = 5000
COLUMNS = {  # accepted CSV headers (English or Chinese) → field
    "uscc": "uscc", "统一社会信用代码": "uscc", "name": "name", "企业名称": "name",
    "contact_name": "contact_name", "联系人": "contact_name", "contact_phone": "contact_phone", "联系电话": "contact_phone",
    "industry_code": "industry_code", "行业代码": "industry_code", "annual_revenue": "declared_revenue",
    "年营业收入": "declared_revenue", "employees": "employees", "从业人数": "employees",
}
OUTCOME_STATUS = {
    "no_answer": None, "callback": Prospect.Status.CONTACTED, "interested": Prospect.Status.INTERESTED,
    "not_interested": Prospect.Status.NOT_INTERESTED, "wrong_contact": Prospect.Status.UNREACHABLE,
    "invited": Prospect.Status.INVITED,
}
CLOSED_STATUSES = (Prospect.Status.NOT_INTERESTED, Prospect.Status.DISQUALIFIED)


# ---------------------------------------------------------------- policy
def marketing_sources_allowed() -> list[str]:
    """The sources the policy allows for marketing; nothing is allowed that the policy does not name."""
    return list(MarketingDataPolicy.objects.filter(allowed=True).order_by("source").values_list("source", flat=True))


def marketing_settings() -> SimpleNamespace:
    row = MarketingSettings.objects.filter(effective_on__lte=timezone.localdate()).select_related("product").first()
    if row is not None:
        return SimpleNamespace(product=row.product, lgd=row.lgd, revenue_from_inflow=row.revenue_from_inflow)
    product = (LoanProduct.objects.filter(is_active=True, fast_track=True).order_by("order", "code").first()
               or LoanProduct.objects.filter(is_active=True).order_by("order", "code").first())
    return SimpleNamespace(product=product, lgd=Decimal("0.4500"), revenue_from_inflow=Decimal("0.5000"))


# ---------------------------------------------------------------- data and scoring
def _payloads(prospect: Prospect, sources: list[str], *, today: dt.date) -> tuple[dict, dict]:
    """The allowed sources' payloads: a fresh snapshot the bank already holds, else the configured provider
    (asked directly, nothing stored: a prospect has given no consent to keep its data). Gaps are None."""
    payloads, errors = {}, {}
    hints = {"industry_code": prospect.industry_code} if prospect.industry_code else {}
    if prospect.declared_revenue is not None:
        hints["annual_revenue"] = str(prospect.declared_revenue)
    for source in sources:
        config = source_config(source)
        snap = latest_snapshot(prospect.enterprise, source) if prospect.enterprise_id else None
        if snap is not None and snap.status == snap.OK and (today - snap.as_of).days <= config.freshness_days:
            payloads[source] = snap.payload
            continue
        if config.provider == "push" or not config.is_active:
            payloads[source], errors[source] = None, "no pushed data"
            continue
        try:
            payloads[source] = provider_for(config).fetch(source, prospect.uscc, as_of=today, hints=hints)
        except provider_lib.ProviderError as exc:
            payloads[source], errors[source] = None, str(exc)[:200]
    return payloads, errors


def _revenue_estimate(prospect: Prospect, payloads: dict, inflow_share: Decimal) -> tuple[Decimal | None, str]:
    if prospect.declared_revenue:
        return prospect.declared_revenue, "declared"
    inflow = Decimal(str((payloads.get("internal") or {}).get("settlement_inflow_12m", "0")))
    if inflow > 0 and inflow_share > 0:
        return (inflow / inflow_share).quantize(Decimal("0.01")), "settlement_inflow"
    return None, ""


def prospect_score(*, prospect: Prospect, by=None, today: dt.date | None = None) -> Prospect:
    """Pre-qualify and score one prospect on the marketing-allowed data; set its indicative limit and expected value.

    Expected value (CNY a year) = limit × ((rate − LPR) × (1 − PD) − PD × LGD): the margin over the funding
    benchmark the bank keeps if the loan performs, less the expected loss. Prospects that fail a rule get 0."""
    today = today or timezone.localdate()
    conf = marketing_settings()
    sources = marketing_sources_allowed()
    payloads, errors = _payloads(prospect, sources, today=today)
    revenue, revenue_basis = _revenue_estimate(prospect, payloads, conf.revenue_from_inflow)
    registry = payloads.get("registry") or {}
    founded = registry.get("founded_on")
    stub = SimpleNamespace(  # the shape of an Enterprise, from what the allowed data says
        uscc=prospect.uscc, name=prospect.name, legal_form="llc",
        legal_rep_id_number=registry.get("legal_rep_id_number", ""),
        founded_on=dt.date.fromisoformat(founded) if founded else None,
        industry_code=registry.get("industry_code") or prospect.industry_code,
        employees=prospect.employees or 0, annual_revenue=revenue or Decimal("0"),
    )
    product = prospect.product or conf.product
    pre = prescreen_run(enterprise=stub, product=product, payloads=payloads, today=today)
    features = derive_features(payloads, as_of=today)
    if features.get("revenue_12m") is None and revenue:
        features["revenue_12m"] = float(revenue)
        deposit = (payloads.get("internal") or {}).get("avg_deposit_balance_6m")
        if deposit is not None and revenue > 0:
            features["deposit_to_revenue"] = float(Decimal(str(deposit)) / revenue)
    if features.get("headcount") is None and prospect.employees:
        features["headcount"] = prospect.employees  # as the partner's list declares it
    champion = scorecard_champion()
    # Calibrated for what marketing may see: a feature no allowed source shows scores the development sample's
    # average, not the points of an applicant who withheld it (which made every prospect grade E).
    unseen = tuple(sorted(f["name"] for f in champion.spec["features"] if features.get(f["name"]) is None))
    spec = scorecard.spec_unseen_at_average(champion.spec, champion.development, unseen)
    result = scorecard.score_one(scorecard.compile_spec(spec, key=("marketing", champion.version, unseen)), features)
    policy = pricing_policy(today)
    limit = Decimal("0")
    value = Decimal("0")
    if pre["passed"] and revenue and product is not None:
        stand_in = SimpleNamespace(enterprise=SimpleNamespace(annual_revenue=revenue), product=product)
        # The bank's own limit formula on what marketing may see: revenue (declared or from settlement inflow) and
        # the bank's existing exposure; no tax or bureau figures. Rounded down to ten thousand: an indication.
        limit = limit_recommend(application=stand_in, payloads={"internal": payloads.get("internal") or {}}, policy=policy,
                                collateral_value=Decimal("0"))
        limit = (limit / 10000).to_integral_value(rounding=ROUND_DOWN) * 10000
        rate = rate_recommend(grade=result.grade, product=product, policy=policy)
        pd = Decimal(str(result.pd))
        value = (limit * ((rate - policy.lpr_1y) * (1 - pd) - pd * conf.lgd)).quantize(Decimal("0.01"))
    prospect.product = product
    prospect.prequalified = pre["passed"]
    prospect.prescreen = {"passed": pre["passed"], "reasons": pre["reasons"], "gaps": pre["gaps"]}
    prospect.grade, prospect.points, prospect.pd = result.grade, result.points, Decimal(str(result.pd)).quantize(Decimal("0.000001"))
    prospect.indicative_limit, prospect.expected_value = limit, value
    prospect.data_used = {"sources": [s for s in sources if payloads.get(s) is not None], "gaps": errors,
                          "revenue_basis": revenue_basis, "revenue_estimate": f"{revenue:.2f}" if revenue else None,
                          "not_used": [s for s, _label in DATA_SOURCES if s not in sources]}
    prospect.scored_at = timezone.now()
    # A prospect worth less than nothing (the expected loss above the margin) is not a lead, whatever the rules say.
    lead = bool(pre["passed"] and value >= 0)  # 0: no figure to size a limit on yet, still worth a call
    prospect.data_used["lead"] = lead
    prospect.data_used["reasons"] = [r.to_dict() for r in result.reasons if r.feature not in unseen]
    prospect.data_used["unseen"] = list(unseen)
    if not lead and prospect.status == Prospect.Status.NEW:
        prospect.status = Prospect.Status.DISQUALIFIED
    prospect.save()
    audit_record(actor=by, action="prospect.score", obj=prospect,
                 data={"grade": result.grade, "prequalified": pre["passed"], "limit": f"{limit:.2f}", "sources": prospect.data_used["sources"]})
    return prospect


def _assign(prospect: Prospect) -> None:
    """The enterprise's own RM when the bank knows it; otherwise the least-loaded RM of the region's branch."""
    enterprise = Enterprise.objects.filter(uscc=prospect.uscc).select_related("relationship_manager").first()
    prospect.enterprise = enterprise
    if enterprise is not None and enterprise.relationship_manager_id:
        prospect.relationship_manager_id, prospect.branch_id = enterprise.relationship_manager_id, enterprise.branch_id
        return
    branch = branch_for_region(region_of_uscc(prospect.uscc))
    prospect.branch = branch
    prospect.relationship_manager = relationship_manager_pick(branch=branch) if branch else None


# ---------------------------------------------------------------- lists
def _clean_row(raw: dict) -> tuple[dict, list[tuple[str, str]]]:
    row = {COLUMNS[k.strip()]: (v or "").strip() for k, v in raw.items() if k and k.strip() in COLUMNS}
    errors = []
    check = check_uscc(row.get("uscc", ""))
    if not check.ok:
        errors += [("uscc", m) for m in check.errors]
    else:
        row["uscc"] = check.value
    if not row.get("name"):
        errors.append(("name", _("企业名称必填 / The name is required.")))
    if row.get("declared_revenue"):
        try:
            row["declared_revenue"] = parse_money(row["declared_revenue"])
        except ValidationError as exc:
            errors += [("annual_revenue", m) for m in exc.messages]
    else:
        row["declared_revenue"] = None
    if row.get("employees"):
        try:
            row["employees"] = int(row["employees"])
        except ValueError:
            errors.append(("employees", _("须为整数 / Must be a whole number.")))
    else:
        row["employees"] = None
    return row, errors


def _list_close(plist: ProspectList, created: list[Prospect], *, by, action: str, data: dict,
                today: dt.date | None = None) -> ProspectList:
    """The end of every list: count what was imported, score each new prospect, one audit event."""
    plist.rows_imported = len(created)
    plist.save()
    for prospect in created:
        prospect_score(prospect=prospect, by=by, today=today)
    audit_record(actor=by, action=action, obj=plist, data={**data, "imported": plist.rows_imported})
    return plist


@transaction.atomic
def prospect_list_import(*, kind: str, partner_name: str, file_name: str, content: bytes, by) -> ProspectList:
    """Import a partner's CSV (uscc and name required; contact, industry, revenue and headcount optional; English or
    Chinese headers). Bad rows are reported by row and field and skipped; a USCC already known is a duplicate."""
    if kind not in dict(LIST_KINDS) or kind == "settlement":
        raise ApplicationError(_("名单来源类型无效 / Invalid list kind."), errors={"kind": [_("请选择合作方类型 / Choose a partner kind.")]})
    if not partner_name.strip():
        raise ApplicationError(_("请填写合作方名称 / Name the partner."), errors={"partner_name": [_("此项为必填项 / This field is required.")]})
    reader = csv.DictReader(io.StringIO(csv_text(content)))
    headers = {COLUMNS.get((h or "").strip()) for h in (reader.fieldnames or [])}
    if not {"uscc", "name"} <= headers:
        raise ApplicationError(_("CSV须包含 uscc 和 name 列 / The CSV needs uscc and name columns."),
                               errors={"file": [_("缺少列：uscc（统一社会信用代码）、name（企业名称）/ Missing columns: uscc, name")]})
    plist = ProspectList.objects.create(kind=kind, partner_name=partner_name.strip(), file_name=file_name[:200],
                                        sha256=hashlib.sha256(content).hexdigest(), imported_by=by)
    seen = set(Prospect.objects.values_list("uscc", flat=True))
    created = []
    for number, raw in enumerate(reader, start=2):  # row 1 is the header
        if number - 1 > MAX_IMPORT_ROWS:
            plist.errors.append({"row": number, "field": "file", "message": _("超过%(n)s行的部分未导入 / Rows beyond %(n)s were not imported.") % {"n": MAX_IMPORT_ROWS}})
            break
        plist.rows_total += 1
        row, errors = _clean_row(raw)
        if errors:
            plist.rows_rejected += 1
            plist.errors += [{"row": number, "field": f, "message": str(m)} for f, m in errors]
            continue
        if row["uscc"] in seen:
            plist.rows_duplicate += 1
            continue
        seen.add(row["uscc"])
        prospect = Prospect(prospect_list=plist, source_kind=kind, partner_name=plist.partner_name, uscc=row["uscc"],
                            name=row["name"][:200], contact_name=row.get("contact_name", "")[:100],
                            contact_phone=row.get("contact_phone", "")[:30], industry_code=row.get("industry_code", "")[:10].upper(),
                            declared_revenue=row["declared_revenue"], employees=row["employees"])
        _assign(prospect)
        prospect.save()
        created.append(prospect)
    return _list_close(plist, created, by=by, action="marketing.import",
                       data={"kind": kind, "partner": plist.partner_name, "rows": plist.rows_total,
                             "duplicate": plist.rows_duplicate, "rejected": plist.rows_rejected, "sha256": plist.sha256})


@transaction.atomic
def prospects_derive_from_settlement(*, by, candidates: list[dict] | None = None) -> ProspectList:
    """Settlement customers of the bank (internal data: settlement inflow in the last 12 months) who have no loan.

    `candidates` are rows of the core-banking settlement roster ({uscc, name, ...}); without it, the enterprises
    the bank already knows (registered on the portal) are checked. Needs the internal source to be allowed."""
    if "internal" not in marketing_sources_allowed():
        raise ApplicationError(_("营销数据规则未允许使用行内数据 / The marketing data policy does not allow internal data."),
                               errors={"source": [_("internal 未被允许 / internal is not allowed")]})
    today = timezone.localdate()
    with_loans = set(Loan.objects.values_list("enterprise__uscc", flat=True))
    known = set(Prospect.objects.values_list("uscc", flat=True))
    if candidates is None:
        candidates = [{"uscc": e.uscc, "name": e.name, "industry_code": e.industry_code, "employees": e.employees}
                      for e in Enterprise.objects.exclude(uscc__in=with_loans).exclude(uscc__in=known).order_by("id")]
    plist = ProspectList.objects.create(kind="settlement", partner_name=_("本行结算客户 settlement customers"), imported_by=by)
    created = []
    for raw in candidates:
        plist.rows_total += 1
        check = check_uscc(str(raw.get("uscc", "")))
        if not check.ok or not raw.get("name"):
            plist.rows_rejected += 1
            plist.errors.append({"row": plist.rows_total, "field": "uscc" if not check.ok else "name",
                                 "message": "; ".join(map(str, check.errors)) or "name"})
            continue
        if check.value in known or check.value in with_loans:
            plist.rows_duplicate += 1
            continue
        prospect = Prospect(prospect_list=plist, source_kind="settlement", partner_name=plist.partner_name, uscc=check.value,
                            name=str(raw["name"])[:200], industry_code=str(raw.get("industry_code") or "")[:10],
                            employees=raw.get("employees"))
        internal, _errors = _payloads(prospect, ["internal"], today=today)
        inflow = Decimal(str((internal.get("internal") or {}).get("settlement_inflow_12m", "0")))
        if inflow <= 0:  # not an active settlement customer: left out
            continue
        known.add(check.value)
        _assign(prospect)
        prospect.save()
        created.append(prospect)
    return _list_close(plist, created, by=by, today=today, action="marketing.derive_settlement",
                       data={"candidates": plist.rows_total})


# ---------------------------------------------------------------- contacts and invitations
def _check_owner(prospect: Prospect, user) -> None:
    roles.permission_check(user, "marketing.own_prospect", prospect,
                           message=_("只有该客户的客户经理可以操作 / Only the prospect's RM can do this."),
                           errors={"prospect": [_("不是您的潜在客户 / Not your prospect.")]})


@transaction.atomic
def contact_record(*, prospect: Prospect, by, channel: str, outcome: str, note: str = "",
                   next_action_on: dt.date | None = None) -> ContactAttempt:
    prospect = Prospect.objects.select_for_update().get(pk=prospect.pk)
    _check_owner(prospect, by)
    errors = {}
    if channel not in dict(ContactAttempt.CHANNELS):
        errors["channel"] = [_("联系方式无效 / Invalid channel.")]
    if outcome not in dict(ContactAttempt.OUTCOMES):
        errors["outcome"] = [_("联系结果无效 / Invalid outcome.")]
    if isinstance(next_action_on, str):
        try:
            next_action_on = dt.date.fromisoformat(next_action_on) if next_action_on else None
        except ValueError:
            errors["next_action_on"] = [_("日期格式应为 YYYY-MM-DD / Use YYYY-MM-DD.")]
    if errors:
        raise ApplicationError(_("联系记录有误 / The contact record is not valid."), errors=errors)
    attempt = ContactAttempt.objects.create(prospect=prospect, by=by, channel=channel, outcome=outcome, note=note.strip()[:500],
                                            next_action_on=next_action_on)
    before = prospect.status
    new_status = OUTCOME_STATUS[outcome] or (Prospect.Status.CONTACTED if before == Prospect.Status.NEW else before)
    if new_status != before:
        prospect.status = new_status
        prospect.save(update_fields=["status"])
    audit_record(actor=by, action="prospect.contact", obj=prospect, from_state=before, to_state=prospect.status,
                 data={"channel": channel, "outcome": outcome, "attempt": attempt.pk})
    return attempt


def invitation_token(prospect: Prospect, product: LoanProduct) -> str:
    """The prefill the wizard reads (casework.portal_views._prefill), signed: what the bank knows of the enterprise
    from its list and the public registry, never a personal ID number."""
    data = {"uscc": prospect.uscc, "name": prospect.name, "industry_code": prospect.industry_code, "employees": prospect.employees,
            "annual_revenue": f"{prospect.declared_revenue:.2f}" if prospect.declared_revenue else None,
            "product": product.code, "prospect": prospect.pk, "channel": "invite"}
    return signing.dumps({k: v for k, v in data.items() if v not in (None, "")}, salt=INVITE_SALT, compress=True)


@transaction.atomic
def invitation_create(*, prospect: Prospect, by, product: LoanProduct | None = None) -> str:
    """A signed link (valid 30 days) that opens the application wizard with the product chosen and the enterprise
    prefilled. Recorded as a contact with outcome "invited"."""
    prospect = Prospect.objects.select_for_update().get(pk=prospect.pk)
    _check_owner(prospect, by)
    if prospect.status == Prospect.Status.DISQUALIFIED and prospect.prequalified:
        raise ApplicationError(_("该客户预期价值为负，不作为营销线索 / This prospect's expected value is below zero: not a lead."),
                               errors={"prospect": [_("预期价值为负 / Expected value below zero.")]})
    if prospect.status == Prospect.Status.DISQUALIFIED:
        raise ApplicationError(_("该客户未通过预审，不能邀请 / This prospect failed the pre-qualification."),
                               errors={"prospect": [_("未通过预审 / Not pre-qualified.")]})
    product = product or prospect.product or marketing_settings().product
    if product is None or not product.is_active:
        raise ApplicationError(_("产品不可用 / The product is not available."), errors={"product": [_("产品不可用 / Not available.")]})
    url = f"{reverse('portal:apply', args=[product.code])}?invite={invitation_token(prospect, product)}"
    before = prospect.status
    prospect.status, prospect.invited_at = Prospect.Status.INVITED, timezone.now()
    prospect.save(update_fields=["status", "invited_at"])
    ContactAttempt.objects.create(prospect=prospect, by=by, channel="sms", outcome="invited", note=url[:500])
    audit_record(actor=by, action="prospect.invite", obj=prospect, from_state=before, to_state=prospect.status,
                 data={"product": product.code})
    return url


def invitation_read(token: str) -> dict | None:
    try:
        return signing.loads(token, salt=INVITE_SALT, max_age=INVITE_MAX_AGE)
    except signing.BadSignature:
        return None
