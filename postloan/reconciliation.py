"""Sub-ledger ↔ GL reconciliation (总分核对) and the steps that end a close of business.

After each close of business the loans' own figures (the sub-ledger: each active loan's outstanding principal, the
interest and penalty receivable of its schedule, the allowance of its last ECL measurement, plus the approved
overlays) must equal the GL control accounts the account mapping names for them, loan by loan (entries carry the
reference `loan:<id>`) and in total, to the cent. A difference is an alarm, not a report line: the run's
reconciliation is marked unbalanced, an audit event is written and operations and risk are notified."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Sum
from django.urls import reverse
from django.utils.translation import gettext as _

from ledger.models import AccountMapping, JournalLine
from ledger.services import voucher_batch_build
from loanservice import roles
from loanservice.audit import audit_record
from loanservice.notifications import in_default_language, notify

from .models import CobReconciliation, CobRun, Loan
from .provisions import (
    latest_ecl,
    month_end_within,
    overlay_held,
    overlay_propose,
    provisions_release_closed,
    receivables,
)

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
# item → the account-mapping role of its control account
ITEMS = {"principal": "loan_principal", "interest": "interest_receivable", "penalty": "penalty_receivable",
         "allowance": "allowance"}
ITEM_LABELS = {"principal": "贷款本金 / Loan principal", "interest": "应收利息 / Interest receivable",
               "penalty": "应收罚息 / Penalty receivable", "allowance": "贷款损失准备 / Loan loss allowance"}
SHOWN = 200  # differences kept on the record (the count is kept whole)


def _control_accounts() -> dict[str, str]:
    """account code → item, over every product's mapping."""
    out = {}
    for role, code in AccountMapping.objects.filter(role__in=ITEMS.values()).values_list("role", "account__code"):
        out[code] = next(item for item, r in ITEMS.items() if r == role)
    return out


def _gl(on: dt.date, accounts: dict[str, str]) -> tuple[dict[tuple[str, str], Decimal], dict[str, Decimal]]:
    """(reference, item) → balance and item → total, each on the account's normal side (the allowance a credit)."""
    per_ref: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    rows = (JournalLine.objects.filter(entry__value_date__lte=on, account__code__in=accounts)
            .values("entry__reference", "account__code").annotate(debit=Sum("debit"), credit=Sum("credit")))
    for r in rows:
        item = accounts[r["account__code"]]
        net = (r["debit"] or ZERO) - (r["credit"] or ZERO)
        net = (-net if item == "allowance" else net).quantize(CENT)  # SQLite sums decimals as floats
        per_ref[(r["entry__reference"], item)] += net
        totals[item] += net
    return per_ref, totals


def _sub_ledger() -> tuple[dict[tuple[str, str], Decimal], dict[str, Decimal]]:
    per_ref: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    active = dict(Loan.objects.filter(status=Loan.Status.ACTIVE).values_list("pk", "outstanding_principal"))
    for pk, principal in active.items():
        per_ref[(f"loan:{pk}", "principal")] = principal
    # 非应计: a non-accrual loan's accrued unpaid interest and penalty were moved to the off-balance memo; its
    # receivables in the GL are nil
    off_balance = set(Loan.objects.filter(status=Loan.Status.ACTIVE, non_accrual_since__isnull=False).values_list("pk", flat=True))
    for pk, due in receivables().items():
        if pk in off_balance:
            continue
        per_ref[(f"loan:{pk}", "interest")] = due["interest"]
        per_ref[(f"loan:{pk}", "penalty")] = due["penalty"]
    for pk, ecl in latest_ecl().items():
        per_ref[(f"loan:{pk}", "allowance")] = ecl
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for (_ref, item), value in per_ref.items():
        totals[item] += value
    totals["allowance"] += overlay_held()
    return per_ref, totals


def reconcile(*, on: dt.date, run: CobRun | None = None) -> CobReconciliation:
    """Compare the sub-ledger with the GL through `on`; record the result (on the run when there is one) and, on a
    difference, raise the alarm."""
    accounts = _control_accounts()
    gl, gl_totals = _gl(on, accounts)
    sub, sub_totals = _sub_ledger()
    differences = []
    for ref, item in sorted(set(gl) | set(sub)):
        if not ref.startswith("loan:"):
            continue  # overlays and other portfolio entries: compared in the totals
        if gl[(ref, item)] != sub[(ref, item)]:
            differences.append({"loan": int(ref.split(":", 1)[1]), "item": item, "sub": str(sub[(ref, item)]),
                                "gl": str(gl[(ref, item)]), "difference": str(sub[(ref, item)] - gl[(ref, item)])})
    totals = {item: {"sub": str(sub_totals[item]), "gl": str(gl_totals[item]),
                     "difference": str(sub_totals[item] - gl_totals[item])} for item in ITEMS}
    balanced = not differences and all(sub_totals[item] == gl_totals[item] for item in ITEMS)
    fields = {"on": on, "balanced": balanced, "totals": totals, "differences": differences[:SHOWN],
              "difference_count": len(differences)}
    if run is not None:
        result, _created = CobReconciliation.objects.update_or_create(run=run, defaults=fields)
    else:
        result = CobReconciliation.objects.create(**fields)
    if not balanced:
        _alarm(result, run)
    return result


def _alarm(result: CobReconciliation, run: CobRun | None) -> None:
    audit_record(actor=None, action="cob.reconciliation.difference", obj=run or result, to_state="unbalanced",
                 data={"on": result.on.isoformat(), "differences": result.difference_count, "totals": result.totals})
    with in_default_language():
        title = _("总分核对不平：%(d)s 日终有 %(n)s 处差异 / Sub-ledger and GL differ after close of business %(d)s: "
                  "%(n)s difference(s)") % {"d": result.on.isoformat(), "n": result.difference_count or len(ITEMS)}
        people = get_user_model().objects.filter(groups__name__in=[roles.OPERATIONS, roles.RISK], is_active=True).distinct()
        for user in people:
            notify(user=user, kind="reconciliation_alarm", title=title, url=reverse("finance:reconciliation"))


def cob_book_close(run: CobRun) -> CobReconciliation:
    """The steps that end a close of business, after every loan is closed: allowances of repaid loans released, at
    a month end the portfolio against the five-category ratios (an overlay proposed), the reconciliation, then the
    entries not yet sent to core banking aggregated into a voucher batch."""
    provisions_release_closed(on=run.until)
    if month_end_within(run.from_date, run.until):
        overlay_propose(on=run.until)
    result = reconcile(on=run.until, run=run)
    voucher_batch_build(business_date=run.until)  # the day's entries, aggregated, for the core-banking outbox
    return result
