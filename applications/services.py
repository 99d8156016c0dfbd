"""Intake services: enterprises, drafts, documents, consent, pre-screen, RM assignment, and the
application's lifecycle transitions. Every write runs in a transaction and writes an audit event."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import secrets
import zipfile
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import filetype
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django_fsm import can_proceed

from loanservice import roles
from loanservice.audit import audit_record
from loanservice.errors import ApplicationError, Conflict
from loanservice.models import Branch
from loanservice.notifications import in_default_language, notify
from loanservice.text import join_list

from . import prescreen
from .identifiers import check_industry_code, check_resident_id, check_uscc, region_of_uscc
from .models import (
    DATA_SOURCES,
    REPAYMENT_METHODS,
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
from .selectors import applicable_checklist, manual_negative_hits, relationship_manager_can_reassign

User = get_user_model()
ALL_SOURCES = [code for code, _label in DATA_SOURCES]
MIME_BY_TYPE = {"pdf": "application/pdf", "jpeg": "image/jpeg", "png": "image/png", "ofd": "application/ofd"}


# ---------------------------------------------------------------- field validation
REQUIRED = _lazy("此项为必填项 / This field is required.")
MAX_MONEY = Decimal("99999999999999.99")  # 16 digits, 2 decimals (the DecimalField's bounds)
MAX_EMPLOYEES = 10_000_000
TEXT_LIMITS = {"name": 200, "legal_rep_name": 100, "purpose": 300}


def _too_long(limit: int) -> str:
    return _("不能超过 %(n)s 个字 / At most %(n)s characters.") % {"n": limit}


def _clean_text(name: str, value) -> tuple[str, list[str]]:
    text = str(value if value is not None else "").strip()
    if not text:
        return text, [str(REQUIRED)]
    if len(text) > TEXT_LIMITS[name]:
        return text, [_too_long(TEXT_LIMITS[name])]
    return text, []


def _clean_date(value) -> tuple[dt.date | None, list[str]]:
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            value = None
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date) or value > timezone.localdate() or value.year < 1900:
        return None, [_("请填写有效的成立日期（不晚于今天）/ Enter a valid founding date (not in the future).")]
    return value, []


def _clean_whole(value, *, maximum: int) -> tuple[int | None, list[str]]:
    message = _("请填写从业人数（非负整数）/ Enter the number of employees (a whole number).")
    if isinstance(value, bool):
        return None, [message]
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            return None, [message]
    if isinstance(value, float) and not value.is_integer():
        return None, [message]
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None, [message]
    if not 0 <= number <= maximum:
        return None, [message]
    return number, []


def clean_money(value, *, allow_zero: bool = True) -> tuple[Decimal | None, list[str]]:
    """A CNY amount: a number with at most two decimals, within the column's bounds. Commas are allowed."""
    message = _("请填写有效金额（元，最多两位小数）/ Enter a valid amount in CNY (at most two decimals).")
    if isinstance(value, (bool, float)):
        value = str(value) if isinstance(value, float) else None
    try:
        amount = Decimal(str(value).replace(",", "").replace("，", "").strip())
        if amount != amount.quantize(Decimal("0.01")):
            raise InvalidOperation
    except (InvalidOperation, TypeError, ValueError):
        return None, [message]
    if amount < 0 or (amount == 0 and not allow_zero) or amount > MAX_MONEY:
        return None, [message]
    return amount, []


def enterprise_field_clean(name: str, value, *, exclude_pk: int | None = None):
    """One enterprise field, cleaned: (value, errors). The same checks serve the form, the API and htmx."""
    if name in ("name", "legal_rep_name"):
        return _clean_text(name, value)
    if name == "uscc":
        if not str(value or "").strip():
            return "", [str(REQUIRED)]
        check = check_uscc(str(value))
        if not check.ok:
            return check.value, check.errors
        taken = Enterprise.objects.filter(uscc=check.value)
        if exclude_pk:
            taken = taken.exclude(pk=exclude_pk)
        if taken.exists():
            return check.value, [_("该统一社会信用代码已登记，请联系您的客户经理 / This USCC is already registered; "
                                   "please contact your relationship manager.")]
        return check.value, []
    if name == "legal_rep_id_number":
        if not str(value or "").strip():
            return "", [str(REQUIRED)]
        check = check_resident_id(str(value))
        return check.value, check.errors
    if name == "industry_code":
        if not str(value or "").strip():
            return "", [str(REQUIRED)]
        check = check_industry_code(str(value))
        return check.value, check.errors
    if name == "founded_on":
        return _clean_date(value)
    if name == "employees":
        return _clean_whole(value, maximum=MAX_EMPLOYEES)
    if name == "annual_revenue":
        return clean_money(value)
    if name == "legal_form":
        legal_form = value or "llc"
        if not isinstance(legal_form, str) or legal_form not in dict(Enterprise.LEGAL_FORMS):
            return legal_form, [_("组织形式无效 / Unknown legal form.")]
        return legal_form, []
    raise KeyError(name)


