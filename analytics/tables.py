"""The summary as named tables: each one is shown as a chart, as a table under it, and exported as CSV.

A table is {key, section, title, columns: [(key, label)], rows: [[...]], chart: {...} | None}; the chart
spec names the column on the x axis, the columns drawn as series and the kind (bar, line, ...).
"""

from __future__ import annotations

import csv
import io

from django.utils.translation import gettext as _

from loanservice.labels import label
from loanservice.text import in_language

from .selectors import FUNNEL_STAGES, GRADES, VINTAGE_MAX_MOB

STAGE_COLUMNS = [(s, label) for s, label in FUNNEL_STAGES]


def _t(key, section, title, columns, rows, chart=None, note="", links=None):
    """`links`: {column: url name} for a column that holds an id the staff can open (the view makes the link)."""
    return {"key": key, "section": section, "title": title, "columns": columns,
            "rows": [[r.get(c) for c, _label in columns] for r in rows], "chart": chart, "note": note, "links": links or {}}


def _pct(value):
    return None if value is None else round(value * 100, 2)


def _dimension_labels() -> dict[str, str]:
    return {"product": _("产品 product"), "branch": _("分行 branch"), "channel": _("渠道 channel"), "month": _("月份 month")}


def summary_tables(summary: dict) -> list[dict]:
    tables = []
    dims = _dimension_labels()
    fun = summary["funnel"]
    tables.append(_t("funnel", "funnel", _("申请漏斗 Funnel"),
                     [("label", _("阶段 stage")), ("n", _("案件数 cases")), ("of_started", _("占发起 % of started"))],
                     [{**r, "of_started": _pct(r["of_started"])} for r in fun["total"]],
                     {"type": "bar", "x": "label", "series": ["n"], "horizontal": True}))
    for dim, title in (("product", _("按产品 by product")), ("branch", _("按分行 by branch")), ("channel", _("按渠道 by channel")),
                       ("month", _("按月份 by month"))):
        chart = {"type": "line" if dim == "month" else "bar", "x": dim, "series": [s for s, _l in STAGE_COLUMNS]}
        tables.append(_t(f"funnel_by_{dim}", "funnel", _("漏斗 Funnel ") + title, [(dim, dims[dim]), *STAGE_COLUMNS],
                         fun[f"by_{dim}"], chart))

    ta = summary["turnaround"]
    tables.append(_t("turnaround", "turnaround", _("各阶段用时（营业日）Stage turnaround (business days)"),
                     [("label", _("阶段 stage")), ("n", "n"), ("median", _("中位数 median")), ("p90", "P90"),
                      ("median_hours", _("中位数(小时) median (clock hours)")), ("p90_hours", _("P90(小时) P90 (clock hours)"))],
                     [{"label": s["label"], **s["business_days"], "median_hours": s["clock_hours"]["median"],
                       "p90_hours": s["clock_hours"]["p90"]} for s in ta["stages"]],
                     {"type": "bar", "x": "label", "series": ["median", "p90"]},
                     _("来自SLA计时记录：营业日按官方节假日计算，等待客户补充资料的时间不计。 From the SLA clocks: business days on the "
                       "official calendar, time waiting for the applicant excluded.")))
    tables.append(_t("turnaround_events", "turnaround", _("关键节点用时（小时）Spans between recorded events (clock hours)"),
                     [("label", _("区间 span")), ("n", "n"), ("median", _("中位数 median")), ("p90", "P90")],
                     [{"label": e["label"], **e["clock_hours"]} for e in ta["events"]],
                     {"type": "bar", "x": "label", "series": ["median", "p90"]}))
    for dim, title in (("product", _("各阶段用时（营业日）按产品 Stage turnaround (business days) by product")),
                       ("branch", _("各阶段用时（营业日）按分行 Stage turnaround (business days) by branch"))):
        tables.append(_t(f"turnaround_by_{dim}", "turnaround", title,
                         [("stage", _("阶段 stage")), (dim, dims[dim]), ("n", "n"), ("median", _("中位数 median")), ("p90", "P90")],
                         ta[f"by_{dim}"], None))
    tables.append(_t("sla_breaches", "turnaround", _("超时 SLA breaches by stage"),
                     [("label", _("阶段 stage")), ("closed", _("已完成 closed")), ("breached", _("超时 breached")),
                      ("breach_rate", _("超时率 % breach rate")), ("open", _("进行中 open")), ("open_overdue", _("进行中已超时 open overdue"))],
                     [{**r, "breach_rate": _pct(r["breach_rate"])} for r in ta["breaches"]],
                     {"type": "bar", "x": "label", "series": ["breached", "open_overdue"], "stacked": True}))
    tables.append(_t("bottlenecks", "turnaround", _("瓶颈：案件在哪里等待最久 Bottlenecks: where open cases wait"),
                     [("label", _("阶段 stage")), ("open", _("在途 open")), ("median_wait_days", _("等待中位数(营业日) median wait")),
                      ("oldest_wait_days", _("最长等待(营业日) oldest")), ("p90_closed_days", _("已完成P90 closed P90"))],
                     ta["bottlenecks"], {"type": "bar", "x": "label", "series": ["median_wait_days", "oldest_wait_days"]}))
    rw = ta["rework"]
    tables.append(_t("rework", "turnaround", _("返工 Rework per case"),
                     [("kind", _("类型 kind")), ("events", _("次数 events")), ("cases_with", _("涉及案件 cases")), ("per_case", _("每案 per case"))],
                     [{"kind": _("退回客户经理 returns"), **rw["returns"]}, {"kind": _("补充资料 info requests"), **rw["info_requests"]}],
                     {"type": "bar", "x": "kind", "series": ["events", "cases_with"]},
                     _("分母：通过预审的案件 %(n)s 件 / per case that passed the pre-screen (%(n)s)") % {"n": rw["cases"]}))

    dec = summary["decisions"]
    tables.append(_t("decisions", "decisions", _("审批决定 Decisions"),
                     [("measure", _("指标 measure")), ("value", _("数值 value"))],
                     [{"measure": _("已决案件 decided"), "value": dec["decided"]},
                      {"measure": _("自动决策 automatic"), "value": dec["automatic"]},
                      {"measure": _("自动决策占比 % auto-decision share"), "value": _pct(dec["auto_share"])},
                      {"measure": _("人工决策 manual"), "value": dec["manual"]},
                      {"measure": _("推翻评分 overrides"), "value": dec["overrides"]},
                      {"measure": _("推翻率 % override rate"), "value": _pct(dec["override_rate"])}], None,
                     _("推翻评分：人工批准D/E级或拒绝A/B级。 Override: a person approves grade D/E or declines grade A/B.")))
    for dim, cols, title in (("route", [("route", _("路径 route"))], _("批准率（按路径） Approval rate by route")),
                             ("grade", [("grade", _("评级 grade"))], _("批准率（按评级） Approval rate by grade")),
                             ("route_grade", [("route", _("路径 route")), ("grade", _("评级 grade"))],
                              _("批准率（按路径和评级） Approval rate by route and grade"))):
        tables.append(_t(f"approval_by_{dim}", "decisions", title,
                         [*cols, ("decided", _("已决 decided")), ("approved", _("批准 approved")), ("approval_rate", _("批准率 %"))],
                         [{**r, "approval_rate": _pct(r["approval_rate"])} for r in dec[f"by_{dim}"]],
                         None if dim == "route_grade" else {"type": "bar", "x": dim, "series": ["approval_rate"]}))

    pf = summary["portfolio"]
    tables.append(_t("portfolio", "portfolio", _("贷款组合 Portfolio"), [("measure", _("指标 measure")), ("value", _("数值 value"))],
                     [{"measure": _("在贷笔数 active loans"), "value": pf["active_loans"]},
                      {"measure": _("贷款余额 balance"), "value": pf["balance"]},
                      {"measure": _("不良余额 NPL balance"), "value": pf["npl_balance"]},
                      {"measure": _("不良贷款率 % NPL ratio"), "value": _pct(pf["npl_ratio"])}], None,
                     _("不良 = 次级+可疑+损失 / NPL = substandard + doubtful + loss, by balance")))
    tables.append(_t("five_category", "portfolio", _("五级分类 Five-category classification"),
                     [("label", _("分类 category")), ("n", _("笔数 loans")), ("balance", _("余额 balance"))], pf["by_classification"],
                     {"type": "bar", "x": "label", "series": ["balance"]}))
    tables.append(_t("dpd_buckets", "portfolio", _("逾期分布 DPD buckets"),
                     [("bucket", _("档位 bucket")), ("n", _("笔数 loans")), ("balance", _("余额 balance"))], pf["by_bucket"],
                     {"type": "bar", "x": "bucket", "series": ["n"]}))
    vin = pf["vintage"]
    mob_cols = [(f"mob{m}", f"MOB{m}") for m in range(1, VINTAGE_MAX_MOB + 1)]
    vin_rows = [{"cohort": c["cohort"], "loans": c["loans"], **{f"mob{p['mob']}": _pct(p["share"]) for p in c["points"]}}
                for c in vin["cohorts"]]
    tables.append(_t("vintage", "portfolio", _("账龄曲线：逾期30天以上占比% Vintage: share ever >30 DPD by months on book"),
                     [("cohort", _("放款月份 cohort")), ("loans", _("笔数 loans")), *mob_cols], vin_rows,
                     {"type": "vintage", "x": "cohort", "series": [c for c, _l in mob_cols]}))
    if summary.get("warnings") is not None:
        w = summary["warnings"]
        tables.append(_t("warnings", "portfolio", _("预警 Early warnings by severity"),
                         [("severity", _("级别 severity")), ("n", _("笔数 warnings"))], w["by_severity"],
                         {"type": "bar", "x": "severity", "series": ["n"]}))
        tables.append(_t("warnings_status", "portfolio", _("预警 Early warnings by severity and status"),
                         [("severity", _("级别 severity")), ("status", _("状态 status")), ("n", _("笔数 warnings"))], w["rows"], None))

    mm = summary["models"]
    tables.append(_t("score_distribution", "models", _("评分分布 Score distribution by month (champion)"),
                     [("month", _("月份 month")), *[(g, g) for g in GRADES], ("n", "n"), ("mean_points", _("平均分 mean points"))],
                     mm["distribution"], {"type": "bar", "x": "month", "series": GRADES, "stacked": True}))
    tables.append(_t("psi", "models", _("稳定性 PSI against the development sample"),
                     [("month", _("月份 month")), ("window", _("合并窗口 window")), ("model", _("模型版本 model")), ("n", "n"),
                      ("psi", _("分数PSI score PSI")), ("band_low", _("区间下限 band low")), ("band_high", _("区间上限 band high")),
                      ("noise", _("随机波动水平 noise level")), ("state_label", _("判断 state")), ("grade_psi", _("评级PSI grade PSI")),
                      ("top_features", _("偏移最大的特征 most shifted features"))],
                     mm["psi"], {"type": "line", "x": "month", "series": ["psi", "noise"]},
                     _("样本不足时合并前几个月；扣除随机波动后 <0.1 稳定，<0.25 关注，否则偏移。 Months are pooled until the "
                       "window holds the minimum sample; after what chance gives at that size: < 0.1 stable, < 0.25 watch, "
                       "else shift.")))
    cc = mm["champion_challenger"]
    tables.append(_t("champion_challenger", "models",
                     _("冠军/挑战者 Champion vs challenger (rows: champion grade, columns: challenger grade)"),
                     [("champion", _("冠军评级 champion")), *[(g, g) for g in GRADES]], cc["matrix"], None,
                     _("双评分案件 %(n)s 件，评级一致率 %(a)s%%；平均分 冠军 %(c)s / 挑战者 %(h)s")
                     % {"n": cc["pairs"], "a": _pct(cc["agreement"]) if cc["agreement"] is not None else "—",
                        "c": cc["champion_mean_points"] or "—", "h": cc["challenger_mean_points"] or "—"}))
    if summary.get("customer_voice") is not None:
        cv = summary["customer_voice"]
        tables.append(_t("nps", "voice", _("客户之声 NPS by stage"),
                         [("stage", _("阶段 stage")), ("responses", _("回复 responses")), ("promoters", _("推荐者 promoters")),
                          ("detractors", _("贬损者 detractors")), ("nps", "NPS"), ("mean_score", _("平均分 mean"))],
                         cv["by_stage"], {"type": "bar", "x": "stage", "series": ["nps"]}))
        tables.append(_t("nps_comments", "voice", _("客户留言 Comments"), [("stage", _("阶段 stage")), ("score", _("评分 score")),
                                                                         ("comment", _("留言 comment"))], cv["comments"], None))
    if summary.get("marketing") is not None:
        mk = summary["marketing"]
        cols = [("source", _("来源 source")), ("prospects", _("名单 prospects")), ("contacted", _("已联系 contacted")),
                ("invited", _("已邀请 invited")), ("applied", _("已申请 applied")), ("disbursed", _("已放款 disbursed")),
                ("conversion", _("转化率 % prospect→loan"))]
        tables.append(_t("marketing_conversion", "marketing", _("营销转化 Prospect → application → loan"), cols,
                         [{**r, "conversion": _pct(r["conversion"])} for r in mk["by_source"]],
                         {"type": "bar", "x": "source", "series": ["prospects", "contacted", "invited", "applied", "disbursed"]}))
    if summary.get("credit_lines") is not None:
        tables.extend(credit_line_tables(summary["credit_lines"]))
    return tables


