"""Staff pages: the RM's case queue and case page, the approver's queue and review page, the
operations queue, and the risk overview. Thin: every action calls the conductor or a service."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.db.models import Count, Sum
from django.db.models.functions import TruncMonth
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from applications.models import (
    AdmissionCriterion,
    ApplicationDocument,
    DocumentRequirement,
    LoanApplication,
    LoanProduct,
)
from applications.selectors import applications_visible_to
from approvals.models import TIERS, Decision, ReasonCode
from approvals.selectors import approval_queue, approver_tiers, queue_filters_clean, review_context
from approvals.serializers import DecisionPageSerializer
from casework import lifecycle
from casework.case_api import application_detail
from casework.views import redirect_next
from contracts import selectors as contract_selectors
from contracts import services as contract_services
from contracts.models import Contract, DisbursementOrder
from contracts.selectors import contracting_cases, disbursements_pending, disbursements_recent
from creditlines.selectors import line_review_tasks_open, lines_portfolio, lines_visible_to
from loanservice.api import client_ip, serializer_input
from loanservice.audit import audit_record
from loanservice.business_date import business_date
from loanservice.errors import ApplicationError, Conflict, error_text
from loanservice.models import Branch, SlaClock, SlaTarget
from loanservice.money import money_display
from loanservice.roles import permission_required
from loanservice.sla import business_calendar_pinned, sla_clock_remaining
from postloan.api import loans_visible_to
from postloan.models import CATEGORY_ORDER, FIVE_CATEGORIES, NPL_CATEGORIES, DelinquencyBucket
from underwriting import views as underwriting_views
from underwriting.models import COLLATERAL_KINDS
from underwriting.selectors import application_score_of, enterprise_profile, lpr_on, questionnaire_for
from underwriting.serializers import InfoRequestSerializer, SiteVisitSerializer
from underwriting.services import site_visit_record

QUEUE_PAGE_SIZE = 50  # rows per page of the RM's and the approvers' work queues
# Values the pre-screen compares, in words (the criteria's names are data: AdmissionCriterion).
PRESCREEN_VALUES = {"active": _("存续 active"), "small": _("小型 small"), "micro": _("微型 micro"),
                    "medium": _("中型 medium"), "large": _("大型 large")}
OUTCOMES = {"pass": _("通过 pass"), "fail": _("未通过 fail"), "gap": _("无法判断 no data"), "skip": _("不适用 not applicable")}


def _clocks(case_ids) -> dict[int, SlaClock]:
    clocks = {}
    with business_calendar_pinned():
        for clock in SlaClock.objects.filter(case_id__in=list(case_ids), stopped_at__isnull=True):
            clock.remaining_hours = round(sla_clock_remaining(clock).total_seconds() / 3600, 1)
            clocks[clock.case_id] = clock
    return clocks


def _queue_page(request, queryset) -> tuple[Page, str]:
    """One page of a work queue and the query string without `page`, for the pager's links to keep the filters.
    A page that is not a number shows the first page, one past either end the last (Paginator.get_page)."""
    page = Paginator(queryset, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return page, params.urlencode()




def _words(value):
    """A pre-screen value for people: yes/no, grouped digits, a known code in words."""
    if isinstance(value, bool):
        return _("是 yes") if value else _("否 no")
    if value is None or value == "":
        return "—"
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.replace(".", "", 1).isdigit()):
        number = str(value)
        decimals = len(number.split(".")[1].rstrip("0")) if "." in number else 0
        return money_display(value, min(decimals, 2))
    return PRESCREEN_VALUES.get(str(value), value)


def case_display(application, detail: dict) -> dict:
    """The case page's codes in words: the pre-screen criteria by name, documents by requirement, SLA stages,
    the decisions' tiers and kinds (the names are the data tables' and the models' choices)."""
    criteria = {c.code: c for c in AdmissionCriterion.objects.all()}
    requirements = {r.code: r for r in DocumentRequirement.objects.filter(product=application.product)}
    stages, tiers, kinds = dict(SlaTarget.STAGES), dict(TIERS), dict(Decision.KINDS)
    reasons = {r.code: r for r in ReasonCode.objects.all()}
    prescreen = [{"name": criteria[r["code"]].tr("name") if r.get("code") in criteria else r.get("code", ""),
                  "value": _words(r.get("value")), "outcome": r.get("outcome"),
                  "outcome_label": OUTCOMES.get(r.get("outcome"), r.get("outcome"))}
                 for r in detail.get("prescreen_rules", [])]
    documents = [{**doc, "requirement_name": requirements[doc["requirement"]].tr("name") if doc["requirement"] in requirements
                  else doc["requirement"]} for doc in detail.get("documents", [])]
    sla = [{**c, "stage_name": stages.get(c["stage"], c["stage"])} for c in detail.get("sla", [])]
    decisions = [{**x, "tier_name": tiers.get(x["tier"], x["tier"] or "—"), "decision_name": kinds.get(x["decision"], x["decision"]),
                  "reasons": [reasons[c].tr("text") if c in reasons else c for c in x.get("reason_codes", [])]}
                 for x in detail.get("decisions", [])]
    return {"prescreen_rows": prescreen, "documents": documents, "sla": sla, "decisions": decisions}


