"""Nightly post-loan monitoring at portfolio scale: seeds N active loans fast (bulk_create and COPY, not
through the API) into the Postgres database of DATABASE_URL, then times the nightly job (DPD, bucket,
classification floors, refresh of the snapshots out of their freshness window from the sandbox, warning
rules, RM tasks) and a second run the same day (which must change nothing).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h7 .venv/bin/python bench/bench_nightly.py [--loans 100000] [--reseed]

The seeded book: loans disbursed over the last year (12 monthly installments, those due already paid),
about 8 % in arrears from 1 to 400 days; each borrower has six monitored data snapshots whose ages are
spread over the 30-day freshness window, so about 1/30 of them fall due for a refresh each night (the
steady state of a book that is refreshed nightly).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

PREFIX = "BENCH"
SOURCES = ["tax", "registry", "social_security", "credit_bureau", "judicial", "internal"]


def copy_rows(model, columns: list[str], rows) -> int:
    """COPY rows (tuples in `columns` order) into the model's table."""
    table = model._meta.db_table
    cols = [model._meta.get_field(c).column for c in columns]
    # Columns the caller does not name but the table requires get the model's default (new NOT NULL fields need no
    # change here): Django's defaults are not the database's.
    named = set(columns)
    extra = [f for f in model._meta.concrete_fields
             if f.name not in named and not f.primary_key and not f.null and f.has_default()]
    cols += [f.column for f in extra]
    tail = tuple(json.dumps(v) if isinstance(v, (dict, list)) else v for v in (f.get_default() for f in extra))
    buf = io.StringIO()
    n = 0
    for row in rows:
        row = (*row, *tail)
        buf.write("\t".join("\\N" if v is None else str(v).replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")
                            for v in row) + "\n")
        n += 1
    buf.seek(0)
    with connection.cursor() as cur:
        cur.cursor.copy_expert(f"COPY {table} ({', '.join(cols)}) FROM STDIN", buf)
    return n


def bench_uscc(i: int) -> str:
    """A valid USCC (GB 32100) from a running number, fast: the sandbox keys its synthetic data on it."""
    from stdnum.cn import uscc

    body = f"{i:08d}"
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    check = 11 - sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11
    first17 = "91310101" + body + {10: "X", 11: "0"}.get(check, str(check))
    return first17 + uscc.calc_check_digit(first17)


