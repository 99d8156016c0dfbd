"""Staff analytics pages: charts drawn in the browser (Chart.js served from static/vendor), each with its table
and a CSV export; filters by period, product, branch and channel."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext, gettext_lazy

from loanservice.roles import can, permission_required

from . import drift
from .model_risk import model_risk_summary
from .selectors import analytics_summary, filter_choices, filters_parse
from .tables import summary_tables, table_csv

SECTIONS = [
    ("funnel", gettext_lazy("申请漏斗 Funnel")), ("turnaround", gettext_lazy("流程时效 Turnaround and SLA")),
    ("decisions", gettext_lazy("审批决定 Decisions")), ("portfolio", gettext_lazy("贷款组合 Portfolio")),
    ("models", gettext_lazy("模型监控 Model monitoring")), ("voice", gettext_lazy("客户之声 Customer voice")),
    ("marketing", gettext_lazy("精准营销 Marketing conversion")),
]


def _parsed(request):
    parsed = filters_parse(request.GET, user=request.user)
    errors = parsed.errors
    if errors:  # show the errors and the default view rather than nothing
        parsed = filters_parse({}, user=request.user)
    return parsed.filters, errors


@permission_required("analytics.view")
def analytics_home(request):
    filters, errors = _parsed(request)
    summary = analytics_summary(filters)
    tables = summary_tables(summary)
    sections = [{"key": k, "title": t, "tables": [x for x in tables if x["section"] == k]} for k, t in SECTIONS]
    charts = {t["key"]: {"chart": t["chart"], "columns": [c for c, _l in t["columns"]], "rows": t["rows"]}
              for t in tables if t["chart"]}
    return render(request, "analytics/home.html", {
        "filters": filters, "errors": errors, "choices": filter_choices(), "sections": [s for s in sections if s["tables"]],
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
