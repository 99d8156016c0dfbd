"""Finance pages of the loan book (staff, under /staff/finance/): the index, close of business and the business
date, the trial balance, the sub-ledger ↔ GL reconciliation, asset quality with its chart, and the provisions
with the overlay awaiting four eyes. Each report downloads as CSV and XLSX. Thin: reads come from the selectors and
reports, actions go through the services."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from rest_framework import serializers

from ledger.selectors import trial_balance
from loanservice.business_date import business_date, simulated_dates_allowed
from loanservice.errors import ApplicationError, Conflict, error_text
from loanservice.money import money_display
from loanservice.roles import can, permission_required
from loanservice.text import in_language

from .cob import cob_progress, cob_start
from .models import CobReconciliation, CobRun, LoanProvision, ProvisionOverlay
from .provisions import overlay_decide, overlay_submit
from .reconciliation import ITEM_LABELS, reconcile
from .reports import (
    Table,
    asset_quality,
    asset_quality_table,
    last_closed_date,
    reconciliation_table,
    table_csv,
    table_xlsx,
    trial_balance_table,
)

FILES = {"csv": ("text/csv; charset=utf-8", table_csv),
         "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", table_xlsx)}


class DateQuery(serializers.Serializer):
    on = serializers.DateField(required=False, help_text="YYYY-MM-DD")


def _on(request) -> tuple[dt.date | None, str]:
    """The `on` date of the query, or None and the reason it was not understood (the page then shows the default)."""
    query = DateQuery(data=request.GET)
    if not query.is_valid():
        return None, _("日期格式应为 YYYY-MM-DD / The date must be YYYY-MM-DD.")
    return query.validated_data.get("on"), ""


def _download(table: Table, fmt: str, name: str) -> HttpResponse:
    if fmt not in FILES:
        raise Http404
    content_type, render_file = FILES[fmt]
    response = HttpResponse(render_file(table), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


def table_cells(table: Table) -> list[list[tuple[str, bool]]]:
    """Each cell as people read it (money with separators, rates as percentages) and whether it is a number."""
    out = []
    for row in table.rows:
        cells = []
        for value, kind in zip(row, table.kinds, strict=True):
            if value in ("", None):
                cells.append(("", False))
            elif kind == "money":
                cells.append((money_display(value, 2), True))
            elif kind == "rate":
                cells.append((f"{value * 100:.2f}%", True))
            else:
                cells.append((str(value), kind == "int"))
        out.append(cells)
    return out


def _english(request) -> bool:
    return (getattr(request, "LANGUAGE_CODE", "") or "").startswith("en")


@permission_required("postloan.finance")
def finance_home(request):
    last = CobRun.objects.order_by("-id").first()
    return render(request, "finance/home.html", {
        "business_date": business_date(), "last": cob_progress(last) if last else None,
        "reconciliation": CobReconciliation.objects.order_by("-checked_at", "-id").first(),
        "pending_overlays": ProvisionOverlay.objects.filter(status__in=["proposed", "pending"]).count(),
        "links": [(name, label) for name, label, perm in (
            ("finance:cob", _("日终与营业日期 / Close of business"), "postloan.finance"),
            ("finance:trial_balance", _("试算平衡表 / Trial balance"), "ledger.trial_balance"),
            ("finance:reconciliation", _("总分核对 / Sub-ledger reconciliation"), "postloan.reconciliation"),
            ("finance:asset_quality", _("资产质量 / Asset quality"), "postloan.asset_quality"),
            ("finance:provisions", _("减值准备 / Provisions"), "postloan.provisions"),
        ) if can(request.user, perm)],
    })


# ---------------------------------------------------------------- close of business (日终) and the business date
@permission_required("postloan.finance")
def cob_page(request):
    runs = list(CobRun.objects.order_by("-id")[:10])
    reconciliations = {r.run_id: r for r in CobReconciliation.objects.filter(run__in=runs)}
    current = business_date()
    return render(request, "finance/cob.html", {
        "business_date": current, "next_close": current,
        "can_run": can(request.user, "postloan.run_cob") and (simulated_dates_allowed() or current < dt.date.today()),
        "simulated": simulated_dates_allowed(),
        "runs": [{"run": run, "progress": progress, "parts_done": progress["partitions"] - progress["partitions_open"],
                  "reconciliation": reconciliations.get(run.pk)} for run, progress in ((r, cob_progress(r)) for r in runs)],
    })


@permission_required("postloan.run_cob")
@require_POST
def cob_run(request):
    """Close the business date (the button asks first): the run goes to the workers; the page shows its progress."""
    if request.POST.get("confirm") != "yes":
        messages.error(request, _("请确认后再执行日终 / Confirm before closing the day."))
        return redirect("finance:cob")
    try:
        run = cob_start(until=business_date(), by=request.user)
        messages.success(request, _("日终已开始：%(d)s / Close of business started for %(d)s.") % {"d": run.until.isoformat()})
    except (ApplicationError, Conflict) as exc:
        messages.error(request, error_text(exc))
    return redirect("finance:cob")


# ---------------------------------------------------------------- trial balance
@permission_required("ledger.trial_balance")
def trial_balance_page(request, fmt: str = ""):
    on, error = _on(request)
    on = on or last_closed_date()
    table = trial_balance_table(on=on, english=_english(request))
    if fmt:
        return _download(table, fmt, f"trial-balance-{on.isoformat()}")
    report = trial_balance(on=on)
    return render(request, "finance/trial_balance.html", {"on": on, "error": error, "table": table, "cells": table_cells(table),
                                                          "report": report})


# ---------------------------------------------------------------- reconciliation
@permission_required("postloan.reconciliation")
def reconciliation_page(request, fmt: str = ""):
    latest = CobReconciliation.objects.order_by("-checked_at", "-id").first()
    if fmt:
        if latest is None:
            raise Http404
        return _download(reconciliation_table(latest), fmt, f"reconciliation-{latest.on.isoformat()}")
    return render(request, "finance/reconciliation.html", {
        "latest": latest, "cells": table_cells(reconciliation_table(latest)) if latest else None,
        "columns": reconciliation_table(latest).columns if latest else [],
        "history": CobReconciliation.objects.order_by("-checked_at", "-id")[:20],
        "labels": {k: _(v) for k, v in ITEM_LABELS.items()},
    })


@permission_required("postloan.reconciliation")
@require_POST
def reconciliation_check(request):
    """Check again now, through the last closed date (a difference raises the alarm as after close of business)."""
    result = reconcile(on=last_closed_date())
    if result.balanced:
        messages.success(request, _("总分核对一致 / The sub-ledger agrees with the GL."))
    else:
        messages.error(request, _("总分核对不平，已通知运营与风险 / The sub-ledger and the GL differ: operations and risk were alerted."))
    return redirect("finance:reconciliation")


# ---------------------------------------------------------------- asset quality
@permission_required("postloan.asset_quality")
def asset_quality_page(request, fmt: str = ""):
    on, error = _on(request)
    report = asset_quality(on=on)
    table = asset_quality_table(report)
    if fmt:
        return _download(table, fmt, f"asset-quality-{report['on'].isoformat()}")
    chart = {"labels": [row["label"] for row in report["categories"]],
             "balance": [str(row["balance"]) for row in report["categories"]],
             "provision": [str(row["provision"]) for row in report["categories"]],
             "balance_label": in_language(_("余额 / Balance")), "provision_label": in_language(_("减值准备 / Allowance"))}
    return render(request, "finance/asset_quality.html", {"report": report, "table": table, "cells": table_cells(table),
                                                          "chart": chart, "error": error})


# ---------------------------------------------------------------- provisions and the overlay
@permission_required("postloan.provisions")
def provisions_page(request):
    on = LoanProvision.objects.order_by("-on").values_list("on", flat=True).first()
    return render(request, "finance/provisions.html", {
        "overlays": ProvisionOverlay.objects.select_related("requested_by", "decided_by")[:20],
        "recent": LoanProvision.objects.filter(on=on).select_related("loan__enterprise").order_by("-ecl")[:50] if on else [],
        "measured_on": on, "can_submit": can(request.user, "postloan.submit_overlay"),
        "can_decide": can(request.user, "postloan.decide_overlay"),
    })


@permission_required("postloan.provisions")
@require_POST
def overlay_action(request, pk: int, action: str):
    overlay = get_object_or_404(ProvisionOverlay, pk=pk)
    try:
        if action == "submit":
            overlay_submit(overlay=overlay, reason=request.POST.get("reason", ""), by=request.user)
            messages.success(request, _("已提交审批 / Submitted for approval."))
        elif action in ("approve", "reject"):
            overlay_decide(overlay=overlay, approve=action == "approve", by=request.user, comment=request.POST.get("comment", ""))
            messages.success(request, _("已处理 / Decided."))
        else:
            raise Http404
    except (ApplicationError, Conflict) as exc:
        messages.error(request, error_text(exc))
    return redirect("finance:provisions")
