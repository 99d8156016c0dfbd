"""Intake pages: the public product pages (what it is, the checklist, the admission criteria and negative
list), the help box (智能客服), and the supervisors' page to hand a customer to another RM (首席服务官)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from loanservice.errors import ApplicationError
from loanservice.roles import can, permission_required
from loanservice.text import in_language

from . import services
from .forms import ChecklistFilterForm
from .models import REPAYMENT_METHODS, AdmissionCriterion, Enterprise, LoanApplication
from .selectors import (
    applicable_checklist,
    enterprises_reassignable_by,
    products_published,
    relationship_managers_with_load,
)


def product_list(request):
    return render(request, "products/list.html", {"products": products_published()})


def _checklist_filters(request) -> tuple[dict, str]:
    """The optional "what will I need?" filter: an amount and a legal form, as the application will have.
    A bad amount is named; an unknown legal form is left out."""
    form = ChecklistFilterForm(request.GET)
    form.is_valid()
    filters = {name: form.cleaned_data[name] for name in ("amount", "legal_form") if form.cleaned_data.get(name)}
    error = in_language(form.errors["amount"][0]) if "amount" in form.errors else ""
    return filters, error


def product_detail(request, code):
    product = get_object_or_404(products_published(), code=code)
    criteria = AdmissionCriterion.objects.filter(is_active=True).filter(Q(products=None) | Q(products=product)).distinct()
    filters, filter_error = _checklist_filters(request)
    methods = dict(REPAYMENT_METHODS)
    context = {
        "product": product,
        # Exactly what the application will ask for: the same selector the wizard and the submit check use.
        "checklist": applicable_checklist(product, **filters),
        "filters": filters, "filter_error": filter_error, "legal_forms": Enterprise.LEGAL_FORMS,
        "methods": [methods[m] for m in product.repayment_methods if m in methods],
        "admission": [c for c in criteria if c.kind == AdmissionCriterion.ADMISSION],
        "negative": [c for c in criteria if c.kind == AdmissionCriterion.NEGATIVE],
    }
    if request.htmx:
        return render(request, "products/_checklist.html", context)
    return render(request, "products/detail.html", context)


def help_page(request):
    """智能客服: a question from the search box on every portal page → the applicant's own cases for
    "where is my application?", and the FAQ in ranked order; an unanswered question is logged."""
    query = (request.GET.get("q") or "").strip()
    result = services.assistant_answer(user=request.user, text=query, language=get_language() or "") if query else None
    template = "portal/_help_results.html" if request.htmx else "portal/help.html"
    return render(request, template, {"q": query, "result": result})


# ---------------------------------------------------------------- supervisors: the customer's RM
@permission_required("applications.reassign_rm")
def customer_list(request):
    """The customers whose RM this user may reassign (their RMs' supervisor, or a branch approver of the branch)."""
    open_cases = Count("applications", filter=Q(applications__status__in=LoanApplication.OPEN_STATES))
    enterprises = list(enterprises_reassignable_by(request.user).annotate(open_cases=open_cases).order_by("name")[:300])
    return render(request, "applications/customer_list.html", {"enterprises": enterprises})


@permission_required("applications.reassign_rm")
def relationship_manager_reassign_page(request, pk):
    enterprise = get_object_or_404(enterprises_reassignable_by(request.user), pk=pk)
    if not can(request.user, "applications.reassign_rm_of", enterprise):
        raise Http404
    candidates = list(relationship_managers_with_load(branch_id=enterprise.branch_id))
    supervised = relationship_managers_with_load().filter(profile__supervisor=request.user)
    seen = {u.pk for u in candidates}
    candidates += [u for u in supervised if u.pk not in seen]
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        User = get_user_model()
        new_rm = User.objects.filter(pk=request.POST.get("relationship_manager") or 0).first() \
            if str(request.POST.get("relationship_manager", "")).isdigit() else None
        if new_rm is not None and new_rm.pk not in {u.pk for u in candidates}:
            new_rm = None  # only the RMs offered on the page
        try:
            services.relationship_manager_reassign(enterprise=enterprise, new_rm=new_rm, by=request.user,
                                                   reason=request.POST.get("reason", ""), ip=request.META.get("REMOTE_ADDR"))
            messages.success(request, _("客户经理已改派 / The relationship manager was reassigned."))
            return redirect("staff:customers")
        except ApplicationError as exc:
            errors = {k: [in_language(m) for m in v] for k, v in exc.errors.items()}
            if not errors:
                errors = {"form": [in_language(exc.message)]}
    open_cases = enterprise.applications.filter(status__in=LoanApplication.OPEN_STATES).select_related("product")
    return render(request, "applications/rm_reassign.html", {
        "enterprise": enterprise, "candidates": candidates, "errors": errors, "open_cases": open_cases,
        "values": request.POST if request.method == "POST" else {},
    }, status=400 if errors else 200)
