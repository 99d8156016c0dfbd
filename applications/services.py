"""Intake services: enterprises, drafts, documents, consent, pre-screen, RM assignment, and the
application's lifecycle transitions. Every write runs in a transaction and writes an audit event."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import secrets
import zipfile
from dataclasses import dataclass
from decimal import Decimal

import filetype
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django_fsm import can_proceed

from loanservice import refcache, roles
from loanservice.audit import audit_record
from loanservice.errors import ApplicationError, Conflict
from loanservice.models import Branch, SlaClock
from loanservice.money import money_display
from loanservice.notifications import in_default_language, notify
from loanservice.prepared import PreparedRead, PreparedRows
from loanservice.sms_codes import CODE_WRONG, sms_code_check, sms_code_send
from loanservice.text import join_list

from . import faq, prescreen
from .forms import USCC_TAKEN, too_long
from .identifiers import region_of_uscc
from .identity import IdentityProviderError, identity_provider
from .models import (
    DATA_SOURCES,
    REPAYMENT_METHODS,
    AdmissionCriterion,
    ApplicationDocument,
    AuthorisationText,
    Consent,
    DataAuthorisation,
    DocumentRequirement,
    Enterprise,
    FaqEntry,
    IdentityVerification,
    InfoRequest,
    LoanApplication,
    LoanProduct,
    NegativeListEntry,
    UnansweredQuestion,
)
from .selectors import (
    DraftInputs,
    applicable_checklist,
    application_tracker,
    authorisation_text_current,
    draft_inputs,
    manual_negative_hits,
    open_clocks_by_case,
    sla_targets_map,
    verified_identity,
)

User = get_user_model()
ALL_SOURCES = [code for code, _label in DATA_SOURCES]
MIME_BY_TYPE = {"pdf": "application/pdf", "jpeg": "image/jpeg", "png": "image/png", "ofd": "application/ofd"}


# ---------------------------------------------------------------- enterprises
@transaction.atomic
def enterprise_create(*, owner, name: str, uscc: str, legal_rep_name: str, legal_rep_id_number: str, industry_code: str,
                      founded_on: dt.date, employees: int, annual_revenue: Decimal, legal_form: str = "llc",
                      id_warnings: list[str] | tuple = (), ip: str | None = None) -> Enterprise:
    """An enterprise from checked values (`applications.forms.EnterpriseForm`). The USCC is unique: a second
    registration that slipped past the form's check (two at once) is refused under the field."""
    try:
        with transaction.atomic():
            enterprise = Enterprise.objects.create(
                owner=owner, name=name, uscc=uscc, legal_form=legal_form, legal_rep_name=legal_rep_name,
                legal_rep_id_number=legal_rep_id_number, industry_code=industry_code, founded_on=founded_on,
                employees=employees, annual_revenue=annual_revenue, region_code=region_of_uscc(uscc),
            )
    except IntegrityError:
        raise ApplicationError(_("企业信息有误 / The enterprise details are not valid."),
                               errors={"uscc": [str(USCC_TAKEN)]}) from None
    audit_record(actor=owner, action="enterprise.create", obj=enterprise, ip=ip,
                 data={"uscc": enterprise.uscc, "id_warnings": list(id_warnings)})
    return enterprise


# ---------------------------------------------------------------- drafts
REQUEST_FIELDS = ["amount", "term_months", "repayment_method", "purpose"]


def application_request_errors(*, product: LoanProduct, **values) -> dict[str, list[str]]:
    """What the product allows, for the request's checked values given (amount, term_months,
    repayment_method): the errors per field, none when it fits. The one place the product's limits are read."""
    errors: dict[str, list[str]] = {}
    amount = values.get("amount")
    if amount is not None and not product.min_amount <= amount <= product.max_amount:
        errors["amount"] = [_("金额须在 %(min)s 至 %(max)s 元之间 / The amount must be between %(min)s and %(max)s CNY.")
                            % {"min": money_display(product.min_amount), "max": money_display(product.max_amount)}]
    term = values.get("term_months")
    if term is not None and not product.min_term_months <= term <= product.max_term_months:
        errors["term_months"] = [_("期限须在 %(min)s 至 %(max)s 个月之间 / The term must be between %(min)s and %(max)s months.")
                                 % {"min": product.min_term_months, "max": product.max_term_months}]
    method = values.get("repayment_method")
    if method is not None and method not in product.repayment_methods:
        offered = join_list(label for code, label in REPAYMENT_METHODS if code in product.repayment_methods)
        errors["repayment_method"] = [_("该产品不支持此还款方式，可选：%(m)s / This product does not offer that repayment "
                                        "method; choose: %(m)s") % {"m": offered}]
    return errors


