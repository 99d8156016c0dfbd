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

from ledger.models import CoreFile, VoucherBatch
from ledger.selectors import trial_balance
from ledger.services import DIFFERENCE_LABELS, core_file_fetch, core_file_import
from loanservice.business_date import business_date, simulated_dates_allowed
from loanservice.errors import ApplicationError, Conflict, error_text
from loanservice.money import money_display
from loanservice.roles import can, permission_required
from loanservice.text import in_language

from .autodebit import autodebit_summary
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
            ("finance:core_banking", _("核心系统：自动扣款、凭证与对账 / Core banking: auto-debit, vouchers, daily file"),
             "ledger.core_files"),
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


# ---------------------------------------------------------------- core banking: auto-debit, the voucher outbox, the daily file
class CoreFileForm(serializers.Serializer):
    business_date = serializers.DateField()
    file = serializers.FileField(required=False)


@permission_required("ledger.core_files")
def core_banking_page(request):
    """The day's auto-debits (counts, amounts, failures), the voucher batches and whether core banking took them,
    and the core's daily files with their reconciliation."""
    on, error = _on(request)
    on = on or last_closed_date()
    return render(request, "finance/core_banking.html", {
        "on": on, "error": error, "debits": autodebit_summary(on=on),
        "batches": VoucherBatch.objects.order_by("-id")[:15],
        "files": CoreFile.objects.order_by("-id")[:15],
        "can_upload": can(request.user, "ledger.upload_core_file"),
    })


@permission_required("ledger.upload_core_file")
@require_POST
def core_file_receive(request):
    """Upload the core's daily file, or (no file) ask core banking for it; either way it is reconciled at once."""
    form = CoreFileForm(data={**request.POST.dict(), **request.FILES.dict()})
    if not form.is_valid():
        messages.error(request, _("请填写营业日期 / Give the business date."))
        return redirect("finance:core_banking")
    on, handle = form.validated_data["business_date"], form.validated_data.get("file")
    try:
        if handle is not None:
            record = core_file_import(content=handle.read(), business_date=on, by=request.user, name=handle.name or "")
        else:
            record = core_file_fetch(business_date=on, by=request.user)
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
        return redirect("finance:core_banking")
    except Exception as exc:  # core banking unreachable: say so, nothing recorded
        messages.error(request, _("核心系统未响应 / Core banking did not answer: %(e)s") % {"e": exc})
        return redirect("finance:core_banking")
    if record.balanced:
        messages.success(request, _("对账一致 / The core's file agrees with our vouchers."))
    else:
        messages.error(request, _("对账不符，已通知运营与风险 / The core's file differs: operations and risk were alerted."))
    return redirect("finance:core_file", pk=record.pk)


@permission_required("ledger.core_files")
def core_file_page(request, pk: int):
    record = get_object_or_404(CoreFile, pk=pk)
    return render(request, "finance/core_file.html", {
        "record": record, "labels": {k: _(v) for k, v in DIFFERENCE_LABELS.items()}})
