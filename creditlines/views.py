"""The staff credit-line page (read, with freeze / unfreeze / reduce forms and the RM's pending requests to decide).
Thin: every action calls a service. The borrower's page is the portal's (casework/portal_views.py)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loanservice.api import serializer_input
from loanservice.errors import ApplicationError, Conflict, error_text
from loanservice.roles import can, permission_required

from .models import LineChangeRequest, LineReviewTask
from .selectors import change_requests_pending, line_drawdowns, line_usage, lines_visible_to
from .serializers import LineAdjustSerializer, LineReasonSerializer
from .services import change_request_decide, line_change, review_task_complete


@permission_required("creditlines.view")
def line_page(request, pk):
    line = get_object_or_404(lines_visible_to(request.user).select_related("enterprise", "product", "contract",
                                                                           "relationship_manager", "branch"), pk=pk)
    return render(request, "creditlines/line.html", {
        "line": line, "usage": line_usage(line), "drawdowns": line_drawdowns(line), "pending": change_requests_pending(line),
        "reviews": line.review_tasks.all(), "can_change": can(request.user, "creditlines.change"),
        "can_review": can(request.user, "creditlines.review"),
        "direct": can(request.user, "creditlines.manage"), "can_decide": can(request.user, "creditlines.decide_change"),
    })


@permission_required("creditlines.change")
@require_POST
def line_change_post(request, pk, kind):
    if kind not in LineChangeRequest.Kind.values:
        raise Http404
    line = get_object_or_404(lines_visible_to(request.user), pk=pk)
    try:
        data = serializer_input(LineAdjustSerializer if kind == "adjust" else LineReasonSerializer, request.POST,
                                message=_("请检查输入 / Please check the input."))
        _line, change = line_change(line=line, kind=kind, by=request.user, **data)
        messages.success(request, _("已提交审批 / Sent for approval.") if change else _("已生效 / Done."))
    except (ApplicationError, Conflict) as exc:
        messages.error(request, error_text(exc))
    return redirect("creditlines:line", pk=line.pk)


@permission_required("creditlines.decide_change")
@require_POST
def change_decide_post(request, pk, decision):
    if decision not in ("approve", "reject"):
        raise Http404
    change = get_object_or_404(LineChangeRequest.objects.filter(line__in=lines_visible_to(request.user)), pk=pk)
    try:
        change_request_decide(request=change, approve=decision == "approve", by=request.user, comment=request.POST.get("comment", ""))
        messages.success(request, _("已处理 / Decided."))
    except (ApplicationError, Conflict) as exc:
        messages.error(request, error_text(exc))
    return redirect("creditlines:line", pk=change.line_id)


@permission_required("creditlines.review")
@require_POST
def review_complete_post(request, pk):
    """年审 done: the RM's conclusion (renewal is a new application by the borrower)."""
    task = get_object_or_404(LineReviewTask.objects.filter(line__in=lines_visible_to(request.user)), pk=pk)
    try:
        review_task_complete(task=task, by=request.user, note=request.POST.get("note", ""))
        messages.success(request, _("年审已完成 / Annual review done."))
    except (ApplicationError, Conflict) as exc:
        messages.error(request, error_text(exc))
    return redirect("creditlines:line", pk=task.line_id)