RM_QUEUE_STATES = [LoanApplication.Status.UNDER_REVIEW, LoanApplication.Status.AWAITING_INFO, LoanApplication.Status.PENDING_APPROVAL,
                   LoanApplication.Status.APPROVED, LoanApplication.Status.CONTRACTING, LoanApplication.Status.SIGNED]
SLA_FILTERS = [("overdue", _("已超时 overdue")), ("soon", _("8小时内到期 due within 8 hours")), ("ok", _("正常 on time"))]


@permission_required("underwriting.due_diligence")
def rm_queue(request):
    """The RM's open cases, oldest submission first, a page at a time with the SLA clocks of the rows shown; counts per
    stage, filters by stage and by SLA (overdue, due within 8 working hours)."""
    mine = applications_visible_to(request.user).filter(relationship_manager=request.user, status__in=RM_QUEUE_STATES)
    names = dict(LoanApplication.Status.choices)
    counts = {row["status"]: row["n"] for row in mine.order_by().values("status").annotate(n=Count("id"))}
    stage = request.GET.get("stage", "")
    stage = stage if stage in counts or stage in RM_QUEUE_STATES else ""
    sla = request.GET.get("sla", "")
    sla = sla if sla in dict(SLA_FILTERS) else ""
    rows = mine.filter(status=stage) if stage else mine
    if sla:
        with business_calendar_pinned():
            now_open = SlaClock.objects.filter(case_id__in=rows.values("pk"), stopped_at__isnull=True)
            remaining = {c.case_id: sla_clock_remaining(c).total_seconds() / 3600 for c in now_open}
        keep = [pk for pk, hours in remaining.items()
                if (sla == "overdue" and hours < 0) or (sla == "soon" and 0 <= hours < 8) or (sla == "ok" and hours >= 8)]
        rows = rows.filter(pk__in=keep)
    page, query = _queue_page(request, rows.select_related("enterprise", "product").order_by("submitted_at", "id"))
    cases = list(page)
    clocks = _clocks(c.pk for c in cases)
    for case in cases:
        case.clock = clocks.get(case.pk)
    stages = [{"code": code, "name": names[code], "n": counts.get(code, 0)} for code in RM_QUEUE_STATES]
    reviews = [t for t in line_review_tasks_open(request.user) if t.assigned_to_id == request.user.pk]
    return render(request, "staff/rm_queue.html", {"cases": cases, "page": page, "query": query, "stages": stages,
                                                    "total": sum(counts.values()), "stage": stage, "sla": sla,
                                                    "sla_filters": SLA_FILTERS, "line_reviews": reviews})