def _request_fits(product: LoanProduct, values: dict) -> None:
    errors = application_request_errors(product=product, **values)
    if errors:
        raise ApplicationError(_("申请信息有误 / The application details are not valid."), errors=errors)


@transaction.atomic
def application_create(*, applicant, enterprise: Enterprise, product: LoanProduct, amount: Decimal, term_months: int,
                       repayment_method: str, purpose: str, channel: str = "web") -> LoanApplication:
    """A draft from checked values (`applications.forms.RequestForm`); whose enterprise it is, whether the
    product is on sale and whether the request fits the product are checked here."""
    if enterprise.owner_id != applicant.pk:
        raise ApplicationError(_("企业不存在 / Enterprise not found."), errors={"enterprise": [_("企业不存在 / Enterprise not found.")]})
    if not product.is_active:
        raise ApplicationError(_("该产品已下架 / This product is not available."), errors={"product": [_("该产品已下架 / This product is not available.")]})
    values = {"amount": amount, "term_months": term_months, "repayment_method": repayment_method, "purpose": purpose}
    _request_fits(product, values)
    application = LoanApplication.objects.create(applicant=applicant, enterprise=enterprise, product=product,
                                                 channel=channel, **values)
    audit_record(actor=applicant, action="application.create", obj=application, to_state=application.status,
                 data={"product": product.code, "amount": str(application.amount)})
    return application


@transaction.atomic
def application_update_draft(*, application: LoanApplication, user, **fields) -> LoanApplication:
    """Save-and-resume: change the loan request of a draft (only the fields given, already checked by the
    RequestForm; the product's limits are checked here)."""
    application = LoanApplication.objects.select_for_update(of=("self",)).select_related("product").get(pk=application.pk)
    if application.status != LoanApplication.Status.DRAFT:
        raise Conflict(_("只有草稿可以修改 / Only a draft can be changed."), state=application.status)
    unknown = set(fields) - set(REQUEST_FIELDS)
    if unknown:
        raise ApplicationError(_("申请信息有误 / The application details are not valid."),
                               errors={name: [_("不能修改此项 / This field cannot be changed.")] for name in sorted(unknown)})
    _request_fits(application.product, fields)
    before = {k: str(getattr(application, k)) for k in fields}
    for key, value in fields.items():
        setattr(application, key, value)
    application.save()
    audit_record(actor=user, action="application.update_draft", obj=application,
                 data={"before": before, "after": {k: str(v) for k, v in fields.items()}})
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


# ---------------------------------------------------------------- identity (身份核验) and data authorisation
IDENTITY_FAILED = {
    "invalid_id": _("身份证号无效 / The ID number is not valid."),
    "name_mismatch": _("姓名与身份证号不一致（公安部核验）/ The name does not match the ID number (citizen register)."),
    "not_legal_rep": _("与本企业登记的法定代表人不一致；如由他人办理，请选择授权经办人并上传授权委托书 / This is not the "
                       "enterprise's registered legal representative; an agent chooses 'authorised agent' and uploads a "
                       "power of attorney."),
}
NOT_VERIFIED = _("请先完成法定代表人或授权经办人的身份核验 / First verify the identity of the legal representative or "
                 "an authorised agent.")


def identity_sms_purpose(enterprise: Enterprise) -> str:
    return f"identity:{enterprise.pk}"


def identity_code_send(*, enterprise: Enterprise, user, phone: str, ip: str | None = None) -> str:
    """An SMS code to the phone of the person being verified (the number is the checked value). Returns the code
    (shown only by a DEBUG page). ApplicationError when asked too often."""
    if enterprise.owner_id != user.pk:
        raise ApplicationError(_("企业不存在 / Enterprise not found."), errors={"enterprise": [_("企业不存在 / Enterprise not found.")]})
    return sms_code_send(phone=phone, purpose=identity_sms_purpose(enterprise), ip=ip)


