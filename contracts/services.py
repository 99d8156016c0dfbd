"""Contracts: issue the Chinese PDF contracts of an accepted offer (the loan contract and, when the case
needs them, a guarantee and a mortgage contract), collect signatures (customer first, then the bank's
PAdES seal), verify them, gather the conditions precedent, and release the disbursement exactly once.

The functions that change state are called by the lifecycle conductor (loanservice/lifecycle.py) or by
thin views; each writes its own audit event. Template fields are documented in docs/contracts.md."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import transaction
from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import VariableNode
from django.template.defaulttags import ForNode
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django_fsm import can_proceed

from applications.identifiers import check_resident_id, check_uscc
from applications.models import Enterprise, IdentityVerification, LoanApplication, LoanProduct
from applications.selectors import verified_identity
from approvals.models import ApprovalCase
from ledger.core_banking import core_banking
from loanservice.audit import audit_record
from loanservice.business_date import business_date
from loanservice.dispatch import dispatch_on_commit
from loanservice.errors import ApplicationError, Conflict
from loanservice.notifications import in_default_language, notify
from loanservice.pki import cert_pem, issuer_common_name, load_cert, sandbox_ca
from loanservice.sla import business_calendar
from loanservice.sms_codes import CODE_WRONG, sms_code_check, sms_code_discard, sms_code_send
from loanservice.text import join_list
from underwriting.models import DataSnapshot
from underwriting.selectors import latest_snapshot

from . import tasks
from .amount_words import amount_to_chinese
from .models import (
    DEFAULT_TITLES,
    ConditionPrecedent,
    Contract,
    ContractTemplate,
    CoreBankingOutbound,
    DisbursementOrder,
    EnterpriseCertificate,
    Signature,
)
from .pdf import pdf_sha256, render_pdf_marked
from .schedules import add_months, annualised_rate, build_schedule
from .seal import PLACE_MARKS, places_from_layout, signature_places
from .selectors import contract_pdf_signatures, contract_signatures_verify
from .signing import get_backend, sign_as_party, verify_pdf

log = logging.getLogger(__name__)

METHOD_LABELS = {"equal_installment": "等额本息", "equal_principal": "等额本金", "interest_only": "先息后本",
                 "bullet": "到期一次还本付息", "daily_interest": "随借随还（按日计息，按月付息，到期还本，可随时提前还本）"}
DUE_DATE_RULE_LABELS = {"none": "还款日遇节假日不调整", "following": "还款日遇节假日顺延至下一工作日",
                        "modified_following": "还款日遇节假日顺延至下一工作日，跨月则提前至上一工作日",
                        "preceding": "还款日遇节假日提前至上一工作日"}
GRACE_METHODS = ("equal_installment", "equal_principal")
KIND_ORDER = {"loan": 0, "mortgage": 1, "guarantee": 2}
NUMBER_SUFFIX = {"loan": "", "guarantee": "BZ", "mortgage": "DY"}
#: The lender as it appears in every contract; override with settings.CONTRACT_LENDER.
DEFAULT_LENDER = {"name": "示范银行股份有限公司", "uscc": "91310000MA1K000019", "legal_rep": "王建国",
                  "address": "上海市浦东新区陆家嘴环路1000号"}

#: The named fields a template of each kind must use, so that no issued contract omits a key term.
REQUIRED_FIELDS = {
    "loan": ["contract_number", "borrower.name", "borrower.uscc", "borrower.legal_rep_name", "lender.name", "lender.uscc",
             "lender.legal_rep", "amount", "amount_words", "annual_rate_percent", "rate_basis", "annualised_rate_percent",
             "term_months", "repayment_method_label", "purpose", "penalty_markup_percent", "schedule", "conditions"],
    "guarantee": ["contract_number", "loan_contract_number", "guarantor.name", "guarantor.id_number", "borrower.name",
                  "borrower.uscc", "lender.name", "lender.uscc", "amount", "amount_words", "term_months"],
    "mortgage": ["contract_number", "loan_contract_number", "borrower.name", "borrower.uscc", "borrower.legal_rep_name",
                 "lender.name", "lender.uscc", "amount", "amount_words", "collateral.description"],
    "credit_line": ["contract_number", "borrower.name", "borrower.uscc", "borrower.legal_rep_name", "lender.name",
                    "lender.uscc", "lender.legal_rep", "amount", "amount_words", "annual_rate_percent", "purpose",
                    "penalty_markup_percent",
                    "credit_line.valid_from", "credit_line.valid_until", "credit_line.drawdown_methods",
                    "credit_line.self_payment_limit", "conditions"],
}
CONTRACT_CSS = """
h1 { text-align: center; font-size: 18pt; margin: 0 0 0.6em; }
h2 { font-size: 12pt; margin: 1em 0 0.3em; }
p { margin: 0.3em 0; text-align: justify; }
table { border-collapse: collapse; width: 100%; margin: 0.4em 0; table-layout: fixed; }
th, td { border: 0.5pt solid #444; padding: 2pt 4pt; text-align: left; vertical-align: top; }
th { background: #f0f0f0; width: 28%; font-weight: normal; }
table.schedule th, table.schedule td { font-size: 9pt; text-align: right; width: auto; }
table.schedule th { text-align: center; }
td { overflow-wrap: anywhere; }
table.schedule td { overflow-wrap: normal; }
table.schedule th { white-space: nowrap; }
table.schedule th:first-child { width: 8%; }
.signatures { margin-top: 2.5em; page-break-inside: avoid; }
.signatures td { border: none; height: 5em; width: 50%; vertical-align: top; }
.seal { display: block; width: 34mm; height: 34mm; margin: 3mm 0; border: 1.2pt solid #b3261e; border-radius: 50%;
        color: #b3261e; text-align: center; font-size: 8pt; line-height: 1.4; padding-top: 11mm; box-sizing: border-box; }
.sign-line { display: block; margin-top: 6mm; border-bottom: 0.5pt solid #444; width: 60mm; }
"""


# ---------------------------------------------------------------- templates
def template_engine() -> Engine:
    """A Django template engine with no loaders and no tag libraries: an admin-edited template can use
    variables, filters, if and for, but cannot include files or load tags."""
    return Engine(loaders=[("django.template.loaders.locmem.Loader", {})], libraries={}, autoescape=True, debug=False)


def template_fields_used(html: str) -> set[str]:
    tpl = template_engine().from_string(html)
    names = {str(node.filter_expression.var) for node in tpl.nodelist.get_nodes_by_type(VariableNode)}
    names |= {str(node.sequence.var) for node in tpl.nodelist.get_nodes_by_type(ForNode)}
    return names


def contract_template_check(*, kind: str, html: str) -> None:
    """Refuse a template that does not compile or leaves out a key term (400 naming ``html``)."""
    if kind not in REQUIRED_FIELDS:
        raise ApplicationError(_("合同类型无效 / Invalid contract kind."), errors={"kind": [", ".join(REQUIRED_FIELDS)]})
    try:
        used = template_fields_used(html)
    except TemplateSyntaxError as exc:
        raise ApplicationError(_("模板语法错误 / The template does not compile."),
                               errors={"html": [str(exc)]}) from None
    missing = [f for f in REQUIRED_FIELDS[kind] if f not in used]
    if missing:
        raise ApplicationError(_("模板缺少必备条款字段 / The template leaves out key terms."),
                               errors={"html": [_("缺少字段 / Missing fields: %(f)s") % {"f": ", ".join(missing)}]})


@transaction.atomic
def contract_template_publish(*, kind: str, html: str, by, product: LoanProduct | None = None, title: str = "",
                              note: str = "") -> ContractTemplate:
    """Publish a new version of the (kind, product) template; the previous versions stay for the contracts
    issued from them and are deactivated. Templates are never edited in place."""
    contract_template_check(kind=kind, html=html)
    siblings = ContractTemplate.objects.select_for_update().filter(kind=kind, product=product)
    version = max([t.version for t in siblings] or [0]) + 1
    siblings.filter(is_active=True).update(is_active=False)
    template = ContractTemplate.objects.create(kind=kind, product=product, version=version, html=html, title=title,
                                               note=note, created_by=by if getattr(by, "pk", None) else None)
    audit_record(actor=by, action="contract_template.publish", obj=template,
                 data={"kind": kind, "product": product.code if product else None, "version": version, "note": note})
    return template


def template_for(application: LoanApplication, kind: str = "loan") -> ContractTemplate:
    """The product's own active template (latest version), otherwise the generic one. A credit line's loan contract
    is its 循环借款合同 (template kind credit_line)."""
    if kind == "loan" and application.product.is_credit_line:
        kind = "credit_line"
    active = ContractTemplate.objects.filter(kind=kind, is_active=True).order_by("-version")
    template = active.filter(product=application.product).first() or active.filter(product__isnull=True).first()
    if template is None:
        raise ApplicationError(_("未配置%(k)s模板 / No %(k)s template is configured.") % {"k": DEFAULT_TITLES.get(kind, kind)},
                               errors={"template": [kind]})
    return template


# ---------------------------------------------------------------- repayment schedule policy
def due_date_adjuster(rule: str) -> Callable[[dt.date], dt.date] | None:
    """The product's rule for a due date on a non-business day, on the official calendar (bizcal)."""
    if rule in ("", "none", None):
        return None

    cal = business_calendar()
    if rule == "following":
        return lambda d: cal.next_business_day(d, include_self=True)
    if rule == "preceding":
        return lambda d: cal.previous_business_day(d, include_self=True)
    if rule == "modified_following":
        def modified_following(d: dt.date) -> dt.date:
            moved = cal.next_business_day(d, include_self=True)
            return moved if moved.month == d.month else cal.previous_business_day(d, include_self=True)

        return modified_following
    raise ApplicationError(_("还款日调整规则无效 / Unknown due-date rule."), errors={"due_date_rule": [rule]})


def schedule_policy(*, product: LoanProduct, method: str, term_months: int) -> dict:
    """The product's schedule policy for one loan: grace months apply to amortising methods only and leave
    at least one amortising month."""
    grace = product.grace_months or 0
    if method not in GRACE_METHODS or grace >= term_months:
        grace = 0
    return {"grace_months": grace, "repayment_day": product.repayment_day, "due_date_rule": product.due_date_rule or "none"}


def _policy_of(application: LoanApplication) -> dict:
    """The policy the loan contract states (the contract is what binds), else the product's current one."""
    # The terms alone (a deferred-field Contract refreshes its FSM state: three more queries).
    terms = (application.contracts.filter(kind="loan").exclude(status=Contract.Status.VOIDED)
             .order_by("-version").values_list("terms", flat=True).first())
    if terms is not None and "schedule_policy" in terms:
        return terms["schedule_policy"]
    return schedule_policy(product=application.product, method=application.offer_repayment_method,
                           term_months=application.offer_term_months)


def contract_schedule_policy(application: LoanApplication) -> dict:
    """The schedule policy the loan contract states (grace months, repayment day, due-date rule): what the loan is
    serviced to for its whole life, whatever the product says later."""
    return dict(_policy_of(application))


def schedule_options(application: LoanApplication) -> dict:
    """Keyword arguments for build_schedule beyond amount, rate, term, method and start date (used by the
    contract annex and by postloan.loan_open)."""
    policy = _policy_of(application)
    return {"grace_months": policy["grace_months"], "repayment_day": policy["repayment_day"],
            "adjust_due_date": due_date_adjuster(policy["due_date_rule"])}


# ---------------------------------------------------------------- contract terms and rendering
def lender() -> dict:
    return {**DEFAULT_LENDER, **getattr(settings, "CONTRACT_LENDER", {})}


def disbursement_account_default(application: LoanApplication) -> dict:
    """The borrower's settlement account the loan is paid into (core banking assigns it; a synthetic one here)."""
    return {"number": f"6222{application.enterprise_id:012d}", "name": application.enterprise.name,
            "bank": lender()["name"]}


def _approved_conditions(application: LoanApplication) -> list[dict]:
    items: dict[str, dict] = {}
    for case in application.approval_cases.filter(status=ApprovalCase.Status.APPROVED):
        for cond in case.conditions:
            code = str(cond.get("code") if isinstance(cond, dict) else cond).strip()
            text = str(cond.get("text") or code) if isinstance(cond, dict) else code
            if code:
                items.setdefault(code, {"code": code, "text": text})
    return list(items.values())


def _recorded(application: LoanApplication, relation: str) -> list:
    """Guarantors and collateral the RM recorded in due diligence (underwriting's Guarantor / Collateral)."""
    manager = getattr(application, relation, None)
    return list(manager.all()) if manager is not None else []


def _collateral_terms(application: LoanApplication) -> dict:
    items = [{"kind": c.get_kind_display(), "description": c.description, "owner_name": c.owner_name,
              "certificate_no": c.certificate_no, "valuation": f"{c.valuation:.2f}", "appraiser": c.appraiser,
              "appraised_on": c.appraised_on.isoformat() if c.appraised_on else ""}
             for c in _recorded(application, "collateral")]
    # Ownership evidence by what it is (the checklist item's name), never by the uploaded file's name.
    docs = sorted({f"{d.requirement.name}（已提交）" for d in application.documents.select_related("requirement")
                   .filter(requirement__code__in=["property_certificate", "appraisal"])})
    if items:
        description = "；".join(f"{i['description']}（{i['kind']}，权证 {i['certificate_no'] or '—'}）" for i in items)
        value = f"{sum(Decimal(i['valuation']) for i in items):.2f}"
    else:
        description, value = "借款人提供的不动产（以不动产权证书及评估报告记载为准）", ""
    return {"description": description, "items": items, "value": value, "documents": docs}


def guarantor_slots(application: LoanApplication, *, required: bool) -> list[tuple[str, dict]]:
    """One guarantee contract per recorded guarantor; when a condition asks for a guarantor and none is
    recorded, the legal representative's personal guarantee (法定代表人个人连带责任保证)."""
    slots = []
    for g in _recorded(application, "guarantors"):
        person = g.kind == "person"
        slots.append((f"guarantor:{g.pk}", {
            "name": g.name, "kind": "natural_person" if person else "enterprise",
            "kind_label": "自然人" if person else "企业法人", "id_type": "居民身份证" if person else "统一社会信用代码",
            "id_number": g.id_number if person else g.uscc, "relationship": g.relationship,
            "guaranteed_amount": f"{g.guaranteed_amount:.2f}" if g.guaranteed_amount else "",
            "liability": "连带责任保证"}))
    if not slots and required:
        e = application.enterprise
        slots.append(("legal_rep", {"name": e.legal_rep_name, "kind": "natural_person", "kind_label": "自然人（借款人法定代表人）",
                                    "id_type": "居民身份证", "id_number": e.legal_rep_id_number, "relationship": "法定代表人",
                                    "guaranteed_amount": "", "liability": "连带责任保证"}))
    return slots


def contract_terms(application: LoanApplication, *, start_date: dt.date, kind: str = "loan", number: str = "",
                   loan_contract_number: str = "", overrides: dict | None = None, security: dict | None = None,
                   penalty_markup: Decimal | None = None) -> dict:
    """Every key term of the contract, as the named fields a template uses (docs/contracts.md). `penalty_markup` is the
    罚息上浮 the contract states and its loan charges (the post-loan policy's, given by the conductor)."""
    overrides = overrides or {}
    e = application.enterprise
    amount = application.offer_amount
    method = application.offer_repayment_method
    term = application.offer_term_months
    policy = schedule_policy(product=application.product, method=method, term_months=term)
    common = {"principal": amount, "annual_rate": application.offer_rate, "term_months": term, "method": method,
              "start_date": start_date, "grace_months": policy["grace_months"], "repayment_day": policy["repayment_day"]}
    schedule = build_schedule(**common, adjust_due_date=due_date_adjuster(policy["due_date_rule"]))
    nominal_dates = [line.due_date for line in build_schedule(**common)]
    bank = lender()
    terms = {
        "kind": kind,
        "title": DEFAULT_TITLES.get(kind, kind),
        "contract_number": number,
        "loan_contract_number": loan_contract_number or number,
        "application_id": application.pk,
        "issued_on": business_date().isoformat(),
        "borrower": {"name": e.name, "uscc": e.uscc, "legal_rep_name": e.legal_rep_name,
                     "legal_form": e.get_legal_form_display()},
        "lender": {**bank, "branch": application.branch.name if application.branch else ""},
        "product": {"code": application.product.code, "name": application.product.name},
        "amount": f"{amount:.2f}",
        "amount_words": amount_to_chinese(amount),
        "annual_rate": f"{application.offer_rate:.6f}",
        "annual_rate_percent": f"{application.offer_rate * 100:.4f}".rstrip("0").rstrip("."),
        **rate_basis(application),
        "annualised_rate_percent": _percent(annualised_rate(
            principal=amount, annual_rate=application.offer_rate, start_date=start_date,
            payments=[(nominal, line.total) for nominal, line in zip(nominal_dates, schedule, strict=True)])),
        "term_months": term,
        "repayment_method": method,
        "repayment_method_label": METHOD_LABELS.get(method, method),
        "purpose": application.purpose,
        "start_date": start_date.isoformat(),
        "maturity_date": schedule[-1].due_date.isoformat(),
        **penalty_markup_terms(penalty_markup),
        "schedule_policy": policy,
        "grace_months": policy["grace_months"],
        "repayment_day": policy["repayment_day"],
        "due_date_rule_label": DUE_DATE_RULE_LABELS.get(policy["due_date_rule"], ""),
        "conditions": conditions_text(application),
        "account": overrides.get("account") or disbursement_account_default(application),
        "schedule": [{"n": s.n, "due_date": s.due_date.isoformat(), "principal": f"{s.principal:.2f}",
                      "interest": f"{s.interest:.2f}", "total": f"{s.total:.2f}", "balance": f"{s.balance:.2f}"}
                     for s in schedule],
        "schedule_totals": {"principal": f"{sum(s.principal for s in schedule):.2f}",
                            "interest": f"{sum(s.interest for s in schedule):.2f}",
                            "total": f"{sum(s.total for s in schedule):.2f}"},
    }
    if kind == "loan" and application.product.is_credit_line:
        terms["credit_line"] = credit_line_terms(application, start_date=start_date)
    if kind == "guarantee":
        default = security or guarantor_slots(application, required=True)[0][1]
        terms["guarantor"] = {**default, **overrides.get("guarantor", {})}
    if kind == "mortgage":
        terms["collateral"] = {**_collateral_terms(application), **overrides.get("collateral", {})}
    return terms


TENOR_NAMES = {"1y": "一年期LPR", "5y": "五年期以上LPR"}


def penalty_markup_terms(markup: Decimal | None) -> dict:
    """The penalty markup as the contract states it: 0.3 → {"penalty_markup": "0.3000", "penalty_markup_percent": "30"}
    (postloan reads the first when it opens the loan). None states nothing: the default templates then say the markup
    is the one the bank applies on the day of disbursement, within 30 %-50 %, which is what the loan then charges."""
    if markup is None:
        return {}
    return {"penalty_markup": f"{markup:.4f}", "penalty_markup_percent": f"{markup * 100:.2f}".rstrip("0").rstrip(".")}


def _percent(rate: Decimal) -> str:
    """0.0310 → "3.10", 0.043550 → "4.355" (at least two decimals, as rates are written)."""
    text = f"{rate * 100:.4f}".rstrip("0")
    return text if len(text.split(".")[1]) >= 2 else f"{rate * 100:.2f}"


def _bp(spread: Decimal) -> str:
    return f"{abs(spread):.2f}".rstrip("0").rstrip(".")


def _chinese_date(on: dt.date) -> str:
    return f"{on.year}年{on.month}月{on.day}日"


def rate_basis(application: LoanApplication) -> dict:
    """The offer's rate basis as the contract states it (DESIGN.md "Rates"): the LPR (tenor, date, rate), the spread
    in basis points (negative below the LPR), fixed or floating and the repricing period; ``rate_basis`` is the
    sentence the contract prints. An offer made before rates had a basis states only its fixed rate."""
    if application.offer_lpr_rate is None:
        return {"lpr_tenor": "", "lpr_rate": "", "lpr_date": "", "spread_bp": "", "rate_type": "fixed", "repricing_months": None,
                "rate_basis": "固定利率，在借款期限内固定不变"}
    spread = application.offer_spread_bp
    floating = application.offer_rate_type == "floating"
    months = application.offer_repricing_months if floating else None
    tenor = TENOR_NAMES.get(application.offer_lpr_tenor, application.offer_lpr_tenor)
    text = (f"按 {_chinese_date(application.offer_lpr_date)} {tenor} {_percent(application.offer_lpr_rate)}% "
            f"{'减' if spread < 0 else '加'} {_bp(spread)} 个基点确定，")
    text += (f"浮动利率，自放款日起每 {months} 个月重定价，重定价日利率为重定价日前最近一次公布的{tenor}"
             f"{'减' if spread < 0 else '加'} {_bp(spread)} 个基点（加点数值在借款期限内不变）" if floating
             else "固定利率，在借款期限内固定不变")
    return {"lpr_tenor": application.offer_lpr_tenor, "lpr_tenor_label": tenor, "lpr_rate": f"{application.offer_lpr_rate:.6f}",
            "lpr_rate_percent": _percent(application.offer_lpr_rate), "lpr_date": application.offer_lpr_date.isoformat(),
            "spread_bp": f"{spread:.2f}", "rate_type": application.offer_rate_type or "fixed", "repricing_months": months,
            "rate_basis": text}


def offer_annualised_rate(application: LoanApplication, *, start_date: dt.date) -> Decimal:
    """年化利率 of the offer on the schedule it would have if drawn on `start_date` (no fee is charged at drawdown,
    so it is the nominal annual rate; contracts.schedules.annualised_rate)."""
    policy = schedule_policy(product=application.product, method=application.offer_repayment_method,
                             term_months=application.offer_term_months)
    lines = build_schedule(principal=application.offer_amount, annual_rate=application.offer_rate,
                           term_months=application.offer_term_months, method=application.offer_repayment_method,
                           start_date=start_date, grace_months=policy["grace_months"], repayment_day=policy["repayment_day"])
    return annualised_rate(principal=application.offer_amount, annual_rate=application.offer_rate, start_date=start_date,
                           payments=[(line.due_date, line.total) for line in lines])


def credit_line_terms(application: LoanApplication, *, start_date: dt.date) -> dict:
    """The revolving line's terms the 循环借款合同 states: the limit (the offer's amount) for the validity (the offer's
    term in months), the drawdown terms of the product, and the 自主支付 limit above which funds go to a named payee."""
    product = application.product
    valid_until = add_months(start_date, application.offer_term_months) - dt.timedelta(days=1)
    methods = product.drawdown_method_list
    return {"limit": f"{application.offer_amount:.2f}", "valid_from": start_date.isoformat(),
            "valid_until": valid_until.isoformat(), "validity_months": application.offer_term_months,
            "drawdown_min_amount": f"{product.drawdown_min_amount:.2f}",
            "drawdown_term_months": f"{product.drawdown_min_term_months}-{product.drawdown_max_term_months}",
            "drawdown_methods": "、".join(METHOD_LABELS.get(m, m) for m in methods),
            "maturity_cap_months": product.drawdown_maturity_cap_months,
            "self_payment_limit": f"{product.self_payment_limit:.2f}"}


def conditions_text(application: LoanApplication) -> list[dict]:
    """The conditions precedent the contract states: the product's and the approver's."""
    return [{"code": c["code"], "text": c["text"]} for c in _condition_specs(application)]


def _static_roots():
    return [settings.BASE_DIR / "static"]


def contract_render(*, template: ContractTemplate, number: str, terms: dict) -> bytes:
    """The PDF bytes (A4, embedded CJK font, numbered pages, the number in the header; contracts/pdf.py). The
    signature block's places come from the same layout and are kept under the bytes' SHA-256 (contract_places), so
    that nothing reads the file again to find them."""
    body = template_engine().from_string(template.html).render(Context({**terms, "contract_number": number}))
    title = f"{template.display_title} {number}"
    if "<html" not in body[:500].lower():
        body = (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>'
                f"<style>{CONTRACT_CSS}</style></head><body>{body}</body></html>")
    data, marks = render_pdf_marked(body, static_roots=_static_roots(), title=title, header_text=f"合同编号 {number}",
                                    marks=PLACE_MARKS)
    cache.set(_places_key(pdf_sha256(data)), places_from_layout(marks), PLACES_TTL)
    return data


def contract_slots(application: LoanApplication) -> list[tuple[str, str, dict | None]]:
    """The package an accepted offer needs, as (kind, security_ref, security): the loan contract always; a
    mortgage contract for secured products, recorded collateral or a condition that asks for one; a
    guarantee contract per guarantor when guarantors are recorded or a condition asks for one."""
    needs = {c["contract_kind"] for c in _condition_specs(application) if c["contract_kind"]}
    slots: list[tuple[str, str, dict | None]] = [("loan", "", None)]
    if application.product.secured or "mortgage" in needs or _recorded(application, "collateral"):
        slots.append(("mortgage", "", None))
    slots += [("guarantee", ref, g) for ref, g in guarantor_slots(application, required="guarantee" in needs)]
    return slots


def _number(application: LoanApplication, kind: str) -> str:
    """LS<year><case>-<n> for the loan contract, -DY<n> mortgage, -BZ<n> guarantee; n counts every
    contract of that kind of the case, versions included, so a number is never reused."""
    seq = application.contracts.filter(kind=kind).count() + 1
    return f"LS{timezone.localdate():%Y}{application.pk:08d}-{NUMBER_SUFFIX.get(kind, kind[:2].upper())}{seq}"


def contract_generate(*, application: LoanApplication, by, kind: str = "loan", security_ref: str = "",
                      security: dict | None = None, overrides: dict | None = None,
                      supersedes: Contract | None = None, penalty_markup: Decimal | None = None) -> Contract:
    """Issue one contract (inside the caller's transaction): render, hash the exact bytes, store both. A corrected
    version states the penalty markup of the version it supersedes (a correction changes no price)."""
    version = application.contracts.filter(kind=kind, security_ref=security_ref).count() + 1
    number = _number(application, kind)
    loan_number = ""
    if kind != "loan":
        loan = application.contracts.filter(kind="loan").exclude(status=Contract.Status.VOIDED).order_by("-version").first()
        loan_number = loan.number if loan else ""
    template = template_for(application, kind)
    if kind == "guarantee" and security is None and supersedes is not None:
        security = supersedes.terms.get("guarantor")
    if penalty_markup is None and supersedes is not None and supersedes.terms.get("penalty_markup"):
        penalty_markup = Decimal(supersedes.terms["penalty_markup"])
    terms = contract_terms(application, start_date=business_date(), kind=kind, number=number,
                           loan_contract_number=loan_number, overrides=overrides, security=security,
                           penalty_markup=penalty_markup)
    terms["title"] = template.display_title
    if overrides:
        terms["overrides"] = overrides
    data = import_string(settings.CONTRACT_RENDERER)(template=template, number=number, terms=terms)
    contract = Contract(application=application, kind=kind, security_ref=security_ref, number=number, version=version,
                        template=template, terms=terms, sha256=pdf_sha256(data),
                        customer_party="guarantor" if kind == "guarantee" else "borrower", supersedes=supersedes)
    contract.pdf.save(f"{number}.pdf", ContentFile(data), save=False)
    contract.save()
    if cache.get(_places_key(contract.sha256)) is None:  # not found while rendering (another CONTRACT_RENDERER)
        dispatch_on_commit(tasks.contract_places_prepare, contract.pk)
    audit_record(actor=by, action="contract.issue", obj=contract, to_state=contract.status,
                 data={"application": application.pk, "kind": kind, "version": version, "sha256": contract.sha256,
                       "template": template.pk, "template_version": template.version, "bytes": len(data),
                       "security": security_ref or None, "supersedes": supersedes.pk if supersedes else None})
    return contract


@transaction.atomic
def contracts_issue(*, application: LoanApplication, by, penalty_markup: Decimal) -> list[Contract]:
    """Issue every contract of the package that is not issued yet (idempotent). `penalty_markup` is the 罚息上浮 they
    state (the post-loan policy's in force, within 30 %-50 %: the conductor reads it through postloan)."""
    existing = {(c.kind, c.security_ref): c for c in application.contracts.exclude(status=Contract.Status.VOIDED)}
    issued = []
    for kind, ref, security in contract_slots(application):
        if (kind, ref) not in existing:
            existing[(kind, ref)] = contract_generate(application=application, by=by, kind=kind, security_ref=ref,
                                                      security=security, penalty_markup=penalty_markup)
            issued.append(existing[(kind, ref)])
    if issued:
        with in_default_language():
            notify(user=application.applicant, kind="contract_ready",
                   title=_("合同 %(n)s 已生成，请签署 / Contract %(n)s is ready to sign")
                   % {"n": join_list(c.number for c in issued)}, url=reverse("portal:application", args=[application.pk]))
    return sorted(existing.values(), key=lambda c: (KIND_ORDER.get(c.kind, 9), c.pk))


def _clean_changes(contract: Contract, changes: dict) -> dict:
    """A correction may restate the guarantor, the collateral or the disbursement account (400 naming the
    field); every other term is recomputed from the case with the active template, so a correction with no
    changes re-issues the contract from corrected case data or a corrected template. Earlier corrections of
    the contract are kept."""

    overrides: dict = {k: dict(v) for k, v in contract.terms.get("overrides", {}).items()}
    errors: dict[str, list[str]] = {}

    def given(key: str, allowed: tuple[str, ...]) -> dict:
        return {k: str(v).strip() for k, v in (changes.get(key) or {}).items() if k in allowed and str(v or "").strip()}

    guarantor = given("guarantor", ("name", "id_number"))
    if guarantor:
        if contract.kind != "guarantee":
            errors["guarantor"] = [_("仅保证合同可更正保证人 / Only a guarantee contract names a guarantor.")]
        elif "id_number" in guarantor:
            enterprise = contract.terms.get("guarantor", {}).get("kind") == "enterprise"
            check = (check_uscc if enterprise else check_resident_id)(guarantor["id_number"])
            if check.ok:
                guarantor["id_number"] = check.value
            else:
                errors["guarantor.id_number"] = [str(m) for m in check.errors]
        overrides["guarantor"] = {**overrides.get("guarantor", {}), **guarantor}
    collateral = given("collateral", ("description", "value"))
    if collateral:
        if contract.kind != "mortgage":
            errors["collateral"] = [_("仅抵押合同可更正抵押物 / Only a mortgage contract describes collateral.")]
        if "value" in collateral:
            try:
                value = Decimal(collateral["value"])
                if not value.is_finite() or value <= 0:
                    raise InvalidOperation
                collateral["value"] = f"{value:.2f}"
            except InvalidOperation:
                errors["collateral.value"] = [_("请填写正数金额 / Give a positive amount.")]
        overrides["collateral"] = {**overrides.get("collateral", {}), **collateral}
    account = given("account", ("number", "name"))
    if account:
        number = account.get("number", "")
        if number and (not number.isdigit() or not 10 <= len(number) <= 30):
            errors["account.number"] = [_("账号应为10-30位数字 / 10 to 30 digits.")]
        overrides["account"] = {**contract.terms.get("account", {}), **overrides.get("account", {}), **account}
    if errors:
        raise ApplicationError(_("更正内容无效 / The correction is invalid."), errors=errors)
    return overrides


@transaction.atomic
def contract_correct(*, contract: Contract, by, reason: str, changes: dict | None = None, ip: str | None = None) -> Contract:
    """A correction: void the contract and issue its next version (with the corrected terms). The voided
    file stays as it was, with its signatures, for the record."""
    if not (reason or "").strip():
        raise ApplicationError(_("请填写更正原因 / Give the reason for the correction."),
                               errors={"reason": [_("此项为必填项 / This field is required.")]})
    application = LoanApplication.objects.select_for_update().get(pk=contract.application_id)
    contract = Contract.objects.select_for_update().get(pk=contract.pk)
    if application.status != LoanApplication.Status.CONTRACTING:
        raise Conflict(_("只有签约中的合同可以更正 / Only contracts of a case in contracting can be corrected."),
                       state=application.status)
    overrides = _clean_changes(contract, changes or {})
    contract_void(contract=contract, by=by, reason=reason, ip=ip)
    new = contract_generate(application=application, by=by, kind=contract.kind, security_ref=contract.security_ref,
                            overrides=overrides, supersedes=contract)
    audit_record(actor=by, action="contract.correct", obj=new, from_state=contract.status, to_state=new.status, reason=reason,
                 ip=ip, data={"voided": contract.pk, "voided_number": contract.number, "changes": overrides})
    with in_default_language():
        notify(user=application.applicant, kind="contract_ready",
               title=_("合同已更正为 %(n)s，请重新签署 / Contract corrected as %(n)s; please sign again") % {"n": new.number},
               url=reverse("portal:application", args=[application.pk]))
    return new


def contract_void(*, contract: Contract, by, reason: str, ip: str | None = None) -> Contract:
    """Void a contract that is not fully signed (inside the caller's transaction, on a locked row)."""
    if not can_proceed(contract.void):
        raise Conflict(_("已签署或已作废的合同不能作废 / A signed or voided contract cannot be voided."), state=contract.status)
    before = contract.status
    contract.void()
    contract.void_reason = reason.strip()[:300]
    contract.save()
    audit_record(actor=by, action="contract.void", obj=contract, from_state=before, to_state=contract.status,
                 reason=reason, ip=ip)
    return contract


# ---------------------------------------------------------------- signatures
def _read(field) -> bytes:
    with field.open("rb") as fh:
        return fh.read()


def _party_name(contract: Contract, party: str) -> str:
    if party == "bank":
        return contract.terms.get("lender", {}).get("name", "")
    if party == "guarantor":
        return contract.terms.get("guarantor", {}).get("name", "")
    return contract.terms.get("borrower", {}).get("name", "")


SIGNER_NOT_VERIFIED = _("签署人须为经核验的借款企业法定代表人或授权经办人，请先完成身份核验 / The signer must be the "
                        "borrowing enterprise's verified legal representative or authorised agent: verify your identity first.")
SIGNING_CODE_NEEDED = _("请输入发送到核验手机号的签署验证码 / Enter the signing code sent to the verified phone.")


def _signing_sms_purpose(application: LoanApplication) -> str:
    return f"sign:{application.pk}"


def signing_code_send(*, application: LoanApplication, user, ip: str | None = None) -> tuple[IdentityVerification, str]:
    """The SMS code for signing, to the phone verified for the borrowing enterprise (never a number typed now).
    Conflict when the user is not its verified legal representative or agent. Returns the verification and
    the code (a DEBUG page shows it, as the sign-up page does)."""
    verification = verified_identity(user=user, enterprise=application.enterprise)
    if verification is None:
        raise Conflict(SIGNER_NOT_VERIFIED, state="signer_not_verified")
    return verification, sms_code_send(phone=verification.phone, purpose=_signing_sms_purpose(application), ip=ip)


def signer_verify(*, application: LoanApplication, user, sms_code: str) -> IdentityVerification:
    """Who signs for the borrower (DESIGN.md, Trust rules): the enterprise's verified legal representative or agent
    (Conflict otherwise), holding the phone verified with it (the code sent at signing; 400 when wrong). Called
    inside the signing transaction: the code is used up when it commits, so a signature refused for another
    reason (a changed file, the wrong order) can be tried again with the same code."""
    verification = verified_identity(user=user, enterprise=application.enterprise)
    if verification is None:
        raise Conflict(SIGNER_NOT_VERIFIED, state="signer_not_verified")
    if not sms_code:
        raise ApplicationError(SIGNING_CODE_NEEDED, errors={"sms_code": [SIGNING_CODE_NEEDED]})
    purpose = _signing_sms_purpose(application)
    if not sms_code_check(phone=verification.phone, code=sms_code, purpose=purpose, consume=False):
        raise ApplicationError(CODE_WRONG, errors={"sms_code": [CODE_WRONG]})
    transaction.on_commit(lambda: sms_code_discard(phone=verification.phone, purpose=purpose))
    return verification


def enterprise_certificate(*, enterprise: Enterprise) -> tuple[EnterpriseCertificate, object]:
    """The enterprise's signing certificate and its key: the one issued before while it is valid and its key is
    at hand, else a new one from the bank's sandbox CA (subject: the name as CN and O, the 统一社会信用代码 as
    serialNumber, as Chinese CAs issue enterprise certificates). Inside the caller's transaction; the enterprise
    row is locked so that two signatures at once do not issue two certificates."""
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    Enterprise.objects.select_for_update().only("pk").get(pk=enterprise.pk)
    ca = sandbox_ca()
    now = timezone.now()
    current = (EnterpriseCertificate.objects.filter(enterprise=enterprise, not_before__lte=now, not_after__gt=now)
               .order_by("-issued_at", "-id").first())
    if current is not None and ca.has_key(current.key_name) and ca.issued_by_root(load_cert(current.certificate_pem)):
        return current, ca.load_key(current.key_name)
    issued = ca.issue([(NameOID.COUNTRY_NAME, "CN"), (NameOID.ORGANIZATION_NAME, enterprise.name[:64]),
                       (NameOID.COMMON_NAME, enterprise.name[:64]), (NameOID.SERIAL_NUMBER, enterprise.uscc)],
                      valid_days=getattr(settings, "ENTERPRISE_CERTIFICATE_DAYS", 1825))
    cert = issued.certificate
    serial = format(cert.serial_number, "x")
    key_name = f"enterprise-{enterprise.pk}-{serial[:16]}"
    ca.store_key(key_name, issued.key)
    record = EnterpriseCertificate.objects.create(
        enterprise=enterprise, serial=serial, subject=cert.subject.rfc4514_string()[:300],
        issuer=cert.issuer.rfc4514_string()[:300], certificate_pem=cert_pem(cert),
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(), not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc, key_name=key_name)
    audit_record(actor=None, action="certificate.issue", obj=enterprise,
                 data={"certificate": record.pk, "serial": serial, "issuer": issuer_common_name(cert),
                       "not_after": record.not_after.isoformat(), "replaces": current.pk if current else None})
    return record, issued.key


#: How long the signature block's places of an issued contract are kept (a miss only means reading the file again).
PLACES_TTL = 14 * 24 * 3600


def _places_key(sha256: str) -> str:
    return f"contracts:places:v1:{sha256}"


def contract_places(contract: Contract, data: bytes | None = None) -> dict:
    """Where the enterprise's signature and the bank's seal go on the contract as issued (contracts.seal.
    signature_places), kept in the cache under the issued file's SHA-256: the places are a function of those bytes
    alone, so a cached value is exactly what reading the file again gives. contract_render keeps them from the
    layout it wrote the file from (the same values, tested for every seeded template); a miss reads the file.
    ``data``: the issued bytes if the caller has them (checked against the recorded hash, else read from storage)."""
    key = _places_key(contract.sha256)
    places = cache.get(key)
    if places is None:
        if data is None or pdf_sha256(data) != contract.sha256:
            data = _read(contract.pdf)
        places = signature_places(data)
        if pdf_sha256(data) == contract.sha256:  # never keep places read from a file that is not the one recorded
            cache.set(key, places, PLACES_TTL)
    return places


def contract_signatures_prepare(*, contract_id: int) -> bool | None:
    """The worker validates the signatures of a contract's newly signed file (tasks.contract_signatures_prepare,
    dispatched on commit of each signature), so that the owner's first view finds the result in the cache. Returns
    the result's ``ok`` (None: nothing signed yet, or no such contract)."""
    contract = Contract.objects.filter(pk=contract_id).select_related("application").first()
    return contract_pdf_signatures(contract)["ok"] if contract is not None else None


def contract_places_prepare(*, contract_id: int) -> dict | None:
    """The worker finds the places while the customer reads the contract, so that neither the signature nor the
    seal reads the file for them (tasks.contract_places_prepare, dispatched when a contract is issued)."""
    contract = Contract.objects.filter(pk=contract_id).first()
    return contract_places(contract) if contract is not None and contract.pdf else None


def _enterprise_sign(contract: Contract, data: bytes) -> tuple[bytes, EnterpriseCertificate]:
    """The borrowing enterprise's own PAdES signature on ``data`` (visible in its column of the signature block)."""
    enterprise = contract.application.enterprise
    record, key = enterprise_certificate(enterprise=enterprise)
    signed = sign_as_party(data, private_key=key, certificate=load_cert(record.certificate_pem),
                           chain=[sandbox_ca().root_certificate()], reason=f"借款人电子签名 {contract.number}",
                           location="CN", stamp=(enterprise.name, f"电子签名 {enterprise.uscc}"),
                           place=contract_places(contract, data)["signature"])
    return signed, record


def contract_sign(*, contract: Contract, party: str, by, ip: str | None = None, user_agent: str = "",
                  expected_sha256: str = "", verification: IdentityVerification | None = None,
                  prepare_signatures: bool = True) -> Contract:
    """Record one signature on a locked contract (the caller holds the transaction): the customer party
    (borrower or guarantor) first, the borrower by a person verified for the enterprise (`verification`, from
    `signer_verify`), then the bank, whose signature is the PAdES seal on the PDF. ``prepare_signatures=False``:
    the caller has the new file's signatures validated later itself (the fast track, after the release)."""
    if party == "bank":
        transition = contract.bank_sign
    elif party in ("borrower", "guarantor"):
        if party != contract.customer_party:
            raise ApplicationError(_("该合同应由%(p)s签署 / This contract is signed by the %(p)s.")
                                   % {"p": contract.get_customer_party_display()}, errors={"party": [party]})
        transition = contract.borrower_sign
    else:
        raise ApplicationError(_("签署方无效 / Invalid party."), errors={"party": [_("borrower、guarantor 或 bank")]})
    if not can_proceed(transition):
        expected = _("客户先签，银行后签 / The customer signs first, then the bank.")
        raise Conflict(_("当前合同状态不能由该方签署 / This party cannot sign now. ") + expected, state=contract.status)
    if expected_sha256 and expected_sha256.strip().lower() != contract.sha256:
        raise Conflict(_("您查看的合同文件与当前版本不一致，请重新打开合同 / The file you reviewed is not the current contract."),
                       state=contract.status)
    data = _read(contract.pdf)
    if pdf_sha256(data) != contract.sha256:
        raise Conflict(_("合同文件校验失败，请联系银行 / The contract file failed its integrity check."), state=contract.status)
    if party == "borrower" and (verification is None or not verification.passed
                                or verification.enterprise_id != contract.application.enterprise_id):
        raise Conflict(SIGNER_NOT_VERIFIED, state="signer_not_verified")
    before = contract.status
    result_sha = ""
    certificate = None
    if party == "borrower":
        # The enterprise signs the PDF itself, with its certificate from the bank's sandbox CA.
        signed, certificate = _enterprise_sign(contract, data)
        contract.borrower_signed_pdf.save(f"{contract.number}-borrower-signed.pdf", ContentFile(signed), save=False)
        contract.borrower_signed_sha256 = result_sha = pdf_sha256(signed)
    if party == "bank":
        if contract.borrower_signed_pdf:
            # The seal goes onto the enterprise's signed file (an incremental update: its signature stays valid).
            data = _read(contract.borrower_signed_pdf)
            if pdf_sha256(data) != contract.borrower_signed_sha256:
                raise Conflict(_("合同文件校验失败，请联系银行 / The contract file failed its integrity check."),
                               state=contract.status)
        backend = get_backend()
        # The built-in backends draw the seal in the signature block (contracts/seal.py); others sign as they do.
        visible = {"seal_name": _party_name(contract, "bank")} if getattr(backend, "visible_seal", False) else {}
        if visible and getattr(backend, "takes_seal_place", False):
            # The page content of the issued file decides the place; the enterprise's signature (an incremental
            # update) did not move it.
            visible["seal_place"] = contract_places(contract)["seal"]
        sealed = backend.sign(data, reason=f"贷款人签章 {contract.number}", location="CN", **visible)
        contract.signed_pdf.save(f"{contract.number}-signed.pdf", ContentFile(sealed), save=False)
        contract.signed_sha256 = result_sha = pdf_sha256(sealed)
    transition()
    contract.save()
    if prepare_signatures:
        # The worker validates the new file's signatures once it is committed, so that the first view is a cache hit.
        dispatch_on_commit(tasks.contract_signatures_prepare, contract.pk)
    how = f"{verification.method}+sms" if verification is not None and party == "borrower" else ""
    Signature.objects.create(contract=contract, party=party, signer=by if getattr(by, "pk", None) else None,
                             signer_label=by.get_username() if by else "system", party_name=_party_name(contract, party),
                             ip=ip, user_agent=user_agent[:300], document_sha256=contract.sha256, result_sha256=result_sha,
                             verification=verification if how else None, verification_method=how,
                             certificate=certificate)
    audit_record(actor=by, action=f"contract.sign.{party}", obj=contract, from_state=before, to_state=contract.status, ip=ip,
                 data={"sha256": contract.sha256, "sealed_sha256": result_sha if party == "bank" else None,
                       "user_agent": user_agent[:300], "verification": verification.pk if how else None,
                       "verified_by": how or None, "certificate": certificate.serial if certificate else None,
                       "signed_sha256": result_sha if certificate else None})
    return contract


def package_contracts(application: LoanApplication, *, lock: bool = False) -> list[Contract]:
    qs = application.contracts.exclude(status=Contract.Status.VOIDED).order_by("id")
    if lock:
        qs = qs.select_for_update()
    return sorted(qs, key=lambda c: (KIND_ORDER.get(c.kind, 9), c.pk))


def awaiting(contract: Contract, party: str) -> bool:
    if party == "bank":
        return contract.status == Contract.Status.BORROWER_SIGNED
    return contract.status == Contract.Status.ISSUED and contract.customer_party == party


def contracts_sign_package(*, anchor: Contract, party: str, by, ip: str | None = None, user_agent: str = "",
                           expected_sha256: str = "", verification: IdentityVerification | None = None,
                           prepare_signatures: bool = True) -> list[Contract]:
    """Sign every contract of the case awaiting ``party`` in one act (e.g. the borrower signs the loan and the
    mortgage contract; the bank seals all). Each contract gets its own signature over its own hash. The
    anchor (the contract the signer opened) must itself await this party, else the order is wrong (409)."""
    contracts = package_contracts(anchor.application, lock=True)
    anchor = next((c for c in contracts if c.pk == anchor.pk), None)
    if anchor is None:
        raise Conflict(_("该合同已作废 / This contract was voided."), state=Contract.Status.VOIDED)
    if party in ("borrower", "guarantor") and party != anchor.customer_party:
        raise ApplicationError(_("该合同应由%(p)s签署 / This contract is signed by the %(p)s.")
                               % {"p": anchor.get_customer_party_display()}, errors={"party": [party]})
    if not awaiting(anchor, party):
        contract_sign(contract=anchor, party=party, by=by, ip=ip, user_agent=user_agent,
                      verification=verification)  # raises the 409
    signed = [contract_sign(contract=anchor, party=party, by=by, ip=ip, user_agent=user_agent, expected_sha256=expected_sha256,
                            verification=verification, prepare_signatures=prepare_signatures)]
    for contract in contracts:
        if contract.pk != anchor.pk and awaiting(contract, party):
            signed.append(contract_sign(contract=contract, party=party, by=by, ip=ip, user_agent=user_agent,
                                        verification=verification, prepare_signatures=prepare_signatures))
    return signed


def package_state(application: LoanApplication) -> dict:
    contracts = package_contracts(application)
    return {
        "contracts": contracts,
        "customer_done": bool(contracts) and all(c.status in (Contract.Status.BORROWER_SIGNED, Contract.Status.SIGNED)
                                                 for c in contracts),
        "all_signed": bool(contracts) and all(c.status == Contract.Status.SIGNED for c in contracts),
        "awaiting_bank": [c for c in contracts if c.status == Contract.Status.BORROWER_SIGNED],
        "awaiting_customer": [c for c in contracts if c.status == Contract.Status.ISSUED],
    }


# ---------------------------------------------------------------- verification
MSG_INTACT = ("合同文件完整，与签署时记录的SHA-256一致", "The contract file is intact: it matches the SHA-256 recorded at signing")
MSG_ALTERED = ("文件已被篡改：与签署时记录的SHA-256不一致", "The file was altered: it does not match the SHA-256 recorded at signing")


def contract_verify(*, contract: Contract, by=None, ip: str | None = None, upload: bytes | None = None) -> dict:
    """Re-check the stored files (or a copy someone uploads) against the recorded hashes and the bank's PDF
    seal. ``altered`` (and not ``ok``) when any byte changed; not ``ok`` but not ``altered`` when the file is
    unchanged yet the seal does not verify against the bank's certificate. Audited."""
    checks: dict = {}
    original = _read(contract.pdf)
    checks["original_hash_ok"] = pdf_sha256(original) == contract.sha256
    signatures = list(contract.signatures.all())
    checks["signatures_match"] = all(s.document_sha256 == contract.sha256 for s in signatures)
    # The seal is checked on the same validation of the sealed file as its signatures (one per signature on a miss).
    pdf_signatures, seal = contract_signatures_verify(contract)
    if seal is not None:
        checks["sealed_hash_ok"] = pdf_signatures["hash_ok"]
        checks["seal_ok"] = seal.ok
    if pdf_signatures["ok"] is not None:
        checks["pdf_signatures_ok"] = pdf_signatures["ok"]
    if upload is not None:
        digest = pdf_sha256(upload)
        if digest == contract.sha256:
            checks["upload"] = "original"
        elif contract.signed_sha256 and digest == contract.signed_sha256:
            checks["upload"] = "sealed"
        elif contract.borrower_signed_sha256 and digest == contract.borrower_signed_sha256:
            checks["upload"] = "borrower_signed"
        else:
            checks["upload"] = "different"
            upload_seal = verify_pdf(upload, expected_unsigned_sha256=contract.sha256)
            checks["upload_seal_message"] = upload_seal.message_zh
    hashes_ok = checks["original_hash_ok"] and checks["signatures_match"] and checks.get("sealed_hash_ok", True)
    seal_altered = seal is not None and (not (seal.intact and seal.covers_whole_file) or seal.matches_original is False)
    altered = (not hashes_ok or seal_altered or checks.get("upload") == "different"
               or bool(pdf_signatures["altered"]))
    ok = not altered and (seal is None or seal.ok) and pdf_signatures["ok"] is not False
    if altered:
        zh, en = MSG_ALTERED
        if seal_altered and hashes_ok:
            zh, en = f"{MSG_ALTERED[0]}（{seal.message_zh}）", f"{MSG_ALTERED[1]} ({seal.message_en})"
    elif seal is not None and not seal.ok:  # unchanged, but e.g. not sealed with the bank's certificate
        zh, en = seal.message_zh, seal.message_en
    elif pdf_signatures["ok"] is False:  # unchanged, but the enterprise's certificate is not the bank CA's
        zh, _sep, en = pdf_signatures["message"].partition(" / ")
    elif seal is not None:
        zh, en = f"{MSG_INTACT[0]}；{seal.message_zh}", f"{MSG_INTACT[1]}; {seal.message_en}"
    else:
        zh, en = f"{MSG_INTACT[0]}（尚未加盖银行电子签章）", f"{MSG_INTACT[1]} (not sealed by the bank yet)"
    result = {
        "ok": ok, "altered": altered, "signed": bool(contract.signed_pdf),
        "contract_hash_ok": checks["original_hash_ok"], "checks": checks, "message": zh, "message_en": en,
        "signer": seal.signer if seal else None, "sha256": contract.sha256, "signed_sha256": contract.signed_sha256 or None,
        "borrower_signed_sha256": contract.borrower_signed_sha256 or None,
        "pdf_signatures": [{**s, "signed_at": s["signed_at"].isoformat() if s["signed_at"] else None}
                           for s in pdf_signatures["signatures"]],
        "checked_at": timezone.now().isoformat(),
        # when the signatures of the stored file were validated (the validation of the same bytes against the same
        # trust roots is kept in the cache for up to an hour: contracts.selectors.pdf_signatures_report)
        "pdf_signatures_checked_at": pdf_signatures["checked_at"].isoformat() if pdf_signatures["checked_at"] else None,
    }
    audit_record(actor=by, action="contract.verify", obj=contract, ip=ip,
                 data={"ok": result["ok"], "checks": {k: v for k, v in checks.items() if k != "upload_seal_message"},
                       "uploaded": upload is not None})
    return result


def contract_latest_file(contract: Contract, *, original: bool = False):
    """The file to hand out: the sealed PDF, else the one the enterprise signed, else (or with ``original``) the
    PDF as issued."""
    if original:
        return contract.pdf
    return contract.signed_pdf or contract.borrower_signed_pdf or contract.pdf


def contract_download_record(*, contract: Contract, by, what: str, ip: str | None = None) -> None:
    """Downloads of contracts and schedules carry personal data: each one is audited."""
    audit_record(actor=by, action="contract.download", obj=contract, ip=ip, data={"number": contract.number, "what": what})


def schedule_csv(contract: Contract) -> str:
    lines = ["期数 n,还款日 due_date,本金 principal,利息 interest,合计 total,剩余本金 balance"]
    for s in contract.terms.get("schedule", []):
        lines.append(f"{s['n']},{s['due_date']},{s['principal']},{s['interest']},{s['total']},{s.get('balance', '')}")
    return "\ufeff" + "\r\n".join(lines) + "\r\n"  # BOM: Excel opens the Chinese header correctly


# ---------------------------------------------------------------- conditions precedent
def _condition_specs(application: LoanApplication) -> list[dict]:
    """The product's conditions precedent and the approver's, each with its automatic check (if any)."""
    product = application.product
    specs: dict[str, dict] = {}
    catalogue = ConditionPrecedent.objects.filter(is_active=True).prefetch_related("products")
    by_code = {}
    for cp in catalogue:
        by_code[cp.code] = cp
        if cp.scope != "product" or (cp.secured_only and not product.secured):
            continue
        products = list(cp.products.all())
        if products and product not in products:
            continue
        specs[cp.code] = {"code": cp.code, "text": cp.text, "source": "product", "check": cp.auto_check,
                          "contract_kind": cp.contract_kind}
    for cond in _approved_conditions(application):
        cp = by_code.get(cond["code"])
        specs.setdefault(cond["code"], {"code": cond["code"], "text": cond["text"] or (cp.text if cp else cond["code"]),
                                        "source": "approval", "check": cp.auto_check if cp else "",
                                        "contract_kind": cp.contract_kind if cp else ""})
    return list(specs.values())


def _check_contracts_signed(application: LoanApplication) -> tuple[bool, str]:
    state = package_state(application)
    return state["all_signed"], "、".join(c.number for c in state["contracts"])


def _check_kind_signed(kind: str):
    def check(application: LoanApplication) -> tuple[bool, str]:
        contract = application.contracts.filter(kind=kind, status=Contract.Status.SIGNED).order_by("-version").first()
        return (True, contract.number) if contract else (False, "")

    return check


def _check_account_opened(application: LoanApplication) -> tuple[bool, str]:
    snap = latest_snapshot(application.enterprise, "internal")
    if snap is None or snap.status != DataSnapshot.OK:
        return False, ""
    try:
        inflow = Decimal(str(snap.payload.get("settlement_inflow_12m") or "0"))
        deposit = Decimal(str(snap.payload.get("avg_deposit_balance_6m") or "0"))
    except InvalidOperation:
        return False, ""
    if inflow > 0 or deposit > 0:
        return True, f"行内数据快照 internal@{snap.as_of}: 近12月结算流入 {inflow:.2f}，近6月日均存款 {deposit:.2f}"
    return False, ""


CONDITION_CHECKS: dict[str, Callable[[LoanApplication], tuple[bool, str]]] = {
    "contracts_signed": _check_contracts_signed,
    "guarantee_signed": _check_kind_signed("guarantee"),
    "mortgage_signed": _check_kind_signed("mortgage"),
    "account_opened": _check_account_opened,
}


def _evaluate(application: LoanApplication, items: list[dict], *, automatic: bool) -> bool:
    """Tick what data proves; on the fast track the system confirms the rest. Returns whether anything changed."""
    changed = False
    now = timezone.now().isoformat()
    for item in items:
        if item.get("met"):
            continue
        check = CONDITION_CHECKS.get(item.get("check") or "")
        met, evidence = check(application) if check else (False, "")
        if met:
            item.update(met=True, by="system", evidence=evidence or item.get("check", ""), at=now, auto=True)
            changed = True
        elif automatic:
            item.update(met=True, by="system", evidence="信秒贷：系统自动核验 / fast track: confirmed by the system",
                        at=now, auto=True)
            changed = True
    return changed


def conditions_precedent(application: LoanApplication, *, automatic: bool) -> list[dict]:
    items = [{**spec, "met": False, "by": "", "evidence": "", "at": None, "auto": False}
             for spec in _condition_specs(application)]
    _evaluate(application, items, automatic=automatic)
    return items


def disbursement_order_create(*, application: LoanApplication, contract: Contract, automatic: bool) -> DisbursementOrder:
    """The order (inside the caller's transaction), with its conditions precedent, once per case."""
    loan_contract = contract if contract.kind == "loan" else application.contracts.filter(
        kind="loan", status=Contract.Status.SIGNED).order_by("-version").first() or contract
    account = loan_contract.terms.get("account") or disbursement_account_default(application)
    order, created = DisbursementOrder.objects.get_or_create(
        application=application, kind=DisbursementOrder.Kind.LOAN,
        defaults={"contract": loan_contract, "amount": application.offer_amount, "account": account["number"],
                  "account_name": account.get("name", ""),
                  "conditions": conditions_precedent(application, automatic=automatic)},
    )
    if created:
        audit_record(actor=None, action="disbursement.order", obj=order, to_state=order.status,
                     data={"application": application.pk, "amount": str(order.amount), "account": order.account,
                           "conditions": [{"code": c["code"], "met": c["met"]} for c in order.conditions]})
    return order


@transaction.atomic
def condition_check_off(*, order: DisbursementOrder, code: str, by, evidence: str, ip: str | None = None) -> DisbursementOrder:
    """Operations confirm one condition precedent, with the evidence (e.g. the registration certificate number)."""
    order = DisbursementOrder.objects.select_for_update().get(pk=order.pk)
    if order.status != DisbursementOrder.Status.PENDING:
        raise Conflict(_("该笔放款已处理 / This disbursement was already processed."), state=order.status)
    evidence = (evidence or "").strip()
    if not evidence:
        raise ApplicationError(_("请填写证明材料 / Give the evidence."), errors={"evidence": [_("此项为必填项 / This field is required.")]})
    item = next((c for c in order.conditions if c["code"] == code), None)
    if item is None:
        raise ApplicationError(_("没有该放款条件 / No such condition."), errors={"code": [code]})
    if item.get("met"):
        raise Conflict(_("该条件已确认 / This condition is already met."), state=order.status)
    item.update(met=True, by=by.get_username(), evidence=evidence[:300], at=timezone.now().isoformat(), auto=False)
    order.save(update_fields=["conditions"])
    audit_record(actor=by, action="disbursement.condition_met", obj=order, ip=ip,
                 data={"application": order.application_id, "code": code, "evidence": evidence[:300]})
    return order


# ---------------------------------------------------------------- release and core banking
def disbursement_release(*, order: DisbursementOrder, by, idempotency_key: str, automatic: bool = False) -> DisbursementOrder:
    """Release a locked order once (the caller holds the transaction and opens the Loan). The outbound record
    for core banking is written in the same transaction and sent after commit."""
    if order.status != DisbursementOrder.Status.PENDING:
        raise Conflict(_("该笔放款已处理 / This disbursement was already released."), state=order.status)
    if _evaluate(order.application, order.conditions, automatic=automatic):
        order.save(update_fields=["conditions"])
    unmet = order.unmet_conditions
    if unmet:
        raise ApplicationError(_("放款前提条件未满足 / Conditions precedent are not met."),
                               errors={"conditions": [f"{c['code']}: {c['text']}" for c in unmet]})
    before = order.status
    order.release()
    order.released_by = by if getattr(by, "pk", None) else None
    order.idempotency_key = idempotency_key
    order.save()
    record = {"order": order.pk, "application": order.application_id, "contract": order.contract.number,
              "amount": f"{order.amount:.2f}", "currency": "CNY", "account": order.account, "account_name": order.account_name,
              "borrower_uscc": order.application.enterprise.uscc, "released_at": order.released_at.isoformat(),
              "value_date": business_date().isoformat(), "idempotency_key": idempotency_key}
    outbound = CoreBankingOutbound.objects.create(order=order, payload=record)
    audit_record(actor=by, action="disbursement.release", obj=order, from_state=before, to_state=order.status,
                 data={"amount": str(order.amount), "account": order.account, "key": idempotency_key, "outbound": outbound.pk})


    dispatch_on_commit(tasks.core_banking_send, outbound.pk)
    return order


def core_banking_send(*, outbound_id: int) -> CoreBankingOutbound:
    """Send one outbound record through the core-banking adapter (ledger.core_banking, CORE_BANKING_BACKEND) and
    note which backend took it; idempotent (a sent record is not sent again). A failure
    is recorded and left for the sweeper to retry."""
    with transaction.atomic():
        outbound = CoreBankingOutbound.objects.select_for_update().get(pk=outbound_id)
        if outbound.status == CoreBankingOutbound.Status.SENT:
            return outbound
        outbound.attempts += 1
        try:
            adapter = core_banking()
            ref = adapter.disbursement_send(record=outbound.payload)
        except Exception as exc:  # any adapter failure: keep the record pending, say why
            log.warning("core banking send failed for outbound %s", outbound_id, exc_info=True)
            outbound.last_error = f"{type(exc).__name__}: {exc}"[:300]
            outbound.save(update_fields=["attempts", "last_error"])
            return outbound
        outbound.status = CoreBankingOutbound.Status.SENT
        outbound.external_ref = str(ref)[:60]
        outbound.adapter = adapter.name
        outbound.sent_at = timezone.now()
        outbound.last_error = ""
        outbound.save()
        DisbursementOrder.objects.filter(pk=outbound.order_id).update(core_banking_ref=outbound.external_ref)
        audit_record(actor=None, action="disbursement.core_banking_sent", obj=outbound.order,
                     data={"outbound": outbound.pk, "ref": outbound.external_ref, "attempts": outbound.attempts,
                           "backend": outbound.adapter})
    return outbound

