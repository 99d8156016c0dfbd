"""The ordinary loan-day of close of business (日终), set-based: one SQL statement for a chunk of loans.

Most loans on most days (≈ 90 % of a book) close one day of plain contract interest: active and accruing, nothing
unpaid past its due date, no nominal due date and no repricing on the day closed. For them the day is the accrual
of `services._interest_target` — the period's upfront interest + the principal not yet due × rate × days since the
period's accrual start / 360 (`quotes.interest_to_day`, rounded half up to the cent), never below what stands
accrued — and the entry `services._accrual` makes of the change (Dr interest receivable / Cr interest income, through
`ledger.services.entries_post`: the VAT split, the key `loan:<id>:accrual:<date>` posted at most once). This module
computes and writes exactly that in SQL: the accrual target of each loan's current installment, the entries and
their lines (the account mapping and VAT split planned once per product and borrower class by
`ledger.services.entry_plan`, which checks the period and the accounts as `entries_post` does), the installments'
`interest_accrued` and the loans' `accrued_through`, in one statement of data-modifying CTEs. It returns the loans it
closed; every other loan of the chunk (and every loan of a day that is not ordinary) goes through the Python path of
`services.loans_close_through`, unchanged. `tests/test_cob_accrual.py` closes the same book both ways and compares
every entry, line and installment to the cent.

Postgres only: SQLite keeps decimals as floating-point numbers, so cent-exact arithmetic in its SQL is not possible
(there the Python path closes every loan).
"""

from __future__ import annotations

import datetime as dt

from django.db import connection

from ledger.models import JournalEntry, JournalLine
from ledger.selectors import account_for
from ledger.services import PlannedLine, entry_plan
from loanservice.errors import ApplicationError, Conflict

from .models import Installment, Loan

DAY = dt.timedelta(days=1)


def ordinary(loan: Loan, through: dt.date) -> bool:
    """What the loan row alone says of an ordinary day (its schedule is checked in SQL): active, accruing, closed
    through the day before, not repriced on the day."""
    return (loan.status == Loan.Status.ACTIVE and loan.non_accrual_since is None and loan.accrued_through == through - DAY
            and loan.next_repricing_on != through)


def _plans(loans: list[Loan], through: dt.date) -> dict[tuple[str, str], list[PlannedLine]]:
    """(product, borrower class) → the accrual entry's planned lines; a pair whose accounts are not mapped or not
    active is left out (its loans take the Python path, which raises as it always did)."""
    plans = {}
    for pair in {(x.product_code, x.tax_class) for x in loans}:
        product, tax_class = pair
        try:
            plans[pair] = entry_plan([(account_for("interest_receivable", product), True),
                                      (account_for("interest_income", product), False)],
                                     value_date=through, product=product, tax_class=tax_class)
        except (LookupError, ApplicationError):
            continue
    return plans


def _entry_columns() -> tuple[list[str], list]:
    """The journal entry's columns the statement does not compute, with their model defaults (as `rows_insert` fills
    them: evaluated once for the lot)."""
    meta = JournalEntry._meta
    computed = {"kind", "value_date", "branch_id", "product", "reference", "memo", "key", "created_by_id"}
    extra = [f for f in meta.concrete_fields if f.attname not in computed and not f.primary_key]
    return [f.column for f in extra], [f.get_db_prep_save(f.get_default(), connection) for f in extra]


