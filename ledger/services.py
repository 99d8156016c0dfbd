"""Posting to the ledger. Every money movement of a stage posts one balanced entry through `entry_post`, inside the
same database transaction as the movement; `entry_reverse` corrects one by posting its opposite."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from loanservice import roles
from loanservice.audit import audit_record
from loanservice.bulk import rows_insert
from loanservice.csvfiles import csv_text
from loanservice.dispatch import dispatch_on_commit
from loanservice.errors import ApplicationError, Conflict
from loanservice.notifications import in_default_language, notify

from . import tasks
from .core_banking import DAILY_FILE_COLUMNS, core_banking
from .models import (
    Account,
    CoreFile,
    JournalEntry,
    JournalLine,
    LedgerPeriod,
    VatExemption,
    VatRule,
    VoucherBatch,
    VoucherEntry,
)
from .selectors import memo as batch_memo

CENT = Decimal("0.01")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Line:
    """A debit or a credit of `amount` to the account with this code."""

    account: str
    debit: Decimal = Decimal("0")
    credit: Decimal = Decimal("0")


def Dr(account: str, amount: Decimal) -> Line:  # noqa: N802 - the bookkeeper's notation
    return Line(account=account, debit=amount)


def Cr(account: str, amount: Decimal) -> Line:  # noqa: N802
    return Line(account=account, credit=amount)


def period_closed(value_date: dt.date) -> bool:
    return batch_memo(("closed", value_date.year, value_date.month), lambda: LedgerPeriod.objects.filter(
        Q(month__isnull=True) | Q(month=value_date.month), year=value_date.year).exists())


def _checked_lines(lines: Iterable[Line]) -> list[Line]:
    """Zero lines are dropped (a repayment without penalty has no penalty line); the rest must be one-sided,
    in cents, and balance."""
    kept = []
    for line in lines:
        debit, credit = Decimal(line.debit), Decimal(line.credit)
        if debit < 0 or credit < 0 or (debit and credit):
            raise ApplicationError(_("分录行必须借或贷一方且为正数 / A line is a debit or a credit, above zero."),
                                   errors={"lines": [f"{line.account}: {debit} / {credit}"]})
        if debit != debit.quantize(CENT) or credit != credit.quantize(CENT):
            raise ApplicationError(_("金额必须精确到分 / Amounts are in cents."),
                                   errors={"lines": [f"{line.account}: {debit or credit}"]})
        if debit or credit:
            kept.append(Line(account=line.account, debit=debit, credit=credit))
    total_debit, total_credit = sum((x.debit for x in kept), Decimal(0)), sum((x.credit for x in kept), Decimal(0))
    if not kept or total_debit != total_credit:
        raise ApplicationError(_("借贷不平衡 / Debits and credits do not balance."),
                               errors={"lines": [f"{total_debit} ≠ {total_credit}"]})
    return kept


def _vat_rules(value_date: dt.date) -> dict[str, VatRule]:
    """income account code → the active rule in force on the date."""
    def read():
        rules: dict[str, VatRule] = {}
        for rule in (VatRule.objects.filter(active=True, effective_from__lte=value_date)
                     .select_related("income_account", "payable_account").order_by("effective_from", "id")):
            rules[rule.income_account.code] = rule
        return rules

    return batch_memo(("vat", value_date), read)


def vat_exempt_classes(value_date: dt.date) -> set[str]:
    """The borrower classes whose interest is exempt from VAT on the date (`VatExemption` rows in force)."""
    return batch_memo(("vat_exempt", value_date), lambda: set(
        VatExemption.objects.filter(Q(effective_until__isnull=True) | Q(effective_until__gte=value_date), active=True,
                                    effective_from__lte=value_date).values_list("tax_class", flat=True)))


def vat_rule_for(account: str, *, value_date: dt.date, product: str, tax_class: str = "") -> VatRule | None:
    """The VAT rule that splits a line to `account` of an entry with this product, borrower class and value date, or
    None when the line posts whole (see `vat_split`; close of business's set-based accrual applies the same rule in
    SQL, `postloan.accrual`)."""
    if not product:
        return None
    rule = _vat_rules(value_date).get(account)
    if rule is None or product in rule.exempt_products or (tax_class and tax_class in rule.exempt_tax_classes):
        return None
    if tax_class and tax_class in vat_exempt_classes(value_date):
        return None
    return rule


def vat_split(lines: list[Line], *, value_date: dt.date, product: str, tax_class: str = "") -> list[Line]:
    """价税分离: each line to an income account with a VAT rule becomes the income net of VAT and the output VAT
    (VAT = amount × rate / (1 + rate), in cents), on the same side, so the entry still balances. No split for an entry
    without a product (a manual journal entry, posted as entered), an exempt product, a borrower class whose exemption
    is in force on the value date (`VatExemption`: 小微企业 and 个体工商户 within the credit limit, checked by the stage
    that names the class), or a class the rule itself lists."""
    if not product:
        return lines
    out = []
    for line in lines:
        rule = vat_rule_for(line.account, value_date=value_date, product=product, tax_class=tax_class)
        if rule is None:
            out.append(line)
            continue
        amount = line.credit or line.debit
        vat = (amount * rule.rate / (1 + rule.rate)).quantize(CENT, rounding=ROUND_HALF_UP)
        side = Cr if line.credit else Dr
        out.extend(x for x in (side(line.account, amount - vat), side(rule.payable_account.code, vat)) if x.debit or x.credit)
    return out


@dataclass(frozen=True)
class Entry:
    """An entry to post: its kind, value date, lines and dimensions; `key` makes it exactly once."""

    kind: str
    value_date: dt.date
    lines: tuple[Line, ...]
    branch_id: int | None = None
    product: str = ""
    reference: str = ""
    memo: str = ""
    key: str | None = None
    tax_class: str = ""  # the borrower's class for the VAT exemption ("micro", "small"), when the stage knows it


def _accounts(kept: list[Line]) -> dict[str, Account]:
    codes = frozenset(x.account for x in kept)
    accounts = batch_memo(("accounts", codes), lambda: {a.code: a for a in Account.objects.filter(code__in=codes, active=True)})
    unknown = sorted(codes - set(accounts))
    if unknown:
        raise ApplicationError(_("会计科目不存在或已停用 / Unknown or inactive account."), errors={"lines": unknown})
    return accounts


def _period_open(value_date: dt.date) -> None:
    if period_closed(value_date):
        raise Conflict(_("%(d)s 所在会计期间已关账 / The period of %(d)s is closed.") % {"d": value_date.isoformat()},
                       state="closed")


@transaction.atomic
def entry_post(*, kind: str, value_date: dt.date, lines: Iterable[Line], branch_id: int | None = None, product: str = "",
               reference: str = "", memo: str = "", key: str | None = None, by=None,
               reverses: JournalEntry | None = None, tax_class: str = "") -> JournalEntry:
    """Post one balanced entry. With `key`, posting the same key again returns the first entry (exactly once)."""
    if key:
        existing = JournalEntry.objects.filter(key=key).first()
        if existing is not None:
            return existing
    kept = _checked_lines(lines)
    if reverses is None:  # a reversal mirrors the lines of its entry, VAT included
        kept = vat_split(kept, value_date=value_date, product=product, tax_class=tax_class)
    _period_open(value_date)
    accounts = _accounts(kept)
    try:
        with transaction.atomic():
            entry = JournalEntry.objects.create(kind=kind, value_date=value_date, branch_id=branch_id, product=product,
                                                reference=reference, memo=memo[:200], key=key, reverses=reverses,
                                                created_by=by if getattr(by, "pk", None) else None)
    except IntegrityError:
        if key and JournalEntry.objects.filter(key=key).exists():  # a concurrent post of the same key won
            return JournalEntry.objects.get(key=key)
        if reverses is not None:
            raise Conflict(_("该分录已冲正 / This entry was already reversed."), state="reversed") from None
        raise
    JournalLine.objects.bulk_create([JournalLine(entry=entry, account=accounts[x.account], debit=x.debit,
                                                 credit=x.credit) for x in kept])
    return entry


@transaction.atomic
def entries_post(entries: list[Entry], *, by=None) -> int:
    """Post many entries at once (close of business: one per loan and date), with the same checks as `entry_post`
    and two INSERTs for the lot. Entries whose key was posted before are left out. Returns how many were posted."""
    keys = [e.key for e in entries if e.key]
    posted_before = set(JournalEntry.objects.filter(key__in=keys).values_list("key", flat=True)) if keys else set()
    todo = []
    for e in entries:
        if e.key and e.key in posted_before:
            continue
        if e.key:
            posted_before.add(e.key)  # the same key twice in the lot: the first is posted (exactly once)
        todo.append((e, vat_split(_checked_lines(e.lines), value_date=e.value_date, product=e.product, tax_class=e.tax_class)))
    for entry, kept in todo:
        _period_open(entry.value_date)
        _accounts(kept)
    created_by = by.pk if getattr(by, "pk", None) else None
    # plain rows, not model instances: close of business posts a few entries for each of thousands of loans
    ids = rows_insert(JournalEntry, ["kind", "value_date", "branch_id", "product", "reference", "memo", "key", "created_by_id"],
                      [(e.kind, e.value_date, e.branch_id, e.product, e.reference, e.memo[:200], e.key, created_by)
                       for e, _kept in todo], returning=True)
    rows_insert(JournalLine, ["entry_id", "account_id", "debit", "credit"],
                [(pk, _accounts(kept)[x.account].pk, x.debit, x.credit) for pk, (_e, kept) in zip(ids, todo, strict=True)
                 for x in kept])
    return len(ids)


@dataclass(frozen=True)
class PlannedLine:
    """One line of an entry whose amount is computed elsewhere (in SQL): its account, its side and, when the VAT rule
    splits it, the rate and the output VAT account (VAT = amount × rate / (1 + rate), in cents, on the same side; the
    net and the VAT each a line when not zero)."""

    account_id: int
    debit: bool
    vat_rate: Decimal | None = None
    vat_account_id: int | None = None


def entry_plan(sides: list[tuple[str, bool]], *, value_date: dt.date, product: str, tax_class: str = "") -> list[PlannedLine]:
    """The lines `entries_post` would post for an entry of these (account code, debit?) lines with any positive
    amount, for a caller that writes the entries itself in set-based SQL (close of business's ordinary accrual,
    `postloan.accrual`): the same checks first (the period of the value date open, every account that may be posted
    known and active: `Conflict`, `ApplicationError`), and the same VAT split (`vat_rule_for`). Such a caller also
    posts a key at most once (ON CONFLICT on the key: an entry posted before is left out) and writes no audit event,
    as `entries_post`; the database's deferred trigger checks each entry's balance at commit."""
    _period_open(value_date)
    plan = []
    for code, debit in sides:
        rule = vat_rule_for(code, value_date=value_date, product=product, tax_class=tax_class)
        plan.append((code, debit, rule.rate if rule else None, rule.payable_account.code if rule else None))
    accounts = _accounts([Line(account=code) for code in
                          {c for code, _d, _r, vat_code in plan for c in (code, vat_code) if c is not None}])
    return [PlannedLine(account_id=accounts[code].pk, debit=debit, vat_rate=rate,
                        vat_account_id=accounts[vat_code].pk if vat_code else None) for code, debit, rate, vat_code in plan]


@transaction.atomic
def entry_reverse(*, entry: JournalEntry, value_date: dt.date, reason: str, by=None) -> JournalEntry:
    """冲正: the opposite entry on `value_date` (the current business date: no closed date changes)."""
    if entry.reverses_id is not None:
        raise Conflict(_("冲正分录不能再冲正 / A reversal cannot itself be reversed."), state="reversal")
    if JournalEntry.objects.filter(reverses=entry).exists():
        raise Conflict(_("该分录已冲正 / This entry was already reversed."), state="reversed")
    lines = [Line(account=x.account.code, debit=x.credit, credit=x.debit) for x in entry.lines.select_related("account")]
    reversal = entry_post(kind="reversal", value_date=value_date, lines=lines, branch_id=entry.branch_id,
                          product=entry.product, reference=entry.reference, memo=reason, by=by, reverses=entry)
    audit_record(actor=by, action="ledger.reverse", obj=entry, reason=reason, data={"reversal": reversal.pk})
    return reversal


@transaction.atomic
def period_close(*, year: int, month: int | None, by) -> LedgerPeriod:
    """月结 / 年结: lock a month or a year; entries after it post on their own dates, never inside it."""
    if month is not None and not 1 <= month <= 12:
        raise ApplicationError(_("月份无效 / Invalid month."), errors={"month": [str(month)]})
    period, created = LedgerPeriod.objects.get_or_create(year=year, month=month,
                                                         defaults={"closed_by": by if getattr(by, "pk", None) else None})
    if not created:
        raise Conflict(_("该期间已关账 / This period is already closed."), state="closed")
    audit_record(actor=by, action="ledger.period_close", obj=period, data={"year": year, "month": month})
    return period


@transaction.atomic
def voucher_batch_build(*, business_date: dt.date) -> VoucherBatch | None:
    """The core-banking outbox: every entry not yet carried, aggregated by value date, branch, product, currency and
    account into one batch (汇总记账凭证). Exactly once per entry, whatever the order the entries committed in (a
    late or back-dated entry leaves with the next batch); None when there is nothing new."""
    waiting = list(JournalEntry.objects.filter(voucher__isnull=True).order_by("pk").values_list("pk", flat=True))
    if not waiting:
        return None
    batch = VoucherBatch.objects.create(business_date=business_date)
    VoucherEntry.objects.bulk_create([VoucherEntry(entry_id=pk, batch=batch) for pk in waiting], ignore_conflicts=True,
                                     batch_size=5000)
    rows = (JournalLine.objects.filter(entry__voucher__batch=batch)
            .values("entry__value_date", "entry__branch__code", "entry__product", "entry__currency", "account__code")
            .annotate(debit=Sum("debit"), credit=Sum("credit"))
            .order_by("entry__value_date", "entry__branch__code", "entry__product", "account__code"))
    lines = []
    for r in rows:
        net = ((r["debit"] or 0) - (r["credit"] or 0)).quantize(CENT)  # one side per account and dimension
        if net:
            lines.append({"value_date": r["entry__value_date"].isoformat(), "branch": r["entry__branch__code"] or "",
                          "product": r["entry__product"], "currency": r["entry__currency"], "account": r["account__code"],
                          "debit": f"{max(net, 0):.2f}", "credit": f"{max(-net, 0):.2f}",
                          "reference": f"{batch.reference}-{len(lines) + 1:04d}"})
    batch.lines = lines
    batch.entries = VoucherEntry.objects.filter(batch=batch).count()
    batch.total_debit = sum((Decimal(x["debit"]) for x in lines), Decimal("0.00"))
    batch.total_credit = sum((Decimal(x["credit"]) for x in lines), Decimal("0.00"))
    batch.save(update_fields=["lines", "entries", "total_debit", "total_credit"])
    audit_record(actor=None, action="ledger.vouchers", obj=batch, data={"entries": batch.entries, "lines": len(lines)})
    dispatch_on_commit(tasks.voucher_batch_send, batch.pk)  # the outbox: sent once committed, retried until taken
    return batch


# ---------------------------------------------------------------- the outbox: vouchers to core banking
SEND_HOLD = dt.timedelta(minutes=5)  # a sender holds a batch this long; after a crash another may send it again


def voucher_batch_send(*, batch_id: int) -> VoucherBatch:
    """Send one pending batch to core banking and mark it sent with the core's reference. No transaction or row lock
    is held while the core is asked: the batch is claimed first (a conditional UPDATE, so two senders never send at
    once), then sent under its reference `VB<id>` (the core takes a reference once, so a send repeated after a crash
    books nothing twice), then marked sent. A failure is recorded and left for `vouchers_send_pending` to retry."""
    now = timezone.now()
    claimed = (VoucherBatch.objects.filter(pk=batch_id, status=VoucherBatch.Status.PENDING)
               .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
               .update(claimed_until=now + SEND_HOLD, attempts=F("attempts") + 1))
    batch = VoucherBatch.objects.get(pk=batch_id)
    if not claimed:
        return batch  # sent already, or another sender holds it
    try:
        core_ref = core_banking().vouchers_send(reference=batch.reference, business_date=batch.business_date,
                                                lines=batch.voucher_lines())
    except Exception as exc:  # any failure of the core or the adapter: keep the batch pending, say why
        log.warning("core banking did not take voucher batch %s", batch_id, exc_info=True)
        VoucherBatch.objects.filter(pk=batch_id, status=VoucherBatch.Status.PENDING).update(
            last_error=f"{type(exc).__name__}: {exc}"[:300], claimed_until=None)
        batch.refresh_from_db()
        return batch
    with transaction.atomic():
        sent = VoucherBatch.objects.filter(pk=batch_id, status=VoucherBatch.Status.PENDING).update(
            status=VoucherBatch.Status.SENT, sent_at=timezone.now(), core_reference=str(core_ref)[:60], last_error="",
            claimed_until=None)
        batch.refresh_from_db()
        if sent:
            audit_record(actor=None, action="ledger.vouchers_sent", obj=batch,
                         data={"core_reference": batch.core_reference, "attempts": batch.attempts})
    return batch


def vouchers_send_pending(*, limit: int = 200) -> dict:
    """The retry of the outbox (beat, every ten minutes): every batch still pending, oldest first."""
    ids = list(VoucherBatch.objects.filter(status=VoucherBatch.Status.PENDING).order_by("pk").values_list("pk", flat=True)[:limit])
    sent = sum(1 for pk in ids if voucher_batch_send(batch_id=pk).status == VoucherBatch.Status.SENT)
    return {"pending": len(ids), "sent": sent}


# ---------------------------------------------------------------- the core's daily file (对账文件)
DIFFERENCE_LABELS = {
    "missing_in_core": "核心文件中没有该凭证 / In our vouchers, not in the core's file",
    "missing_in_ledger": "我方没有该凭证 / In the core's file, not in our vouchers",
    "amount": "金额不符 / Amounts differ",
    "line": "日期、机构或科目不符 / Date, branch or account differ",
    "duplicate": "核心文件中重复 / Twice in the core's file",
}
SHOWN = 200  # differences kept on the record (the count is kept whole)


def _file_rows(text: str) -> list[dict]:
    """The daily file's rows, checked: the header, an ISO date, amounts in cents (one side), a voucher reference."""
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    if tuple(header) != DAILY_FILE_COLUMNS:
        raise ApplicationError(_("对账文件表头不符 / The file's header is not the core's daily-file header."),
                               errors={"file": [",".join(DAILY_FILE_COLUMNS)]})
    rows, problems = [], []
    for n, raw in enumerate(reader, start=2):
        if not any(x.strip() for x in raw):
            continue
        if len(raw) != len(DAILY_FILE_COLUMNS):
            problems.append(_("第%(n)s行列数不对 / Line %(n)s: wrong number of columns") % {"n": n})
            continue
        row = dict(zip(DAILY_FILE_COLUMNS, (x.strip() for x in raw), strict=True))
        try:
            row["date"] = dt.date.fromisoformat(row["date"]).isoformat()
            debit, credit = Decimal(row["debit"] or "0"), Decimal(row["credit"] or "0")
        except (ValueError, ArithmeticError):
            problems.append(_("第%(n)s行日期或金额无法识别 / Line %(n)s: the date or an amount is not readable") % {"n": n})
            continue
        if debit < 0 or credit < 0 or debit != debit.quantize(CENT) or credit != credit.quantize(CENT) \
                or not row["voucher_reference"]:
            problems.append(_("第%(n)s行金额或凭证号无效 / Line %(n)s: an amount or the voucher reference is invalid") % {"n": n})
            continue
        row["debit"], row["credit"] = f"{debit:.2f}", f"{credit:.2f}"
        rows.append(row)
    if problems:
        raise ApplicationError(_("对账文件有无效的行 / The file has invalid lines."), errors={"file": problems[:20]})
    return rows


