"""The SME owner's portal: apply step by step, follow the case, accept, sign, see the schedule.

Thin views: forms check shape, services decide; errors come back in the user's language."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from applications import services as intake
from applications.models import DATA_SOURCES, REPAYMENT_METHODS, Enterprise, LoanApplication
from applications.selectors import applicable_checklist, applications_visible_to, products_published
from contracts.models import Contract
from postloan.api import loan_detail, loans_visible_to

from . import lifecycle
from .api import client_ip
from .audit import audit_record
from .case_api import application_detail
from .errors import ApplicationError, Conflict

STEPS = [("enterprise", _("企业信息 Enterprise")), ("request", _("贷款需求 Loan request")),
         ("documents", _("上传材料 Documents")), ("consent", _("数据授权 Data consent")), ("review", _("确认提交 Review and submit"))]


def _steps(current: str):
    names = [s for s, _label in STEPS]
    index = names.index(current)
    return [{"name": s, "label": label, "done": i < index, "current": i == index} for i, (s, label) in enumerate(STEPS)]


def applicant_required(view):
    @login_required
    def wrapper(request, *args, **kwargs):
        from . import roles

        if not roles.has_role(request.user, roles.APPLICANT):
            raise Http404
        return view(request, *args, **kwargs)

    wrapper.__name__ = view.__name__
    return wrapper


def _apply_errors(form, exc: ApplicationError):
    for field, msgs in exc.errors.items():
        for msg in msgs:
            form.add_error(field if field in form.fields else None, msg)
    if not exc.errors:
        form.add_error(None, exc.message)


class EnterpriseForm(forms.Form):
    name = forms.CharField(label=_("企业名称 Enterprise name"), max_length=200)
    uscc = forms.CharField(label=_("统一社会信用代码 USCC"), max_length=18, min_length=18,
                           widget=forms.TextInput(attrs={"autocomplete": "off", "pattern": "[0-9A-Za-z]{18}"}))
    legal_form = forms.ChoiceField(label=_("组织形式 Legal form"), choices=Enterprise.LEGAL_FORMS)
    legal_rep_name = forms.CharField(label=_("法定代表人 Legal representative"), max_length=100)
    legal_rep_id_number = forms.CharField(label=_("法定代表人身份证号 Legal representative's ID"), max_length=18, min_length=18)
    industry_code = forms.CharField(label=_("行业代码（GB/T 4754）Industry code"), max_length=10,
                                    help_text=_("例如 C1711（制造业）、F5123（批发）/ e.g. C1711, F5123"))
    founded_on = forms.DateField(label=_("成立日期 Founded on"), widget=forms.DateInput(attrs={"type": "date"}))
    employees = forms.IntegerField(label=_("从业人数 Employees"), min_value=0)
    annual_revenue = forms.DecimalField(label=_("年营业收入（元）Annual revenue (CNY)"), min_value=0, decimal_places=2, max_digits=16)


class RequestForm(forms.Form):
    amount = forms.DecimalField(label=_("申请金额（元）Amount (CNY)"), decimal_places=2, max_digits=16, min_value=1)
    term_months = forms.IntegerField(label=_("期限（月）Term (months)"), min_value=1)
    repayment_method = forms.ChoiceField(label=_("还款方式 Repayment method"), choices=REPAYMENT_METHODS)
    purpose = forms.CharField(label=_("贷款用途 Purpose"), max_length=300)


@applicant_required
def portal_home(request):
    applications = applications_visible_to(request.user).order_by("-created_at")[:50]
    loans = loans_visible_to(request.user).order_by("-disbursed_on")[:20]
    return render(request, "portal/home.html", {"applications": applications, "loans": loans, "products": products_published()})


@applicant_required
def apply_start(request, code):
    product = get_object_or_404(products_published(), code=code)
    enterprises = list(Enterprise.objects.filter(owner=request.user))
    enterprise_id = request.GET.get("enterprise") or request.POST.get("enterprise_id")
    enterprise = next((e for e in enterprises if str(e.pk) == str(enterprise_id)), None)
    if enterprise is None:
        form = EnterpriseForm(request.POST or None, initial={"legal_form": "llc"})
        if request.method == "POST" and form.is_valid():
            try:
                enterprise = intake.enterprise_create(owner=request.user, data=form.cleaned_data, ip=client_ip(request))
                return redirect(f"{request.path}?enterprise={enterprise.pk}")
            except ApplicationError as exc:
                _apply_errors(form, exc)
        return render(request, "portal/wizard_enterprise.html", {"product": product, "form": form, "enterprises": enterprises,
                                                                  "steps": _steps("enterprise")})
    form = RequestForm(request.POST if request.method == "POST" and "amount" in request.POST else None,
                       initial={"term_months": product.min_term_months, "repayment_method": product.repayment_methods[0]})
    form.fields["repayment_method"].choices = [c for c in REPAYMENT_METHODS if c[0] in product.repayment_methods]
    if form.is_bound and form.is_valid():
        try:
            application = intake.application_create(applicant=request.user, enterprise=enterprise, product=product,
                                                     channel="web", **form.cleaned_data)
            return redirect("portal:wizard_documents", pk=application.pk)
        except ApplicationError as exc:
            _apply_errors(form, exc)
    return render(request, "portal/wizard_request.html", {"product": product, "enterprise": enterprise, "form": form,
                                                           "steps": _steps("request")})


def _own_draft(request, pk) -> LoanApplication:
    application = get_object_or_404(applications_visible_to(request.user).filter(applicant=request.user), pk=pk)
    if application.status != LoanApplication.Status.DRAFT:
        raise Http404
    return application


@applicant_required
def wizard_request(request, pk):
    application = _own_draft(request, pk)
    form = RequestForm(request.POST or None, initial={k: getattr(application, k) for k in ("amount", "term_months", "repayment_method", "purpose")})
    form.fields["repayment_method"].choices = [c for c in REPAYMENT_METHODS if c[0] in application.product.repayment_methods]
    if request.method == "POST" and form.is_valid():
        try:
            intake.application_update_draft(application=application, user=request.user, **form.cleaned_data)
            return redirect("portal:wizard_documents", pk=application.pk)
        except ApplicationError as exc:
            _apply_errors(form, exc)
    return render(request, "portal/wizard_request.html", {"product": application.product, "enterprise": application.enterprise,
                                                           "form": form, "application": application, "steps": _steps("request")})


@applicant_required
def wizard_documents(request, pk):
    application = _own_draft(request, pk)
    if request.method == "POST":
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise ApplicationError(str(_("请选择文件 / Choose a file.")))
            intake.document_upload(application=application, user=request.user, requirement_code=request.POST.get("requirement", ""),
                                   name=upload.name, content=upload.read(), ip=client_ip(request))
            messages.success(request, _("已上传 / Uploaded."))
        except ApplicationError as exc:
            messages.error(request, " ".join([exc.message, *[m for msgs in exc.errors.values() for m in msgs]]))
        return redirect("portal:wizard_documents", pk=pk)
    uploaded = {}
    for doc in application.documents.all():
        uploaded.setdefault(doc.requirement_id, []).append(doc)
    items = [{"req": r, "docs": uploaded.get(r.pk, [])}
             for r in applicable_checklist(application.product, amount=application.amount, legal_form=application.enterprise.legal_form)]
    return render(request, "portal/wizard_documents.html", {"application": application, "items": items, "steps": _steps("documents")})


@applicant_required
def wizard_consent(request, pk):
    application = _own_draft(request, pk)
    if request.method == "POST":
        scopes = request.POST.getlist("scopes")
        try:
            intake.consent_grant(application=application, user=request.user, scopes=scopes, ip=client_ip(request))
            return redirect("portal:wizard_review", pk=pk)
        except ApplicationError as exc:
            messages.error(request, " ".join([exc.message, *[m for msgs in exc.errors.values() for m in msgs]]))
    given = set(application.consents.values_list("source", flat=True))
    return render(request, "portal/wizard_consent.html", {"application": application, "sources": DATA_SOURCES, "given": given,
                                                           "steps": _steps("consent")})


@applicant_required
def wizard_review(request, pk):
    application = _own_draft(request, pk)
    if request.method == "POST":
        try:
            lifecycle.application_submit(application_id=application.pk, user=request.user, ip=client_ip(request))
            return redirect("portal:application", pk=pk)
        except ApplicationError as exc:
            messages.error(request, " ".join([exc.message, *[m for msgs in exc.errors.values() for m in msgs]]))
        except Conflict as exc:
            messages.error(request, exc.message)
    detail = application_detail(application, user=request.user)
    return render(request, "portal/wizard_review.html", {"application": application, "detail": detail, "steps": _steps("review")})


@applicant_required
def application_page(request, pk):
    application = get_object_or_404(applications_visible_to(request.user).filter(applicant=request.user), pk=pk)
    detail = application_detail(application, user=request.user)
    contract = Contract.objects.filter(pk=detail["contract"]).first() if detail["contract"] else None
    return render(request, "portal/application.html", {"application": application, "d": detail, "contract": contract})


@applicant_required
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
                                        user_agent=request.META.get("HTTP_USER_AGENT", ""))
            messages.success(request, _("合同已签署 / Contract signed."))
        elif action == "verify":
            from contracts.services import contract_verify

            contract = get_object_or_404(application.contracts.all(), pk=request.POST.get("contract") or 0)
            result = contract_verify(contract=contract, by=request.user, ip=client_ip(request))
            (messages.success if result["ok"] else messages.error)(
                request, f"{contract.number}：{result['message']} / {result['message_en']}")
        else:
            raise Http404
    except ApplicationError as exc:
        messages.error(request, " ".join([exc.message, *[m for msgs in exc.errors.values() for m in msgs]]))
    except Conflict as exc:
        messages.error(request, exc.message)
    return redirect("portal:application", pk=pk)


@login_required
def contract_pdf(request, pk):
    contract = get_object_or_404(Contract.objects.filter(application__in=applications_visible_to(request.user)), pk=pk)
    field = contract.signed_pdf if contract.signed_pdf else contract.pdf
    audit_record(actor=request.user, action="contract.download", obj=contract, ip=client_ip(request))
    return FileResponse(field.open("rb"), content_type="application/pdf", filename=f"{contract.number}.pdf")


@login_required
def loan_page(request, pk):
    loan = get_object_or_404(loans_visible_to(request.user), pk=pk)
    return render(request, "portal/loan.html", {"loan": loan, "d": loan_detail(loan)})
