"""Provisions: expected credit loss (预期信用损失, CAS 22 / IFRS 9) per loan, and the portfolio overlay.

Each loan is measured at every month end and whenever its stage changes (close of business compares the stage of
each loan it closes with the stage of its last measurement; a new loan is measured on its first close):

- **stage 1** (normal, at most `stage2_dpd` days past due): 12-month PD × LGD × EAD (the PD over the remaining
  term when it is shorter than a year);
- **stage 2** (special mention, or more than `stage2_dpd` days past due): lifetime PD over the remaining term;
- **stage 3** (non-performing: substandard, doubtful, loss): PD 1.

PD comes from the grade of the loan's application score (`underwriting.pd`), times the policy's forward-looking
factor (capped at 1); LGD from the loan's security (a pledge, a mortgage, a guarantee or none: the lowest LGD of
what the application holds); EAD = principal + interest and penalty receivable + CCF × the undrawn limit (0 for a
term loan). The change in the allowance posts Dr credit impairment loss / Cr loan loss allowance (a release the
other way) in the same transaction as the measurement.

At a month end the portfolio is compared with the five-category ratios (data): when the ratios ask for more than
the loans' ECL, the shortfall is proposed as an overlay (管理层叠加), which one person submits and another approves
before it posts (four eyes). Everything here is data in `ProvisionPolicy`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import DecimalField, F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Greatest
from django.urls import reverse
from django.utils.translation import gettext as _

from ledger.selectors import account_balance, account_for
from ledger.selectors import memo as batch_memo
from ledger.services import Cr, Dr, Entry, entries_post, entry_post
from loanservice import roles
from loanservice.audit import audit_record
from loanservice.business_date import business_date
from loanservice.errors import ApplicationError, Conflict
from loanservice.four_eyes import four_eyes_lock, four_eyes_record
from loanservice.notifications import in_default_language, notify
from underwriting.models import Collateral, Guarantor, Score
from underwriting.pd import pd_12m, pd_lifetime

from .models import (
    CATEGORY_ORDER,
    NPL_CATEGORIES,
    Installment,
    Loan,
    LoanProvision,
    ProvisionOverlay,
    ProvisionPolicy,
)

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
ONE = Decimal("1")
# Collateral kinds held by right of pledge (质押: deposits, receivables); the others are mortgaged (抵押).
PLEDGE_KINDS = frozenset({"deposit", "receivables"})
MONEY_OUT = DecimalField(max_digits=16, decimal_places=2)


def provision_policy_in_force(on: dt.date) -> ProvisionPolicy:
    """The policy in force on `on` (data); the model's defaults when none was entered."""
    return (ProvisionPolicy.objects.filter(effective_from__lte=on).order_by("-effective_from").first()
            or ProvisionPolicy(effective_from=on))


def stage_for(*, category: str, dpd: int, policy: ProvisionPolicy) -> int:
    if category in NPL_CATEGORIES:
        return 3
    if category == "special_mention" or dpd > policy.stage2_dpd:
        return 2
    return 1


def months_left(on: dt.date, maturity: dt.date) -> int:
    """Whole months from `on` to maturity, a started month counting as one (at least 1)."""
    months = (maturity.year - on.year) * 12 + maturity.month - on.month + (1 if maturity.day > on.day else 0)
    return max(months, 1)


def month_end_within(first: dt.date, last: dt.date) -> bool:
    """Does [first, last] hold the last day of a month?"""
    return (first.year, first.month) != (last.year, last.month) or (last + dt.timedelta(days=1)).day == 1


def _grades(application_ids) -> dict[int, str]:
    """The grade of each application's (champion) score, the latest when scored more than once."""
    out = {}
    for app_id, grade in (Score.objects.filter(application_id__in=application_ids, is_shadow=False)
                          .order_by("application_id", "created_at", "id").values_list("application_id", "grade")):
        out[app_id] = grade
    return out


def _security_types(application_ids, policy: ProvisionPolicy) -> dict[int, str]:
    """Each application's security with the lowest LGD: pledge, mortgage, guarantee, or credit (none)."""
    held: dict[int, set[str]] = defaultdict(set)
    for app_id, kind in Collateral.objects.filter(application_id__in=application_ids).values_list("application_id", "kind"):
        held[app_id].add("pledge" if kind in PLEDGE_KINDS else "mortgage")
    for app_id in Guarantor.objects.filter(application_id__in=application_ids).values_list("application_id", flat=True):
        held[app_id].add("guarantee")
    return {app_id: min(types | {"credit"}, key=policy.lgd) for app_id, types in held.items()}


