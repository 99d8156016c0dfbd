"""Contracts: generate the Chinese PDF, collect signatures (borrower first, then the bank's seal),
conditions precedent, and release the disbursement exactly once."""

from __future__ import annotations

import datetime as dt
import json
import logging
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from django.template import Context, Template
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django_fsm import can_proceed

from applications.models import LoanApplication
from loanservice.audit import audit_record
from loanservice.errors import ApplicationError, Conflict
from loanservice.notifications import notify

from .amount_words import amount_to_chinese
from .models import Contract, ContractTemplate, DisbursementOrder, Signature
from .pdf import pdf_sha256, render_pdf
from .schedules import build_schedule
from .signing import get_backend

log = logging.getLogger(__name__)
METHOD_LABELS = {"equal_installment": "等额本息", "equal_principal": "等额本金", "interest_only": "先息后本", "bullet": "到期一次还本付息"}


def template_for(application: LoanApplication, kind: str = "loan") -> ContractTemplate:
    """The product's own active template (latest version), otherwise the generic one."""
    active = ContractTemplate.objects.filter(kind=kind, is_active=True).order_by("-version")
    template = active.filter(product=application.product).first() or active.filter(product__isnull=True).first()
    if template is None:
        raise ApplicationError(_("未配置合同模板 / No contract template is configured."))
    return template


def contract_terms(application: LoanApplication, *, start_date: dt.date) -> dict:
    e = application.enterprise
    amount = application.offer_amount
    schedule = build_schedule(principal=amount, annual_rate=application.offer_rate, term_months=application.offer_term_months,
                              method=application.offer_repayment_method, start_date=start_date)
    conditions = []
    for case in application.approval_cases.all():
        conditions.extend(case.conditions)
    return {
        "borrower": {"name": e.name, "uscc": e.uscc, "legal_rep_name": e.legal_rep_name},
        "lender": {"name": "示范银行股份有限公司", "branch": application.branch.name if application.branch else ""},
        "amount": f"{amount:.2f}",
        "amount_words": amount_to_chinese(amount),
        "annual_rate": f"{application.offer_rate:.6f}",
        "annual_rate_percent": f"{application.offer_rate * 100:.4f}".rstrip("0").rstrip("."),
        "term_months": application.offer_term_months,
        "repayment_method": application.offer_repayment_method,
        "repayment_method_label": METHOD_LABELS.get(application.offer_repayment_method, application.offer_repayment_method),
        "purpose": application.purpose,
        "start_date": start_date.isoformat(),
        "conditions": conditions,
        "schedule": [{"n": s.n, "due_date": s.due_date.isoformat(), "principal": f"{s.principal:.2f}",
                      "interest": f"{s.interest:.2f}", "total": f"{s.total:.2f}"} for s in schedule],
    }


def _static_roots():
    return [settings.BASE_DIR / "static"]


def contract_render(*, template: ContractTemplate, number: str, terms: dict) -> bytes:
    html = Template(template.html).render(Context({"contract_number": number, **terms}))
    return render_pdf(html, static_roots=_static_roots(), title=f"借款合同 {number}", header_text=f"合同编号 {number}")


@transaction.atomic
def contract_generate(*, application: LoanApplication, by) -> Contract:
    """Issue the loan contract for an accepted offer. An issued contract never changes: a correction
    voids it and issues a new version."""
    previous = application.contracts.exclude(status=Contract.Status.VOIDED).first()
    if previous is not None:
        return previous
    version = application.contracts.count() + 1
    number = f"LS{timezone.localdate():%Y}{application.pk:08d}-{version}"
    template = template_for(application)
    terms = contract_terms(application, start_date=timezone.localdate())
    data = contract_render(template=template, number=number, terms=terms)
    contract = Contract(application=application, number=number, version=version, template=template, terms=terms,
                        sha256=pdf_sha256(data))
    contract.pdf.save(f"{number}.pdf", ContentFile(data), save=False)
    contract.save()
    audit_record(actor=by, action="contract.issue", obj=contract, to_state=contract.status,
                 data={"application": application.pk, "sha256": contract.sha256, "template": template.pk})
    notify(user=application.applicant, kind="contract_ready",
           title=_("合同 %(n)s 已生成，请签署 / Contract %(n)s is ready to sign") % {"n": number},
           url=f"/portal/applications/{application.pk}/")
    return contract


@transaction.atomic
def contract_void(*, contract: Contract, by, reason: str) -> Contract:
    contract = Contract.objects.select_for_update().get(pk=contract.pk)
    if not can_proceed(contract.void):
        raise Conflict(_("已签署的合同不能作废 / A signed contract cannot be voided."), state=contract.status)
    before = contract.status
    contract.void()
    contract.save()
    audit_record(actor=by, action="contract.void", obj=contract, from_state=before, to_state=contract.status, reason=reason)
    return contract


def _read(field) -> bytes:
    with field.open("rb") as fh:
        return fh.read()