ENTERPRISE_FIELDS = ["name", "uscc", "legal_form", "legal_rep_name", "legal_rep_id_number", "industry_code",
                     "founded_on", "employees", "annual_revenue"]


# ---------------------------------------------------------------- enterprises
def enterprise_validate(*, data: dict, exclude_pk: int | None = None) -> tuple[dict, dict[str, list[str]]]:
    """Checks every field of an enterprise form; returns the cleaned data and errors per field."""
    errors: dict[str, list[str]] = {}
    clean: dict = {}
    for name in ENTERPRISE_FIELDS:
        clean[name], field_errors = enterprise_field_clean(name, data.get(name), exclude_pk=exclude_pk)
        if field_errors:
            errors[name] = field_errors
    clean["id_warnings"] = []
    if "legal_rep_id_number" not in errors:
        clean["id_warnings"] = check_resident_id(clean["legal_rep_id_number"]).warnings
    return clean, errors


@transaction.atomic
def enterprise_create(*, owner, data: dict, ip: str | None = None) -> Enterprise:
    clean, errors = enterprise_validate(data=data)
    if errors:
        raise ApplicationError(_("企业信息有误 / The enterprise details are not valid."), errors=errors)
    enterprise = Enterprise.objects.create(
        owner=owner,
        name=clean["name"],
        uscc=clean["uscc"],
        legal_form=clean["legal_form"],
        legal_rep_name=clean["legal_rep_name"],
        legal_rep_id_number=clean["legal_rep_id_number"],
        industry_code=clean["industry_code"],
        founded_on=clean["founded_on"],
        employees=clean["employees"],
        annual_revenue=clean["annual_revenue"],
        region_code=region_of_uscc(clean["uscc"]),
    )
    audit_record(actor=owner, action="enterprise.create", obj=enterprise, ip=ip,
                 data={"uscc": enterprise.uscc, "id_warnings": clean["id_warnings"]})
    return enterprise


# ---------------------------------------------------------------- drafts
REQUEST_FIELDS = ["amount", "term_months", "repayment_method", "purpose"]
CHANNEL_RE = re.compile(r"^[a-z][a-z0-9_]{0,19}$")


def application_field_clean(name: str, value, *, product: LoanProduct):
    """One field of the loan request, checked against the product: (value, errors)."""
    if name == "amount":
        amount, errors = clean_money(value, allow_zero=False)
        if errors:
            return None, errors
        if not product.min_amount <= amount <= product.max_amount:
            return amount, [_("金额须在 %(min)s 至 %(max)s 元之间 / The amount must be between %(min)s and %(max)s CNY.")
                            % {"min": f"{product.min_amount:,.2f}", "max": f"{product.max_amount:,.2f}"}]
        return amount, []
    if name == "term_months":
        term, errors = None, []
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            errors = [_("请填写期限（整月数）/ Enter the term in whole months.")]
        else:
            try:
                term = int(str(value).strip())
            except (TypeError, ValueError):
                errors = [_("请填写期限（整月数）/ Enter the term in whole months.")]
        if errors:
            return None, errors
        if not product.min_term_months <= term <= product.max_term_months:
            return term, [_("期限须在 %(min)s 至 %(max)s 个月之间 / The term must be between %(min)s and %(max)s months.")
                          % {"min": product.min_term_months, "max": product.max_term_months}]
        return term, []
    if name == "repayment_method":
        if value not in product.repayment_methods:
            offered = join_list(label for code, label in REPAYMENT_METHODS if code in product.repayment_methods)
            return value, [_("该产品不支持此还款方式，可选：%(m)s / This product does not offer that repayment method; "
                             "choose: %(m)s") % {"m": offered}]
        return value, []
    if name == "purpose":
        text, errors = _clean_text("purpose", value)
        if errors and not text:
            return text, [_("请说明贷款用途 / Please state the purpose of the loan.")]
        return text, errors
    raise KeyError(name)