def identity_verify(*, enterprise: Enterprise, user, method: str, name: str, id_number: str, phone: str, sms_code: str,
                    power_of_attorney: bytes | None = None, ip: str | None = None) -> IdentityVerification:
    """Verify who acts for the enterprise (values checked by applications.forms.IdentityVerificationForm): the SMS
    code sent to `phone` proves the person holds it; then `identity_check_record`."""
    if enterprise.owner_id != user.pk:
        raise ApplicationError(_("企业不存在 / Enterprise not found."), errors={"enterprise": [_("企业不存在 / Enterprise not found.")]})
    _power_of_attorney_check(method, power_of_attorney)
    if not sms_code_check(phone=phone, code=sms_code, purpose=identity_sms_purpose(enterprise)):
        raise ApplicationError(CODE_WRONG, errors={"sms_code": [CODE_WRONG]})
    return identity_check_record(enterprise=enterprise, user=user, method=method, name=name, id_number=id_number,
                                 phone=phone, power_of_attorney=power_of_attorney, ip=ip)


def _power_of_attorney_check(method: str, power_of_attorney: bytes | None) -> None:
    if method == IdentityVerification.AGENT and _sniff(power_of_attorney or b"") not in ("pdf", "jpeg", "png"):
        raise ApplicationError(_("请上传授权委托书 / Upload the power of attorney."), errors={"power_of_attorney": [
            _("须为 PDF、JPEG 或 PNG 文件（按内容识别）/ A PDF, JPEG or PNG file (checked by content).")]})


def identity_check_record(*, enterprise: Enterprise, user, method: str, name: str, id_number: str, phone: str,
                          power_of_attorney: bytes | None = None, ip: str | None = None) -> IdentityVerification:
    """The name and ID number with the identity provider (outside any transaction), then, for the legal
    representative, that it is the one the enterprise registered; an agent brings a power of attorney (PDF or
    image, checked by content). The caller has established that the person holds `phone` (identity_verify: the
    SMS code; the demo seed). Every attempt is kept; a failed one raises ApplicationError naming why, after it
    is recorded."""
    _power_of_attorney_check(method, power_of_attorney)
    provider = identity_provider()
    try:
        answer = provider.verify(name=name, id_number=id_number)
    except IdentityProviderError:
        raise Conflict(_("身份核验服务暂不可用，请稍后再试 / The identity service is unavailable; try again later."),
                       state="unavailable") from None
    reason = answer.reason
    if answer.matched and method == IdentityVerification.LEGAL_REP and (
            id_number != enterprise.legal_rep_id_number.upper() or name.strip() != enterprise.legal_rep_name.strip()):
        reason = "not_legal_rep"
    result = IdentityVerification.PASSED if answer.matched and not reason else IdentityVerification.FAILED
    with transaction.atomic():
        record = IdentityVerification(user=user, enterprise=enterprise, method=method, person_name=name.strip(),
                                      id_number=id_number, phone=phone, result=result, reason=reason,
                                      provider=provider.name, provider_reference=answer.reference, ip=ip)
        if method == IdentityVerification.AGENT:
            record.power_of_attorney_sha256 = hashlib.sha256(power_of_attorney).hexdigest()
            record.power_of_attorney.save("poa", ContentFile(power_of_attorney), save=False)
            if result == IdentityVerification.PASSED:  # the agent acts only once operations approved the document
                record.review_status = IdentityVerification.REVIEW_PENDING
        record.save()
        audit_record(actor=user, action="identity.verify", obj=enterprise, ip=ip,
                     data={"verification": record.pk, "method": method, "result": result, "reason": reason,
                           "provider": provider.name, "reference": answer.reference,
                           "review": record.review_status or None})
    if result != IdentityVerification.PASSED:
        message = IDENTITY_FAILED.get(reason, IDENTITY_FAILED["name_mismatch"])
        raise ApplicationError(message, errors={"id_number" if reason == "invalid_id" else "name": [message]},
                               code="identity_not_verified")
    return record