@permission_required("casework.case_page")
def case_page(request, pk):
    application = get_object_or_404(applications_visible_to(request.user), pk=pk)
    detail = application_detail(application, user=request.user)
    profile = enterprise_profile(application.enterprise, score=application_score_of(application))
    audit_record(actor=request.user, action="case.view", obj=application, ip=client_ip(request))
    return render(request, "staff/case.html", {
        "application": application, "d": detail, "profile": profile, "questions": questionnaire_for(application.product),
        "is_case_rm": application.relationship_manager_id == request.user.pk, "collateral_kinds": COLLATERAL_KINDS,
        "show": case_display(application, detail),
    })


@permission_required("casework.case_action")
@require_POST
def case_action(request, pk, action):
    application = get_object_or_404(applications_visible_to(request.user), pk=pk)
    try:
        if action == "visit":
            questions = questionnaire_for(application.product)
            answers = {}
            for q in questions:
                raw = request.POST.get(f"q_{q.code}", "")
                if raw == "":
                    continue
                answers[q.code] = (raw == "yes") if q.qtype == "yes_no" else raw
            visit = serializer_input(SiteVisitSerializer, {"mode": request.POST.get("mode", ""),
                                                           "notes": request.POST.get("notes", ""), "answers": answers},
                                     message=_("问卷未完成 / The questionnaire is incomplete."))
            site_visit_record(application=application, by=request.user, **visit)
            messages.success(request, _("走访记录已保存 / Visit recorded."))
        elif action in underwriting_views.CASE_ACTIONS:
            messages.success(request, underwriting_views.CASE_ACTIONS[action](request, application))
        elif action == "send":
            lifecycle.case_send_to_approval(application_id=pk, user=request.user, recommendation=request.POST.get("recommendation", ""))
            messages.success(request, _("已提交审批 / Sent to approval."))
            return redirect("staff:rm_queue")
        elif action == "request_info":
            asked = serializer_input(InfoRequestSerializer, {
                "message": request.POST.get("message", ""), "due_on": request.POST.get("due_on", ""),
                "documents": request.POST.getlist("documents"), "questions": request.POST.get("questions", "").splitlines(),
            }, message=_("补充资料请求有误 / The request for information is not valid."))
            lifecycle.case_request_info(application_id=pk, user=request.user, **asked)
            messages.success(request, _("已向客户发出补充资料请求 / Information requested."))
        elif action == "resolve":
            lifecycle.case_resolve(application_id=pk, user=request.user, text=request.POST.get("text", ""))
            messages.success(request, _("贷审会决议已记录 / Resolution recorded."))
            return redirect("staff:approver_queue")
        elif action == "decide":
            decision = serializer_input(DecisionPageSerializer, request.POST,
                                        message=_("审批意见有误 / The decision is not valid."))
            lifecycle.case_decide(application_id=pk, user=request.user, **decision)
            messages.success(request, _("审批意见已记录 / Decision recorded."))
            return redirect("staff:approver_queue")
        else:
            raise Http404
    except (ApplicationError, Conflict) as exc:
        messages.error(request, error_text(exc))
    return redirect_next(request, "staff:case", pk=pk)


@permission_required("approvals.review")
def approver_queue(request):
    filters = queue_filters_clean(request.GET)
    page, query = _queue_page(request, approval_queue(request.user, **filters))
    cases = list(page)
    clocks = _clocks(c.application_id for c in cases)
    for case in cases:
        case.clock = clocks.get(case.application_id)
    return render(request, "staff/approver_queue.html", {
        "cases": cases, "page": page, "query": query, "filters": filters, "tiers": approver_tiers(request.user),
        "products": LoanProduct.objects.filter(is_active=True).order_by("order", "code"),
        "branches": Branch.objects.order_by("code"),
    })


@permission_required("approvals.review")
def review_page(request, pk):
    application = get_object_or_404(applications_visible_to(request.user), pk=pk)
    detail = application_detail(application, user=request.user)
    profile = enterprise_profile(application.enterprise, score=application_score_of(application))
    audit_record(actor=request.user, action="case.view", obj=application, ip=client_ip(request))
    return render(request, "staff/review.html", {
        "application": application, "d": detail, "profile": profile,
        "decline_codes": ReasonCode.objects.filter(kind="decline"), "return_codes": ReasonCode.objects.filter(kind="return"),
        "condition_codes": ReasonCode.objects.filter(kind="condition"),
        "visit": application.visits.first(), "questions": {q.code: q for q in questionnaire_for(application.product)},
        "show": case_display(application, detail),
        "rate_floor_pct": application.product.rate_floor * 100, "rate_cap_pct": application.product.rate_cap * 100,
        "lpr": _lpr_today(application.product),
        "recommended_rate_pct": (Decimal(str(detail["score"]["recommended_rate"])) * 100).quantize(Decimal("0.01"))
        if (detail.get("score") or {}).get("recommended_rate") else "",
        **review_context(application, request.user),
    })