def receivables(loan_ids=None) -> dict[int, dict[str, Decimal]]:
    """Each loan's interest and penalty receivable from its schedule (the sub-ledger), in one query: of `loan_ids`,
    or of every active loan."""
    scope = {"loan__status": Loan.Status.ACTIVE} if loan_ids is None else {"loan_id__in": loan_ids}
    rows = (Installment.objects.filter(superseded=False, **scope).values("loan_id")
            .annotate(interest=Sum(Greatest(F("interest_accrued") - F("paid_interest"), Value(ZERO), output_field=MONEY_OUT)),
                      penalty=Sum(F("penalty_accrued") - F("paid_penalty"), output_field=MONEY_OUT)))
    return {r["loan_id"]: {"interest": (r["interest"] or ZERO).quantize(CENT), "penalty": (r["penalty"] or ZERO).quantize(CENT)}
            for r in rows}  # (SQLite sums decimals as floats)


def latest_provisions(loan_ids, *, on: dt.date | None = None) -> dict[int, LoanProvision]:
    """Each loan's last measurement (on or before `on`)."""
    qs = LoanProvision.objects.filter(loan_id__in=loan_ids)
    if on is not None:
        qs = qs.filter(on__lte=on)
    out = {}
    for row in qs.order_by("loan_id", "on", "id"):
        out[row.loan_id] = row
    return out


def latest_ecl(*, on: dt.date | None = None) -> dict[int, Decimal]:
    """Every measured loan's allowance (its last ECL, on or before `on`): one pass, DISTINCT ON where Postgres has it."""
    qs = LoanProvision.objects.all() if on is None else LoanProvision.objects.filter(on__lte=on)
    if connection.vendor == "postgresql":
        return dict(qs.order_by("loan_id", "-on", "-id").distinct("loan_id").values_list("loan_id", "ecl"))
    return dict(qs.order_by("loan_id", "on", "id").values_list("loan_id", "ecl"))  # the last of each loan wins


