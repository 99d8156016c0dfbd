"""Staff analytics pages: charts drawn in the browser (Chart.js served from static/vendor), each with its table
and a CSV export; filters by period, product, branch and channel."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_lazy

from loanservice.labels import label
from loanservice.money import money_display
from loanservice.roles import can, permission_required
from loanservice.templatetags.display import day, daytime

from . import drift
from .model_risk import model_risk_summary
from .selectors import analytics_summary, filter_choices, filters_parse
from .tables import summary_tables, table_csv

SECTIONS = [
    ("funnel", gettext_lazy("申请漏斗 Funnel")), ("turnaround", gettext_lazy("流程时效 Turnaround and SLA")),
    ("decisions", gettext_lazy("审批决定 Decisions")), ("portfolio", gettext_lazy("贷款组合 Portfolio")),
    ("models", gettext_lazy("模型监控 Model monitoring")), ("voice", gettext_lazy("客户之声 Customer voice")),
    ("marketing", gettext_lazy("精准营销 Marketing conversion")), ("credit_lines", gettext_lazy("循环额度 Credit lines")),
]


def _parsed(request):
    parsed = filters_parse(request.GET, user=request.user)
    errors = parsed.errors
    if errors:  # show the errors and the default view rather than nothing
        parsed = filters_parse({}, user=request.user)
    return parsed.filters, errors


NUMBER = re.compile(r"-?\d+(\.\d+)?")
CODE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
KINDS = {"product": "product", "branch": "branch", "channel": "channel", "route": "route", "grade": ""}


# Columns that hold an index (stability, discrimination), shown as numbers with three decimals, never as a percent.
INDEX_COLUMNS = {"psi", "band_low", "band_high", "noise", "grade_psi", "auc", "gini", "ks", "iv"}


def cell_text(value, column: str = ""):
    """A table cell for people: amounts grouped, codes (stages, products, branches, channels, features) by name."""
    if value is None or value == "":
        return "—"
    if isinstance(value, dt.datetime):
        return daytime(value)
    if isinstance(value, dt.date):
        return day(value)
    if isinstance(value, bool):
        return gettext_lazy("是 yes") if value else gettext_lazy("否 no")
    if isinstance(value, (int, float, Decimal)):
        if column in INDEX_COLUMNS and not isinstance(value, int):
            return f"{value:.3f}"  # an index (PSI, AUC, KS), not a rate: three decimals
        if abs(value) >= 1000 or (isinstance(value, Decimal) and value == value.to_integral_value()):
            # whole amounts without decimals, small or large ("0", "400", "600,000"), as the charts' axes show them
            return money_display(value, 0 if float(value).is_integer() else 2)
        return value
    text = str(value)
    if NUMBER.fullmatch(text):
        return cell_text(Decimal(text), column)
    if column in KINDS and KINDS[column]:
        return label(text, KINDS[column])
    if CODE.fullmatch(text):
        return label(text)
    return CODE.sub(lambda m: label(m.group(0), "feature"), text)


def _cell_link(value, column: str, table: dict):
    """A cell for people; an id in a column the table links (a credit line) opens its staff page."""
    if column in table.get("links", {}) and value is not None:
        return format_html('<a href="{}">#{}</a>', reverse(table["links"][column], args=[value]), value)
    return cell_text(value, column)


@permission_required("analytics.view")
def analytics_home(request, section: str = ""):
    """One section (tab) of the analytics at a time: its charts, each with its table and CSV export."""
    filters, errors = _parsed(request)
    keys = [k for k, _t in SECTIONS]
    section = section or keys[0]
    if section not in keys:
        raise Http404
    summary = analytics_summary(filters)
    tables = summary_tables(summary)
    present = {t["section"] for t in tables}
    tabs = [{"key": k, "title": t} for k, t in SECTIONS if k in present]
    shown = [t for t in tables if t["section"] == section]
    for t in shown:
        t["display_rows"] = [[_cell_link(v, c, t) for v, (c, _l) in zip(row, t["columns"], strict=False)] for row in t["rows"]]
    charts = {}
    for t in shown:
        if not t["chart"]:
            continue
        columns = [c for c, _l in t["columns"]]
        x = columns.index(t["chart"]["x"]) if t["chart"]["x"] in columns else None
        rows = [[str(cell_text(v, columns[i])) if i == x else v for i, v in enumerate(row)] for row in t["rows"]]
        charts[t["key"]] = {"chart": t["chart"], "columns": columns, "rows": rows,
                            "labels": {c: str(lbl) for c, lbl in t["columns"]}}
    return render(request, "analytics/home.html", {
        "filters": filters, "errors": errors, "choices": filter_choices(), "tabs": tabs, "section": section,
        "section_title": dict(SECTIONS)[section], "tables": shown,
        "charts": charts, "query": request.GET.urlencode(), "summary": summary,
        "branch_locked": not can(request.user, "analytics.all_branches"),
    })


@permission_required("analytics.view")
def analytics_csv(request, key):
    filters, _errors = _parsed(request)
    table = next((t for t in summary_tables(analytics_summary(filters)) if t["key"] == key), None)
    if table is None:
        raise Http404
    response = HttpResponse(table_csv(table), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{key}-{filters.date_from}-{filters.date_to}.csv"'
    return response


@permission_required("analytics.view")
def analytics_model_risk(request):
    """Model risk: drift states of the champion, the back-test traffic lights, the PD term structure."""
    filters, errors = _parsed(request)
    summary = model_risk_summary(filters)
    pd = summary["pd"]
    charts = {
        "drift": {"labels": [r["month"] for r in summary["drift"]["rows"] if r["month"] != "all"],
                  # a window without enough scores is not drawn: its PSI is mostly chance
                  "psi": [r["psi"] if r["state"] != drift.INSUFFICIENT else None for r in summary["drift"]["rows"] if r["month"] != "all"],
                  "noise": [r["noise"] for r in summary["drift"]["rows"] if r["month"] != "all"],
                  "watch": float(summary["drift"]["watch"]), "shift": float(summary["drift"]["shift"])},
        "pd": {"months": list(range(1, pd["months"] + 1)), "curves": {g["grade"]: g["curve"] for g in pd["grades"]}},
        "backtest": {"grades": [r["grade"] for r in summary["backtest"]["calibration"] if r["vintage"] == "all"],
                     "observed": [r["observed_rate"] for r in summary["backtest"]["calibration"] if r["vintage"] == "all"],
                     "pd": [r["pd"] for r in summary["backtest"]["calibration"] if r["vintage"] == "all"]},
        "labels": {"psi": gettext("分数PSI score PSI"), "noise": gettext("随机波动水平 noise level"),
                   "observed": gettext("观察违约率% observed %"), "pd": gettext("评级PD% PD given %")},
    }
    return render(request, "analytics/model_risk.html", {
        "filters": filters, "errors": errors, "summary": summary, "charts": charts, "query": request.GET.urlencode(),
    })
