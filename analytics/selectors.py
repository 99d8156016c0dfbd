"""Process analytics: every figure is read from the recorded data (applications, the audit trail, SLA
clocks, scores, decisions, loans and their installments), aggregated in SQL where SQL can, and in
Python over one fetched column where it cannot (medians and percentiles, business time, vintages).

Each section runs a fixed number of queries whatever the number of rows; `analytics_summary` runs
all of them. Definitions are in docs/analytics.md; the tests check them on a small known portfolio.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from django.db.models import Avg, CharField, Count, Exists, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Cast, TruncMonth
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from applications.models import LoanApplication, LoanProduct
from creditlines.selectors import lines_portfolio
from loanservice import roles
from loanservice.models import AuditEvent, Branch, SlaClock, SlaTarget
from loanservice.money import money_text
from loanservice.sla import sla_clock_elapsed
from marketing.selectors import conversion_summary
from postloan.models import FIVE_CATEGORIES, SEVERITY_ORDER, EarlyWarning, Installment, Loan, SurveyResponse
from underwriting.models import Score, ScorecardModel
from underwriting.pd import model_risk_policy
from underwriting.scorecard import summary_counts

from . import drift

APP_TYPE = "applications.loanapplication"
FUNNEL_STAGES = [
    ("started", gettext_lazy("发起申请 started")),
    ("submitted", gettext_lazy("已提交 submitted")),
    ("prescreen_passed", gettext_lazy("预审通过 pre-screen passed")),
    ("approved", gettext_lazy("已批准 approved")),
    ("accepted", gettext_lazy("已接受批复 accepted")),
    ("disbursed", gettext_lazy("已放款 disbursed")),
]
# A human decision "against the score": approving what the card grades D or E, declining A or B.
OVERRIDE_APPROVE_GRADES = ("D", "E")
OVERRIDE_DECLINE_GRADES = ("A", "B")
NPL_CATEGORIES = ("substandard", "doubtful", "loss")
BUCKET_ORDER = ["M0", "M1", "M2", "M3", "M4+"]
VINTAGE_DPD = 30  # "30+ DPD": more than 30 days past due (bucket M2 or worse)
VINTAGE_MAX_MOB = 12
GRADES = ["A", "B", "C", "D", "E"]
REWORK_ACTIONS = {"application.return_to_rm": "returns", "application.request_info": "info_requests"}
EVENT_STAGES = [
    ("submit_to_score", gettext_lazy("提交→评分 submit → scored")),
    ("submit_to_decision", gettext_lazy("提交→审批决定 submit → decision")),
    ("decision_to_disbursement", gettext_lazy("批准→放款 approval → disbursement")),
    ("start_to_disbursement", gettext_lazy("申请→放款 application → disbursement")),
]


@dataclass(frozen=True)
class Filters:
    date_from: dt.date
    date_to: dt.date
    product: str = ""
    branch: str = ""
    channel: str = ""

    def as_query(self) -> dict:
        q = {"date_from": self.date_from.isoformat(), "date_to": self.date_to.isoformat()}
        q.update({k: v for k, v in (("product", self.product), ("branch", self.branch), ("channel", self.channel)) if v})
        return q


@dataclass
class FilterResult:
    filters: Filters | None
    errors: dict[str, list[str]] = field(default_factory=dict)


DATE_MIN, DATE_MAX = dt.date(1900, 1, 1), dt.date(2999, 12, 31)


def filters_parse(params, *, user=None, today: dt.date | None = None) -> FilterResult:
    """Period, product, branch and channel from a query dict; errors name the field. Default: the last 12 months.

    A user who does not see every branch is held to their own branch whatever they ask."""
    today = today or timezone.localdate()
    errors: dict[str, list[str]] = {}

    def date_of(name: str, default: dt.date) -> dt.date:
        raw = (params.get(name) or "").strip()
        if not raw:
            return default
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError:
            errors[name] = [_("日期格式应为 YYYY-MM-DD / Use YYYY-MM-DD.")]
            return default
        if not DATE_MIN <= day <= DATE_MAX:  # a period's arithmetic near year 1 or 9999 overflows the calendar
            errors[name] = [_("日期须在1900年至2999年之间 / The date must be between 1900 and 2999.")]
            return default
        return day

    date_to = date_of("date_to", today)
    date_from = date_of("date_from", _add_months(date_to, -12) + dt.timedelta(days=1))
    if date_from > date_to:
        errors["date_from"] = [_("开始日期不能晚于结束日期 / The start date is after the end date.")]
    product = (params.get("product") or "").strip()
    if product and not LoanProduct.objects.filter(code=product).exists():
        errors["product"] = [_("未知产品 / Unknown product.")]
    branch = (params.get("branch") or "").strip()
    if branch and not Branch.objects.filter(code=branch).exists():
        errors["branch"] = [_("未知分行 / Unknown branch.")]
    # Without analytics.all_branches (branch approvers) a user sees their own branch only.
    if user is not None and not roles.can(user, "analytics.all_branches"):
        own = Branch.objects.filter(pk=roles.user_branch_id(user)).values_list("code", flat=True).first()
        branch = own or "-"
    channel = (params.get("channel") or "").strip()[:20]
    if errors:
        return FilterResult(filters=None, errors=errors)
    return FilterResult(filters=Filters(date_from=date_from, date_to=date_to, product=product, branch=branch, channel=channel))


# ---------------------------------------------------------------- helpers
def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _ratio(num, den) -> float | None:
    return round(float(num) / float(den), 4) if den else None


def _stats(values: list[float]) -> dict:
    """n, median and 90th percentile (numpy's linear interpolation), rounded to 2 decimals."""
    if not values:
        return {"n": 0, "median": None, "p90": None, "mean": None, "max": None}
    arr = np.asarray(values, dtype=float)
    return {"n": int(arr.size), "median": round(float(np.median(arr)), 2), "p90": round(float(np.percentile(arr, 90)), 2),
            "mean": round(float(arr.mean()), 2), "max": round(float(arr.max()), 2)}


def _month(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
    return f"{value:%Y-%m}"


def applications_in_scope(f: Filters):
    qs = LoanApplication.objects.filter(created_at__gte=_day_start(f.date_from),
                                        created_at__lt=_day_start(f.date_to + dt.timedelta(days=1)))
    if f.product:
        qs = qs.filter(product__code=f.product)
    if f.branch:
        qs = qs.filter(branch__code=f.branch)
    if f.channel:
        qs = qs.filter(channel=f.channel)
    return qs


def _events(action: str):
    return AuditEvent.objects.filter(object_type=APP_TYPE, action=action, object_id=Cast(OuterRef("pk"), CharField()))


def _reached(action: str):
    """Whether the application's audit trail holds this transition (it reached that stage at some time)."""
    return Exists(_events(action))


def _event_at(action: str):
    return Subquery(_events(action).order_by("at").values("at")[:1])


def _app_ids_as_text(qs):
    return qs.annotate(sid=Cast("pk", CharField())).values("sid")


# ---------------------------------------------------------------- funnel
def _funnel_aggregates() -> dict:
    return {
        "started": Count("id"),
        "submitted": Count("id", filter=Q(submitted_at__isnull=False)),
        "prescreen_passed": Count("id", filter=Q(submitted_at__isnull=False) & ~Q(status=LoanApplication.Status.PRESCREEN_DECLINED)),
        "approved": Count("id", filter=Q(r_approved=True)),
        "accepted": Count("id", filter=Q(r_accepted=True)),
        "disbursed": Count("id", filter=Q(r_disbursed=True)),
    }


def funnel(f: Filters) -> dict:
    """started → submitted → pre-screen passed → approved → accepted → disbursed, of the applications started
    in the period; a stage counts a case that ever reached it (the audit trail), wherever it is now. 5 queries."""
    qs = applications_in_scope(f).annotate(r_approved=_reached("application.approve"),
                                           r_accepted=_reached("application.accept_offer"),
                                           r_disbursed=_reached("application.mark_disbursed"))
    total = qs.aggregate(**_funnel_aggregates())
    result = {"total": [{"stage": s, "label": str(label), "n": total[s], "of_started": _ratio(total[s], total["started"])}
                        for s, label in FUNNEL_STAGES]}
    for dim, key in (("product", "product__code"), ("branch", "branch__code"), ("channel", "channel")):
        rows = qs.values(key).annotate(**_funnel_aggregates()).order_by(key)
        result[f"by_{dim}"] = [{dim: r[key] or "—", **{s: r[s] for s, _label in FUNNEL_STAGES}} for r in rows]
    rows = qs.annotate(month=TruncMonth("created_at")).values("month").annotate(**_funnel_aggregates()).order_by("month")
    result["by_month"] = [{"month": _month(r["month"]), **{s: r[s] for s, _label in FUNNEL_STAGES}} for r in rows]
    return result


# ---------------------------------------------------------------- stage turnaround, SLA, bottlenecks, rework
def turnaround(f: Filters, *, now: dt.datetime | None = None) -> dict:
    """Time in each SLA stage (business days on the official calendar, applicant waits excluded, and clock
    hours), median and p90 overall, by product and by branch; breaches; where open cases wait; rework.
    4 queries."""
    now = now or timezone.now()
    apps = applications_in_scope(f)
    clocks = list(SlaClock.objects.filter(case_id__in=apps.values("pk")).select_related("branch").order_by("id"))
    stage_labels = dict(SlaTarget.STAGES)
    done_days: dict[str, list[float]] = defaultdict(list)
    done_hours: dict[str, list[float]] = defaultdict(list)
    by_product: dict[tuple, list[float]] = defaultdict(list)
    by_branch: dict[tuple, list[float]] = defaultdict(list)
    breaches = {s: {"closed": 0, "breached": 0, "open": 0, "open_overdue": 0} for s, _label in SlaTarget.STAGES}
    waiting: dict[str, list[float]] = defaultdict(list)
    for clock in clocks:
        days = sla_clock_elapsed(clock, now=now).total_seconds() / 86400
        b = breaches[clock.stage]
        if clock.stopped_at:
            hours = (clock.stopped_at - clock.started_at).total_seconds() / 3600
            done_days[clock.stage].append(days)
            done_hours[clock.stage].append(hours)
            by_product[(clock.stage, clock.product_code or "—")].append(days)
            by_branch[(clock.stage, clock.branch.code if clock.branch else "—")].append(days)
            b["closed"] += 1
            b["breached"] += 1 if clock.breached_at else 0
        else:
            b["open"] += 1
            b["open_overdue"] += 1 if (clock.breached_at or clock.due_at < now) else 0
            waiting[clock.stage].append(days)
    stages = []
    for stage, label in SlaTarget.STAGES:
        stages.append({"stage": stage, "label": str(label), "business_days": _stats(done_days[stage]),
                       "clock_hours": _stats(done_hours[stage])})
    breach_rows = [{"stage": s, "label": str(stage_labels[s]), **b, "breach_rate": _ratio(b["breached"], b["closed"])}
                   for s, b in breaches.items()]
    bottlenecks = sorted(
        ({"stage": s, "label": str(stage_labels[s]), "open": len(v), "median_wait_days": _stats(v)["median"],
          "oldest_wait_days": _stats(v)["max"], "p90_closed_days": _stats(done_days[s])["p90"]}
         for s, v in waiting.items()),
        key=lambda r: (-(r["oldest_wait_days"] or 0), r["stage"]),
    )
    # Event-based spans, from the application's own timestamps and its audit trail.
    rows = apps.annotate(disbursed_at=_event_at("application.mark_disbursed"), approved_at=_event_at("application.approve")).values_list(
        "created_at", "submitted_at", "scored_at", "decided_at", "approved_at", "disbursed_at", "status")
    spans: dict[str, list[float]] = defaultdict(list)
    for created, submitted, scored, decided, approved, disbursed, status in rows:
        if submitted and scored:
            spans["submit_to_score"].append((scored - submitted).total_seconds() / 3600)
        if submitted and decided and status != LoanApplication.Status.PRESCREEN_DECLINED:
            spans["submit_to_decision"].append((decided - submitted).total_seconds() / 3600)
        if approved and disbursed:
            spans["decision_to_disbursement"].append((disbursed - approved).total_seconds() / 3600)
        if disbursed:
            spans["start_to_disbursement"].append((disbursed - created).total_seconds() / 3600)
    events = [{"span": k, "label": str(label), "clock_hours": _stats(spans[k])} for k, label in EVENT_STAGES]
    return {
        "stages": stages,
        "by_product": [{"stage": s, "product": p, **_stats(v)} for (s, p), v in sorted(by_product.items())],
        "by_branch": [{"stage": s, "branch": b, **_stats(v)} for (s, b), v in sorted(by_branch.items())],
        "events": events,
        "breaches": breach_rows,
        "bottlenecks": bottlenecks,
        "rework": rework(f),
    }


def rework(f: Filters) -> dict:
    """Returns to the RM and requests for information, per case that passed the pre-screen. 2 queries."""
    passed = applications_in_scope(f).filter(submitted_at__isnull=False).exclude(status=LoanApplication.Status.PRESCREEN_DECLINED)
    cases = passed.count()
    rows = (AuditEvent.objects.filter(object_type=APP_TYPE, action__in=list(REWORK_ACTIONS), object_id__in=_app_ids_as_text(passed))
            .values("action").annotate(n=Count("id"), cases=Count("object_id", distinct=True)))
    found = {REWORK_ACTIONS[r["action"]]: r for r in rows}
    out = {"cases": cases}
    for name in REWORK_ACTIONS.values():
        r = found.get(name, {"n": 0, "cases": 0})
        out[name] = {"events": r["n"], "cases_with": r["cases"], "per_case": _ratio(r["n"], cases)}
    out["per_case"] = _ratio(out["returns"]["events"] + out["info_requests"]["events"], cases)
    return out


# ---------------------------------------------------------------- decisions
def decisions(f: Filters) -> dict:
    """Of the cases decided (approved or declined after scoring): the automatic share, approval rate by route
    and by grade, and the override rate of people against the score. 1 query."""
    grade = Subquery(Score.objects.filter(application=OuterRef("pk"), is_shadow=False).order_by("-created_at").values("grade")[:1])
    rows = (applications_in_scope(f).filter(decided_at__isnull=False).exclude(status=LoanApplication.Status.PRESCREEN_DECLINED)
            .annotate(grade=grade, approved=_reached("application.approve"))
            .values("route", "grade", "approved").annotate(n=Count("id")))
    total = auto = overrides = manual = 0
    by_route: dict[str, Counter] = defaultdict(Counter)
    by_grade: dict[str, Counter] = defaultdict(Counter)
    by_route_grade: dict[tuple, Counter] = defaultdict(Counter)
    for r in rows:
        n, route, g, ok = r["n"], r["route"] or "—", r["grade"] or "—", bool(r["approved"])
        total += n
        if route == "auto":
            auto += n
        else:
            manual += n
            if (ok and g in OVERRIDE_APPROVE_GRADES) or (not ok and g in OVERRIDE_DECLINE_GRADES):
                overrides += n
        for bucket in (by_route[route], by_grade[g], by_route_grade[(route, g)]):
            bucket["n"] += n
            bucket["approved"] += n if ok else 0

    def rate_rows(counter_map, *keys):
        out = []
        for key, c in sorted(counter_map.items()):
            key = key if isinstance(key, tuple) else (key,)
            out.append({**dict(zip(keys, key, strict=True)), "decided": c["n"], "approved": c["approved"],
                        "approval_rate": _ratio(c["approved"], c["n"])})
        return out

    return {
        "decided": total, "automatic": auto, "auto_share": _ratio(auto, total),
        "manual": manual, "overrides": overrides, "override_rate": _ratio(overrides, manual),
        "by_route": rate_rows(by_route, "route"), "by_grade": rate_rows(by_grade, "grade"),
        "by_route_grade": rate_rows(by_route_grade, "route", "grade"),
    }


# ---------------------------------------------------------------- portfolio
def loans_in_scope(f: Filters):
    qs = Loan.objects.all()
    if f.product:
        qs = qs.filter(application__product__code=f.product)
    if f.branch:
        qs = qs.filter(branch__code=f.branch)
    return qs


def _first_30_plus(loan_ids_qs, *, today: dt.date) -> dict[int, dt.date]:
    """The day each loan first went more than 30 days past due: the day after the 30th day an installment stayed
    unpaid (paid later, or still unpaid). From the installments' due and settled dates. 1 query."""
    first: dict[int, dt.date] = {}
    cutoff = today - dt.timedelta(days=VINTAGE_DPD + 1)
    rows = (Installment.objects.filter(loan_id__in=loan_ids_qs, due_date__lte=cutoff)
            .filter(Q(settled_on__isnull=True) | Q(settled_on__gt=F("due_date")))
            .values_list("loan_id", "due_date", "settled_on"))
    for loan_id, due, settled in rows:
        day = due + dt.timedelta(days=VINTAGE_DPD + 1)
        if (settled is None or settled >= day) and day <= today and (loan_id not in first or day < first[loan_id]):
            first[loan_id] = day
    return first


def portfolio(f: Filters, *, today: dt.date | None = None) -> dict:
    """The book today (active loans; product and branch filters apply, the period does not), and vintages of
    the loans disbursed in the period. 4 queries."""
    today = today or timezone.localdate()
    active = loans_in_scope(f).filter(status="active")
    class_rows = {r["classification"]: r for r in active.values("classification").annotate(n=Count("id"), balance=Sum("outstanding_principal"))}
    total_n = sum(r["n"] for r in class_rows.values())
    total_balance = sum((r["balance"] or Decimal("0") for r in class_rows.values()), Decimal("0"))
    npl_balance = sum((class_rows[c]["balance"] or Decimal("0") for c in NPL_CATEGORIES if c in class_rows), Decimal("0"))
    npl_n = sum(class_rows[c]["n"] for c in NPL_CATEGORIES if c in class_rows)
    by_class = [{"classification": code, "label": str(label), "n": class_rows.get(code, {}).get("n", 0),
                 "balance": money_text(class_rows.get(code, {}).get("balance") or 0)} for code, label in FIVE_CATEGORIES]
    bucket_rows = {r["bucket"]: r for r in active.values("bucket").annotate(n=Count("id"), balance=Sum("outstanding_principal"))}
    by_bucket = [{"bucket": b, "n": bucket_rows.get(b, {}).get("n", 0), "balance": money_text(bucket_rows.get(b, {}).get("balance") or 0)}
                 for b in BUCKET_ORDER]
    return {
        "active_loans": total_n, "balance": money_text(total_balance or 0), "npl_balance": money_text(npl_balance or 0), "npl_loans": npl_n,
        "npl_ratio": _ratio(npl_balance, total_balance),
        "by_classification": by_class, "by_bucket": by_bucket,
        "vintage": vintage(f, today=today),
    }


def vintage(f: Filters, *, today: dt.date) -> dict:
    """Per disbursement month: the share of its loans that have been more than 30 days past due at some time by
    each month on book (MOB 1..12), among the loans that have reached that MOB. 2 queries."""
    loans = loans_in_scope(f).filter(disbursed_on__gte=f.date_from, disbursed_on__lte=f.date_to)
    rows = list(loans.values_list("id", "disbursed_on"))
    first = _first_30_plus(loans.values("id"), today=today)
    cohorts: dict[str, list[tuple[int, dt.date]]] = defaultdict(list)
    for loan_id, disbursed in rows:
        cohorts[f"{disbursed:%Y-%m}"].append((loan_id, disbursed))
    curves = []
    for cohort in sorted(cohorts):
        points = []
        for mob in range(1, VINTAGE_MAX_MOB + 1):
            seen = bad = 0
            for loan_id, disbursed in cohorts[cohort]:
                horizon = _add_months(disbursed, mob)
                if horizon > today:
                    continue
                seen += 1
                bad += 1 if (loan_id in first and first[loan_id] <= horizon) else 0
            points.append({"mob": mob, "loans": seen, "bad": bad, "share": _ratio(bad, seen)})
        curves.append({"cohort": cohort, "loans": len(cohorts[cohort]), "points": points})
    return {"dpd": VINTAGE_DPD, "max_mob": VINTAGE_MAX_MOB, "cohorts": curves}


def warnings_by_severity(f: Filters) -> dict:
    """Early warnings on the loans in scope by severity and status. 1 query."""
    order = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    rows = EarlyWarning.objects.filter(loan__in=loans_in_scope(f)).values("severity", "status").annotate(n=Count("id"))
    rows = sorted(rows, key=lambda r: (order.get(r["severity"], 99), r["status"]))
    by_severity: Counter = Counter()
    for r in rows:
        by_severity[r["severity"]] += r["n"]
    return {"rows": [{"severity": r["severity"], "status": r["status"], "n": r["n"]} for r in rows],
            "by_severity": [{"severity": s, "n": n} for s, n in sorted(by_severity.items(), key=lambda kv: order.get(kv[0], 99))],
            "total": sum(by_severity.values())}


# ---------------------------------------------------------------- model monitoring
def _psi_value(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 4)


def _feature_label(spec_feature: dict) -> str:
    label = spec_feature.get("label") or {}
    return " ".join(t for t in (label.get("zh"), label.get("en")) if t) or spec_feature["name"]


def drift_rows(features_by: dict[tuple[str, int], list[dict]], models: dict[int, ScorecardModel], *, policy) -> list[dict]:
    """Per model version and month: the stability of the score, the grade mix and each feature against the
    development sample, over the month pooled with the months before it until the window holds the policy's
    minimum sample (analytics.drift); and once over the whole period (month "all"). No query."""
    settings = {"min_sample": int(policy.drift_min_sample), "watch": float(policy.drift_watch),
                "shift": float(policy.drift_shift), "resamples": int(policy.drift_bootstrap)}
    out = []
    for version in sorted({v for (_m, v) in features_by}):
        model = models.get(version)
        development = (model.development or {}) if model else {}
        months = sorted(m for (m, v) in features_by if v == version)
        sizes = {m: len(features_by[(m, version)]) for m in months}
        windows = [*drift.trailing_windows(months, sizes, min_sample=settings["min_sample"]), ("all", months)]
        labels = {sf["name"]: _feature_label(sf) for sf in (model.spec.get("features", []) if model else [])}
        for month, window in windows:
            rows = [r for m in window for r in features_by[(m, version)]]
            row = {"month": month, "window": window[0] if len(window) == 1 else f"{window[0]} – {window[-1]}",
                   "months": len(window), "model": version, "n": len(rows), "n_dev": development.get("n", 0),
                   "psi": None, "band_low": None, "band_high": None, "noise": None, "excess": None, "state": drift.INSUFFICIENT,
                   "grade_psi": None, "grade_state": drift.INSUFFICIENT, "features": [], "top_features": ""}
            if development.get("score") and rows:
                names = list(development.get("features", {}))
                counts = summary_counts(model.spec, development, {n: [r.get(n) for r in rows] for n in names})
                score = drift.stability(*counts["score"], **settings)
                grade = drift.stability(*counts["grade"], **settings)
                row.update(psi=_psi_value(score.psi), band_low=_psi_value(score.band_low), band_high=_psi_value(score.band_high),
                           noise=_psi_value(score.noise), excess=_psi_value(score.excess), state=score.state,
                           grade_psi=_psi_value(grade.psi), grade_state=grade.state)
                moved = []
                for name, (dev_counts, recent_counts) in counts["features"].items():
                    st = drift.stability(dev_counts, recent_counts, **settings)
                    if st.state in (drift.WATCH, drift.SHIFT):
                        moved.append({"name": name, "label": labels.get(name, name), "psi": _psi_value(st.psi),
                                      "excess": _psi_value(st.excess), "state": st.state,
                                      "state_label": str(drift.STATE_LABELS[st.state])})
                moved.sort(key=lambda x: -(x["excess"] or 0))
                row["features"] = moved
                row["top_features"] = ", ".join(f"{x['label']} {x['excess']:.3f}" for x in moved[:3])
            row["flag"] = row["state"]
            row["state_label"] = str(drift.STATE_LABELS[row["state"]])
            row["grade_state_label"] = str(drift.STATE_LABELS[row["grade_state"]])
            out.append(row)
    return out


def model_monitoring(f: Filters) -> dict:
    """Champion score distribution by month; PSI of each month's scores (points, grade mix and each feature) against
    the development sample stored with the model (underwriting.scorecard.psi_against_summary); champion vs
    challenger on the cases scored by both. 3 queries."""
    apps = applications_in_scope(f)
    champion_rows = list(Score.objects.filter(application__in=apps, is_shadow=False)
                         .annotate(month=TruncMonth("created_at")).values_list("month", "grade", "points", "model__version", "features"))
    by_month: dict[str, Counter] = defaultdict(Counter)
    points_by_month: dict[str, list[int]] = defaultdict(list)
    features_by: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for month, grade, points, version, features in champion_rows:
        m = _month(month)
        by_month[m][grade] += 1
        points_by_month[m].append(points)
        features_by[(m, version)].append(features or {})
    distribution = [{"month": m, **{g: by_month[m].get(g, 0) for g in GRADES}, "n": sum(by_month[m].values()),
                     "mean_points": round(float(np.mean(points_by_month[m])), 1)} for m in sorted(by_month)]
    models = {m.version: m for m in ScorecardModel.objects.filter(version__in={v for (_m, v) in features_by})}
    psi_rows = drift_rows(features_by, models, policy=model_risk_policy(f.date_to))
    pair_rows = (Score.objects.filter(application__in=apps, application__scores__is_shadow=True)
                 .values_list("application_id", "is_shadow", "grade", "points", "model__version").distinct())
    pairs: dict[int, dict] = defaultdict(dict)
    for app_id, shadow, grade, points, version in pair_rows:
        pairs[app_id]["challenger" if shadow else "champion"] = (grade, points, version)
    matrix: dict[tuple[str, str], int] = Counter()
    champ_pts, chall_pts = [], []
    models_seen = set()
    for pair in pairs.values():
        if "champion" in pair and "challenger" in pair:
            matrix[(pair["champion"][0], pair["challenger"][0])] += 1
            champ_pts.append(pair["champion"][1])
            chall_pts.append(pair["challenger"][1])
            models_seen.add((pair["champion"][2], pair["challenger"][2]))
    n_pairs = sum(matrix.values())
    agree = sum(v for (a, b), v in matrix.items() if a == b)
    return {
        "distribution": distribution,
        "psi": psi_rows,
        "development_samples": {v: (mdl.development or {}).get("n", 0) for v, mdl in models.items()},
        "champion_challenger": {
            "pairs": n_pairs, "agreement": _ratio(agree, n_pairs),
            "models": sorted(models_seen),
            "champion_mean_points": round(float(np.mean(champ_pts)), 1) if champ_pts else None,
            "challenger_mean_points": round(float(np.mean(chall_pts)), 1) if chall_pts else None,
            "matrix": [{"champion": a, **{b: matrix.get((a, b), 0) for b in GRADES}} for a in GRADES],
        },
    }


# ---------------------------------------------------------------- customer voice
def customer_voice(f: Filters) -> dict:
    """NPS (% promoters 9-10 minus % detractors 0-6) and comments per survey stage (after disbursement, after the
    first repayments) on the loans in scope, answered surveys only. 2 queries."""
    qs = SurveyResponse.objects.filter(loan__in=loans_in_scope(f), score__isnull=False)
    labels = dict(SurveyResponse.TRIGGERS)
    rows = qs.values("trigger").annotate(n=Count("id"), promoters=Count("id", filter=Q(score__gte=9)),
                                         detractors=Count("id", filter=Q(score__lte=6)), mean=Avg("score")).order_by("trigger")
    by_stage = [{"stage": str(labels.get(r["trigger"], r["trigger"])), "trigger": r["trigger"], "responses": r["n"],
                 "promoters": r["promoters"], "detractors": r["detractors"],
                 "nps": round(100 * (r["promoters"] - r["detractors"]) / r["n"], 1) if r["n"] else None,
                 "mean_score": round(float(r["mean"]), 2) if r["mean"] is not None else None} for r in rows]
    comments = [{"stage": str(labels.get(r["trigger"], r["trigger"])), "score": r["score"], "comment": r["comment"]}
                for r in qs.exclude(comment="").order_by("-answered_at", "-id").values("trigger", "score", "comment")[:30]]
    return {"by_stage": by_stage, "comments": comments}


# ---------------------------------------------------------------- credit lines
def _line_figures(value):
    """The lines' figures for JSON and tables: amounts as strings with two decimals, shares as fractions (float)."""
    if isinstance(value, dict):
        return {k: (_ratio(v, 1) if k == "utilisation" and v is not None else _line_figures(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_line_figures(v) for v in value]
    if isinstance(value, Decimal):
        return money_text(value)
    return value


def credit_lines(f: Filters) -> dict:
    """Revolving credit lines (creditlines.selectors.lines_portfolio): utilisation today by status, product and
    branch; drawdowns disbursed in the period by month and over its last 30 days; frozen lines; lines expiring
    within 90 days of the business date and their annual reviews. Product and branch apply; channel does not."""
    return _line_figures(lines_portfolio(product=f.product, branch=f.branch, date_from=f.date_from, date_to=f.date_to))


# ---------------------------------------------------------------- the whole summary
def marketing_conversion(f: Filters) -> dict:
    return conversion_summary(product=f.product, branch=f.branch, date_from=f.date_from, date_to=f.date_to)


def analytics_summary(f: Filters) -> dict:
    return {
        "filters": f.as_query(),
        "generated_at": timezone.now().isoformat(),
        "funnel": funnel(f),
        "turnaround": turnaround(f),
        "decisions": decisions(f),
        "portfolio": portfolio(f),
        "warnings": warnings_by_severity(f),
        "models": model_monitoring(f),
        "customer_voice": customer_voice(f),
        "marketing": marketing_conversion(f),
        "credit_lines": credit_lines(f),
    }


def filter_choices() -> dict:
    return {"products": [(p.code, p.tr("name")) for p in LoanProduct.objects.order_by("order", "code").only("code", "name", "name_en")],
            "branches": list(Branch.objects.order_by("code").values_list("code", "name")),
            "channels": sorted(c for c in LoanApplication.objects.values_list("channel", flat=True).distinct() if c)}