REVIEW_REASON_NEEDED = _("请填写审核意见 / Give the reason for the decision.")
REVIEW_FOUR_EYES = _("授权委托书须由客户经理和经办人以外的人员审核 / The power of attorney is reviewed by someone other than "
                     "the enterprise's relationship manager and the agent.")


@transaction.atomic
def identity_review_decide(*, verification: IdentityVerification, by, approve: bool, reason: str,
                           ip: str | None = None) -> IdentityVerification:
    """Operations' review of an agent's power of attorney (四眼: never the RM who prepared the enterprise's case,
    never the agent): approved, the agent may authorise data queries and sign; rejected, not (and verifies again
    with a new document). A reason either way. Audited; the applicant is told."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(REVIEW_REASON_NEEDED, errors={"reason": [REVIEW_REASON_NEEDED]})
    record = IdentityVerification.objects.select_for_update().select_related("enterprise").get(pk=verification.pk)
    if record.review_status != IdentityVerification.REVIEW_PENDING:
        raise Conflict(_("该授权委托书已审核 / This power of attorney was already reviewed."),
                       state=record.review_status or "not_required")
    enterprise = record.enterprise
    prepared = (enterprise.relationship_manager_id == by.pk
                or LoanApplication.objects.filter(enterprise=enterprise, relationship_manager=by).exists())
    if by.pk == record.user_id or prepared:
        raise PermissionDenied(REVIEW_FOUR_EYES)
    before = record.review_status
    record.review_status = IdentityVerification.REVIEW_APPROVED if approve else IdentityVerification.REVIEW_REJECTED
    record.reviewed_by, record.reviewed_at, record.review_reason = by, timezone.now(), reason[:300]
    record.save(update_fields=["review_status", "reviewed_by", "reviewed_at", "review_reason"])
    audit_record(actor=by, action="identity.review", obj=enterprise, from_state=before, to_state=record.review_status,
                 reason=reason[:300], ip=ip, data={"verification": record.pk, "agent": record.person_name,
                                                   "document_sha256": record.power_of_attorney_sha256})
    with in_default_language():
        title = (_("授权委托书已审核通过，经办人可以授权和签署 / The power of attorney was approved: the agent may "
                   "authorise and sign") if approve else
                 _("授权委托书未通过审核：%(r)s / The power of attorney was rejected: %(r)s") % {"r": reason[:200]})
        notify(user=record.user, kind="identity_review", title=title, url=reverse("portal:home"))
    return record


def identity_power_of_attorney_read(*, verification: IdentityVerification, by, ip: str | None = None) -> bytes:
    """The agent's power of attorney for its reviewer (a download of personal data: audited)."""
    audit_record(actor=by, action="identity.power_of_attorney.download", obj=verification.enterprise, ip=ip,
                 data={"verification": verification.pk})
    with verification.power_of_attorney.open("rb") as fh:
        return fh.read()


def _authorisation_text() -> AuthorisationText:
    text = authorisation_text_current()
    if text is None:
        raise Conflict(_("尚未发布授权书文本 / No authorisation text is published."), state="no_text")
    return text


@transaction.atomic
def consent_grant(*, application: LoanApplication, user, scopes: list[str], ip: str | None = None) -> list[Consent]:
    """The data sources authorised on a draft (checked by applications.forms.ConsentForm), by a person verified
    for the enterprise (legal representative or agent): one DataAuthorisation naming the person, the sources,
    the purpose and the text version shown, with a consent line per source. Sources already authorised stay."""
    application = LoanApplication.objects.select_for_update().get(pk=application.pk)
    if application.status != LoanApplication.Status.DRAFT:
        raise Conflict(_("只有草稿可以授权 / Consent is given on a draft."), state=application.status)
    verification = verified_identity(user=user, enterprise=application.enterprise)
    if verification is None:
        raise ApplicationError(NOT_VERIFIED, errors={"verification": [NOT_VERIFIED]}, code="identity_not_verified")
    live = {c.source: c for c in Consent.objects.filter(application=application)}
    new = [s for s in dict.fromkeys(scopes) if s not in live]
    if new:
        text = _authorisation_text()
        authorisation = DataAuthorisation.objects.create(
            enterprise=application.enterprise, application=application, granted_by=user, verification=verification,
            scopes=new, text=text, text_version=text.version, ip=ip)
        for source in new:
            live[source] = Consent.objects.create(application=application, source=source, granted_by=user, ip=ip,
                                                  text_version=text.version, authorisation=authorisation)
        audit_record(actor=user, action="consent.grant", obj=application, ip=ip,
                     data={"authorisation": authorisation.pk, "scopes": new, "text_version": text.version,
                           "verification": verification.pk, "method": verification.method})
    return [live[s] for s in dict.fromkeys(scopes)]


