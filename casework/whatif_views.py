"""The risk officer's policy what-if page: replay a period under a draft matrix or a cut-off, then
activate the draft. Thin: the replay is casework.whatif, the versioning approvals.services."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from approvals import services as approvals
from approvals.models import AuthorityMatrixVersion, AuthorityRule
from approvals.selectors import matrix_versions
from casework.whatif import policy_whatif
from loanservice.errors import ApplicationError, Conflict, error_text
from loanservice.roles import permission_required


def _date(value: str | None, default: dt.date) -> tuple[dt.date, str]:
    if not value:
        return default, ""
    try:
        return dt.date.fromisoformat(value), ""
    except ValueError:
        return default, _("日期格式应为 YYYY-MM-DD / Dates are YYYY-MM-DD.")


@permission_required("casework.what_if")
def whatif_page(request):
    today = timezone.localdate()
    versions = list(matrix_versions())
    errors = {}
    date_from, errors["date_from"] = _date(request.GET.get("date_from"), today - dt.timedelta(days=90))
    date_to, errors["date_to"] = _date(request.GET.get("date_to"), today)
    cutoff = None
    if request.GET.get("cutoff_points"):
        try:
            cutoff = int(request.GET["cutoff_points"])
        except ValueError:
            errors["cutoff_points"] = _("请填写整数分数 / Enter a whole number of points.")
    default = next((v for v in versions if v.is_draft), None) or next((v for v in versions if v.is_active), None)
    try:
        number = int(request.GET.get("version") or (default.number if default else 0))
    except ValueError:
        number = default.number if default else 0
    version = next((v for v in versions if v.number == number), default)
    errors = {k: v for k, v in errors.items() if v}
    result = None
    if version is not None and not errors and date_from <= date_to:
        result = policy_whatif(date_from=date_from, date_to=date_to, version=version, cutoff_points=cutoff)
    elif date_from > date_to:
        errors["date_to"] = _("结束日期早于开始日期 / The end is before the start.")
    return render(request, "staff/whatif.html", {
        "versions": versions, "version": version, "result": result, "errors": errors,
        "rules": AuthorityRule.objects.filter(version=version).select_related("product", "branch").order_by("priority", "id")
        if version else [],
        "date_from": date_from, "date_to": date_to, "cutoff_points": cutoff,
        "can_admin": request.user.is_staff,
    })


@permission_required("casework.what_if")
@require_POST
def whatif_draft(request):
    """A new draft copied from the active version, to edit in admin and replay here."""
    draft = approvals.matrix_version_draft_create(by=request.user, note=request.POST.get("note", "")[:200])
    messages.success(request, _("已创建草稿 v%(n)s / Draft v%(n)s created.") % {"n": draft.number})
    return redirect(f"{reverse('staff:whatif')}?version={draft.number}")


@permission_required("casework.what_if")
@require_POST
def whatif_activate(request, number):
    version = get_object_or_404(AuthorityMatrixVersion, number=number)
    try:
        approvals.matrix_version_activate(version=version, by=request.user, reason=request.POST.get("reason", "")[:300])
        messages.success(request, _("授权矩阵 v%(n)s 已生效 / Authority matrix v%(n)s is now active.") % {"n": number})
    except (ApplicationError, Conflict) as exc:
        messages.error(request, error_text(exc))
    return redirect(f"{reverse('staff:whatif')}?version={number}")
