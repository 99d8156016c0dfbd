"""Post-loan pages (thin; every action calls a service): the staff loan page (classification, restructuring,
write-off, collateral), post-loan approvals, the risk warning board, the RM's warning tasks, the operations
repayment import, and the borrower's renewal and survey actions on the portal."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loanservice.api import serializer_input
from loanservice.errors import ApplicationError, Conflict, error_text
from loanservice.roles import can, permission_required

from . import services
from .api import loan_detail
from .imports import repayment_import_apply, repayment_import_preview
from .models import FIVE_CATEGORIES, SEVERITIES, RepaymentImport, WarningTask
from .selectors import (
    approvals_waiting,
    loan_guarantors,
    loans_visible_to,
    portfolio_summary,
    tasks_for,
    warnings_by_severity_and_branch,
    warnings_open,
)
from .serializers import CollateralValueSerializer, RenewalSerializer


def _error(request, exc) -> None:
    messages.error(request, error_text(exc))


@permission_required("postloan.loan_page")
def loan_page(request, pk):
    loan = get_object_or_404(loans_visible_to(request.user).select_related("enterprise", "relationship_manager", "branch"), pk=pk)
    return render(request, "postloan/loan.html", {
        "loan": loan, "d": loan_detail(loan), "categories": FIVE_CATEGORIES,
        "history": loan.classification_history.select_related("by", "approved_by"),
        "warnings": loan.warnings.select_related("rule", "task__assigned_to"),
        "requests": loan.approval_requests.select_related("requested_by", "decided_by"),
        "collateral": loan.collateral.all(), "floor": services.loan_floor(loan), "guarantors": loan_guarantors(loan),
        "extension_limit": services.extension_limit_months(loan.term_months),
        "can_downgrade": can(request.user, "postloan.downgrade"), "can_write_off": can(request.user, "postloan.request_write_off"),
        "can_auto_debit": can(request.user, "postloan.set_auto_debit_of", loan),
    })


@permission_required("postloan.act_on_loan")
@require_POST
def loan_action(request, pk, action):
    loan = get_object_or_404(loans_visible_to(request.user), pk=pk)
    post, user = request.POST, request.user
    try:
        if action == "downgrade":
            services.classification_downgrade(loan=loan, to_category=post.get("to_category", ""), reason=post.get("reason", ""), by=user)
            messages.success(request, _("已下调分类 / Classification downgraded."))
        elif action == "upgrade":
            services.classification_upgrade_request(loan=loan, to_category=post.get("to_category", ""), reason=post.get("reason", ""), by=user)
            messages.success(request, _("上调申请已提交审批 / Upgrade sent for approval."))
        elif action in ("extension", "reschedule"):
            consents = [{"guarantor": g, "consented_on": post.get(f"consent_on_{g}", ""), "document": post.get(f"consent_doc_{g}", "")}
                        for g in post.getlist("guarantor")]
            services.restructure_request(loan=loan, kind=action, reason=post.get("reason", ""), by=user,
                                         extra_months=post.get("extra_months"), term_months=post.get("term_months"),
                                         repayment_method=post.get("repayment_method", ""), guarantor_consents=consents)
            messages.success(request, _("重组申请已提交审批 / Restructuring sent for approval."))
        elif action == "write_off":
            services.write_off_request(loan=loan, reason=post.get("reason", ""), by=user)
            messages.success(request, _("核销申请已提交审批 / Write-off sent for approval."))
        elif action == "auto_debit":
            _auto_debit_set(request, loan)
        elif action == "collateral":
            value = serializer_input(CollateralValueSerializer, post, message=_("押品信息有误 / The collateral details are not valid."))
            services.collateral_record(loan=loan, by=user, **value)
            messages.success(request, _("押品价值已记录 / Collateral value recorded."))
        else:
            raise Http404
    except (ApplicationError, Conflict) as exc:
        _error(request, exc)
    return redirect("postloan:loan", pk=pk)


@permission_required("postloan.decide_request")
def approvals_page(request):
    return render(request, "postloan/approvals.html", {"requests": approvals_waiting(request.user)[:200]})


@permission_required("postloan.decide_request")
@require_POST
def approval_decide(request, pk):
    item = get_object_or_404(approvals_waiting(request.user), pk=pk)
    try:
        services.approval_request_decide(request=item, approve=request.POST.get("decision") == "approve", by=request.user,
                                         comment=request.POST.get("comment", ""))
        messages.success(request, _("已处理 / Decided."))
    except (ApplicationError, Conflict) as exc:
        _error(request, exc)
    return redirect("postloan:approvals")


@permission_required("postloan.warning_board")
def warnings_page(request):
    severity, branch = request.GET.get("severity", ""), request.GET.get("branch", "")
    return render(request, "staff/risk_warnings.html", {
        "table": warnings_by_severity_and_branch(request.user), "warnings": warnings_open(request.user, severity=severity, branch=branch)[:200],
        "severities": SEVERITIES, "severity": severity, "branch": branch, "summary": portfolio_summary(request.user),
    })


@permission_required("postloan.follow_up")
def tasks_page(request):
    return render(request, "postloan/tasks.html", {"tasks": tasks_for(request.user)[:200], "actions": WarningTask.ACTIONS,
                                                   "modes": WarningTask.VISIT_MODES})


@permission_required("postloan.follow_up")
@require_POST
def task_complete(request, pk):
    task = get_object_or_404(WarningTask.objects.filter(loan__in=loans_visible_to(request.user)), pk=pk)
    try:
        services.warning_task_complete(task=task, by=request.user, visit_mode=request.POST.get("visit_mode", ""),
                                       visit_notes=request.POST.get("visit_notes", ""), action=request.POST.get("action", ""),
                                       action_note=request.POST.get("action_note", ""))
        messages.success(request, _("处置已记录 / Follow-up recorded."))
    except (ApplicationError, Conflict) as exc:
        _error(request, exc)
    return redirect("postloan:tasks")


@permission_required("postloan.import_repayments")
def imports_page(request):
    if request.method == "POST":
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise ApplicationError(_("请选择文件 / Choose a file."), errors={"file": [_("此项为必填项 / This field is required.")]})
            batch = repayment_import_preview(file_name=upload.name, content=upload.read(), by=request.user)
            return redirect("postloan:import", pk=batch.pk)
        except ApplicationError as exc:
            _error(request, exc)
    return render(request, "postloan/imports.html", {"imports": RepaymentImport.objects.select_related("uploaded_by")[:50]})


@permission_required("postloan.import_repayments")
def import_page(request, pk):
    batch = get_object_or_404(RepaymentImport, pk=pk)
    if request.method == "POST":
        try:
            batch = repayment_import_apply(batch=batch, by=request.user)
            if batch.status == RepaymentImport.Status.APPLIED:
                messages.success(request, _("已入账 %(n)s 笔 / %(n)s repayments applied.") % {"n": batch.summary.get("applied", 0)})
            else:
                messages.error(request, _("文件有错误行，未入账 / The file has bad lines; nothing applied."))
        except (ApplicationError, Conflict) as exc:
            _error(request, exc)
        return redirect("postloan:import", pk=pk)
    return render(request, "postloan/import.html", {"batch": batch})


def _auto_debit_set(request, loan) -> None:
    enabled = request.POST.get("enabled") == "1"
    services.loan_auto_debit_set(loan=loan, enabled=enabled, reason=request.POST.get("reason", ""), by=request.user)
    messages.success(request, _("已恢复自动扣款 / Auto-debit authorised again.") if enabled
                     else _("已取消自动扣款授权 / Auto-debit revoked."))


# ---------------------------------------------------------------- borrower (portal)
@permission_required("postloan.set_auto_debit")
@require_POST
def portal_auto_debit(request, pk):
    """The borrower revokes the auto-debit of their loan, or grants it again (自动扣款授权)."""
    loan = get_object_or_404(loans_visible_to(request.user).filter(borrower=request.user), pk=pk)
    try:
        _auto_debit_set(request, loan)
    except (ApplicationError, Conflict) as exc:
        _error(request, exc)
    return redirect("portal:loan", pk=pk)



@permission_required("loanservice.signed_in")
def portal_renewal(request, pk):
    """GET: the renewal offer fragment (eligibility computed now); POST: ask for the renewal or a top-up."""
    loan = get_object_or_404(loans_visible_to(request.user).filter(borrower=request.user), pk=pk)
    if request.method == "POST":
        try:
            ask = serializer_input(RenewalSerializer, request.POST, message=_("申请信息有误 / The application details are not valid."))
            offer = services.renewal_request(loan=loan, by=request.user, **ask)
            messages.success(request, _("已为您创建续贷申请，请补充授权后提交 / Your renewal application is ready: give consent and submit."))
            return redirect("portal:application", pk=offer.application_id)
        except (ApplicationError, Conflict) as exc:
            _error(request, exc)
            return redirect("portal:loan", pk=pk)
    return render(request, "postloan/_renewal.html", {"loan": loan, "r": services.renewal_eligibility(loan=loan),
                                                      "existing": loan.renewals.filter(application__isnull=False).select_related("application")})


@permission_required("loanservice.signed_in")
@require_POST
def portal_survey(request, pk):
    loan = get_object_or_404(loans_visible_to(request.user).filter(borrower=request.user), pk=pk)
    try:
        services.survey_answer(loan=loan, by=request.user, score=request.POST.get("score"), comment=request.POST.get("comment", ""))
        messages.success(request, _("感谢您的评价 / Thank you for your feedback."))
    except (ApplicationError, Conflict) as exc:
        _error(request, exc)
    return redirect("portal:loan", pk=pk)