@transaction.atomic
def consent_withdraw(*, application: LoanApplication, user, scopes: list[str] | None = None,
                     ip: str | None = None) -> list[str]:
    """The applicant withdraws its authorisation (all sources, or those named): no pull is made for them from
    now on; the snapshots already fetched stay with the decisions they served. An authorisation whose every
    source is withdrawn is itself marked withdrawn. Returns the sources withdrawn."""
    application = LoanApplication.objects.select_for_update().get(pk=application.pk)
    consents = list(Consent.objects.select_for_update().filter(application=application))
    if scopes is not None:
        consents = [c for c in consents if c.source in set(scopes)]
    if not consents:
        raise Conflict(_("没有可撤回的授权 / There is no authorisation in force to withdraw."), state=application.status)
    now = timezone.now()
    Consent.objects.filter(pk__in=[c.pk for c in consents]).update(withdrawn_at=now)
    touched = {c.authorisation_id for c in consents if c.authorisation_id}
    still = set(Consent.objects.filter(authorisation_id__in=touched).values_list("authorisation_id", flat=True))
    DataAuthorisation.objects.filter(pk__in=touched - still).update(withdrawn_at=now, withdrawn_by=user)
    withdrawn = sorted(c.source for c in consents)
    audit_record(actor=user, action="consent.withdraw", obj=application, ip=ip,
                 data={"scopes": withdrawn, "authorisations": sorted(touched)})
    return withdrawn


def consent_missing(application: LoanApplication, *, inputs: DraftInputs | None = None) -> list[str]:
    """The data sources without a consent in force (`inputs`: the draft's consents as already read)."""
    given = set(inputs.consents) if inputs is not None else set(application.consents.values_list("source", flat=True))
    return [s for s in ALL_SOURCES if s not in given]


# ---------------------------------------------------------------- submit and pre-screen
def prescreen_run(*, enterprise, product: LoanProduct | None, payloads: dict, amount=None,
                  today: dt.date | None = None, manual_list: bool = True) -> dict:
    """The admission criteria and negative list on the data given. `manual_list` False: the bank's own
    negative list is not consulted (a signed-out pre-qualification learns only public facts); its rule is a gap."""
    def read():
        criteria = AdmissionCriterion.objects.filter(is_active=True)
        if product is not None:
            criteria = criteria.filter(Q(products=None) | Q(products=product)).distinct()
        return tuple(criteria.order_by("kind", "order", "code"))

    criteria = refcache.cached(("admission_criteria", product.pk if product is not None else None), read)
    # The manual list is checked against the ID on the form and the one the registry holds.
    id_numbers = {enterprise.legal_rep_id_number or "", (payloads.get("registry") or {}).get("legal_rep_id_number") or ""}
    ctx = prescreen.RuleContext(
        enterprise=enterprise, payloads=payloads, today=today or timezone.localdate(), amount=amount,
        manual_hits=manual_negative_hits(uscc=enterprise.uscc, id_numbers=sorted(i for i in id_numbers if i))
        if manual_list else None,
    )
    return prescreen.summarise(prescreen.evaluate(criteria, ctx))


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


def prequalification_assess(*, uscc: str, payloads: dict, products, today: dt.date | None = None,
                            manual_list: bool = True) -> dict:
    """预审 before applying: each published product's admission criteria and negative list on the data alone.

    A read: nothing is written. Returns the prospect and, per product, the pre-screen summary."""
    prospect = prospect_from_data(uscc=uscc, payloads=payloads)
    return {
        "prospect": prospect,
        "products": {product.code: prescreen_run(enterprise=prospect, product=product, payloads=payloads, today=today,
                                                 manual_list=manual_list)
                     for product in products},
    }