def _lpr_today(product):
    """The LPR an offer made today is priced over (None when the table has none: the approval then says so)."""
    try:
        return lpr_on(product.lpr_tenor, business_date())
    except ApplicationError:
        return None


@permission_required("contracts.operate")
def ops_queue(request):
    """Contracts waiting for signatures and disbursements waiting for conditions, with SLA clocks (a
    constant number of queries)."""

    cases = contracting_cases()
    orders = disbursements_pending()
    clocks = _clocks([c.pk for c in cases] + [o.application_id for o in orders])
    for case in cases:
        case.clock = clocks.get(case.pk)
        case.awaiting_bank = [c for c in case.current_contracts if c.status == Contract.Status.BORROWER_SIGNED]
        case.awaiting_customer = [c for c in case.current_contracts if c.status == Contract.Status.ISSUED]
    for order in orders:
        order.clock = clocks.get(order.application_id)
    return render(request, "staff/ops_queue.html", {
        "awaiting_bank": [c for c in cases if c.awaiting_bank], "awaiting_customer": [c for c in cases if not c.awaiting_bank],
        "orders": orders, "recent": disbursements_recent(), "new_key": uuid.uuid4().hex})


@permission_required("contracts.operate")
def ops_release_confirm(request, pk):
    """Before the money leaves: the amount, the payee's account and name, the contract and the conditions, and
    a button that releases (or, while a condition is open, says why it cannot)."""
    order = get_object_or_404(DisbursementOrder.objects.select_related("application__enterprise", "contract"),
                              application_id=pk, kind="loan", status=DisbursementOrder.Status.PENDING)
    return render(request, "staff/ops_release.html", {"o": order, "new_key": uuid.uuid4().hex})


def _ops_contract(request, pk) -> Contract:
    return get_object_or_404(Contract, pk=request.POST.get("contract") or 0, application_id=pk)