def seed(n: int) -> None:
    from applications.models import Consent, DataAuthorisation, Enterprise, LoanApplication, LoanProduct
    from casework.demo import seed_org, seed_products
    from casework.reference_data import seed_reference_data
    from contracts.models import Contract, ContractTemplate, DisbursementOrder
    from postloan.models import Installment, Loan, SourceRefresh, WarningRule
    from underwriting.models import DataSnapshot
    from underwriting.providers import SandboxProvider, make_resident_id, make_uscc

    started = time.perf_counter()
    seed_reference_data()
    seed_products()
    users = seed_org("bench-pass")
    owner, rm = users["demo_applicant"], users["demo_rm"]
    branch = rm.profile.branch
    product = LoanProduct.objects.get(code="xinmiaodai")
    template = ContractTemplate.objects.filter(kind="loan").first()
    today = timezone.localdate()
    rng = random.Random(7)
    rid = make_resident_id(1, birth_year=1980)
    sandbox = SandboxProvider()
    samples = {}  # a few real sandbox payloads per source, reused for the seeded history
    for k in range(20):
        uscc = make_uscc(900000 + k)
        samples[k] = {s: sandbox.fetch(s, uscc, as_of=today, hints={"founded_on": "2018-01-01"}) for s in SOURCES}
    with transaction.atomic():
        enterprises = Enterprise.objects.bulk_create([
            Enterprise(owner=owner, name=f"{PREFIX}企业{i}", uscc=bench_uscc(i + 10), legal_rep_name="测试",
                       legal_rep_id_number=rid, industry_code="C3399", founded_on=dt.date(2018, 1, 1), employees=30,
                       annual_revenue=Decimal("8000000.00"), region_code="310101", relationship_manager=rm, branch=branch)
            for i in range(n)], batch_size=5000)
        print(f"  enterprises: {time.perf_counter() - started:.1f}s", flush=True)
        disbursed = [today - dt.timedelta(days=rng.randrange(0, 360)) for _ in range(n)]
        amounts = [Decimal(rng.randrange(10, 100) * 10000) for _ in range(n)]
        apps = LoanApplication.objects.bulk_create([
            LoanApplication(applicant=owner, enterprise=e, product=product, amount=a, term_months=12,
                            repayment_method="equal_principal", purpose="bench", status="disbursed", relationship_manager=rm,
                            branch=branch, route="auto", offer_amount=a, offer_rate=Decimal("0.045"), offer_term_months=12,
                            offer_repayment_method="equal_principal")
            for e, a in zip(enterprises, amounts, strict=True)], batch_size=5000)
        contracts = Contract.objects.bulk_create([
            Contract(application=a, number=f"{PREFIX}-{a.pk}", template=template, status="signed", pdf="bench.pdf", sha256="0" * 64)
            for a in apps], batch_size=5000)
        orders = DisbursementOrder.objects.bulk_create([
            DisbursementOrder(application=a, contract=c, amount=a.amount, account="bench", status="released",
                              released_at=timezone.now())
            for a, c in zip(apps, contracts, strict=True)], batch_size=5000)
        print(f"  applications, contracts, orders: {time.perf_counter() - started:.1f}s", flush=True)
        loans, schedules = [], []
        for e, a, o, d, amount in zip(enterprises, apps, orders, disbursed, amounts, strict=True):
            from contracts.schedules import add_months

            dues = [add_months(d, k) for k in range(1, 13)]
            arrears = rng.random() < 0.08
            unpaid_from = rng.randrange(1, 13) if arrears else 13
            per = (amount / 12).quantize(Decimal("0.01"))
            lines, left, paid_principal = [], amount, Decimal("0")
            for k, due in enumerate(dues, start=1):
                principal = per if k < 12 else left
                interest = (left * Decimal("0.045") / 12).quantize(Decimal("0.01"))
                paid = due < today and k < unpaid_from
                lines.append((k, due, principal, interest, paid))
                left -= principal
                paid_principal += principal if paid else 0
            loans.append(Loan(application=a, disbursement=o, enterprise=e, borrower=owner, relationship_manager=rm, branch=branch,
                              product_code="xinmiaodai", principal=amount, annual_rate=Decimal("0.045"), term_months=12,
                              repayment_method="equal_principal", disbursed_on=d, maturity_date=dues[-1],
                              outstanding_principal=amount - paid_principal))
            schedules.append(lines)
        Loan.objects.bulk_create(loans, batch_size=5000)
        print(f"  loans: {time.perf_counter() - started:.1f}s", flush=True)
        copy_rows(Installment, ["loan", "n", "due_date", "principal", "interest", "paid_principal", "paid_interest", "penalty_accrued",
                                "paid_penalty", "settled_on", "superseded", "interest_accrued"],
                  ((loan.pk, k, due, p, i, p if paid else 0, i if paid else 0, 0, 0, due if paid else None, False, i if paid else 0)
                   for loan, lines in zip(loans, schedules, strict=True) for k, due, p, i, paid in lines))
        print(f"  installments: {time.perf_counter() - started:.1f}s", flush=True)
        now = timezone.now()
        # One authorisation record per loan's application (the nightly pulls name it); given before verification here.
        grants = DataAuthorisation.objects.bulk_create([
            DataAuthorisation(enterprise_id=a.enterprise_id, application=a, granted_by=owner, scopes=list(SOURCES),
                              text_version="2026-1") for a in apps], batch_size=5000)
        copy_rows(Consent, ["application", "source", "granted_by", "granted_at", "text_version", "authorisation"],
                  ((a.pk, s, owner.pk, now.isoformat(), "2026-1", g.pk) for a, g in zip(apps, grants, strict=True)
                   for s in SOURCES))
        ages = [rng.randrange(0, 30) for _ in range(n)]
        extra = [f.name for f in DataSnapshot._meta.fields if f.name == "error_code"]  # a newer column, blank here
        copy_rows(DataSnapshot, ["enterprise", "source", "as_of", "fetched_at", "provider", "status", "payload", "error", "application",
                                 *extra],
                  ((e.pk, s, today - dt.timedelta(days=age + 1), now.isoformat(), "sandbox", "ok",
                    json.dumps(samples[e.pk % 20][s], ensure_ascii=False), "", a.pk, *[""] * len(extra))
                   for e, a, age in zip(enterprises, apps, ages, strict=True) for s in SOURCES))
        copy_rows(SourceRefresh, ["enterprise", "source", "due_on"],
                  ((e.pk, s, today - dt.timedelta(days=age + 1) + dt.timedelta(days=30)) for e, age in zip(enterprises, ages, strict=True)
                   for s in SOURCES))
        # the seeded history counts as already evaluated by the warning rules
        WarningRule.objects.update(evaluated_through=DataSnapshot.objects.order_by("-pk").values_list("pk", flat=True).first() or 0)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    print(f"seeded {n:,} loans in {time.perf_counter() - started:.1f}s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--reseed", action="store_true", help="drop and recreate the database's tables first")
    parser.add_argument("--days", type=int, default=1, help="run the nightly job on this many consecutive days from today")
    parser.add_argument("--seed-only", action="store_true",
                        help="seed and stop (then copy the database as a template: createdb -T, to time runs on the same book)")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a Postgres database (the benchmark writes a whole book into it).")
    from postloan.models import Loan, MonitoringRun
    from postloan.monitoring import monitoring_run

    call_command("migrate", verbosity=0)
    if args.reseed:
        call_command("flush", interactive=False, verbosity=0)  # the reference data (post-loan policy too) is seeded again
    existing = Loan.objects.filter(enterprise__name__startswith=PREFIX).count()
    if existing != args.loans:
        if existing:
            sys.exit(f"{existing:,} bench loans exist; run with --reseed to start over with {args.loans:,}.")
        seed(args.loans)
    if args.seed_only:
        return
    get_user_model()
    for k in range(args.days):
        today = timezone.localdate() + dt.timedelta(days=k)
        MonitoringRun.objects.filter(run_date=today).delete()
        for label, force in ((f"nightly run {today}", False), ("second run, same day", True)):
            started = time.perf_counter()
            run = monitoring_run(today=today, force=force)
            elapsed = time.perf_counter() - started
            print(f"{label}: {elapsed:.2f} s for {Loan.objects.filter(status='active').count():,} active loans; "
                  f"status {run.status}; counts {json.dumps(run.counts, ensure_ascii=False)}", flush=True)


if __name__ == "__main__":
    main()