def documents_missing(application: LoanApplication, payloads: dict, *,
                      uploaded: frozenset[int] | None = None) -> list[DocumentRequirement]:
    """The checklist's required documents neither uploaded nor supplied by a source that delivered (`uploaded`: the
    requirement ids of the draft's documents as already read)."""
    if uploaded is None:
        uploaded = frozenset(application.documents.values_list("requirement_id", flat=True))
    missing = []
    for req in applicable_checklist(application.product, amount=application.amount,
                                    legal_form=application.enterprise.legal_form):
        if not req.required or req.pk in uploaded:
            continue
        if req.satisfied_by_source and payloads.get(req.satisfied_by_source):
            continue
        missing.append(req)
    return missing


def documents_check(application: LoanApplication, payloads: dict | None, *, uploaded: frozenset[int] | None = None) -> None:
    """ApplicationError naming the checklist's missing documents. `payloads` None: before anything is pulled,
    only the documents no data source could supply (a refusal then pulls nothing)."""
    if payloads is None:
        payloads = dict.fromkeys(ALL_SOURCES, True)  # as if every source delivered
    missing = documents_missing(application, payloads, uploaded=uploaded)
    if missing:
        raise ApplicationError(
            _("请先上传清单要求的材料 / Please upload the documents the checklist asks for."),
            errors={"documents": [f"{r.code}: {r.tr('name')}" for r in missing]},
        )


def _rm_candidates(branch_id: int):
    """The active RMs of a branch, the lightest open case load first (a correlated count per RM, index-only on
    relationship_manager + status, not a join of every case)."""
    open_cases = (LoanApplication.objects.filter(relationship_manager=OuterRef("pk"), status__in=LoanApplication.OPEN_STATES)
                  .order_by().values("relationship_manager").annotate(n=Count("pk")).values("n"))
    return (User.objects.filter(groups__name=roles.RM, profile__branch_id=branch_id, is_active=True)
            .annotate(load=Coalesce(Subquery(open_cases, output_field=IntegerField()), 0))
            .order_by("load", "id"))


# Compiled once per process (the ORM spent ~2 ms a submission compiling the correlated count).
_RM_PICK = PreparedRows(lambda branch_id: _rm_candidates(branch_id).values_list("pk")[:1], int)


def relationship_manager_pick(*, branch: Branch):
    """The RM of the branch with the lightest open case load (None when the branch has none)."""
    return _rm_candidates(branch.pk).first()


def relationship_manager_pick_id(*, branch_id: int) -> int | None:
    """relationship_manager_pick's RM, its id only."""
    rows = _RM_PICK.rows(branch_id)
    return rows[0][0] if rows else None


def branch_for_region(region_code: str) -> Branch | None:
    best, best_len = None, 0
    branches = refcache.cached(("branches",), lambda: tuple(Branch.objects.order_by("id")))
    for branch in (b for b in branches if b.region_prefixes):
        for prefix in branch.prefixes():
            if region_code.startswith(prefix) and len(prefix) > best_len:
                best, best_len = branch, len(prefix)
    return best or next((b for b in branches if b.is_default), None)


def relationship_manager_assign(application: LoanApplication) -> None:
    """首席服务官: the enterprise keeps one RM; a new customer gets the least-loaded RM of its branch."""
    enterprise = application.enterprise
    if enterprise.relationship_manager_id is None or enterprise.branch_id is None:
        branch = enterprise.branch or branch_for_region(enterprise.region_code)
        enterprise.branch = branch
        if enterprise.relationship_manager_id is None and branch is not None:
            enterprise.relationship_manager_id = relationship_manager_pick_id(branch_id=branch.pk)
        enterprise.save(update_fields=["branch", "relationship_manager"])
    # By id: a returning customer's branch and RM are not read for this.
    application.branch_id, application.relationship_manager_id = enterprise.branch_id, enterprise.relationship_manager_id