@permission_required("contracts.operate")
@require_POST
def ops_action(request, pk, action):
    """pk is the application; contract actions name the contract in the form."""
    ip, agent = client_ip(request), request.META.get("HTTP_USER_AGENT", "")
    try:
        if action == "bank_sign":
            contract = Contract.objects.filter(application_id=pk, status=Contract.Status.BORROWER_SIGNED).order_by("id").first()
            if contract is None:
                raise Conflict(str(_("没有待银行签章的合同 / No contract is waiting for the bank's seal.")),
                               state=LoanApplication.objects.get(pk=pk).status)
            lifecycle.contract_sign(contract_id=contract.pk, user=request.user, party="bank", ip=ip, user_agent=agent)
            messages.success(request, _("银行签章完成 / Bank seal applied."))
        elif action == "guarantor_in_person":
            contract = _ops_contract(request, pk)
            note = request.POST.get("note", "").strip()
            if not note:
                raise ApplicationError(str(_("请填写面签记录 / Describe the in-person signing.")),
                                       errors={"note": [str(_("此项为必填项 / This field is required."))]})
            lifecycle.contract_sign(contract_id=contract.pk, user=request.user, party="guarantor", ip=ip,
                                    user_agent=f"面签 in person: {note}"[:300])
            messages.success(request, _("保证人面签已记录 / The guarantor's in-person signature is recorded."))
        elif action == "verify":
            result = contract_services.contract_verify(contract=_ops_contract(request, pk), by=request.user, ip=ip)
            (messages.success if result["ok"] else messages.error)(request, f"{result['message']} / {result['message_en']}")
        elif action == "correct":
            changes = {"guarantor": {"name": request.POST.get("guarantor_name", ""),
                                     "id_number": request.POST.get("guarantor_id_number", "")},
                       "collateral": {"description": request.POST.get("collateral_description", ""),
                                      "value": request.POST.get("collateral_value", "")},
                       "account": {"number": request.POST.get("account_number", ""), "name": request.POST.get("account_name", "")}}
            new = contract_services.contract_correct(contract=_ops_contract(request, pk), by=request.user,
                                                     reason=request.POST.get("reason", ""), changes=changes, ip=ip)
            messages.success(request, _("已出具更正版本 %(n)s，原合同作废 / Corrected as %(n)s; the old version is void.")
                             % {"n": new.number})
        elif action == "release":
            if request.POST.get("confirmed") != "1":  # one click never releases: the confirmation page first
                return redirect("staff:ops_release", pk=pk)
            key = request.POST.get("idempotency_key") or uuid.uuid4().hex
            loan = lifecycle.disbursement_release(application_id=pk, user=request.user, idempotency_key=key)
            messages.success(request, _("放款成功，贷款编号 %(id)s / Released; loan %(id)s") % {"id": loan.pk})
        elif action == "condition":
            order = get_object_or_404(DisbursementOrder, application_id=pk)
            contract_services.condition_check_off(order=order, code=request.POST.get("code", ""), by=request.user,
                                                  evidence=request.POST.get("evidence", ""), ip=ip)
            messages.success(request, _("放款条件已确认 / Condition checked off."))
        else:
            raise Http404
    except (ApplicationError, Conflict) as exc:
        messages.error(request, error_text(exc))
    return redirect("staff:ops_queue")


@permission_required("postloan.risk_overview")
def risk_home(request):
    """The portfolio at a glance: the five categories, the overdue buckets and twelve months of disbursements as
    charts (the vendored Chart.js), the NPL ratio, open cases by stage, the overdue loans; the credit lines'
    utilisation, twelve months of drawdowns, the frozen lines and those expiring (creditlines.selectors)."""
    loans = loans_visible_to(request.user)
    active = loans.filter(status="active")
    names = dict(FIVE_CATEGORIES)
    counts = {r["classification"]: r for r in active.values("classification").annotate(n=Count("id"), balance=Sum("outstanding_principal"))}
    by_class = [{"code": code, "name": str(names[code]), "n": counts.get(code, {}).get("n", 0),
                 "balance": counts.get(code, {}).get("balance") or Decimal("0")} for code in CATEGORY_ORDER]
    bucket_rows = {r["bucket"]: r for r in active.values("bucket").annotate(n=Count("id"), balance=Sum("outstanding_principal"))}
    buckets = list(DelinquencyBucket.objects.order_by("min_dpd").values_list("code", flat=True)) or sorted(bucket_rows)
    by_bucket = [{"code": b, "n": bucket_rows.get(b, {}).get("n", 0), "balance": bucket_rows.get(b, {}).get("balance") or Decimal("0")}
                 for b in buckets]
    since = timezone.localdate().replace(day=1) - dt.timedelta(days=335)
    trend = list(loans.filter(disbursed_on__gte=since.replace(day=1)).annotate(month=TruncMonth("disbursed_on"))
                 .values("month").annotate(n=Count("id"), amount=Sum("principal")).order_by("month"))
    overdue = active.filter(dpd__gt=0).select_related("enterprise", "relationship_manager").order_by("-dpd")[:100]
    total = active.aggregate(balance=Sum("outstanding_principal"), n=Count("id"))
    npl = active.filter(classification__in=NPL_CATEGORIES).aggregate(b=Sum("outstanding_principal"))["b"] or Decimal("0")
    ratio = npl / total["balance"] if total["balance"] else Decimal("0")
    statuses = dict(LoanApplication.Status.choices)
    open_cases = [{"name": statuses.get(r["status"], r["status"]), "n": r["n"]} for r in
                  LoanApplication.objects.filter(status__in=LoanApplication.OPEN_STATES).values("status").annotate(n=Count("id")).order_by("status")]
    charts = {
        "classes": {"labels": [r["name"] for r in by_class], "balance": [float(r["balance"]) for r in by_class]},
        "buckets": {"labels": [r["code"] for r in by_bucket], "n": [r["n"] for r in by_bucket]},
        "trend": {"labels": [f"{r['month']:%Y-%m}" for r in trend], "amount": [float(r["amount"] or 0) for r in trend],
                  "n": [r["n"] for r in trend]},
        "text": {"balance": str(_("余额（元） balance (CNY)")), "loans": str(_("笔数 loans")),
                 "disbursed": str(_("放款金额（元） disbursed (CNY)")), "drawn": str(_("用信金额（元） drawn (CNY)")),
                 "drawdowns": str(_("用信笔数 drawdowns"))},
    }
    on = business_date()
    lines = lines_portfolio(lines=lines_visible_to(request.user), date_from=on.replace(day=1) - dt.timedelta(days=335), date_to=on)
    month = f"{on:%Y-%m}"
    lines["this_month"] = next((r for r in lines["drawdowns_by_month"] if r["month"] == month), {"drawdowns": 0, "amount": Decimal("0")})
    charts["lines"] = {"labels": [r["month"] for r in lines["drawdowns_by_month"]],
                       "amount": [float(r["amount"]) for r in lines["drawdowns_by_month"]],
                       "n": [r["drawdowns"] for r in lines["drawdowns_by_month"]]}
    return render(request, "staff/risk_home.html", {"by_class": by_class, "by_bucket": by_bucket, "overdue": overdue, "total": total,
                                                     "npl": npl, "npl_ratio": ratio, "open_cases": open_cases, "charts": charts,
                                                     "lines": lines})


