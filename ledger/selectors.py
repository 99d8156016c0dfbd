"""Reading the ledger: balances, the trial balance (试算平衡表), vouchers for core banking."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q, Sum

from loanservice import refcache

from .models import Account, AccountMapping, JournalEntry, JournalLine, VatExemption

ZERO = Decimal("0.00")
# Inside `posting_batch()` (close of business), account lookups and period checks are read once per batch.
_batch: ContextVar[dict | None] = ContextVar("ledger_posting_batch", default=None)


@contextmanager
def posting_batch():
    """Many postings in a row (a close-of-business partition): the chart, the mapping and the closed periods
    do not change under them, so each is read once."""
    token = _batch.set({})
    try:
        yield
    finally:
        _batch.reset(token)


def memo(key, compute):
    """Inside a posting batch, once per batch; otherwise once per process and generation of the ledger's reference
    data (loanservice.refcache: a change to the chart, the mapping, VAT rules or periods is seen at once)."""
    cache = _batch.get()
    if cache is None:
        return refcache.cached(("ledger", key), compute)
    if key not in cache:
        cache[key] = compute()
    return cache[key]


@dataclass
class TrialBalanceLine:
    account: str
    name: str
    name_en: str
    kind: str
    debit: Decimal
    credit: Decimal


@dataclass
class TrialBalance:
    on: dt.date
    lines: list[TrialBalanceLine] = field(default_factory=list)

    @property
    def total_debit(self) -> Decimal:
        return sum((x.debit for x in self.lines), ZERO)

    @property
    def total_credit(self) -> Decimal:
        return sum((x.credit for x in self.lines), ZERO)

    @property
    def balanced(self) -> bool:
        return self.total_debit == self.total_credit


def _sums(on: dt.date, **filters) -> dict[int, tuple[Decimal, Decimal]]:
    rows = (JournalLine.objects.filter(entry__value_date__lte=on, **filters).values("account_id")
            .annotate(debit=Sum("debit"), credit=Sum("credit")))
    return {r["account_id"]: (_cents(r["debit"]), _cents(r["credit"])) for r in rows}


def _cents(total) -> Decimal:
    """A sum of amounts to the cent: SQLite sums decimals as floats (on Postgres, exact already, nothing changes)."""
    return ZERO if total is None else Decimal(total).quantize(ZERO)


def trial_balance(*, on: dt.date, branch=None) -> TrialBalance:
    """Each account's balance at the end of `on`, on its debit or credit side: one query whatever the volume.
    Off-balance memo accounts are listed too; they balance among themselves."""
    filters = {"entry__branch": branch} if branch is not None else {}
    sums = _sums(on, **filters)
    report = TrialBalance(on=on)
    for account in Account.objects.filter(Q(pk__in=sums.keys())).order_by("code"):
        debit, credit = sums[account.pk]
        net = debit - credit
        report.lines.append(TrialBalanceLine(account=account.code, name=account.name, name_en=account.name_en,
                                             kind=account.kind, debit=net if net > 0 else ZERO,
                                             credit=-net if net < 0 else ZERO))
    return report


def account_balance(*, account: str, on: dt.date, reference: str | None = None) -> Decimal:
    """The balance of one account at the end of `on` on its normal side (optionally for one reference)."""
    acc = Account.objects.get(code=account)
    qs = JournalLine.objects.filter(account=acc, entry__value_date__lte=on)
    if reference is not None:
        qs = qs.filter(entry__reference=reference)
    sums = qs.aggregate(debit=Sum("debit"), credit=Sum("credit"))
    net = _cents(sums["debit"]) - _cents(sums["credit"])
    return net if acc.debit_normal else -net


def vouchers(*, on: dt.date) -> list[dict]:
    """The day's entries aggregated by branch, product and account (汇总记账凭证), as core banking takes them."""
    rows = (JournalLine.objects.filter(entry__value_date=on)
            .values("entry__branch__code", "entry__product", "entry__currency", "account__code")
            .annotate(debit=Sum("debit"), credit=Sum("credit"))
            .order_by("entry__branch__code", "entry__product", "account__code"))
    return [{"date": on.isoformat(), "branch": r["entry__branch__code"] or "", "product": r["entry__product"],
             "currency": r["entry__currency"], "account": r["account__code"], "debit": _cents(r["debit"]),
             "credit": _cents(r["credit"])} for r in rows]


def account_for(role: str, product: str = "") -> str:
    """The account code a stage posts `role` to for `product`: the product's own mapping, else the default."""
    codes = memo(("mapping", role, product), lambda: dict(
        AccountMapping.objects.filter(role=role, product__in=["", product]).values_list("product", "account__code")))
    if not codes:
        raise LookupError(f"no ledger account mapped for {role!r}")
    return codes.get(product) or codes[""]


def entries_for(reference: str):
    """The entries of one business object (e.g. `loan:12`), oldest first, lines and accounts read in two queries."""
    return (JournalEntry.objects.filter(reference=reference).select_related("reverses", "reversal")
            .prefetch_related("lines__account").order_by("value_date", "id"))


def vat_exemption_in_force(tax_class: str, on: dt.date):
    """The `VatExemption` of the borrower class in force on `on` (its credit limit), or None (reference data, read
    through the ledger's cache)."""
    return memo(("vat_exemption", tax_class, on), lambda: VatExemption.objects.filter(
        Q(effective_until__isnull=True) | Q(effective_until__gte=on), tax_class=tax_class, active=True,
        effective_from__lte=on).order_by("-effective_from").first())
