"""Repayments imported from core banking as CSV (还款文件导入): upload → preview with a line-by-line
validation report → apply. A file with a bad line is never applied, not even in part; applying runs in
one transaction; re-importing the same file changes nothing (every line's reference is already recorded)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from decimal import Decimal

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from loanservice import roles
from loanservice.audit import audit_record
from loanservice.csvfiles import csv_text
from loanservice.errors import ApplicationError, Conflict

from .models import Loan, Repayment, RepaymentImport
from .serializers import RepaymentSerializer
from .services import repayment_record

COLUMNS = {"loan_id": ["loan_id", "贷款编号", "loan"], "reference": ["reference", "流水号", "交易流水号"],
           "amount": ["amount", "金额", "还款金额"], "paid_on": ["paid_on", "还款日期", "交易日期", "date"]}
MAX_LINES = 20000


def _parse(content: bytes) -> list[dict]:
    if not content:
        raise ApplicationError(_("文件为空 / The file is empty."), errors={"file": [_("文件为空 / The file is empty.")]})
    reader = csv.reader(io.StringIO(csv_text(content)))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise ApplicationError(_("文件为空 / The file is empty."), errors={"file": [_("文件为空 / The file is empty.")]}) from None
    index = {}
    for column, names in COLUMNS.items():
        found = next((header.index(n) for n in names if n in header), None)
        if found is None:
            raise ApplicationError(_("缺少列：%(c)s / Missing column: %(c)s") % {"c": column},
                                   errors={"file": [_("表头须包含 loan_id, reference, amount, paid_on / The header needs loan_id, reference, amount, paid_on")]})
        index[column] = found
    rows = []
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        rows.append({"line": number, **{c: (cells[i].strip() if i < len(cells) else "") for c, i in index.items()}})
        if len(rows) > MAX_LINES:
            raise ApplicationError(_("文件过大 / The file is too large."), errors={"file": [_("最多 %(n)s 行 / At most %(n)s lines") % {"n": MAX_LINES}]})
    if not rows:
        raise ApplicationError(_("文件没有数据行 / The file has no data lines."), errors={"file": [_("文件没有数据行 / No data lines.")]})
    return rows


def _validate(rows: list[dict]) -> tuple[list[dict], dict]:
    """Check every line (its amount, date and reference by RepaymentSerializer, as the API does) against the
    loans and the repayments already recorded (a constant number of queries)."""
    ids = {int(r["loan_id"]) for r in rows if r["loan_id"].isdigit()}
    loans = Loan.objects.in_bulk(ids)
    recorded = {(loan_id, ref): (amount, paid_on) for loan_id, ref, amount, paid_on in Repayment.objects.filter(
        loan_id__in=ids, reference__in={r["reference"] for r in rows}).values_list("loan_id", "reference", "amount", "paid_on")}
    last_paid = dict(Repayment.objects.filter(loan_id__in=ids).values("loan_id").annotate(m=Max("paid_on")).values_list("loan_id", "m"))
    seen: set[tuple[int, str]] = set()
    out = []
    for row in rows:
        errors: dict[str, list[str]] = {}
        loan_id = int(row["loan_id"]) if row["loan_id"].isdigit() else None
        loan = loans.get(loan_id) if loan_id else None
        if loan is None:
            errors["loan_id"] = [_("贷款不存在 / No such loan.")]
        checked = RepaymentSerializer(data={k: row[k] for k in ("amount", "paid_on", "reference")})
        checked.is_valid()
        errors.update({field: [str(m) for m in msgs] for field, msgs in checked.errors.items()})
        amount, paid_on = checked.validated_data.get("amount"), checked.validated_data.get("paid_on")
        reference = checked.validated_data.get("reference", row["reference"])
        if "reference" not in errors and (loan_id, reference) in seen:
            errors["reference"] = [_("文件内流水号重复 / Duplicate reference in the file.")]
        seen.add((loan_id, reference))
        status = "ok"
        previous = recorded.get((loan_id, reference))
        if previous is not None and not errors:
            if previous == (amount, paid_on):
                status = "recorded"  # imported before: applying again changes nothing
            else:
                errors["reference"] = [_("该流水号已入账为另一金额或日期 / Already recorded with another amount or date.")]
        elif loan is not None and not errors:
            if loan.status != Loan.Status.ACTIVE:
                errors["loan_id"] = [_("贷款已结清或核销 / The loan is closed.")]
            elif paid_on < loan.disbursed_on:
                errors["paid_on"] = [_("早于放款日 / Before disbursement.")]
            elif last_paid.get(loan_id) and paid_on < last_paid[loan_id]:
                errors["paid_on"] = [_("早于该贷款上一笔已入账还款 / Before the loan's last recorded payment.")]
        out.append({**row, "loan_id": loan_id, "amount": str(amount) if amount is not None else row["amount"],
                    "paid_on": paid_on.isoformat() if paid_on else row["paid_on"], "status": "error" if errors else status,
                    "errors": errors})
    summary = {"lines": len(out), "ok": sum(r["status"] == "ok" for r in out),
               "recorded": sum(r["status"] == "recorded" for r in out), "errors": sum(r["status"] == "error" for r in out),
               "amount": str(sum((Decimal(r["amount"]) for r in out if r["status"] == "ok"), Decimal("0.00")))}
    return out, summary


def _require_ops(by) -> None:
    roles.permission_check(by, "postloan.record_repayment", message=_("只有运营人员可以导入还款 / Only operations can import repayments."),
                           errors={"user": [_("需要运营角色 / Needs the operations role.")]})


@transaction.atomic
def repayment_import_preview(*, file_name: str, content: bytes, by) -> RepaymentImport:
    """Parse and validate the file; nothing is applied. The report names every bad line and field."""
    _require_ops(by)
    lines, summary = _validate(_parse(content))
    batch = RepaymentImport.objects.create(
        file_name=(file_name or "repayments.csv")[:200], sha256=hashlib.sha256(content).hexdigest(), lines=lines, summary=summary,
        status=RepaymentImport.Status.REJECTED if summary["errors"] else RepaymentImport.Status.PREVIEWED, uploaded_by=by)
    audit_record(actor=by, action="repayment_import.preview", obj=batch, to_state=batch.status, data={"sha256": batch.sha256, **summary})
    return batch


def repayment_import_apply(*, batch: RepaymentImport, by) -> RepaymentImport:
    """Apply every new line in one transaction, in payment-date order; any failure applies nothing."""

    _require_ops(by)
    with transaction.atomic():
        batch = RepaymentImport.objects.select_for_update().get(pk=batch.pk)
        if batch.status == RepaymentImport.Status.APPLIED:
            return batch
        if batch.status == RepaymentImport.Status.REJECTED:
            raise Conflict(_("文件有错误行，不能入账；请修正后重新上传 / The file has bad lines and cannot be applied; fix and upload it again."),
                           state=batch.status)
        lines, summary = _validate([{k: str(v if v is not None else "") for k, v in r.items() if k in ("line", *COLUMNS)}
                                    for r in batch.lines])
        if summary["errors"]:  # the loans changed since the preview
            batch.lines, batch.summary, batch.status = lines, summary, RepaymentImport.Status.REJECTED
            batch.save()
            audit_record(actor=by, action="repayment_import.reject", obj=batch, to_state=batch.status, data=summary)
            return batch
        applied = 0
        for row in sorted((r for r in lines if r["status"] == "ok"), key=lambda r: (r["paid_on"], r["line"])):
            try:
                with transaction.atomic():
                    _repayment, created = repayment_record(loan=Loan(pk=row["loan_id"]), amount=Decimal(row["amount"]),
                                                           paid_on=dt.date.fromisoformat(row["paid_on"]),
                                                           reference=row["reference"], by=by, channel="import", batch=batch)
            except (ApplicationError, Conflict) as exc:
                message = getattr(exc, "message", str(exc))
                raise ApplicationError(_("第 %(n)s 行入账失败，整个文件未入账 / Line %(n)s failed; nothing was applied.") % {"n": row["line"]},
                                       errors={f"line {row['line']}": [message]}) from exc
            applied += created
        batch.lines, batch.status = lines, RepaymentImport.Status.APPLIED
        batch.summary = {**summary, "applied": applied}
        batch.applied_by, batch.applied_at = by, timezone.now()
        batch.save()
        audit_record(actor=by, action="repayment_import.apply", obj=batch, from_state="previewed", to_state=batch.status,
                     data=batch.summary)
    return batch