def application_validate_request(*, product: LoanProduct, amount, term_months, repayment_method,
                                 purpose=None) -> dict:
    errors: dict[str, list[str]] = {}
    values = {"amount": amount, "term_months": term_months, "repayment_method": repayment_method}
    if purpose is not None:
        values["purpose"] = purpose
    for name, value in values.items():
        _value, field_errors = application_field_clean(name, value, product=product)
        if field_errors:
            errors[name] = field_errors
    return errors


def _clean_request(product: LoanProduct, values: dict) -> dict:
    clean, errors = {}, {}
    for name, value in values.items():
        clean[name], field_errors = application_field_clean(name, value, product=product)
        if field_errors:
            errors[name] = field_errors
    if errors:
        raise ApplicationError(_("申请信息有误 / The application details are not valid."), errors=errors)
    return clean


@transaction.atomic
def application_create(*, applicant, enterprise: Enterprise, product: LoanProduct, amount, term_months: int,
                       repayment_method: str, purpose: str, channel: str = "web") -> LoanApplication:
    if enterprise.owner_id != applicant.pk:
        raise ApplicationError(_("企业不存在 / Enterprise not found."), errors={"enterprise": [_("企业不存在 / Enterprise not found.")]})
    if not product.is_active:
        raise ApplicationError(_("该产品已下架 / This product is not available."), errors={"product": [_("该产品已下架 / This product is not available.")]})
    if not CHANNEL_RE.match(str(channel or "")):
        raise ApplicationError(_("渠道无效 / Invalid channel."),
                               errors={"channel": [_("渠道为不超过20位的小写字母代码 / A lower-case code of up to 20 letters.")]})
    clean = _clean_request(product, {"amount": amount, "term_months": term_months, "repayment_method": repayment_method,
                                     "purpose": purpose})
    application = LoanApplication.objects.create(applicant=applicant, enterprise=enterprise, product=product,
                                                 channel=channel, **clean)
    audit_record(actor=applicant, action="application.create", obj=application, to_state=application.status,
                 data={"product": product.code, "amount": str(application.amount)})
    return application


@transaction.atomic
def application_update_draft(*, application: LoanApplication, user, **fields) -> LoanApplication:
    """Save-and-resume: change the loan request of a draft (only the fields given; each checked)."""
    application = LoanApplication.objects.select_for_update(of=("self",)).select_related("product").get(pk=application.pk)
    if application.status != LoanApplication.Status.DRAFT:
        raise Conflict(_("只有草稿可以修改 / Only a draft can be changed."), state=application.status)
    unknown = set(fields) - set(REQUEST_FIELDS)
    if unknown:
        raise ApplicationError(_("申请信息有误 / The application details are not valid."),
                               errors={name: [_("不能修改此项 / This field cannot be changed.")] for name in sorted(unknown)})
    clean = _clean_request(application.product, fields)
    before = {k: str(getattr(application, k)) for k in clean}
    for key, value in clean.items():
        setattr(application, key, value)
    application.save()
    audit_record(actor=user, action="application.update_draft", obj=application,
                 data={"before": before, "after": {k: str(v) for k, v in clean.items()}})
    return application