def _staff_contract(request, pk) -> Contract:
    return get_object_or_404(Contract.objects.filter(application__in=applications_visible_to(request.user)), pk=pk)


@permission_required("casework.case_page")
def contract_page(request, pk):
    """A contract for staff: its PDF signatures validated now against the bank's CA (the enterprise's and the
    bank's), and the signature records."""
    contract = _staff_contract(request, pk)
    return render(request, "contracts/contract_page.html", {
        "contract": contract, "pdf": contract_selectors.contract_pdf_signatures(contract),
        "signatures": contract.signatures.select_related("certificate"),
        "pdf_url": reverse("staff:contract_pdf", args=[contract.pk]),
        "back_url": reverse("staff:case", args=[contract.application_id])})


@permission_required("casework.case_page")
def contract_pdf(request, pk):
    """The contract for staff as a page link (not the API's): the sealed PDF when there is one, `?original=1` the
    PDF as issued; the download is recorded as the API's is."""
    contract = _staff_contract(request, pk)
    field = contract_services.contract_latest_file(contract, original=request.GET.get("original") == "1")
    signed = field.name != contract.pdf.name
    contract_services.contract_download_record(contract=contract, by=request.user, what="signed_pdf" if signed else "pdf",
                                               ip=client_ip(request))
    return FileResponse(field.open("rb"), content_type="application/pdf", as_attachment=False,
                        filename=f"{contract.number}{'-signed' if signed else ''}.pdf")


@permission_required("casework.case_page")
def contract_schedule(request, pk):
    """The contract's repayment schedule annex as CSV (UTF-8 with BOM), for staff."""
    contract = _staff_contract(request, pk)
    if not contract.terms.get("schedule"):
        raise Http404
    contract_services.contract_download_record(contract=contract, by=request.user, what="schedule", ip=client_ip(request))
    response = HttpResponse(contract_services.schedule_csv(contract), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{contract.number}-schedule.csv"'
    return response


@permission_required("applications.download_document")
def document_download(request, pk):
    doc = get_object_or_404(ApplicationDocument.objects.filter(application__in=applications_visible_to(request.user)), pk=pk)
    audit_record(actor=request.user, action="document.download", obj=doc.application, ip=client_ip(request), data={"document": doc.pk})
    return FileResponse(doc.file.open("rb"), content_type=doc.content_type, as_attachment=True, filename=doc.original_name)