def core_file_reconcile(rows: list[dict], *, business_date: dt.date) -> dict:
    """Line by line, by voucher reference: the vouchers of the batches of `business_date` against the core's rows."""
    ours = {line["reference"]: line for batch in VoucherBatch.objects.filter(business_date=business_date).order_by("pk")
            for line in batch.voucher_lines()}
    theirs: dict[str, dict] = {}
    differences, matched = [], 0
    for row in rows:
        ref = row["voucher_reference"]
        if ref in theirs:
            differences.append({"kind": "duplicate", "reference": ref, "core_debit": row["debit"], "core_credit": row["credit"]})
            continue
        theirs[ref] = row
    for ref in sorted(set(ours) | set(theirs)):
        mine, core = ours.get(ref), theirs.get(ref)
        if core is None:
            differences.append({"kind": "missing_in_core", "reference": ref, "date": mine["value_date"], "branch": mine["branch"],
                                "account": mine["account"], "debit": mine["debit"], "credit": mine["credit"]})
        elif mine is None:
            differences.append({"kind": "missing_in_ledger", "reference": ref, "date": core["date"], "branch": core["branch"],
                                "account": core["account"], "core_debit": core["debit"], "core_credit": core["credit"]})
        elif (mine["debit"], mine["credit"]) != (core["debit"], core["credit"]):
            differences.append({"kind": "amount", "reference": ref, "date": mine["value_date"], "branch": mine["branch"],
                                "account": mine["account"], "debit": mine["debit"], "credit": mine["credit"],
                                "core_debit": core["debit"], "core_credit": core["credit"]})
        elif (mine["value_date"], mine["branch"], mine["account"]) != (core["date"], core["branch"], core["account"]):
            differences.append({"kind": "line", "reference": ref, "date": mine["value_date"], "branch": mine["branch"],
                                "account": mine["account"], "core_date": core["date"], "core_branch": core["branch"],
                                "core_account": core["account"]})
        else:
            matched += 1

    def total(lines, side):
        return f"{sum((Decimal(x[side]) for x in lines), Decimal('0.00')):.2f}"

    totals = {"debit": total(ours.values(), "debit"), "credit": total(ours.values(), "credit"),
              "core_debit": total(rows, "debit"), "core_credit": total(rows, "credit")}
    return {"vouchers": len(ours), "matched": matched, "differences": differences, "totals": totals}


