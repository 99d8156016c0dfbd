"""Intake services: enterprises, drafts, documents, consent, pre-screen, RM assignment, and the
application's lifecycle transitions. Every write runs in a transaction and writes an audit event."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from decimal import Decimal, InvalidOperation

import filetype
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django_fsm import can_proceed

from loanservice import roles
from loanservice.audit import audit_record
from loanservice.errors import ApplicationError, Conflict
from loanservice.models import Branch
from loanservice.notifications import notify

from . import prescreen
from .identifiers import check_resident_id, check_uscc, region_of_uscc
from .models import (
    DATA_SOURCES,
    AdmissionCriterion,
    ApplicationDocument,
    Consent,
    DocumentRequirement,
    Enterprise,
    InfoRequest,
    LoanApplication,
    LoanProduct,
    NegativeListEntry,
)
from .selectors import applicable_checklist, manual_negative_hits

User = get_user_model()
ALL_SOURCES = [code for code, _label in DATA_SOURCES]
MIME_BY_TYPE = {"pdf": "application/pdf", "jpeg": "image/jpeg", "png": "image/png", "ofd": "application/ofd"}


# ---------------------------------------------------------------- enterprises
def enterprise_validate(*, data: dict, exclude_pk: int | None = None) -> tuple[dict, dict[str, list[str]]]:
    """Checks every field of an enterprise form; returns the cleaned data and errors per field."""
    errors: dict[str, list[str]] = {}
    clean = dict(data)
    for name in ("name", "legal_rep_name", "industry_code"):
        if not str(data.get(name) or "").strip():
            errors.setdefault(name, []).append(_("此项为必填项 / This field is required."))
    uscc = check_uscc(str(data.get("uscc") or ""))
    if not uscc.ok:
        errors["uscc"] = uscc.errors
    else:
        clean["uscc"] = uscc.value
        taken = Enterprise.objects.filter(uscc=uscc.value)
        if exclude_pk:
            taken = taken.exclude(pk=exclude_pk)
        if taken.exists():
            errors["uscc"] = [_("该统一社会信用代码已登记，请联系您的客户经理 / This USCC is already registered; "
                                "please contact your relationship manager.")]
    rid = check_resident_id(str(data.get("legal_rep_id_number") or ""))
    if not rid.ok:
        errors["legal_rep_id_number"] = rid.errors
    else:
        clean["legal_rep_id_number"] = rid.value
    clean["id_warnings"] = rid.warnings
    founded = data.get("founded_on")
    if isinstance(founded, str):
        try:
            founded = dt.date.fromisoformat(founded)
        except ValueError:
            founded = None
    if not isinstance(founded, dt.date) or founded > timezone.localdate():
        errors["founded_on"] = [_("请填写有效的成立日期 / Enter a valid founding date.")]
    clean["founded_on"] = founded
    try:
        employees = int(data.get("employees"))
        if employees < 0:
            raise ValueError
        clean["employees"] = employees
    except (TypeError, ValueError):
        errors["employees"] = [_("请填写从业人数（非负整数）/ Enter the number of employees (a whole number).")]
    try:
        revenue = Decimal(str(data.get("annual_revenue")))
        if revenue < 0 or revenue != revenue.quantize(Decimal("0.01")):
            raise InvalidOperation
        clean["annual_revenue"] = revenue
    except (InvalidOperation, TypeError, ValueError):
        errors["annual_revenue"] = [_("请填写有效金额（最多两位小数）/ Enter a valid amount (at most two decimals).")]
    legal_form = data.get("legal_form") or "llc"
    if legal_form not in dict(Enterprise.LEGAL_FORMS):
        errors["legal_form"] = [_("组织形式无效 / Unknown legal form.")]
    clean["legal_form"] = legal_form
    return clean, errors


@transaction.atomic
def enterprise_create(*, owner, data: dict, ip: str | None = None) -> Enterprise:
    clean, errors = enterprise_validate(data=data)
    if errors:
        raise ApplicationError(_("企业信息有误 / The enterprise details are not valid."), errors=errors)
    enterprise = Enterprise.objects.create(
        owner=owner,
        name=clean["name"].strip(),
        uscc=clean["uscc"],
        legal_form=clean["legal_form"],
        legal_rep_name=clean["legal_rep_name"].strip(),
        legal_rep_id_number=clean["legal_rep_id_number"],
        industry_code=clean["industry_code"].strip().upper(),
        founded_on=clean["founded_on"],
        employees=clean["employees"],
        annual_revenue=clean["annual_revenue"],
        region_code=region_of_uscc(clean["uscc"]),
    )
    audit_record(actor=owner, action="enterprise.create", obj=enterprise, ip=ip,
                 data={"uscc": enterprise.uscc, "id_warnings": clean["id_warnings"]})
    return enterprise


# ---------------------------------------------------------------- drafts
def application_validate_request(*, product: LoanProduct, amount, term_months, repayment_method) -> dict:
    errors: dict[str, list[str]] = {}
    try:
        amount = Decimal(str(amount))
        if amount != amount.quantize(Decimal("0.01")):
            raise InvalidOperation
    except (InvalidOperation, TypeError, ValueError):
        errors["amount"] = [_("请填写有效金额（最多两位小数）/ Enter a valid amount (at most two decimals).")]
    else:
        if not product.min_amount <= amount <= product.max_amount:
            errors["amount"] = [_("金额须在 %(min)s 至 %(max)s 元之间 / The amount must be between %(min)s and %(max)s CNY.")
                                % {"min": f"{product.min_amount:,.2f}", "max": f"{product.max_amount:,.2f}"}]
    try:
        term = int(term_months)
    except (TypeError, ValueError):
        errors["term_months"] = [_("请填写期限（月）/ Enter the term in months.")]
    else:
        if not product.min_term_months <= term <= product.max_term_months:
            errors["term_months"] = [_("期限须在 %(min)s 至 %(max)s 个月之间 / The term must be between %(min)s and %(max)s months.")
                                     % {"min": product.min_term_months, "max": product.max_term_months}]
    if repayment_method not in product.repayment_methods:
        errors["repayment_method"] = [_("该产品不支持此还款方式 / This product does not offer that repayment method.")]
    return errors


@transaction.atomic
def application_create(*, applicant, enterprise: Enterprise, product: LoanProduct, amount, term_months: int,
                       repayment_method: str, purpose: str, channel: str = "web") -> LoanApplication:
    if enterprise.owner_id != applicant.pk:
        raise ApplicationError(_("企业不存在 / Enterprise not found."), errors={"enterprise": [_("企业不存在 / Enterprise not found.")]})
    if not product.is_active:
        raise ApplicationError(_("该产品已下架 / This product is not available."), errors={"product": [_("该产品已下架 / This product is not available.")]})
    errors = application_validate_request(product=product, amount=amount, term_months=term_months,
                                          repayment_method=repayment_method)
    if not str(purpose or "").strip():
        errors["purpose"] = [_("请说明贷款用途 / Please state the purpose of the loan.")]
    if errors:
        raise ApplicationError(_("申请信息有误 / The application details are not valid."), errors=errors)
    application = LoanApplication.objects.create(
        applicant=applicant, enterprise=enterprise, product=product, amount=Decimal(str(amount)),
        term_months=int(term_months), repayment_method=repayment_method, purpose=purpose.strip(), channel=channel,
    )
    audit_record(actor=applicant, action="application.create", obj=application, to_state=application.status,
                 data={"product": product.code, "amount": str(application.amount)})
    return application


@transaction.atomic
def application_update_draft(*, application: LoanApplication, user, **fields) -> LoanApplication:
    application = LoanApplication.objects.select_for_update().get(pk=application.pk)
    if application.status != LoanApplication.Status.DRAFT:
        raise Conflict(_("只有草稿可以修改 / Only a draft can be changed."), state=application.status)
    merged = {k: fields.get(k, getattr(application, k)) for k in ("amount", "term_months", "repayment_method")}
    errors = application_validate_request(product=application.product, **merged)
    if errors:
        raise ApplicationError(_("申请信息有误 / The application details are not valid."), errors=errors)
    for key in ("amount", "term_months", "repayment_method", "purpose"):
        if key in fields:
            setattr(application, key, Decimal(str(fields[key])) if key == "amount" else fields[key])
    application.save()
    audit_record(actor=user, action="application.update_draft", obj=application, data={k: str(v) for k, v in fields.items()})
    return application


# ---------------------------------------------------------------- documents and consent
def _sniff(content: bytes) -> str | None:
    kind = filetype.guess(content[:8192])
    if kind is not None and kind.extension in {"pdf", "jpg", "png"}:
        return "jpeg" if kind.extension == "jpg" else kind.extension
    # OFD (China's fixed-layout format) is a ZIP with OFD.xml at the root.
    if content[:4] == b"PK\x03\x04" and b"OFD.xml" in content[:4096]:
        return "ofd"
    return None


@transaction.atomic
def document_upload(*, application: LoanApplication, user, requirement_code: str, name: str, content: bytes,
                    ip: str | None = None) -> ApplicationDocument:
    application = LoanApplication.objects.select_for_update().get(pk=application.pk)
    if application.status not in (LoanApplication.Status.DRAFT, LoanApplication.Status.AWAITING_INFO):
        raise Conflict(_("当前状态不能上传材料 / Documents cannot be added in this state."), state=application.status)
    requirement = DocumentRequirement.objects.filter(product=application.product, code=requirement_code).first()
    if requirement is None:
        raise ApplicationError(_("该产品的材料清单中没有此项 / This document is not on the product's checklist."),
                               errors={"requirement": [_("未知的材料项 / Unknown checklist item.")]})
    if requirement.max_size_mb and len(content) > requirement.max_size_mb * 1024 * 1024:
        raise ApplicationError(_("文件过大 / The file is too large."),
                               errors={"file": [_("文件不能超过 %(n)s MB / The file must not exceed %(n)s MB.") % {"n": requirement.max_size_mb}]})
    if not content:
        raise ApplicationError(_("文件为空 / The file is empty."), errors={"file": [_("文件为空 / The file is empty.")]})
    kind = _sniff(content)
    accepted = requirement.accepted_types or ["pdf", "jpeg", "png"]
    if kind is None or kind not in accepted:
        raise ApplicationError(
            _("文件类型不符 / Wrong file type."),
            errors={"file": [_("仅接受 %(types)s 格式（按文件内容识别）/ Only %(types)s files are accepted (checked by content).")
                             % {"types": ", ".join(t.upper() for t in accepted)}]},
        )
    token = secrets.token_hex(16)
    doc = ApplicationDocument(
        application=application, requirement=requirement, token=token,
        original_name=(name or "upload").replace("/", "_").replace("\\", "_")[:200],
        content_type=MIME_BY_TYPE[kind], size=len(content), sha256=hashlib.sha256(content).hexdigest(),
        uploaded_by=user,
    )
    doc.file.save(token, ContentFile(content), save=False)
    doc.save()
    audit_record(actor=user, action="document.upload", obj=application, ip=ip,
                 data={"document": doc.pk, "requirement": requirement.code, "sha256": doc.sha256, "size": doc.size})
    return doc


@transaction.atomic
def consent_grant(*, application: LoanApplication, user, scopes: list[str], ip: str | None = None) -> list[Consent]:
    unknown = [s for s in scopes if s not in ALL_SOURCES]
    if unknown or not scopes:
        raise ApplicationError(_("授权范围无效 / Invalid consent scope."),
                               errors={"scopes": [_("可选数据源：%(s)s / Choose from: %(s)s") % {"s": ", ".join(ALL_SOURCES)}]})
    application = LoanApplication.objects.select_for_update().get(pk=application.pk)
    if application.status != LoanApplication.Status.DRAFT:
        raise Conflict(_("只有草稿可以授权 / Consent is given on a draft."), state=application.status)
    created = []
    for source in scopes:
        consent, made = Consent.objects.get_or_create(application=application, source=source,
                                                      defaults={"granted_by": user, "ip": ip})
        created.append(consent)
        if made:
            audit_record(actor=user, action="consent.grant", obj=application, ip=ip, data={"source": source})
    return created


def consent_missing(application: LoanApplication) -> list[str]:
    given = set(application.consents.values_list("source", flat=True))
    return [s for s in ALL_SOURCES if s not in given]


# ---------------------------------------------------------------- submit and pre-screen
def prescreen_run(*, enterprise, product: LoanProduct | None, payloads: dict, amount=None,
                  today: dt.date | None = None) -> dict:
    criteria = AdmissionCriterion.objects.filter(is_active=True)
    if product is not None:
        criteria = criteria.filter(Q(products=None) | Q(products=product)).distinct()
    ctx = prescreen.RuleContext(
        enterprise=enterprise, payloads=payloads, today=today or timezone.localdate(), amount=amount,
        manual_hits=manual_negative_hits(uscc=enterprise.uscc, id_number=enterprise.legal_rep_id_number),
    )
    return prescreen.summarise(prescreen.evaluate(criteria.order_by("kind", "order", "code"), ctx))


def documents_missing(application: LoanApplication, payloads: dict) -> list[DocumentRequirement]:
    uploaded = set(application.documents.values_list("requirement_id", flat=True))
    missing = []
    for req in applicable_checklist(application.product, amount=application.amount,
                                    legal_form=application.enterprise.legal_form):
        if not req.required or req.pk in uploaded:
            continue
        if req.satisfied_by_source and payloads.get(req.satisfied_by_source):
            continue
        missing.append(req)
    return missing


def relationship_manager_pick(*, branch: Branch):
    """The RM of the branch with the lightest open case load."""
    open_states = LoanApplication.OPEN_STATES
    return (
        User.objects.filter(groups__name=roles.RM, profile__branch=branch, is_active=True)
        .annotate(load=Count("rm_cases", filter=Q(rm_cases__status__in=open_states)))
        .order_by("load", "id")
        .first()
    )


def branch_for_region(region_code: str) -> Branch | None:
    best, best_len = None, 0
    for branch in Branch.objects.exclude(region_prefixes=""):
        for prefix in branch.prefixes():
            if region_code.startswith(prefix) and len(prefix) > best_len:
                best, best_len = branch, len(prefix)
    return best or Branch.objects.filter(is_default=True).first()


def relationship_manager_assign(application: LoanApplication) -> None:
    """首席服务官: the enterprise keeps one RM; a new customer gets the least-loaded RM of its branch."""
    enterprise = application.enterprise
    if enterprise.relationship_manager_id is None or enterprise.branch_id is None:
        branch = enterprise.branch or branch_for_region(enterprise.region_code)
        enterprise.branch = branch
        if enterprise.relationship_manager_id is None and branch is not None:
            enterprise.relationship_manager = relationship_manager_pick(branch=branch)
        enterprise.save(update_fields=["branch", "relationship_manager"])
    application.branch = enterprise.branch
    application.relationship_manager = enterprise.relationship_manager


def application_submit(*, application: LoanApplication, user, payloads: dict, ip: str | None = None) -> LoanApplication:
    """Pre-screen a locked draft. Raises ApplicationError naming missing documents; never half-saves.

    The caller (the lifecycle conductor) holds the transaction and has pulled the data snapshots.
    """
    if application.status != LoanApplication.Status.DRAFT:
        raise Conflict(_("该申请已提交 / This application was already submitted."), state=application.status)
    missing = documents_missing(application, payloads)
    if missing:
        raise ApplicationError(
            _("请先上传清单要求的材料 / Please upload the documents the checklist asks for."),
            errors={"documents": [f"{r.code}: {r.tr('name')}" for r in missing]},
        )
    result = prescreen_run(enterprise=application.enterprise, product=application.product, payloads=payloads,
                           amount=application.amount)
    application.prescreen = result
    before = application.status
    relationship_manager_assign(application)
    if result["passed"]:
        application.submit()
        application.scoring_requested_at = timezone.now()
    else:
        application.prescreen_decline()
    application.save()
    audit_record(actor=user, action="application.submit", obj=application, from_state=before,
                 to_state=application.status, ip=ip,
                 reason="; ".join(r["code"] for r in result["reasons"]),
                 data={"prescreen_passed": result["passed"], "gaps": [g["code"] for g in result["gaps"]]})
    if result["passed"]:
        notify(user=application.applicant, kind="submitted",
               title=_("您的贷款申请 #%(id)s 已提交，预审通过 / Application #%(id)s submitted and pre-screen passed")
               % {"id": application.pk}, url=f"/portal/applications/{application.pk}/")
    else:
        notify(user=application.applicant, kind="prescreen_declined",
               title=_("您的贷款申请 #%(id)s 未通过预审 / Application #%(id)s did not pass the pre-screen") % {"id": application.pk},
               body="\n".join(r["message"] for r in result["reasons"]), url=f"/portal/applications/{application.pk}/")
    return application


# ---------------------------------------------------------------- transitions used by later stages
def lock_application(pk: int) -> LoanApplication:
    return LoanApplication.objects.select_for_update().select_related("product", "enterprise").get(pk=pk)


def application_transition(*, application: LoanApplication, transition: str, actor, reason: str = "",
                           data: dict | None = None, ip: str | None = None) -> LoanApplication:
    """Run one FSM transition on a locked application, save it and audit it. 409 when not allowed now."""
    method = getattr(application, transition)
    if not can_proceed(method):
        raise Conflict(
            _("当前状态（%(s)s）不允许此操作 / This action is not allowed in the current state (%(s)s).")
            % {"s": application.status},
            state=application.status,
        )
    before = application.status
    method()
    application.save()
    audit_record(actor=actor, action=f"application.{transition}", obj=application, from_state=before,
                 to_state=application.status, reason=reason, data=data, ip=ip)
    return application


@transaction.atomic
def application_request_info(*, application: LoanApplication, user, message: str, due_on: dt.date | None = None) -> InfoRequest:
    if not message.strip():
        raise ApplicationError(_("请说明需要补充的内容 / Say what information is needed."),
                               errors={"message": [_("此项为必填项 / This field is required.")]})
    application = lock_application(application.pk)
    application_transition(application=application, transition="request_info", actor=user, reason=message)
    request = InfoRequest.objects.create(application=application, requested_by=user, message=message.strip(), due_on=due_on)
    notify(user=application.applicant, kind="info_requested",
           title=_("申请 #%(id)s 需要补充资料 / Application #%(id)s needs more information") % {"id": application.pk},
           body=message, url=f"/portal/applications/{application.pk}/")
    return request


@transaction.atomic
def application_respond(*, application: LoanApplication, user, response: str) -> LoanApplication:
    if not response.strip():
        raise ApplicationError(_("请填写回复 / Please write a response."), errors={"response": [_("此项为必填项 / This field is required.")]})
    application = lock_application(application.pk)
    transition = "respond_to_approval" if application.info_return_status == "pending_approval" else "respond_to_review"
    application_transition(application=application, transition=transition, actor=user, reason=response)
    request = application.info_requests.filter(responded_at__isnull=True).last()
    if request:
        request.response = response.strip()
        request.responded_at = timezone.now()
        request.save(update_fields=["response", "responded_at"])
    if application.relationship_manager:
        notify(user=application.relationship_manager, kind="info_received",
               title=_("申请 #%(id)s 客户已补充资料 / The applicant answered on #%(id)s") % {"id": application.pk},
               url=f"/staff/cases/{application.pk}/")
    return application


@transaction.atomic
def application_withdraw(*, application: LoanApplication, user, reason: str = "") -> LoanApplication:
    application = lock_application(application.pk)
    return application_transition(application=application, transition="withdraw", actor=user, reason=reason)


@transaction.atomic
def relationship_manager_reassign(*, enterprise: Enterprise, new_rm, by, reason: str) -> Enterprise:
    if not roles.has_role(new_rm, roles.RM):
        raise ApplicationError(_("只能指派给客户经理 / Only a relationship manager can be assigned."),
                               errors={"relationship_manager": [_("不是客户经理 / Not a relationship manager.")]})
    enterprise = Enterprise.objects.select_for_update().get(pk=enterprise.pk)
    before = enterprise.relationship_manager.get_username() if enterprise.relationship_manager else ""
    enterprise.relationship_manager = new_rm
    enterprise.save(update_fields=["relationship_manager"])
    enterprise.applications.filter(status__in=LoanApplication.OPEN_STATES).update(relationship_manager=new_rm)
    audit_record(actor=by, action="enterprise.reassign_rm", obj=enterprise, reason=reason,
                 data={"from": before, "to": new_rm.get_username()})
    return enterprise


@transaction.atomic
def negative_list_add(*, by, reason: str, uscc: str = "", id_number: str = "", expires_on=None) -> NegativeListEntry:
    if not (uscc or id_number):
        raise ApplicationError(_("请填写统一社会信用代码或身份证号 / Give a USCC or an ID number."),
                               errors={"uscc": [_("此项为必填项 / This field is required.")]})
    entry = NegativeListEntry.objects.create(uscc=uscc, id_number=id_number, reason=reason, expires_on=expires_on,
                                             created_by=by)
    audit_record(actor=by, action="negative_list.add", obj=entry, reason=reason, data={"uscc": uscc, "id_number": id_number})
    return entry