# ---------------------------------------------------------------- documents and consent
def _sniff(content: bytes) -> str | None:
    """The file's real type from its bytes (never from its name or the browser's claim)."""
    kind = filetype.guess(content[:8192])
    if kind is not None and kind.extension in {"pdf", "jpg", "png"}:
        return "jpeg" if kind.extension == "jpg" else kind.extension
    # OFD (GB/T 33190, China's fixed-layout format) is a ZIP package with OFD.xml at its root.
    if content[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as package:
                if "OFD.xml" in package.namelist() and _ofd_package_safe(package.infolist()):
                    return "ofd"
        except (zipfile.BadZipFile, ValueError, OSError):
            return None
    return None


# An OFD package that would expand beyond this, or whose members escape its root, is refused: small on the
# wire, it would exhaust whoever opens it (a zip bomb) or write outside the reader's folder.
OFD_MAX_EXPANDED_BYTES = 100 * 1024 * 1024
OFD_MAX_MEMBERS = 10_000
OFD_MAX_RATIO = 200


def _ofd_package_safe(members: list[zipfile.ZipInfo]) -> bool:
    if len(members) > OFD_MAX_MEMBERS or sum(m.file_size for m in members) > OFD_MAX_EXPANDED_BYTES:
        return False
    for m in members:
        parts = m.filename.replace("\\", "/").split("/")
        if m.filename.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            return False
        if m.file_size > 1024 * 1024 and m.file_size > OFD_MAX_RATIO * max(m.compress_size, 1):
            return False
    return True


def _safe_name(name: str) -> str:
    """The applicant's file name, kept as data only (display); never used as a path."""
    cleaned = "".join(ch for ch in (name or "") if ch.isprintable() and ch not in '/\\:*?"<>|').strip(" .")
    return (cleaned or "upload")[:200]


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
        original_name=_safe_name(name),
        content_type=MIME_BY_TYPE[kind], size=len(content), sha256=hashlib.sha256(content).hexdigest(),
        uploaded_by=user,
    )
    doc.file.save(token, ContentFile(content), save=False)
    try:
        doc.save()
        audit_record(actor=user, action="document.upload", obj=application, ip=ip,
                     data={"document": doc.pk, "requirement": requirement.code, "sha256": doc.sha256, "size": doc.size})
    except Exception:
        doc.file.delete(save=False)  # no orphan file when the row is not written
        raise
    return doc


@transaction.atomic
def document_delete(*, document: ApplicationDocument, user, ip: str | None = None) -> None:
    """The applicant removes a wrong upload from a draft (the file goes with the row, after commit)."""
    application = LoanApplication.objects.select_for_update().get(pk=document.application_id)
    if application.status != LoanApplication.Status.DRAFT:
        raise Conflict(_("只有草稿可以删除材料 / Documents can be removed from a draft only."), state=application.status)
    storage, path = document.file.storage, document.file.name
    audit_record(actor=user, action="document.delete", obj=application, ip=ip,
                 data={"document": document.pk, "requirement": document.requirement.code, "sha256": document.sha256})
    document.delete()
    transaction.on_commit(lambda: storage.delete(path))


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
    # The manual list is checked against the ID on the form and the one the registry holds.
    id_numbers = {enterprise.legal_rep_id_number or "", (payloads.get("registry") or {}).get("legal_rep_id_number") or ""}
    ctx = prescreen.RuleContext(
        enterprise=enterprise, payloads=payloads, today=today or timezone.localdate(), amount=amount,
        manual_hits=manual_negative_hits(uscc=enterprise.uscc, id_numbers=sorted(i for i in id_numbers if i)),
    )
    return prescreen.summarise(prescreen.evaluate(criteria.order_by("kind", "order", "code"), ctx))


@dataclass
class ProspectEnterprise:
    """An enterprise known only from its data (pre-qualification): nothing is saved."""

    uscc: str
    founded_on: dt.date | None = None
    legal_rep_id_number: str = ""
    industry_code: str = ""
    employees: int | None = None
    annual_revenue: Decimal | None = None


def prospect_from_data(*, uscc: str, payloads: dict) -> ProspectEnterprise:
    registry = payloads.get("registry") or {}
    tax = payloads.get("tax") or {}
    social = payloads.get("social_security") or {}
    founded = registry.get("founded_on")
    return ProspectEnterprise(
        uscc=uscc,
        founded_on=dt.date.fromisoformat(founded) if founded else None,
        legal_rep_id_number=registry.get("legal_rep_id_number") or "",
        industry_code=registry.get("industry_code") or "",
        employees=int(social["headcount"]) if social.get("headcount") is not None else None,
        annual_revenue=Decimal(tax["revenue_12m"]) if tax.get("revenue_12m") is not None else None,
    )