def credit_line_tables(cl: dict) -> list[dict]:
    """The credit-lines tab (creditlines.selectors.lines_portfolio; docs/analytics.md "Credit lines")."""
    t = cl["totals"]
    usage_cols = [("lines", _("额度数 lines")), ("limit", _("授信额度 limit")), ("used", _("已用 used")),
                  ("available", _("可用 available")), ("utilisation", _("使用率（百分比） utilisation (per cent)"))]
    line_cols = [("line", _("额度 line")), ("enterprise", _("企业 enterprise")), ("product", _("产品 product")),
                 ("branch", _("分行 branch")), ("limit", _("授信额度 limit")), ("used", _("已用 used"))]
    links = {"line": "creditlines:line"}
    tables = [
        _t("lines_summary", "credit_lines", _("循环额度概况 Credit lines at a glance"),
           [("measure", _("指标 measure")), ("value", _("数值 value"))],
           [{"measure": _("可用及冻结额度 lines (active and frozen)"), "value": t["lines"]},
            {"measure": _("授信额度 limit"), "value": t["limit"]},
            {"measure": _("已用 used"), "value": t["used"]},
            {"measure": _("可用 available"), "value": t["available"]},
            {"measure": _("额度使用率（百分比） utilisation (per cent)"), "value": _pct(t["utilisation"])},
            {"measure": _("冻结额度数 frozen lines"), "value": t["frozen"]},
            {"measure": _("冻结授信额度 frozen limit"), "value": t["frozen_limit"]},
            {"measure": _("期内用信笔数 drawdowns in the period"), "value": t["drawdowns"]},
            {"measure": _("期内用信金额 drawn in the period"), "value": t["drawdown_amount"]},
            {"measure": _("90天内到期 expiring within 90 days"), "value": t["expiring"]},
            {"measure": _("待年审 annual reviews open"), "value": t["reviews_open"]},
            {"measure": _("年审逾期 annual reviews overdue"), "value": t["reviews_overdue"]}], None,
           _("使用率 = 已用 ÷ 授信额度，按可用和冻结的额度计；已用 = 各笔用信贷款的未还本金。 Utilisation = used ÷ limit of the "
             "active and frozen lines; used = the outstanding principal of their drawdowns.")),
        _t("lines_by_product", "credit_lines", _("额度使用率（按产品） Utilisation by product"),
           [("product", _("产品 product")), *usage_cols], [{**r, "product": r["code"], "utilisation": _pct(r["utilisation"])}
                                                          for r in cl["by_product"]],
           {"type": "bar", "x": "product", "series": ["limit", "used"]}),
        _t("lines_by_branch", "credit_lines", _("额度使用率（按分行） Utilisation by branch"),
           [("branch", _("分行 branch")), *usage_cols], [{**r, "branch": r["code"], "utilisation": _pct(r["utilisation"])}
                                                        for r in cl["by_branch"]],
           {"type": "bar", "x": "branch", "series": ["limit", "used"]}),
        _t("lines_by_status", "credit_lines", _("额度状态 Lines by status"),
           [("status", _("状态 status")), ("lines", _("额度数 lines")), ("limit", _("授信额度 limit")), ("used", _("已用 used"))],
           [{**r, "status": label(r["status"], "creditline.status")} for r in cl["by_status"]], None),
        _t("lines_drawdowns_by_month", "credit_lines", _("用信趋势（按月） Drawdowns by month"),
           [("month", _("月份 month")), ("drawdowns", _("笔数 drawdowns")), ("amount", _("金额 amount"))],
           cl["drawdowns_by_month"], {"type": "bar", "x": "month", "series": ["amount"]},
           _("按用信贷款的放款日（营业日）。 By the drawdown loans' disbursement (business) date.")),
        _t("lines_drawdowns_by_day", "credit_lines", _("近30天用信 Drawdowns over the last 30 days"),
           [("day", _("日期 day")), ("drawdowns", _("笔数 drawdowns")), ("amount", _("金额 amount"))],
           cl["drawdowns_by_day"], {"type": "bar", "x": "day", "series": ["drawdowns"]}),
        _t("lines_frozen", "credit_lines", _("冻结额度 Frozen lines"),
           [*line_cols, ("reason", _("冻结原因 reason")), ("frozen_at", _("冻结时间 frozen at"))],
           [{**r, "reason": in_language(r["reason"] or "")} for r in cl["frozen"]], None, links=links),
        _t("lines_expiring", "credit_lines", _("即将到期与年审 Expiring within 90 days and annual reviews"),
           [*line_cols, ("valid_until", _("到期日 valid until")), ("days_left", _("剩余天数 days left")),
            ("review_due_on", _("年审截止 review due")), ("review", _("年审 review"))],
           [{**r, "review": label(r["review_status"], "linereviewtask.status") if r["review_status"] else _("未开启 not opened")}
            for r in cl["expiring"]], None, links=links),
    ]
    return tables


def table_csv(table: dict) -> str:
    """The table as CSV (UTF-8 with a BOM so that spreadsheet programs read the Chinese headers)."""
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf)
    writer.writerow([label for _key, label in table["columns"]])
    for row in table["rows"]:
        writer.writerow([_cell(v) for v in row])
    return buf.getvalue()


def _cell(value):
    if value is None:
        return ""
    # A comment starting with = + - @ would run as a formula in a spreadsheet (CSV injection).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