def core_file_import(*, content: bytes | str, business_date: dt.date, by, name: str = "",
                     source: str = CoreFile.Source.UPLOAD) -> CoreFile:
    """Record the core's daily file for `business_date` and reconcile it against the vouchers of that date; a
    difference raises the alarm (operations and risk are notified, an audit event is written)."""
    raw = content.encode("utf-8") if isinstance(content, str) else content
    text = csv_text(raw)
    rows = _file_rows(text)
    result = core_file_reconcile(rows, business_date=business_date)
    differences = result["differences"]
    with transaction.atomic():
        record = CoreFile.objects.create(
            business_date=business_date, source=source, name=name[:200], sha256=hashlib.sha256(raw).hexdigest(),
            content=text, lines=len(rows), vouchers=result["vouchers"], matched=result["matched"],
            balanced=not differences, differences=differences[:SHOWN], difference_count=len(differences),
            totals=result["totals"], uploaded_by=by if getattr(by, "pk", None) else None)
        audit_record(actor=by, action="ledger.core_file", obj=record, to_state="balanced" if record.balanced else "unbalanced",
                     data={"business_date": business_date.isoformat(), "lines": record.lines, "matched": record.matched,
                           "differences": record.difference_count, "source": source})
        if not record.balanced:
            _core_file_alarm(record)
    return record


def _core_file_alarm(record: CoreFile) -> None:
    with in_default_language():
        title = _("核心对账不符：%(d)s 有 %(n)s 处差异 / The core's daily file for %(d)s differs from our vouchers: "
                  "%(n)s difference(s)") % {"d": record.business_date.isoformat(), "n": record.difference_count}
        people = get_user_model().objects.filter(groups__name__in=[roles.OPERATIONS, roles.RISK], is_active=True).distinct()
        for user in people:
            notify(user=user, kind="reconciliation_alarm", title=title, url=reverse("finance:core_file", args=[record.pk]))


def core_file_fetch(*, business_date: dt.date, by) -> CoreFile:
    """Ask core banking for its daily file of `business_date` (no lock held while waiting) and reconcile it."""
    text = core_banking().daily_file(on=business_date)
    return core_file_import(content=text, business_date=business_date, by=by, name=f"core-{business_date:%Y%m%d}.csv",
                            source=CoreFile.Source.CORE)