def contract_sign(*, contract: Contract, party: str, by, ip: str | None = None, user_agent: str = "") -> Contract:
    """Record a signature on a locked contract (the caller holds the transaction)."""
    if party == "borrower":
        transition = contract.borrower_sign
    elif party == "bank":
        transition = contract.bank_sign
    else:
        raise ApplicationError(_("签署方无效 / Invalid party."), errors={"party": [_("borrower 或 bank")]})
    if not can_proceed(transition):
        expected = _("借款人先签，银行后签 / The borrower signs first, then the bank.")
        raise Conflict(_("当前合同状态不能由该方签署 / This party cannot sign now. ") + expected, state=contract.status)
    data = _read(contract.pdf)
    if pdf_sha256(data) != contract.sha256:
        raise Conflict(_("合同文件校验失败，请联系银行 / The contract file failed its integrity check."), state=contract.status)
    before = contract.status
    if party == "bank":
        sealed = get_backend().sign(data, reason=f"贷款人签章 {contract.number}", location="CN")
        contract.signed_pdf.save(f"{contract.number}-signed.pdf", ContentFile(sealed), save=False)
        contract.signed_sha256 = pdf_sha256(sealed)
    transition()
    contract.save()
    Signature.objects.create(contract=contract, party=party, signer=by if getattr(by, "pk", None) else None,
                             signer_label=by.get_username() if by else "system", ip=ip, user_agent=user_agent[:300],
                             document_sha256=contract.sha256)
    audit_record(actor=by, action=f"contract.sign.{party}", obj=contract, from_state=before, to_state=contract.status, ip=ip,
                 data={"sha256": contract.sha256, "user_agent": user_agent[:300]})
    return contract


def contract_verify(contract: Contract) -> dict:
    from .signing import verify_with_backend

    original = _read(contract.pdf)
    result = {"contract_hash_ok": pdf_sha256(original) == contract.sha256}
    if contract.signed_pdf:
        signed = _read(contract.signed_pdf)
        check = verify_with_backend(signed, expected_unsigned_sha256=contract.sha256)
        result.update({"signed": True, "ok": result["contract_hash_ok"] and check.ok and pdf_sha256(signed) == contract.signed_sha256,
                       "message": check.message_zh, "message_en": check.message_en, "signer": check.signer})
    else:
        result.update({"signed": False, "ok": result["contract_hash_ok"],
                       "message": "合同文件完整（尚未加盖银行签章）" if result["contract_hash_ok"] else "文件已被篡改",
                       "message_en": "The file is intact (no bank seal yet)" if result["contract_hash_ok"] else "The file was altered"})
    return result


# ---------------------------------------------------------------- disbursement
def conditions_precedent(application: LoanApplication, *, automatic: bool) -> list[dict]:
    items = [{"code": "CONTRACT_SIGNED", "text": "借款合同已签署 / Loan contract signed", "met": True, "by": "system",
              "evidence": "signatures"}]
    for case in application.approval_cases.all():
        for cond in case.conditions:
            code = cond.get("code") if isinstance(cond, dict) else str(cond)
            text = cond.get("text", code) if isinstance(cond, dict) else str(cond)
            items.append({"code": code, "text": text, "met": automatic, "by": "system" if automatic else "", "evidence": ""})
    return items


def disbursement_order_create(*, application: LoanApplication, contract: Contract, automatic: bool) -> DisbursementOrder:
    order, created = DisbursementOrder.objects.get_or_create(
        application=application,
        defaults={"contract": contract, "amount": application.offer_amount,
                  "account": f"6222{application.enterprise_id:012d}",
                  "conditions": conditions_precedent(application, automatic=automatic)},
    )
    if created:
        audit_record(actor=None, action="disbursement.order", obj=order, to_state=order.status,
                     data={"amount": str(order.amount), "conditions": [c["code"] for c in order.conditions]})
    return order


@transaction.atomic
def condition_check_off(*, order: DisbursementOrder, code: str, by, evidence: str) -> DisbursementOrder:
    order = DisbursementOrder.objects.select_for_update().get(pk=order.pk)
    if not evidence.strip():
        raise ApplicationError(_("请填写证明材料 / Give the evidence."), errors={"evidence": [_("此项为必填项 / This field is required.")]})
    found = False
    for item in order.conditions:
        if item["code"] == code:
            item.update(met=True, by=by.get_username(), evidence=evidence.strip(), at=timezone.now().isoformat())
            found = True
    if not found:
        raise ApplicationError(_("没有该放款条件 / No such condition."), errors={"code": [code]})
    order.save(update_fields=["conditions"])
    audit_record(actor=by, action="disbursement.condition_met", obj=order, data={"code": code, "evidence": evidence})
    return order


class FileCoreBankingAdapter:
    """Outbound record to core banking: one JSON line per release in var/outbound/ (replace with an API adapter)."""

    def send(self, record: dict) -> str:
        folder = settings.BASE_DIR / "var" / "outbound"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"disbursements-{timezone.localdate():%Y%m%d}.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        return f"CB{record['order']:010d}"


def core_banking_adapter():
    return import_string(getattr(settings, "CORE_BANKING_ADAPTER", "contracts.services.FileCoreBankingAdapter"))()


def disbursement_release(*, order: DisbursementOrder, by, idempotency_key: str) -> DisbursementOrder:
    """Release a locked order once. The caller holds the transaction and creates the Loan."""
    if order.status != DisbursementOrder.Status.PENDING:
        raise Conflict(_("该笔放款已处理 / This disbursement was already released."), state=order.status)
    unmet = [c["code"] for c in order.conditions if not c.get("met")]
    if unmet:
        raise ApplicationError(_("放款前提条件未满足 / Conditions precedent are not met."), errors={"conditions": unmet})
    before = order.status
    order.release()
    order.released_by = by if getattr(by, "pk", None) else None
    order.idempotency_key = idempotency_key
    order.core_banking_ref = f"CB{order.pk:010d}"
    order.save()
    audit_record(actor=by, action="disbursement.release", obj=order, from_state=before, to_state=order.status,
                 data={"amount": str(order.amount), "account": order.account, "key": idempotency_key})
    record = {"order": order.pk, "application": order.application_id, "amount": str(order.amount), "account": order.account,
              "released_at": order.released_at.isoformat()}
    transaction.on_commit(lambda: core_banking_adapter().send(record), robust=True)
    return order


def money(value: Decimal) -> str:
    return f"{value:.2f}"
