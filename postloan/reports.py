"""Finance reports of the loan book: asset quality (五级分类, NPL ratio 不良贷款率, provision coverage 拨备覆盖率,
loan-provision ratio 贷款拨备率), the trial balance and the reconciliation as tables, and their CSV and XLSX files."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font

from ledger.selectors import trial_balance
from loanservice.business_date import business_date

from .models import (
    CATEGORY_ORDER,
    FIVE_CATEGORIES,
    NPL_CATEGORIES,
    CobReconciliation,
    Loan,
    LoanProvision,
    ProvisionOverlay,
)
from .provisions import allowance_by_category
from .reconciliation import ITEM_LABELS

ZERO = Decimal("0.00")


def last_closed_date() -> dt.date:
    return business_date() - dt.timedelta(days=1)


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    return (numerator / denominator).quantize(Decimal("0.0001")) if denominator else None


def _snapshot(on: dt.date) -> dict[str, dict]:
    """The categories as measured: each loan open on `on` by its last ECL measurement on or before it."""
    open_loans = Loan.objects.filter(disbursed_on__lte=on).filter(Q(closed_on__isnull=True) | Q(closed_on__gt=on))
    rows = (LoanProvision.objects.filter(loan__in=open_loans, on__lte=on).order_by("loan_id", "on", "id")
            .values("loan_id", "category", "principal", "ecl"))
    last = {}
    for row in rows:
        last[row["loan_id"]] = row
    out = {c: {"count": 0, "balance": ZERO, "provision": ZERO} for c in CATEGORY_ORDER}
    for row in last.values():
        target = out[row["category"]]
        target["count"] += 1
        target["balance"] += row["principal"]
        target["provision"] += row["ecl"]
    return out


def asset_quality(*, on: dt.date | None = None) -> dict:
    """Balances, counts and allowance by the five categories on `on` (the last closed date by default): the loan
    book as it stands for the last closed date or later, the ECL measurements (month ends, stage changes) for an
    earlier date. The approved overlays count in the allowance, not in a category."""
    closed = last_closed_date()
    on = on or closed
    live = on >= closed
    by_category = allowance_by_category() if live else _snapshot(on)
    overlay = (ProvisionOverlay.objects.filter(status=ProvisionOverlay.Status.APPROVED, on__lte=on)
               .aggregate(s=Sum("amount"))["s"] or ZERO)
    labels = dict(FIVE_CATEGORIES)
    total = sum((row["balance"] for row in by_category.values()), ZERO)
    npl = sum((by_category[c]["balance"] for c in NPL_CATEGORIES), ZERO)
    allowance = sum((row["provision"] for row in by_category.values()), ZERO) + overlay
    return {
        "on": on, "source": "book" if live else "measurements",
        "categories": [{"category": c, "label": str(labels[c]), **by_category[c]} for c in CATEGORY_ORDER],
        "total_balance": total, "npl_balance": npl, "overlay": overlay, "allowance": allowance,
        "npl_ratio": _ratio(npl, total), "provision_coverage": _ratio(allowance, npl),
        "loan_provision_ratio": _ratio(allowance, total),
    }


# ---------------------------------------------------------------- tables for the pages and the downloads
@dataclass
class Table:
    """A report as a table: a title, column labels and rows of values (Decimal for money, Decimal fractions for
    rates, text otherwise), with the kind of each column for formatting."""

    title: str
    columns: list[str]
    kinds: list[str]  # "text", "int", "money", "rate"
    rows: list[list] = field(default_factory=list)


def asset_quality_table(report: dict) -> Table:
    table = Table(title=_("资产质量 / Asset quality") + f" {report['on'].isoformat()}",
                  columns=[_("五级分类 / Category"), _("笔数 / Loans"), _("余额(元) / Balance (CNY)"),
                           _("减值准备(元) / Allowance (CNY)"), _("余额占比 / Share")],
                  kinds=["text", "int", "money", "money", "rate"])
    for row in report["categories"]:
        table.rows.append([row["label"], row["count"], row["balance"], row["provision"],
                           _ratio(row["balance"], report["total_balance"]) or Decimal("0")])
    table.rows.append([_("管理层叠加 / Overlay"), "", "", report["overlay"], ""])
    table.rows.append([_("合计 / Total"), sum(r["count"] for r in report["categories"]), report["total_balance"],
                       report["allowance"], Decimal("1") if report["total_balance"] else Decimal("0")])
    return table


def trial_balance_table(*, on: dt.date, english: bool) -> Table:
    report = trial_balance(on=on)
    table = Table(title=_("试算平衡表 / Trial balance") + f" {on.isoformat()}",
                  columns=[_("科目代码 / Account"), _("科目名称 / Name"), _("借方余额(元) / Debit (CNY)"),
                           _("贷方余额(元) / Credit (CNY)")], kinds=["text", "text", "money", "money"])
    for line in report.lines:
        table.rows.append([line.account, line.name_en if english and line.name_en else line.name, line.debit, line.credit])
    table.rows.append(["", _("合计 / Total"), report.total_debit, report.total_credit])
    return table


def reconciliation_table(result: CobReconciliation) -> Table:
    table = Table(title=_("总分核对 / Sub-ledger reconciliation") + f" {result.on.isoformat()}",
                  columns=[_("项目 / Item"), _("贷款 / Loan"), _("分户账(元) / Sub-ledger (CNY)"), _("总账(元) / GL (CNY)"),
                           _("差额(元) / Difference (CNY)")], kinds=["text", "text", "money", "money", "money"])
    for item, figures in result.totals.items():
        table.rows.append([_(ITEM_LABELS[item]), _("全部 / All"), Decimal(figures["sub"]), Decimal(figures["gl"]),
                           Decimal(figures["difference"])])
    for diff in result.differences:
        table.rows.append([_(ITEM_LABELS[diff["item"]]), f"#{diff['loan']}", Decimal(diff["sub"]), Decimal(diff["gl"]),
                           Decimal(diff["difference"])])
    return table


def _cell(value, kind: str):
    if value == "" or value is None:
        return ""
    if kind == "money":
        return f"{value:.2f}"
    if kind == "rate":
        return f"{value * 100:.2f}%"
    return str(value)


def table_csv(table: Table) -> bytes:
    """UTF-8 with a BOM, so Excel opens the Chinese labels right."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([_cell(v, k) for v, k in zip(row, table.kinds, strict=True)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def table_xlsx(table: Table) -> bytes:
    """One sheet: the title, the header, the rows; money as numbers with thousands separators, rates as percentages."""
    book = Workbook()
    sheet = book.active
    sheet.title = "report"
    sheet.append([table.title])
    sheet["A1"].font = Font(bold=True)
    sheet.append(table.columns)
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for row in table.rows:
        sheet.append([None if v == "" else v for v in row])
        for cell, kind in zip(sheet[sheet.max_row], table.kinds, strict=True):
            if kind == "money":
                cell.number_format = "#,##0.00"
            elif kind == "rate":
                cell.number_format = "0.00%"
    for k, _label in enumerate(table.columns):
        sheet.column_dimensions[chr(ord("A") + k)].width = 22
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