def application_submit(*, application: LoanApplication, user, payloads: dict, ip: str | None = None,
                       inputs: DraftInputs | None = None) -> LoanApplication:
    """Pre-screen a locked draft. Raises ApplicationError naming missing documents; never half-saves.

    The caller (the lifecycle conductor) holds the transaction and has pulled the data snapshots; `inputs`: the
    draft's consents and documents as read under its lock (read here when not given).
    """
    if application.status != LoanApplication.Status.DRAFT:
        raise Conflict(_("该申请已提交 / This application was already submitted."), state=application.status)
    documents_check(application, payloads,
                    uploaded=(inputs if inputs is not None else draft_inputs(application.pk)).uploaded)
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
    # What a submission changes (the transitions set submitted_at, and decided_at on a decline), not the whole row.
    application.save(update_fields=["prescreen", "status", "submitted_at", "decided_at", "scoring_requested_at",
                                    "branch", "relationship_manager", "updated_at"])
    audit_record(actor=user, action="application.submit", obj=application, from_state=before,
                 to_state=application.status, ip=ip,
                 reason="; ".join(r["code"] for r in result["reasons"]),
                 data={"prescreen_passed": result["passed"], "gaps": [g["code"] for g in result["gaps"]]})
    with in_default_language():
        if result["passed"]:
            notify(user=application.applicant, kind="submitted",
                   title=_("您的贷款申请 #%(id)s 已提交，预审通过 / Application #%(id)s submitted and pre-screen passed")
                   % {"id": application.pk}, url=reverse("portal:application", args=[application.pk]))
        else:
            notify(user=application.applicant, kind="prescreen_declined",
                   title=_("您的贷款申请 #%(id)s 未通过预审 / Application #%(id)s did not pass the pre-screen") % {"id": application.pk},
                   body="\n".join(f"{r['message']} / {r['message_en']}" if r.get("message_en") else r["message"]
                                  for r in result["reasons"]), url=reverse("portal:application", args=[application.pk]))
    return application


# ---------------------------------------------------------------- transitions used by later stages
_CASE_FOR_UPDATE = PreparedRead(lambda pk: LoanApplication.objects.select_for_update(of=("self",))
                                .select_related("product", "enterprise", "applicant").filter(pk=pk))


def lock_application(pk: int) -> LoanApplication:
    """The case row locked for this transaction (only that row: its product, enterprise and applicant are read
    along, not locked, or every case of a product would queue behind one another). Compiled once per process
    (loanservice.prepared): every state change of a case starts here."""
    return _CASE_FOR_UPDATE.get(pk)


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
               body=message, url=reverse("portal:application", args=[application.pk]))
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
                   url=reverse("staff:case", args=[application.pk]))
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

    enterprise = Enterprise.objects.select_for_update().get(pk=enterprise.pk)  # no outer join under FOR UPDATE
    roles.permission_check(by, "applications.reassign_rm_of", enterprise,
                           message=_("只有客户经理的主管或本分行审批人可以改派 / Only the RM's supervisor or a branch "
                                     "approver of the branch can reassign."))
    errors = {}
    if new_rm is None or not new_rm.is_active or not roles.is_rm(new_rm):
        errors["relationship_manager"] = [_("只能指派给在岗的客户经理 / Choose an active relationship manager.")]
    elif new_rm.pk == enterprise.relationship_manager_id:
        errors["relationship_manager"] = [_("新客户经理与当前相同 / That is already the customer's RM.")]
    if not (reason or "").strip():
        errors["reason"] = [_("请说明改派原因 / Give the reason for the reassignment.")]
    elif len(reason) > 300:
        errors["reason"] = [too_long(300)]
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
               body=reason.strip(), url=reverse("staff:case", args=[open_cases[0]]) if open_cases else "")
        notify(user=enterprise.owner, kind="rm_changed",
               title=_("%(e)s 的客户经理已变更为 %(n)s（%(p)s）/ %(e)s's relationship manager is now %(n)s (%(p)s)")
               % {"e": enterprise.name, "n": _display_name(new_rm), "p": phone or "—"},
               url=reverse("portal:home"))
    return enterprise


@transaction.atomic
def negative_list_add(*, by, reason: str, uscc: str = "", id_number: str = "", expires_on=None) -> NegativeListEntry:
    """A manual negative-list entry (by USCC or resident ID), checked like the admin form and audited."""

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


    text = " ".join((text or "").split())[:300]
    result = {"query": text, "faq": [], "cases": None, "login_needed": False, "answered": False}
    if not text:
        return result
    if faq.asks_for_status(text):
        if roles.can(user, "applications.apply"):
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