def ordinary_days_close(*, loans: list[Loan], through: dt.date, by=None) -> tuple[set[int], int]:
    """Close the ordinary loan-day `through` of the loans it holds (the caller holds their row locks); returns the ids
    of the loans closed (their `accrued_through` is `through`, on the objects too) and the entries posted."""
    if connection.vendor != "postgresql":
        return set(), 0
    candidates = [x for x in loans if ordinary(x, through)]
    if not candidates:
        return set(), 0
    try:
        plans = _plans(candidates, through)
    except Conflict:
        return set(), 0  # the period is closed: the Python path refuses the day as it always did
    candidates = [x for x in candidates if (x.product_code, x.tax_class) in plans]
    if not candidates:
        return set(), 0
    params = {"day": through.isoformat(), "ids": [x.pk for x in candidates], "by": by.pk if getattr(by, "pk", None) else None}
    plan_rows = []
    for (product, tax_class), lines in plans.items():
        for seq, line in enumerate(lines):
            k = len(plan_rows)
            plan_rows.append(f"(%(p{k}_product)s::varchar, %(p{k}_class)s::varchar, {seq}, %(p{k}_account)s::bigint, "
                             f"%(p{k}_debit)s::boolean, %(p{k}_rate)s::numeric, %(p{k}_vat)s::bigint)")
            params.update({f"p{k}_product": product, f"p{k}_class": tax_class, f"p{k}_account": line.account_id,
                           f"p{k}_debit": line.debit, f"p{k}_rate": line.vat_rate, f"p{k}_vat": line.vat_account_id})
    extra_columns, extra_values = _entry_columns()
    params.update({f"e{k}": value for k, value in enumerate(extra_values)})
    quote = connection.ops.quote_name
    entry_table, line_table = JournalEntry._meta.db_table, JournalLine._meta.db_table
    loan_table, inst_table = Loan._meta.db_table, Installment._meta.db_table
    sql = f"""
WITH plan(product, tax_class, seq, account_id, debit, vat_rate, vat_account_id) AS (VALUES {", ".join(plan_rows)}),
sched AS (  -- the loans' schedules (not superseded), in order, with what the day's interest needs of each row
    SELECT i.id, i.loan_id, i.n, i.interest_upfront, i.interest_accrued, i.period_start, i.accrual_start,
           COALESCE(i.nominal_due_date, i.due_date) AS nominal,
           MIN(i.n) FILTER (WHERE COALESCE(i.nominal_due_date, i.due_date) >= %(day)s::date)
               OVER (PARTITION BY i.loan_id) AS current_n,
           bool_or(i.settled_on IS NULL AND i.due_date < %(day)s::date) OVER (PARTITION BY i.loan_id) AS overdue,
           LAG(COALESCE(i.nominal_due_date, i.due_date)) OVER (PARTITION BY i.loan_id ORDER BY i.n) AS previous_nominal,
           SUM(i.principal - i.paid_principal) OVER (PARTITION BY i.loan_id ORDER BY i.n DESC
                                                      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS not_due
      FROM {inst_table} i
     WHERE i.loan_id = ANY(%(ids)s) AND NOT i.superseded
),
accrual AS (  -- the current installment of each ordinary loan and the interest that should stand accrued on the day
    SELECT r.loan_id, r.id AS installment_id, r.interest_accrued, l.branch_id, l.product_code, l.tax_class,
           GREATEST(r.interest_upfront + ROUND(
               (r.not_due * l.annual_rate
                * GREATEST(%(day)s::date - COALESCE(r.accrual_start, r.period_start, r.previous_nominal, l.disbursed_on), 0)
               )::numeric(60, 24) / 360, 2), r.interest_accrued) AS target
      FROM sched r JOIN {loan_table} l ON l.id = r.loan_id
     WHERE r.n = r.current_n AND r.nominal > %(day)s::date AND NOT r.overdue
),
entries AS (
    INSERT INTO {entry_table} (kind, value_date, branch_id, product, reference, memo, {quote("key")}, created_by_id,
                               {", ".join(quote(c) for c in extra_columns)})
    SELECT 'accrual', %(day)s::date, d.branch_id, d.product_code, 'loan:' || d.loan_id, '',
           'loan:' || d.loan_id || ':accrual:' || %(day)s, %(by)s, {", ".join(f"%(e{k})s" for k in range(len(extra_columns)))}
      FROM accrual d WHERE d.target > d.interest_accrued ORDER BY d.loan_id
    ON CONFLICT ({quote("key")}) DO NOTHING  -- a key posted before is left out, as entries_post does
    RETURNING id, {quote("key")}
),
lines AS (
    INSERT INTO {line_table} (entry_id, account_id, debit, credit)
    SELECT e.id, x.account_id, CASE WHEN p.debit THEN x.amount ELSE 0 END, CASE WHEN p.debit THEN 0 ELSE x.amount END
      FROM entries e
      JOIN accrual d ON e.{quote("key")} = 'loan:' || d.loan_id || ':accrual:' || %(day)s
      JOIN plan p ON p.product = d.product_code AND p.tax_class = d.tax_class
     CROSS JOIN LATERAL (SELECT ROUND(((d.target - d.interest_accrued) * p.vat_rate)::numeric(60, 24) / (1 + p.vat_rate), 2)
                         AS vat) v
     CROSS JOIN LATERAL (VALUES (0, p.account_id, d.target - d.interest_accrued - COALESCE(v.vat, 0)),
                                (1, p.vat_account_id, v.vat)) x(part, account_id, amount)
     WHERE x.amount > 0
     ORDER BY e.id, p.seq, x.part
),
accrued AS (
    UPDATE {inst_table} i SET interest_accrued = d.target
      FROM accrual d WHERE i.id = d.installment_id AND d.target <> d.interest_accrued
),
closed AS (
    UPDATE {loan_table} l SET accrued_through = %(day)s::date FROM accrual d WHERE l.id = d.loan_id RETURNING l.id
)
SELECT id, (SELECT count(*) FROM entries) FROM closed
"""  # noqa: S608 - table and column names from the models, values as parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    done = {row[0] for row in rows}
    for loan in candidates:
        if loan.pk in done:
            loan.accrued_through = through
    return done, (rows[0][1] if rows else 0)