def _round(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def _allowance_entry(*, reference: str, product: str, branch_id, change: Decimal, on: dt.date, key: str) -> Entry | None:
    """Dr credit impairment loss / Cr loan loss allowance for an increase; a release the other way."""
    if not change:
        return None
    impairment, allowance = account_for("impairment", product), account_for("allowance", product)
    lines = (Dr(impairment, change), Cr(allowance, change)) if change > 0 else (Dr(allowance, -change), Cr(impairment, -change))
    return Entry(kind="provision", value_date=on, lines=lines, branch_id=branch_id, product=product, reference=reference,
                 key=key)


def provisions_measure(*, loan_ids: list[int], on: dt.date, month_end: bool, by=None, changed_only: bool = False) -> dict:
    """Measure the ECL of the active loans among `loan_ids` on `on`: every one at a month end, otherwise those whose
    stage changed since their last measurement and those never measured (not those with `changed_only`: a servicing
    event re-measures a loan whose stage moved, a new loan is measured on its first close). Records each measurement
    and posts the change in the allowance (one INSERT pair for the lot). The caller holds the loans' locks (close of
    business, or the servicing event's transaction)."""
    policy = provision_policy_in_force(on)
    loans = list(Loan.objects.filter(pk__in=loan_ids, status=Loan.Status.ACTIVE)
                 .values("pk", "application_id", "product_code", "branch_id", "classification", "dpd",
                         "outstanding_principal", "maturity_date"))
    if not loans:
        return {"measured": 0, "posted": 0}
    ids = [x["pk"] for x in loans]
    last = latest_provisions(ids, on=on)
    todo = []
    for loan in loans:
        stage = stage_for(category=loan["classification"], dpd=loan["dpd"], policy=policy)
        before = last.get(loan["pk"])
        reason = ("month_end" if month_end else ("" if changed_only else "new") if before is None
                  else "stage" if before.stage != stage else "")
        if reason:
            todo.append((loan, stage, reason, before))
    if not todo:
        return {"measured": 0, "posted": 0}
    app_ids = [loan["application_id"] for loan, *_rest in todo]
    grades, securities = _grades(app_ids), _security_types(app_ids, policy)
    owed = receivables([loan["pk"] for loan, *_rest in todo])
    pd_memo: dict[tuple, Decimal] = {}

    def pd_of(grade: str, stage: int, months: int) -> Decimal:
        if stage == 3:
            return ONE
        key = (grade, 12 if stage == 1 and months >= 12 else months)
        if key not in pd_memo:
            # once per close-of-business partition (its posting batch), not per chunk: the term structure is data
            # that does not change under it
            pd_memo[key] = batch_memo(("pd", on, policy.pk, policy.forward_looking_factor, key, stage == 1), lambda: min(
                (pd_12m(grade, on=on) if key[1] == 12 and stage == 1 else pd_lifetime(grade, months=key[1], on=on))
                * policy.forward_looking_factor, ONE))
        return pd_memo[key]

    rows, entries, updates = [], [], []
    for loan, stage, reason, before in todo:
        grade = grades.get(loan["application_id"], "")
        security = securities.get(loan["application_id"], "credit")
        due = owed.get(loan["pk"], {"interest": ZERO, "penalty": ZERO})
        undrawn = ZERO  # a term loan has no undrawn limit; a credit line's drawdowns will pass theirs
        ead = loan["outstanding_principal"] + due["interest"] + due["penalty"] + _round(policy.ccf * undrawn)
        pd = pd_of(grade, stage, months_left(on, loan["maturity_date"]))
        lgd = policy.lgd(security)
        ecl = _round(pd * lgd * ead)
        held = before.ecl if before is not None else ZERO
        change = ecl - held
        values = {"stage": stage, "category": loan["classification"], "dpd": loan["dpd"], "grade": grade,
                  "security_type": security, "pd": pd.quantize(Decimal("1e-8")), "lgd": lgd, "principal": loan["outstanding_principal"],
                  "ead": ead, "ecl": ecl, "reason": reason}
        if before is not None and before.on == on:  # measured again the same day: the row holds the day's last figure
            for field, value in values.items():
                setattr(before, field, value)
            before.change += change
            updates.append(before)
        else:
            rows.append(LoanProvision(loan_id=loan["pk"], on=on, change=change, **values))
        entries.append(_allowance_entry(reference=f"loan:{loan['pk']}", product=loan["product_code"], branch_id=loan["branch_id"],
                                        change=change, on=on, key=f"loan:{loan['pk']}:provision:{on}:{held}:{ecl}"))
    LoanProvision.objects.bulk_create(rows)
    if updates:
        LoanProvision.objects.bulk_update(updates, ["stage", "category", "dpd", "grade", "security_type", "pd", "lgd",
                                                    "principal", "ead", "ecl", "change", "reason"])
    posted = entries_post([e for e in entries if e is not None], by=by)
    return {"measured": len(todo), "posted": posted}


def provisions_release_closed(*, on: dt.date, by=None) -> int:
    """A loan repaid in full no longer needs its allowance: released on the close of business after it closed."""
    latest = LoanProvision.objects.filter(loan=OuterRef("pk")).order_by("-on", "-id")
    closed = (Loan.objects.filter(status=Loan.Status.CLOSED).annotate(held=Subquery(latest.values("ecl")[:1]))
              .filter(held__gt=0).values("pk", "product_code", "branch_id", "held", "classification", "dpd"))
    rows, entries = [], []
    for loan in closed:
        rows.append(LoanProvision(loan_id=loan["pk"], on=on, stage=1, category=loan["classification"], dpd=loan["dpd"],
                                  security_type="credit", pd=ZERO, lgd=ZERO, principal=ZERO, ead=ZERO, ecl=ZERO,
                                  change=-loan["held"], reason="month_end"))
        entries.append(_allowance_entry(reference=f"loan:{loan['pk']}", product=loan["product_code"], branch_id=loan["branch_id"],
                                        change=-loan["held"], on=on, key=f"loan:{loan['pk']}:provision:closed"))
    LoanProvision.objects.bulk_create(rows, ignore_conflicts=True)
    return entries_post([e for e in entries if e is not None], by=by)


def loan_allowance_release_for_write_off(*, loan: Loan, on: dt.date) -> Decimal:
    """The allowance the loan holds in the GL, recorded as used by its write-off (the write-off's entry debits it).
    Called by `postloan.services._write_off_apply` inside its transaction."""
    held = account_balance(account=account_for("allowance", loan.product_code), on=dt.date.max, reference=f"loan:{loan.pk}")
    last = latest_provisions([loan.pk]).get(loan.pk)
    on = max(on, last.on) if last is not None else on  # the record stays the loan's last, whatever date the write-off has
    LoanProvision.objects.update_or_create(loan=loan, on=on, defaults={
        "stage": 3, "category": "loss", "dpd": loan.dpd, "security_type": "credit", "pd": ONE, "lgd": ZERO,
        "principal": ZERO, "ead": ZERO, "ecl": ZERO, "change": -held, "reason": "write_off"})
    return held


# ---------------------------------------------------------------- the portfolio against the five-category ratios
def allowance_by_category(*, on: dt.date | None = None) -> dict[str, dict]:
    """Active loans by category: count, principal balance and the ECL they hold (latest measurement)."""
    held = latest_ecl(on=on)
    out = {c: {"count": 0, "balance": ZERO, "provision": ZERO} for c in CATEGORY_ORDER}
    for pk, category, principal in (Loan.objects.filter(status=Loan.Status.ACTIVE)
                                    .values_list("pk", "classification", "outstanding_principal")):
        row = out[category]
        row["count"] += 1
        row["balance"] += principal
        row["provision"] += held.get(pk, ZERO)
    return out


def overlay_held() -> Decimal:
    return (ProvisionOverlay.objects.filter(status=ProvisionOverlay.Status.APPROVED)
            .aggregate(s=Sum("amount"))["s"] or ZERO)


def overlay_propose(*, on: dt.date) -> ProvisionOverlay | None:
    """Month end: the allowance the five-category ratios ask for against the loans' ECL. A change in the shortfall is
    proposed as an overlay (an earlier proposal not yet decided is superseded); none when nothing changes."""
    policy = provision_policy_in_force(on)
    categories = allowance_by_category(on=on)
    required = sum((_round(row["balance"] * policy.ratio(c)) for c, row in categories.items()), ZERO)
    ecl_total = sum((row["provision"] for row in categories.values()), ZERO)
    held = overlay_held()
    change = max(required - ecl_total, ZERO) - held
    open_ones = list(ProvisionOverlay.objects.select_for_update().filter(
        status__in=[ProvisionOverlay.Status.PROPOSED, ProvisionOverlay.Status.PENDING]))
    for old in open_ones:
        old.supersede()
        old.save()
    if not change:
        return None
    overlay = ProvisionOverlay.objects.create(
        on=on, required=required, ecl_total=ecl_total, held_before=held, amount=change,
        by_category=[{"category": c, "balance": str(row["balance"]), "ratio": str(policy.ratio(c)),
                      "required": str(_round(row["balance"] * policy.ratio(c))), "ecl": str(row["provision"])}
                     for c, row in categories.items()])
    audit_record(actor=None, action="provision.overlay.propose", obj=overlay, to_state=overlay.status,
                 data={"on": on.isoformat(), "required": str(required), "ecl": str(ecl_total), "amount": str(change)})
    with in_default_language():
        title = _("拨备缺口 %(amount)s 元待提交审批 / A provision shortfall of CNY %(amount)s awaits submission") % {
            "amount": f"{change:,.2f}"}
        for user in get_user_model().objects.filter(groups__name=roles.RISK, is_active=True).distinct():
            notify(user=user, kind="provision_overlay", title=title, url=reverse("finance:provisions"), email=False)
    return overlay


def _overlay_locked(overlay: ProvisionOverlay) -> ProvisionOverlay:
    return ProvisionOverlay.objects.select_for_update().get(pk=overlay.pk)


@transaction.atomic
def overlay_submit(*, overlay: ProvisionOverlay, reason: str, by) -> ProvisionOverlay:
    """The first pair of eyes: a risk officer submits the proposed overlay with a reason."""
    roles.permission_check(by, "postloan.submit_overlay", message=_("无权提交拨备叠加 / You may not submit an overlay."))
    if not (reason or "").strip():
        raise ApplicationError(_("请说明理由 / Give a reason."), errors={"reason": [_("此项为必填项 / This field is required.")]})
    overlay = _overlay_locked(overlay)
    if overlay.status != ProvisionOverlay.Status.PROPOSED:
        raise Conflict(_("该叠加已提交或已处理 / This overlay was already submitted or decided."), state=overlay.status)
    overlay.submit()
    overlay.requested_by, overlay.reason = by, reason.strip()[:500]
    overlay.save()
    audit_record(actor=by, action="provision.overlay.submit", obj=overlay, from_state="proposed", to_state=overlay.status,
                 reason=overlay.reason, data={"amount": str(overlay.amount)})
    return overlay


@transaction.atomic
def overlay_decide(*, overlay: ProvisionOverlay, approve: bool, by, comment: str = "") -> ProvisionOverlay:
    """The second pair of eyes (never the submitter's): approving posts the overlay on the business date."""
    roles.permission_check(by, "postloan.decide_overlay", message=_("无权审批拨备叠加 / You may not decide an overlay."))
    overlay = four_eyes_lock(ProvisionOverlay, overlay.pk, approve=approve, by=by,
                             own_message=_("提交人不能审批自己的申请 / The submitter cannot approve their own request."),
                             errors={"user": [_("需由另一人审批 / Needs a second person.")]},
                             decided_message=_("该叠加不在待审批状态 / This overlay is not waiting for a decision."))
    four_eyes_record(overlay, approve=approve, by=by, comment=(comment or "").strip())
    if approve:
        entry = _allowance_entry(reference=f"provision:overlay:{overlay.pk}", product="", branch_id=None, change=overlay.amount,
                                 on=business_date(), key=f"provision:overlay:{overlay.pk}")
        if entry is not None:
            entry_post(kind=entry.kind, value_date=entry.value_date, lines=entry.lines, reference=entry.reference,
                       key=entry.key, memo="拨备叠加 / provision overlay", by=by)
    audit_record(actor=by, action=f"provision.overlay.{'approve' if approve else 'reject'}", obj=overlay,
                 from_state="pending", to_state=overlay.status, reason=overlay.comment, data={"amount": str(overlay.amount)})
    return overlay