def prequalification_assess(*, uscc: str, payloads: dict, products, today: dt.date | None = None) -> dict:
    """预审 before applying: each published product's admission criteria and negative list on the data alone.

    A read: nothing is written. Returns the prospect and, per product, the pre-screen summary."""
    prospect = prospect_from_data(uscc=uscc, payloads=payloads)
    return {
        "prospect": prospect,
        "products": {product.code: prescreen_run(enterprise=prospect, product=product, payloads=payloads, today=today)
                     for product in products},
    }


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
    # A correlated count per RM (index-only on relationship_manager + status), not a join of every case.
    open_cases = (LoanApplication.objects.filter(relationship_manager=OuterRef("pk"), status__in=LoanApplication.OPEN_STATES)
                  .order_by().values("relationship_manager").annotate(n=Count("pk")).values("n"))
    return (
        User.objects.filter(groups__name=roles.RM, profile__branch=branch, is_active=True)
        .annotate(load=Coalesce(Subquery(open_cases, output_field=IntegerField()), 0))
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
    with in_default_language():
        if result["passed"]:
            notify(user=application.applicant, kind="submitted",
                   title=_("您的贷款申请 #%(id)s 已提交，预审通过 / Application #%(id)s submitted and pre-screen passed")
                   % {"id": application.pk}, url=f"/portal/applications/{application.pk}/")
        else:
            notify(user=application.applicant, kind="prescreen_declined",
                   title=_("您的贷款申请 #%(id)s 未通过预审 / Application #%(id)s did not pass the pre-screen") % {"id": application.pk},
                   body="\n".join(f"{r['message']} / {r['message_en']}" if r.get("message_en") else r["message"]
                                  for r in result["reasons"]), url=f"/portal/applications/{application.pk}/")
    return application


# ---------------------------------------------------------------- transitions used by later stages
def lock_application(pk: int) -> LoanApplication:
    """The case row locked for this transaction (only that row: its product, enterprise and applicant are read
    along, not locked, or every case of a product would queue behind one another)."""
    return (LoanApplication.objects.select_for_update(of=("self",)).select_related("product", "enterprise", "applicant")
            .get(pk=pk))


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
    with in_default_language():
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
        with in_default_language():
            notify(user=application.relationship_manager, kind="info_received",
                   title=_("申请 #%(id)s 客户已补充资料 / The applicant answered on #%(id)s") % {"id": application.pk},
                   url=f"/staff/cases/{application.pk}/")
    return application


@transaction.atomic
def application_withdraw(*, application: LoanApplication, user, reason: str = "") -> LoanApplication:
    application = lock_application(application.pk)
    return application_transition(application=application, transition="withdraw", actor=user, reason=reason)


def _display_name(user) -> str:
    profile = getattr(user, "profile", None)
    return (getattr(profile, "display_name", "") or user.get_full_name() or user.get_username()) if user else ""


@transaction.atomic
def relationship_manager_reassign(*, enterprise: Enterprise, new_rm, by, reason: str, ip: str | None = None) -> Enterprise:
    """A supervisor of the current RM, or a branch approver of the enterprise's branch, hands the customer to
    another RM (首席服务官). The open cases and their running SLA clocks follow; both sides are told."""
    from loanservice.models import SlaClock

    enterprise = Enterprise.objects.select_for_update().get(pk=enterprise.pk)  # no outer join under FOR UPDATE
    if not relationship_manager_can_reassign(by, enterprise):
        raise ApplicationError(_("只有客户经理的主管或本分行审批人可以改派 / Only the RM's supervisor or a branch "
                                 "approver of the branch can reassign."), code="forbidden")
    errors = {}
    if new_rm is None or not new_rm.is_active or not roles.has_role(new_rm, roles.RM):
        errors["relationship_manager"] = [_("只能指派给在岗的客户经理 / Choose an active relationship manager.")]
    elif new_rm.pk == enterprise.relationship_manager_id:
        errors["relationship_manager"] = [_("新客户经理与当前相同 / That is already the customer's RM.")]
    if not (reason or "").strip():
        errors["reason"] = [_("请说明改派原因 / Give the reason for the reassignment.")]
    elif len(reason) > 300:
        errors["reason"] = [_too_long(300)]
    if errors:
        raise ApplicationError(_("改派信息有误 / The reassignment is not valid."), errors=errors)
    old_rm = enterprise.relationship_manager
    enterprise.relationship_manager = new_rm
    enterprise.save(update_fields=["relationship_manager"])
    open_cases = list(enterprise.applications.filter(status__in=LoanApplication.OPEN_STATES).values_list("pk", flat=True))
    LoanApplication.objects.filter(pk__in=open_cases).update(relationship_manager=new_rm)
    if old_rm is not None and open_cases:
        SlaClock.objects.filter(case_id__in=open_cases, stopped_at__isnull=True, owner=old_rm).update(owner=new_rm)
    audit_record(actor=by, action="enterprise.reassign_rm", obj=enterprise, reason=reason.strip(), ip=ip,
                 data={"from": old_rm.get_username() if old_rm else "", "to": new_rm.get_username(), "cases": open_cases})
    phone = getattr(getattr(new_rm, "profile", None), "phone", "")
    with in_default_language():
        notify(user=new_rm, kind="rm_assigned",
               title=_("您已成为 %(e)s 的客户经理 / You are now the RM of %(e)s") % {"e": enterprise.name},
               body=reason.strip(), url=f"/staff/cases/{open_cases[0]}/" if open_cases else "")
        notify(user=enterprise.owner, kind="rm_changed",
               title=_("%(e)s 的客户经理已变更为 %(n)s（%(p)s）/ %(e)s's relationship manager is now %(n)s (%(p)s)")
               % {"e": enterprise.name, "n": _display_name(new_rm), "p": phone or "—"},
               url="/portal/")
    return enterprise


@transaction.atomic
def negative_list_add(*, by, reason: str, uscc: str = "", id_number: str = "", expires_on=None) -> NegativeListEntry:
    """A manual negative-list entry (by USCC or resident ID), checked like the admin form and audited."""
    from django.core.exceptions import ValidationError

    entry = NegativeListEntry(uscc=uscc, id_number=id_number, reason=(reason or "").strip(), expires_on=expires_on,
                              created_by=by)
    try:
        entry.full_clean(exclude=["created_by"])
    except ValidationError as exc:
        raise ApplicationError(_("负面清单条目有误 / The negative-list entry is not valid."),
                               errors={k: [str(m) for m in v] for k, v in exc.message_dict.items()}) from None
    entry.save()
    audit_record(actor=by, action="negative_list.add", obj=entry, reason=entry.reason,
                 data={"uscc": entry.uscc, "id_number": entry.id_number,
                       "expires_on": entry.expires_on.isoformat() if entry.expires_on else None})
    return entry


# ---------------------------------------------------------------- smart customer service (智能客服)
def assistant_answer(*, user, text: str, language: str = "") -> dict:
    """Answer a question typed in the portal's help box: the applicant's own cases for "where is my
    application?", and the FAQ in ranked order. A question neither answers is logged for the knowledge base
    owner (one row per wording, counted)."""
    from django.db.models import F

    from . import faq
    from .models import FaqEntry, UnansweredQuestion
    from .selectors import application_tracker, open_clocks_by_case, sla_targets_map

    text = " ".join((text or "").split())[:300]
    result = {"query": text, "faq": [], "cases": None, "login_needed": False, "answered": False}
    if not text:
        return result
    if faq.asks_for_status(text):
        if getattr(user, "is_authenticated", False) and roles.has_role(user, roles.APPLICANT):
            mine = list(LoanApplication.objects.filter(applicant=user)
                        .select_related("product", "enterprise", "relationship_manager__profile")
                        .prefetch_related("info_requests").order_by("-created_at")[:5])
            clocks, targets = open_clocks_by_case(a.pk for a in mine), sla_targets_map()
            result["cases"] = [{"application": a, "tracker": application_tracker(a, clock=clocks.get(a.pk), targets=targets)}
                               for a in mine]
        else:
            result["login_needed"] = True
    result["faq"] = faq.rank(text, FaqEntry.objects.filter(is_active=True))
    result["answered"] = bool(result["faq"]) or result["cases"] is not None or result["login_needed"]
    if not result["answered"]:
        key = faq.normalize(text) or text[:300]
        row, created = UnansweredQuestion.objects.get_or_create(
            normalized=key, defaults={"text": text, "language": language[:10],
                                      "asked_by": user if getattr(user, "is_authenticated", False) else None})
        if not created:
            UnansweredQuestion.objects.filter(pk=row.pk).update(times_asked=F("times_asked") + 1,
                                                                last_asked_at=timezone.now(), resolved=False)
    return result
