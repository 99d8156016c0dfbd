"""Credit-line services (writes): open the line when its contract is signed, draw down (funded at once through the
contracts' release and postloan's loan opening, exactly once per Idempotency-Key), freeze / unfreeze / reduce (risk
directly, an RM through a second person's approval), and the nightly steps: freeze on a freezing warning, expire at
the end of validity, open the annual review (年审) tasks.

Lock order: the line, then its drawdown's order, then the loan (a line is above the orders and loans it funds)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext as _
from django_fsm import can_proceed

from applications.models import LoanApplication
from contracts import services as contracts
from contracts.models import Contract, DisbursementOrder
from contracts.schedules import add_months
from loanservice import roles
from loanservice.audit import audit_record
from loanservice.business_date import business_date
from loanservice.errors import ApplicationError, Conflict
from loanservice.four_eyes import four_eyes_lock, four_eyes_record
from loanservice.money import money_display, money_text
from loanservice.notifications import in_default_language, notify
from postloan import services as postloan
from postloan.models import EarlyWarning, Loan

from .models import CreditLine, Drawdown, LineChangeRequest, LineReviewTask
from .selectors import line_usage

ZERO = Decimal("0.00")


# ---------------------------------------------------------------- activation (called by the conductor)
def line_open(*, application: LoanApplication, contract: Contract, by) -> CreditLine:
    """The line a signed credit-line case grants (inside the conductor's transaction, the application locked): the
    offer's amount is the limit and its term the validity in months, from the business date. Once per case."""
    existing = CreditLine.objects.filter(application=application).first()
    if existing is not None:
        return existing
    start = business_date()
    line = CreditLine.objects.create(
        application=application, contract=contract, product=application.product, enterprise=application.enterprise,
        borrower=application.applicant, relationship_manager=application.relationship_manager, branch=application.branch,
        limit=application.offer_amount, annual_rate=application.offer_rate, valid_from=start,
        valid_until=add_months(start, application.offer_term_months) - dt.timedelta(days=1))
    audit_record(actor=by, action="credit_line.open", obj=line, to_state=line.status,
                 data={"application": application.pk, "contract": contract.number, "limit": str(line.limit),
                       "valid_until": line.valid_until.isoformat()})
    with in_default_language():
        notify(user=application.applicant, kind="credit_line_active",
               title=_("循环额度已生效：%(a)s 元 / Your credit line of %(a)s CNY is active") % {"a": money_display(line.limit)},
               url=reverse("portal:credit_line", args=[line.pk]))
    return line


# ---------------------------------------------------------------- drawdowns
def _lock(line_id: int) -> CreditLine:
    # The line alone is locked (of=self); its contract, case, product and firm come in the same read (a drawdown uses each).
    return (CreditLine.objects.select_for_update(of=("self",))
            .select_related("product", "application__product", "application__enterprise", "enterprise", "contract")
            .get(pk=line_id))


def _current(line: CreditLine, on: dt.date) -> dict:
    usage = line_usage(line)
    return {"status": line.status, "limit": money_text(usage["limit"]), "used": money_text(usage["used"]),
            "available": money_text(usage["available"]), "valid_until": line.valid_until.isoformat(),
            "business_date": on.isoformat()}


def _refuse(line: CreditLine, on: dt.date, code: str, message: str) -> Conflict:
    return Conflict(message, state=line.status, current=_current(line, on), code=code)


def borrower_overdue(line: CreditLine) -> bool:
    return Loan.objects.filter(enterprise_id=line.enterprise_id, status=Loan.Status.ACTIVE).filter(
        Q(dpd__gt=0) | Q(overdue_since__isnull=False)).exists()


def freezing_warnings(line: CreditLine):
    return EarlyWarning.objects.filter(loan__enterprise_id=line.enterprise_id, status=EarlyWarning.Status.OPEN,
                                       rule__freezes_credit_line=True).select_related("rule")


def drawdown_check(*, line: CreditLine, amount: Decimal, term_months: int, repayment_method: str, payee_account: str = "",
                   on: dt.date | None = None) -> None:
    """Every rule a drawdown must pass (the portal's confirm step asks it too, the service again under the lock):
    the input against the product (400 naming the field), then the line's state (409 with the reason and the line)."""
    on = on or business_date()
    product = line.product
    errors: dict[str, list[str]] = {}
    if amount < product.drawdown_min_amount:
        errors["amount"] = [_("单笔用信不低于 %(a)s 元 / At least %(a)s CNY a drawdown.") % {"a": money_display(product.drawdown_min_amount)}]
    elif product.drawdown_max_amount is not None and amount > product.drawdown_max_amount:
        errors["amount"] = [_("单笔用信不超过 %(a)s 元 / At most %(a)s CNY a drawdown.") % {"a": money_display(product.drawdown_max_amount)}]
    if not product.drawdown_min_term_months <= term_months <= product.drawdown_max_term_months:
        errors["term_months"] = [_("期限须在 %(lo)s-%(hi)s 个月之间 / The term must be %(lo)s-%(hi)s months.")
                                 % {"lo": product.drawdown_min_term_months, "hi": product.drawdown_max_term_months}]
    if repayment_method not in product.drawdown_method_list:
        errors["repayment_method"] = [_("该额度不支持此还款方式 / The line does not offer this repayment method.")]
    if amount > product.self_payment_limit and not payee_account:
        errors["payee"] = [_("超过自主支付限额 %(a)s 元，须受托支付给指定收款人 / Above %(a)s CNY the funds go to a named payee "
                             "(entrusted payment): give the payee's name and account.") % {"a": money_display(product.self_payment_limit)}]
    if errors:
        raise ApplicationError(_("用信信息有误 / The drawdown is not valid."), errors=errors)
    if line.status == CreditLine.Status.FROZEN:
        raise _refuse(line, on, "frozen", _("额度已冻结，暂不能用信（%(r)s）/ The line is frozen; no drawdown now (%(r)s).")
                      % {"r": line.status_reason or "—"})
    if line.status != CreditLine.Status.ACTIVE or on > line.valid_until:
        raise _refuse(line, on, "expired", _("额度已到期或已关闭，续用请重新申请 / The line has expired or is closed; apply again to renew."))
    if on < line.valid_from:
        raise _refuse(line, on, "not_yet_valid", _("额度尚未生效 / The line is not valid yet."))
    available = line_usage(line)["available"]
    if amount > available:
        raise _refuse(line, on, "above_available", _("可用额度不足：可用 %(a)s 元 / Not enough available: %(a)s CNY available.")
                      % {"a": money_display(max(available, ZERO))})
    if borrower_overdue(line):
        raise _refuse(line, on, "overdue", _("您有逾期未还的款项，请先还清再用信 / Something of yours is overdue; repay it before drawing."))
    if freezing_warnings(line).exists():
        raise _refuse(line, on, "warning", _("存在待处置的风险预警，暂不能用信，请联系客户经理 / An open risk warning stops drawdowns "
                                             "for now; please contact your relationship manager."))
    latest = add_months(line.valid_until, line.product.drawdown_maturity_cap_months)
    if add_months(on, term_months) > latest:
        raise _refuse(line, on, "maturity_cap", _("到期日不得晚于 %(d)s，请缩短期限 / The drawdown may not mature after %(d)s; "
                                                  "choose a shorter term.") % {"d": latest.isoformat()})


def _fingerprint(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def drawdown_create(*, line_id: int, user, idempotency_key: str, amount: Decimal, term_months: int, repayment_method: str,
                    payee_name: str = "", payee_account: str = "") -> tuple[Drawdown, bool]:
    """Draw on a line and fund the loan at once (the release by the system, as on the fast track; the loan and its
    ledger entry in the same transaction). Exactly once per (line, key): the same key with the same body returns
    the first drawdown (created False), with another body a 409. Checks run under the line's row lock, so
    concurrent drawdowns queue and never exceed what is available."""
    key = (idempotency_key or "").strip()
    if not key:
        raise ApplicationError(_("缺少 Idempotency-Key 请求头 / The Idempotency-Key header is required."),
                               errors={"Idempotency-Key": [_("此项为必填项 / This field is required.")]})
    body = {"amount": f"{amount:.2f}", "term_months": term_months, "repayment_method": repayment_method,
            "payee_name": payee_name, "payee_account": payee_account}
    with transaction.atomic():
        line = _lock(line_id)
        if line.borrower_id != getattr(user, "pk", None):
            raise ApplicationError(_("只有借款人可以用信 / Only the borrower can draw on the line."),
                                   errors={"line": [_("不是您的额度 / Not your line.")]}, code="forbidden")
        existing = Drawdown.objects.filter(line=line, idempotency_key=key).select_related("loan").first()
        if existing is not None:
            if existing.request.get("fingerprint") != _fingerprint(body):
                raise Conflict(_("该 Idempotency-Key 已用于另一笔用信 / This Idempotency-Key was used for another drawdown."),
                               state=line.status, code="key_reused")
            return existing, False
        on = business_date()
        drawdown_check(line=line, amount=amount, term_months=term_months, repayment_method=repayment_method,
                       payee_account=payee_account, on=on)
        application = line.application
        own = contracts.disbursement_account_default(application)
        order = DisbursementOrder.objects.create(
            application=application, kind=DisbursementOrder.Kind.DRAWDOWN, contract=line.contract, amount=amount,
            account=payee_account or own["number"], account_name=payee_name if payee_account else own.get("name", ""),
            conditions=[])
        contracts.disbursement_release(order=order, by=None, idempotency_key=f"line-{line.pk}:{key}"[:200], automatic=True)
        loan = postloan.loan_open(order=order, by=None, term_months=term_months, method=repayment_method, disbursed_on=on)
        seq = Drawdown.objects.filter(line=line).count() + 1
        drawdown = Drawdown.objects.create(
            line=line, loan=loan, amount=amount, term_months=term_months, repayment_method=repayment_method,
            payee_name=payee_name if payee_account else "", payee_account=payee_account, idempotency_key=key,
            request={**body, "fingerprint": _fingerprint(body)}, receipt_number=f"JJ{line.valid_from:%Y}{line.pk:06d}-{seq:04d}",
            requested_by=user)
        audit_record(actor=user, action="credit_line.drawdown", obj=line, to_state=line.status,
                     data={"drawdown": drawdown.pk, "loan": loan.pk, "amount": body["amount"], "term_months": term_months,
                           "method": repayment_method, "entrusted": bool(payee_account), "receipt": drawdown.receipt_number})
    return drawdown, True


# ---------------------------------------------------------------- limit management
def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(_("请填写原因 / Give the reason."), errors={"reason": [_("此项为必填项 / This field is required.")]})
    return reason[:500]


def _new_limit(line: CreditLine, limit: Decimal | None) -> Decimal:
    if limit is None:
        raise ApplicationError(_("请填写新额度 / Give the new limit."), errors={"limit": [_("此项为必填项 / This field is required.")]})
    if limit >= line.limit:
        raise ApplicationError(_("只能压降额度；提高额度须重新申请 / A limit can only be lowered; an increase is a new application."),
                               errors={"limit": [_("须低于当前额度 %(a)s 元 / Below the current %(a)s CNY.") % {"a": money_display(line.limit)}]})
    if limit < 0:
        raise ApplicationError(_("额度不能为负 / The limit cannot be negative."), errors={"limit": [_("不能为负 / Not negative.")]})
    return limit


def _apply(line: CreditLine, *, kind: str, reason: str, by, limit: Decimal | None = None, approved_by=None) -> CreditLine:
    """Apply a change to a locked line: the FSM transition (freeze, unfreeze) or the lower limit; audited."""
    before = line.status
    data = {"kind": kind, "approved_by": getattr(approved_by, "username", None)}
    if kind == LineChangeRequest.Kind.ADJUST:
        limit = _new_limit(line, limit)
        data.update({"from_limit": str(line.limit), "to_limit": str(limit)})
        line.limit = limit
        line.save(update_fields=["limit"])
    else:
        if kind == LineChangeRequest.Kind.FREEZE:
            line.freeze()
        else:
            line.unfreeze()
        line.status_reason = reason if kind == LineChangeRequest.Kind.FREEZE else ""
        line.save(update_fields=["status", "status_reason"])
    audit_record(actor=by, action=f"credit_line.{kind}", obj=line, from_state=before, to_state=line.status, reason=reason[:200],
                 data=data)
    return line


def _state_check(line: CreditLine, kind: str) -> None:
    wanted = {LineChangeRequest.Kind.FREEZE: CreditLine.Status.ACTIVE, LineChangeRequest.Kind.UNFREEZE: CreditLine.Status.FROZEN}
    if kind in wanted and line.status != wanted[kind]:
        raise Conflict(_("额度当前状态不允许此操作 / Not allowed in the line's current state."), state=line.status)
    if kind == LineChangeRequest.Kind.ADJUST and line.status not in (CreditLine.Status.ACTIVE, CreditLine.Status.FROZEN):
        raise Conflict(_("额度已到期或关闭 / The line has expired or is closed."), state=line.status)


def line_change(*, line: CreditLine, kind: str, reason: str, by, limit: Decimal | None = None) -> tuple[CreditLine, LineChangeRequest | None]:
    """Freeze, unfreeze or reduce: risk applies it at once; an RM's request waits for a second person (returns it)."""
    reason = _reason(reason)
    with transaction.atomic():
        line = _lock(line.pk)
        _state_check(line, kind)
        if roles.can(by, "creditlines.manage", line):
            return _apply(line, kind=kind, reason=reason, by=by, limit=limit), None
        roles.permission_check(by, "creditlines.request_change", line,
                               message=_("您不能调整该额度 / You cannot change this line."))
        if kind == LineChangeRequest.Kind.ADJUST:
            _new_limit(line, limit)
        if line.change_requests.filter(status=LineChangeRequest.Status.PENDING, kind=kind).exists():
            raise Conflict(_("已有待审批的同类申请 / A request of this kind is already pending."), state=line.status)
        request = LineChangeRequest.objects.create(line=line, kind=kind, limit=limit if kind == "adjust" else None,
                                                   reason=reason, requested_by=by)
        audit_record(actor=by, action="credit_line.change_request", obj=line, to_state=request.status, reason=reason[:200],
                     data={"request": request.pk, "kind": kind, "limit": str(limit) if limit is not None else None})
    return line, request


def change_request_decide(*, request: LineChangeRequest, approve: bool, by, comment: str = "") -> LineChangeRequest:
    """Four eyes: risk or an approver, never the requester, approves (the change applies then) or rejects."""
    with transaction.atomic():
        line = _lock(request.line_id)
        request = four_eyes_lock(LineChangeRequest, request.pk, approve=approve, by=by,
                                 own_message=_("不能审批自己的申请 / You cannot decide your own request."),
                                 decided_message=_("该申请已处理 / This request was already decided."))
        if approve:
            _state_check(line, request.kind)
            _apply(line, kind=request.kind, reason=request.reason, by=by, limit=request.limit, approved_by=by)
        four_eyes_record(request, approve=approve, by=by, comment=comment)
        audit_record(actor=by, action="credit_line.change_decide", obj=line, to_state=request.status,
                     reason=request.comment[:200], data={"request": request.pk, "kind": request.kind})
    return request


# ---------------------------------------------------------------- the nightly steps (on the business date)
def lines_freeze_on_warnings(*, on: dt.date | None = None) -> int:
    """Active lines whose borrower has an open warning of a rule that freezes lines: frozen, the rule named."""
    hits: dict[int, list[str]] = {}
    for line_id, name in (EarlyWarning.objects.filter(status=EarlyWarning.Status.OPEN, rule__freezes_credit_line=True,
                                                      loan__enterprise__credit_lines__status=CreditLine.Status.ACTIVE)
                          .values_list("loan__enterprise__credit_lines", "rule__name").distinct()):
        hits.setdefault(line_id, []).append(name)
    frozen = 0
    for line_id, names in hits.items():
        with transaction.atomic():
            line = _lock(line_id)
            if line.status != CreditLine.Status.ACTIVE:
                continue
            # Rule names are "中文 / English": the stored reason keeps the pattern, each half naming the rules in its
            # language, and the pages show the reader's half (the `lang` filter); stored text, so not a msgid.
            halves = [name.split(" / ", 1) for name in sorted(set(names))]
            zh = "；".join(h[0] for h in halves)
            en = "; ".join(h[-1] for h in halves)
            _apply(line, kind=LineChangeRequest.Kind.FREEZE, by=None,
                   reason=f"预警冻结：{zh} / Frozen by warning: {en}")
            frozen += 1
    return frozen


def lines_expire(*, on: dt.date | None = None) -> int:
    """Lines past their validity expire; their drawdowns run on to their own maturity."""
    on = on or business_date()
    expired = 0
    for line_id in CreditLine.objects.filter(status__in=[CreditLine.Status.ACTIVE, CreditLine.Status.FROZEN],
                                             valid_until__lt=on).values_list("pk", flat=True):
        with transaction.atomic():
            line = _lock(line_id)
            if line.valid_until >= on or not can_proceed(line.expire):
                continue
            before = line.status
            line.expire()
            line.save(update_fields=["status"])
            audit_record(actor=None, action="credit_line.expire", obj=line, from_state=before, to_state=line.status,
                         data={"valid_until": line.valid_until.isoformat(), "on": on.isoformat()})
            expired += 1
    return expired


def review_tasks_create(*, on: dt.date | None = None) -> int:
    """年审: an RM task for each live line within its product's lead days of expiry (once per line and expiry)."""
    on = on or business_date()
    made = 0
    lines = (CreditLine.objects.filter(status__in=[CreditLine.Status.ACTIVE, CreditLine.Status.FROZEN], valid_until__gte=on)
             .select_related("product"))
    for line in lines:
        if line.valid_until - dt.timedelta(days=line.product.review_days_before_expiry) > on:
            continue
        task, created = LineReviewTask.objects.get_or_create(line=line, due_on=line.valid_until, defaults={
            "assigned_to": line.relationship_manager, "created_on": on})
        if created:
            made += 1
            audit_record(actor=None, action="credit_line.review_task", obj=line, data={"task": task.pk, "due_on": task.due_on.isoformat()})
            if line.relationship_manager is not None:
                with in_default_language():
                    notify(user=line.relationship_manager, kind="credit_line_review",
                           title=_("额度 #%(id)s 将于 %(d)s 到期，请完成年审 / Line #%(id)s expires on %(d)s: annual review due")
                           % {"id": line.pk, "d": line.valid_until.isoformat()}, url=reverse("creditlines:line", args=[line.pk]))
    return made


def review_task_complete(*, task: LineReviewTask, by, note: str) -> LineReviewTask:
    note = _reason(note)
    with transaction.atomic():
        task = LineReviewTask.objects.select_for_update().get(pk=task.pk)
        roles.permission_check(by, "creditlines.review", task.line, message=_("您不能完成该年审 / You cannot complete this review."))
        task.complete()
        task.note = note
        task.save()
        audit_record(actor=by, action="credit_line.review_done", obj=task.line, reason=note[:200], data={"task": task.pk})
    return task


def lines_nightly(*, on: dt.date | None = None) -> dict:
    """The nightly steps, in order: freeze on warnings, expire, annual review tasks."""
    on = on or business_date()
    return {"frozen": lines_freeze_on_warnings(on=on), "expired": lines_expire(on=on), "review_tasks": review_tasks_create(on=on)}
