"""The SME owner's portal: apply step by step, follow the case, accept, sign, see the schedule.

Thin views: the intake forms (`applications.forms`, shared with the API) check each input once, services
decide; errors come back in the user's language. The wizard: enterprise → loan request → documents → data
consent → review and submit. Every step saves (a draft resumes where it stopped); each field can be checked
as it is typed (htmx, `validate_field`) by the same form, and the product's limits, that guard the final save.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from applications import services as intake
from applications.forms import (
    UPLOAD_INCOMPLETE,
    ConsentForm,
    DocumentUploadForm,
    EnterpriseForm,
    IdentityVerificationForm,
    PhoneForm,
    PortalRequestForm,
    RegistryLookupForm,
    RequestForm,
    field_errors,
)
from applications.industries import industry_name
from applications.models import (
    DATA_SOURCES,
    REPAYMENT_METHODS,
    ApplicationDocument,
    Enterprise,
    LoanApplication,
)
from applications.selectors import (
    applicable_checklist,
    application_tracker,
    applications_visible_to,
    authorisation_text_current,
    open_clocks_by_case,
    products_published,
    sla_targets_map,
    verified_identity,
    wizard_resume_step,
)
from approvals.selectors import decisions_of
from casework import lifecycle
from casework.case_api import application_detail
from casework.prequal import prequal_token_read
from contracts.models import Contract
from contracts.schedules import build_schedule
from contracts.selectors import contract_pdf_signatures
from contracts.services import contract_latest_file, contract_verify, signing_code_send
from creditlines.models import Drawdown
from creditlines.receipt import receipt_pdf
from creditlines.selectors import line_drawdowns, line_usage, lines_visible_to, lines_with_usage
from creditlines.serializers import DrawdownSerializer
from creditlines.services import drawdown_check, drawdown_create
from loanservice.api import client_ip, form_input, serializer_input
from loanservice.audit import audit_record
from loanservice.business_date import business_date
from loanservice.errors import ApplicationError, Conflict, error_text
from loanservice.roles import permission_required
from loanservice.text import in_language, join_list, phone_masked
from marketing.services import invitation_read
from postloan.api import loan_detail, loans_visible_to
from postloan.quotes import payoff_quote, prepayment_quote
from postloan.serializers import PrepaymentQuoteSerializer
from underwriting.registry import registry_record

STEPS = [("enterprise", _("企业信息 Enterprise")), ("request", _("贷款需求 Loan request")),
         ("documents", _("上传材料 Documents")), ("verify", _("身份核验 Identity")), ("consent", _("数据授权 Data consent")),
         ("review", _("确认提交 Review and submit"))]
STEP_URLS = {"request": "portal:wizard_request", "documents": "portal:wizard_documents", "verify": "portal:wizard_verify",
             "consent": "portal:wizard_consent", "review": "portal:wizard_review"}
SESSION_PREQUAL = "prequal_prefill"
# What the public registry does not show: the owner types these after the lookup (underwriting/registry.py).
OWNER_FIELDS = ["legal_rep_id_number", "employees", "annual_revenue"]


def _steps(current: str, application: LoanApplication | None = None):
    """The progress bar: each step, done or current, linked back when it can be revisited."""
    names = [s for s, _label in STEPS]
    index = names.index(current)
    steps = []
    for i, (s, label) in enumerate(STEPS):
        url = reverse(STEP_URLS[s], args=[application.pk]) if application is not None and s in STEP_URLS else ""
        steps.append({"name": s, "label": label, "done": i < index, "current": i == index, "number": i + 1,
                      "url": url if i < index else ""})
    return {"items": steps, "index": index + 1, "count": len(STEPS), "percent": round(100 * index / (len(STEPS) - 1))}


def _apply_errors(form, exc: ApplicationError):
    for field, msgs in exc.errors.items():
        for msg in msgs:
            form.add_error(field if field in form.fields else None, in_language(msg))
    if not exc.errors:
        form.add_error(None, in_language(exc.message))


def _error_text(exc) -> str:
    return error_text(exc, fields=False)


def _live(form: forms.Form, product_code: str = "") -> None:
    """htmx: each field is checked on the server as soon as it changes; the answer lands under the field."""
    url = reverse("portal:validate_field")
    for name, field in form.fields.items():
        vals = {"field": name}
        if product_code:
            vals["product"] = product_code
        field.widget.attrs.update({
            "hx-post": url, "hx-trigger": "change", "hx-target": f"#err-{name}", "hx-swap": "innerHTML",
            "hx-vals": json.dumps(vals), "aria-describedby": f"err-{name}",
        })


def enterprise_form(*args, **kwargs) -> EnterpriseForm:
    form = EnterpriseForm(*args, **kwargs)
    _live(form)
    return form


def request_form(*args, product=None, **kwargs) -> RequestForm:
    form = PortalRequestForm(*args, product=product, **kwargs)
    _live(form, product.code if product is not None else "")
    for attr in ("hx-post", "hx-trigger", "hx-target", "hx-swap", "hx-vals"):  # checked with the purpose on save
        form.fields["purpose_other"].widget.attrs.pop(attr, None)
    return form


# ---------------------------------------------------------------- home and the wizard
@permission_required("applications.apply")
def portal_home(request):
    applications = list(applications_visible_to(request.user).filter(applicant=request.user)
                        .select_related("relationship_manager__profile").prefetch_related("info_requests")
                        .order_by("-created_at")[:50])
    clocks = open_clocks_by_case(a.pk for a in applications)
    targets = sla_targets_map()
    for a in applications:
        a.tracker = application_tracker(a, clock=clocks.get(a.pk), targets=targets)
    loans = loans_visible_to(request.user).order_by("-disbursed_on")[:20]
    lines = list(lines_with_usage(lines_visible_to(request.user).filter(borrower=request.user).select_related("product"))
                 .order_by("-created_at")[:10])
    return render(request, "portal/home.html", {"applications": applications, "loans": loans, "lines": lines,
                                                "products": products_published()})


def _prefill(request) -> dict | None:
    invite = request.GET.get("invite")
    if invite:  # a marketing invitation (marketing/services.py invitation_token): the same prefill, channel "invite"
        data = invitation_read(invite)
        if data is not None:
            request.session[SESSION_PREQUAL] = data
        else:
            messages.warning(request, _("邀请链接已失效，请直接填写 / The invitation link has expired; please fill in the form."))
    token = request.GET.get("prequal")
    if token:
        data = prequal_token_read(token)
        if data:
            request.session[SESSION_PREQUAL] = data
        else:
            messages.warning(request, _("预审结果已失效，请重新填写 / The pre-qualification link has expired; please fill "
                                        "in the form."))
    return request.session.get(SESSION_PREQUAL)


@permission_required("applications.apply")
def apply_start(request, code):
    product = get_object_or_404(products_published(), code=code)
    prefill = _prefill(request)
    enterprises = list(Enterprise.objects.filter(owner=request.user).order_by("id"))
    enterprise_id = request.GET.get("enterprise") or request.POST.get("enterprise_id")
    enterprise = None
    if enterprise_id:
        # Someone else's enterprise (or none at all) is a 404, never a quiet fallback.
        enterprise = next((e for e in enterprises if str(e.pk) == str(enterprise_id)), None)
        if enterprise is None:
            raise Http404
    elif prefill:
        enterprise = next((e for e in enterprises if e.uscc == prefill.get("uscc")), None)
    if enterprise is None:
        initial = {"legal_form": "llc"}
        if prefill:
            initial.update({k: prefill[k] for k in ("uscc", "founded_on", "industry_code", "name", "employees", "annual_revenue")
                            if prefill.get(k)})
        context = {"product": product, "enterprises": enterprises, "steps": _steps("enterprise"), "prefill": prefill,
                   "owner_fields": OWNER_FIELDS}
        if request.method == "POST" and "lookup" in request.POST:
            lookup = RegistryLookupForm(request.POST)
            record = None
            if lookup.is_valid():
                record = registry_record(uscc=lookup.cleaned_data["uscc"])
                audit_record(actor=request.user, action="registry.lookup", object_type="enterprise",
                             object_id=lookup.cleaned_data["uscc"], ip=client_ip(request),
                             data={"sources": (record or {}).get("sources", []), "found": record is not None})
                initial = {"legal_form": "llc", "uscc": lookup.cleaned_data["uscc"],
                           **{k: v for k, v in (record or {}).items() if k in EnterpriseForm.base_fields}}
            return render(request, "portal/wizard_enterprise.html", {
                **context, "lookup": lookup, "record": record, "looked_up": lookup.is_valid(),
                "industry": industry_name((record or {}).get("industry_code", "")),
                "form": enterprise_form(initial=initial)}, status=200 if lookup.is_valid() else 400)
        form = enterprise_form(request.POST or None, initial=initial)
        lookup = RegistryLookupForm(initial={"uscc": initial.get("uscc", "")})
        if request.method == "POST" and form.is_valid():
            try:
                enterprise = intake.enterprise_create(owner=request.user, **form.cleaned_data, ip=client_ip(request))
                return redirect(f"{request.path}?enterprise={enterprise.pk}")
            except ApplicationError as exc:
                _apply_errors(form, exc)
        return render(request, "portal/wizard_enterprise.html", {**context, "form": form, "lookup": lookup,
                                                                  "manual": request.method == "POST"})
    initial = {"term_months": product.min_term_months, "repayment_method": product.repayment_methods[0]}
    limit = (prefill or {}).get("limits", {}).get(product.code) if (prefill or {}).get("uscc") == enterprise.uscc else None
    if limit:
        initial["amount"] = limit
    form = request_form(request.POST if request.method == "POST" and "amount" in request.POST else None,
                        initial=initial, product=product)
    if form.is_bound and form.is_valid():
        try:
            application = intake.application_create(applicant=request.user, enterprise=enterprise, product=product,
                                                     channel=(prefill or {}).get("channel", "web"), **form.cleaned_data)
            request.session.pop(SESSION_PREQUAL, None)
            if "save_exit" in request.POST:
                messages.success(request, _("草稿已保存，可随时继续 / Draft saved; continue any time."))
                return redirect("portal:home")
            return redirect("portal:wizard_documents", pk=application.pk)
        except ApplicationError as exc:
            _apply_errors(form, exc)
    return render(request, "portal/wizard_request.html", {"product": product, "enterprise": enterprise, "form": form,
                                                           "steps": _steps("request"), "indicative_limit": limit})


def _own(request, pk) -> LoanApplication:
    return get_object_or_404(applications_visible_to(request.user).filter(applicant=request.user), pk=pk)


def _own_draft(request, pk) -> LoanApplication:
    application = _own(request, pk)
    if application.status != LoanApplication.Status.DRAFT:
        raise Http404
    return application


@permission_required("applications.apply")
def wizard_resume(request, pk):
    """A saved draft continues at the first step not yet complete; a submitted case shows its tracker."""
    application = _own(request, pk)
    if application.status != LoanApplication.Status.DRAFT:
        return redirect("portal:application", pk=pk)
    return redirect(STEP_URLS[wizard_resume_step(application)], pk=pk)


@permission_required("applications.apply")
def wizard_request(request, pk):
    application = _own_draft(request, pk)
    form = request_form(request.POST or None, initial={k: getattr(application, k) for k in intake.REQUEST_FIELDS},
                        product=application.product)
    if request.method == "POST" and form.is_valid():
        try:
            intake.application_update_draft(application=application, user=request.user, **form.cleaned_data)
            if "save_exit" in request.POST:
                messages.success(request, _("草稿已保存，可随时继续 / Draft saved; continue any time."))
                return redirect("portal:home")
            return redirect("portal:wizard_documents", pk=application.pk)
        except ApplicationError as exc:
            _apply_errors(form, exc)
    return render(request, "portal/wizard_request.html", {"product": application.product, "enterprise": application.enterprise,
                                                           "form": form, "application": application,
                                                           "steps": _steps("request", application)})


@permission_required("applications.apply")
def wizard_documents(request, pk):
    application = _own_draft(request, pk)
    errors: dict[str, str] = {}
    if request.method == "POST":
        code = request.POST.get("requirement", "")
        try:
            data = form_input(DocumentUploadForm, request.POST, files=request.FILES, message=UPLOAD_INCOMPLETE)
            intake.document_upload(application=application, user=request.user, requirement_code=data["requirement"],
                                   name=data["file"].name, content=data["file"].read(), ip=client_ip(request))
            messages.success(request, _("已上传 / Uploaded."))
            return redirect("portal:wizard_documents", pk=pk)
        except (ApplicationError, Conflict) as exc:
            errors[code] = _error_text(exc)
            messages.error(request, _error_text(exc))
    uploaded: dict[int, list] = {}
    for doc in application.documents.all():
        uploaded.setdefault(doc.requirement_id, []).append(doc)
    items = [{"req": r, "docs": uploaded.get(r.pk, []), "error": errors.get(r.code, ""),
              "missing": r.required and not r.satisfied_by_source and not uploaded.get(r.pk)}
             for r in applicable_checklist(application.product, amount=application.amount, legal_form=application.enterprise.legal_form)]
    return render(request, "portal/wizard_documents.html", {"application": application, "items": items,
                                                             "steps": _steps("documents", application)},
                  status=400 if errors else 200)


@permission_required("applications.apply")
@require_POST
def document_remove(request, pk, doc_pk):
    application = _own_draft(request, pk)
    document = get_object_or_404(ApplicationDocument.objects.select_related("requirement"), pk=doc_pk, application=application)
    try:
        intake.document_delete(document=document, user=request.user, ip=client_ip(request))
        messages.success(request, _("已删除 / Removed."))
    except Conflict as exc:
        messages.error(request, _error_text(exc))
    return redirect("portal:wizard_documents", pk=pk)


@permission_required("applications.apply")
def wizard_verify(request, pk):
    """Who acts for the enterprise, before any authorisation: its legal representative (name, ID number, phone
    and the SMS code sent to it) or an agent with a power of attorney. "获取验证码" sends the code first."""
    application = _own_draft(request, pk)
    enterprise = application.enterprise
    current = verified_identity(user=request.user, enterprise=enterprise)
    sending = "send" in request.POST
    # The registered representative and the owner's own mobile are offered; the SMS code and the citizen-register
    # check are what prove it.
    profile_phone = getattr(getattr(request.user, "profile", None), "phone", "") or ""
    form = IdentityVerificationForm(request.POST or None, request.FILES or None,
                                    initial={"method": "legal_rep", "name": enterprise.legal_rep_name,
                                             "id_number": enterprise.legal_rep_id_number, "phone": profile_phone})
    if request.method == "POST":
        if sending:
            phone_form = PhoneForm(request.POST)
            if phone_form.is_valid():
                try:
                    code = intake.identity_code_send(enterprise=enterprise, user=request.user,
                                                     phone=phone_form.cleaned_data["phone"], ip=client_ip(request))
                    messages.info(request, _("验证码已发送到 %(phone)s / A code was sent to %(phone)s")
                                  % {"phone": phone_masked(phone_form.cleaned_data["phone"])})
                    if settings.DEBUG:  # the sandbox's SMS goes to the log; a demo shows it here
                        messages.info(request, _("演示环境验证码：%(code)s / Demo code: %(code)s") % {"code": code})
                except ApplicationError as exc:
                    messages.error(request, _error_text(exc))
            else:
                messages.error(request, " ".join(in_language(e) for e in phone_form.errors.get("phone", [])))
            form = IdentityVerificationForm(initial={k: request.POST.get(k, "") for k in ("method", "name", "id_number", "phone")})
        elif form.is_valid():
            data = dict(form.cleaned_data)
            upload = data.pop("power_of_attorney", None)
            try:
                record = intake.identity_verify(enterprise=enterprise, user=request.user, **data,
                                                power_of_attorney=upload.read() if upload else None, ip=client_ip(request))
                if not record.in_force:  # an agent: operations review the power of attorney first
                    messages.info(request, _("身份核验通过，授权委托书已提交银行审核；审核通过后即可授权和签署 / Identity "
                                             "verified; the bank reviews the power of attorney, and once it is approved "
                                             "you can authorise and sign."))
                    return redirect("portal:wizard_verify", pk=pk)
                messages.success(request, _("身份核验通过 / Identity verified."))
                return redirect("portal:wizard_consent", pk=pk)
            except ApplicationError as exc:
                _apply_errors(form, exc)
            except Conflict as exc:
                messages.error(request, _error_text(exc))
    return render(request, "portal/wizard_verify.html", {
        "application": application, "form": form, "current": current, "steps": _steps("verify", application)},
        status=400 if form.errors else 200)


@permission_required("applications.apply")
def wizard_consent(request, pk):
    application = _own_draft(request, pk)
    verification = verified_identity(user=request.user, enterprise=application.enterprise)
    if verification is None:
        messages.info(request, _("授权前请先完成身份核验 / Verify your identity before authorising."))
        return redirect("portal:wizard_verify", pk=pk)
    if request.method == "POST":
        form = ConsentForm(request.POST)
        try:
            if not form.is_valid():
                raise ApplicationError(_("授权范围无效 / Invalid consent scope."),
                                       errors={k: [str(m) for m in v] for k, v in form.errors.items()})
            intake.consent_grant(application=application, user=request.user, **form.cleaned_data, ip=client_ip(request))
            return redirect("portal:wizard_review", pk=pk)
        except (ApplicationError, Conflict) as exc:
            messages.error(request, _error_text(exc))
    given = set(application.consents.values_list("source", flat=True))
    return render(request, "portal/wizard_consent.html", {"application": application, "sources": DATA_SOURCES, "given": given,
                                                           "text": authorisation_text_current(), "verification": verification,
                                                           "steps": _steps("consent", application)})


@permission_required("applications.apply")
def wizard_review(request, pk):
    application = _own_draft(request, pk)
    if request.method == "POST":
        try:
            lifecycle.application_submit(application_id=application.pk, user=request.user, ip=client_ip(request))
            return redirect("portal:application", pk=pk)
        except (ApplicationError, Conflict) as exc:
            messages.error(request, _error_text(exc))
    detail = application_detail(application, user=request.user)
    missing_docs = [r for r in applicable_checklist(application.product, amount=application.amount,
                                                    legal_form=application.enterprise.legal_form)
                    if r.required and not r.satisfied_by_source and r.code not in {d["requirement"] for d in detail["documents"]}]
    missing_consent = [label for code, label in DATA_SOURCES if code not in detail["consents"]]
    return render(request, "portal/wizard_review.html", {"application": application, "detail": detail,
                                                          "missing_docs": missing_docs, "missing_consent": missing_consent,
                                                          "steps": _steps("review", application)})


@permission_required("applications.apply")
@require_POST
def validate_field(request):
    """htmx: one field checked on the server as it changes, by the form that checks the final save (and, for
    the loan request, by the product's limits the service applies)."""
    field = request.POST.get("field", "")
    value = request.POST.get(field, "")
    warnings: list[str] = []
    if field in EnterpriseForm.base_fields:
        errors, form = field_errors(EnterpriseForm, field, value)
        if field == "legal_rep_id_number" and not errors:
            warnings = form.id_warnings
    elif field in RequestForm.base_fields:
        product = get_object_or_404(products_published(), code=request.POST.get("product", ""))
        errors, form = field_errors(RequestForm, field, value)
        if not errors and field in form.cleaned_data:
            errors = intake.application_request_errors(product=product, **{field: form.cleaned_data[field]}).get(field, [])
    else:
        raise Http404
    return render(request, "portal/_field_status.html", {
        "field": field, "errors": [in_language(e) for e in errors], "warnings": [in_language(w) for w in warnings],
        "ok": not errors and value != "",
    })


# ---------------------------------------------------------------- the case after submission
@permission_required("applications.apply")
def application_page(request, pk):
    application = get_object_or_404(applications_visible_to(request.user).filter(applicant=request.user)
                                    .select_related("relationship_manager__profile"), pk=pk)
    detail = application_detail(application, user=request.user)
    contract = Contract.objects.filter(pk=detail["contract"]).first() if detail["contract"] else None
    clock = open_clocks_by_case([application.pk]).get(application.pk)
    rm = application.relationship_manager or application.enterprise.relationship_manager
    conditions = next((dec.conditions for dec in reversed(list(decisions_of(application))) if dec.conditions), [])
    return render(request, "portal/application.html", {
        "application": application, "d": detail, "contract": contract, "rm": rm,
        "tracker": application_tracker(application, clock=clock), "history": _history(detail["timeline"]),
        "conditions": conditions,
    })


def _history(timeline: list[dict]) -> list[dict]:
    """The case's history for its owner: repeats in a row folded into one line ("授权数据查询 ×7")."""
    rows: list[dict] = []
    for event in timeline:
        last = rows[-1] if rows else None
        if last and last["action"] == event["action"] and last["actor"] == event["actor"] and last["to"] == event["to"]:
            last["count"] += 1
            continue
        rows.append({**event, "count": 1})
    return rows


@permission_required("applications.apply")
@require_POST
def application_action(request, pk, action):
    application = get_object_or_404(applications_visible_to(request.user).filter(applicant=request.user), pk=pk)
    try:
        if action == "accept":
            lifecycle.offer_accept(application_id=pk, user=request.user)
            messages.success(request, _("已接受批复，合同已生成 / Offer accepted; the contract is ready."))
        elif action == "withdraw":
            lifecycle.application_withdraw(application_id=pk, user=request.user, reason=request.POST.get("reason", ""))
            messages.success(request, _("申请已撤回 / Application withdrawn."))
        elif action == "respond":
            lifecycle.case_respond(application_id=pk, user=request.user, response=request.POST.get("response", ""))
            messages.success(request, _("已提交补充资料 / Your answer was sent."))
        elif action == "sign":
            if request.POST.get("agree") != "on":
                raise ApplicationError(str(_("请勾选同意合同条款 / Tick the box to agree to the contract.")))
            lifecycle.customer_sign_all(application_id=application.pk, user=request.user, ip=client_ip(request),
                                        user_agent=request.META.get("HTTP_USER_AGENT", ""),
                                        sms_code=request.POST.get("sms_code", "").strip())
            messages.success(request, _("合同已签署 / Contract signed."))
        elif action == "sign_code":
            verification, code = signing_code_send(application=application, user=request.user, ip=client_ip(request))
            messages.info(request, _("签署验证码已发送到 %(phone)s / The signing code was sent to %(phone)s")
                          % {"phone": phone_masked(verification.phone)})
            if settings.DEBUG:  # the sandbox's SMS goes to the log; a demo shows it here
                messages.info(request, _("演示环境验证码：%(code)s / Demo code: %(code)s") % {"code": code})
        elif action == "withdraw_consent":
            withdrawn = intake.consent_withdraw(application=application, user=request.user, ip=client_ip(request))
            messages.success(request, _("已撤回数据查询授权：%(s)s / Data authorisation withdrawn: %(s)s")
                             % {"s": join_list(dict(DATA_SOURCES).get(s, s) for s in withdrawn)})
        elif action == "verify":

            contract = get_object_or_404(application.contracts.all(), pk=request.POST.get("contract") or 0)
            result = contract_verify(contract=contract, by=request.user, ip=client_ip(request))
            (messages.success if result["ok"] else messages.error)(
                request, f"{contract.number}：{result['message']} / {result['message_en']}")
        else:
            raise Http404
    except (ApplicationError, Conflict) as exc:
        messages.error(request, _error_text(exc))
    return redirect("portal:application", pk=pk)


@permission_required("loanservice.signed_in")
def contract_page(request, pk):
    """The owner's contract: its PDF signatures (the enterprise's and the bank's) validated now, and the records."""
    contract = get_object_or_404(Contract.objects.filter(application__in=applications_visible_to(request.user)), pk=pk)
    return render(request, "contracts/contract_page.html", {
        "contract": contract, "pdf": contract_pdf_signatures(contract),
        "signatures": contract.signatures.select_related("certificate"),
        "pdf_url": reverse("portal:contract_pdf", args=[contract.pk]),
        "back_url": reverse("portal:application", args=[contract.application_id])})


@permission_required("loanservice.signed_in")
def contract_pdf(request, pk):
    contract = get_object_or_404(Contract.objects.filter(application__in=applications_visible_to(request.user)), pk=pk)
    field = contract_latest_file(contract)
    audit_record(actor=request.user, action="contract.download", obj=contract, ip=client_ip(request))
    return FileResponse(field.open("rb"), content_type="application/pdf", filename=f"{contract.number}.pdf")


@permission_required("loanservice.signed_in")
def loan_page(request, pk):
    """The borrower's loan: what is due now (the overdue amount first), how to pay, the schedule."""
    loan = get_object_or_404(loans_visible_to(request.user).select_related("disbursement__contract"), pk=pk)
    d = loan_detail(loan)
    overdue = Decimal(d["overdue_amount"] or 0) + Decimal(d["penalty_due"] or 0)
    order = loan.disbursement
    # A drawdown is paid by its receipt number (借据号): the line's contract number is every drawdown's.
    drawdown = Drawdown.objects.filter(loan=loan).only("receipt_number", "line_id").first()
    reference = drawdown.receipt_number if drawdown else order.contract.number if order else f"#{loan.pk}"
    return render(request, "portal/loan.html", {
        "loan": loan, "d": d, "due_now": overdue if loan.dpd > 0 else None, "drawdown": drawdown,
        "pay": {**settings.REPAYMENT_ACCOUNT, "reference": reference,
                "debit_account": order.account[-4:] if order and order.account else ""},
        "product": products_published().filter(code=loan.product_code).first(), "today": business_date(),
        "payoff": _payoff_or_none(loan),
    })


def _payoff_or_none(loan) -> dict | None:
    """Today's payoff quote for an open loan (None once it is closed or written off, or when nothing is left)."""
    if loan.status != "active":
        return None
    try:
        quote = payoff_quote(loan=loan, on=None)
    except (Conflict, ApplicationError):
        return None
    return {**quote, "charges": quote["penalty"] + quote["compound"]}


@permission_required("postloan.quote")
@require_POST
def loan_prepayment_quote(request, pk):
    """提前还款试算 on the borrower's page (htmx): the same quote and the same check of the amount as the API's."""
    loan = get_object_or_404(loans_visible_to(request.user), pk=pk)
    try:
        data = serializer_input(PrepaymentQuoteSerializer, request.POST,
                                message=_("请检查提前还款金额和方式 / Please check the amount and the way to prepay."))
        quote = prepayment_quote(loan=loan, **data)
    except (ApplicationError, Conflict) as exc:
        return render(request, "portal/_prepayment_quote.html", {"error": error_text(exc, fields=False)})
    return render(request, "portal/_prepayment_quote.html", {"q": quote, "loan": loan})


# ---------------------------------------------------------------- the owner's credit line (授信 / 用信)
def _own_line(request, pk):
    return get_object_or_404(lines_visible_to(request.user).filter(borrower=request.user).select_related("product", "enterprise"), pk=pk)


def _draw_input(request) -> dict:
    post = request.POST
    body = {"amount": post.get("amount", ""), "term_months": post.get("term_months", ""),
            "repayment_method": post.get("repayment_method", "")}
    if post.get("payee_account", "").strip() or post.get("payee_name", "").strip():
        body["payee"] = {"name": post.get("payee_name", ""), "account": post.get("payee_account", "")}
    ser = DrawdownSerializer(data=body)
    if not ser.is_valid():
        raise ApplicationError(_("请检查用信信息 / Please check the drawdown."),
                               errors={k: [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in ser.errors.items()})
    return ser.to_service()


@permission_required("creditlines.draw")
def credit_line_page(request, pk):
    """The owner's line: limit, available, used, validity and status in words, the draw form, the drawdowns."""
    line = _own_line(request, pk)
    return render(request, "portal/credit_line.html", {
        "line": line, "usage": line_usage(line), "drawdowns": line_drawdowns(line), "today": business_date(),
        "methods": [(c, lbl) for c, lbl in REPAYMENT_METHODS if c in line.product.drawdown_method_list],
        "terms": range(line.product.drawdown_min_term_months, line.product.drawdown_max_term_months + 1),
        "new_key": uuid.uuid4().hex,
    })


@permission_required("creditlines.draw")
@require_POST
def credit_line_draw(request, pk):
    """Two steps: `confirm` shows the schedule it would have (every rule checked); `draw` funds it (the form's key)."""
    line = _own_line(request, pk)
    try:
        data = _draw_input(request)
        if request.POST.get("step") != "draw":
            drawdown_check(line=line, amount=data["amount"], term_months=data["term_months"],
                           repayment_method=data["repayment_method"], payee_account=data["payee_account"])
            preview = build_schedule(principal=data["amount"], annual_rate=line.annual_rate, term_months=data["term_months"],
                                     method=data["repayment_method"], start_date=business_date())
            return render(request, "portal/credit_line_confirm.html", {
                "line": line, "data": data, "preview": preview, "key": request.POST.get("key") or uuid.uuid4().hex,
                "method_label": dict(REPAYMENT_METHODS).get(data["repayment_method"], data["repayment_method"]),
                "interest": sum((p.interest for p in preview), Decimal("0"))})
        drawdown, _created = drawdown_create(line_id=line.pk, user=request.user, idempotency_key=request.POST.get("key", ""), **data)
    except (ApplicationError, Conflict) as exc:
        messages.error(request, error_text(exc, fields=False))
        return redirect("portal:credit_line", pk=line.pk)
    messages.success(request, _("已放款，资金已到账 / Funded: the money is on its way."))
    return redirect("portal:loan", pk=drawdown.loan_id)


@permission_required("loanservice.signed_in")
def drawdown_receipt(request, pk):
    drawdown = get_object_or_404(Drawdown.objects.filter(line__in=lines_visible_to(request.user))
                                 .select_related("line__enterprise", "line__contract", "loan"), pk=pk)
    audit_record(actor=request.user, action="drawdown.receipt_download", obj=drawdown, ip=client_ip(request))
    return HttpResponse(receipt_pdf(drawdown), content_type="application/pdf")
