"""Queues and API lists at scale: the RM's case queue, the approvers' queues and the API lists, measured at a
small book and again at 100,000 applications (bulk-inserted: this measures reads, not intake). Each page is
requested repeatedly in process (Django's test client, production settings) with the queries counted: the
count must not grow with the book, and p95 must stay ≤ 150 ms.

    .venv/bin/python bench/run_all.py --only lists
"""

from __future__ import annotations

import datetime as dt
import random
import time
from decimal import Decimal

PAGES = [
    ("RM case queue /staff/cases/", "demo_rm", "/staff/cases/"),
    ("branch approver queue /staff/approvals/", "demo_branch_approver", "/staff/approvals/"),
    ("head office approver queue /staff/approvals/", "demo_head_approver", "/staff/approvals/"),
    ("API GET /api/v1/applications/ (head office)", "demo_head_approver", "/api/v1/applications/"),
    ("API GET /api/v1/applications/ (branch RM)", "demo_rm", "/api/v1/applications/"),
    ("API GET /api/v1/enterprises/ (risk)", "demo_risk", "/api/v1/enterprises/"),
    ("API GET /api/v1/warnings/ (risk)", "demo_risk", "/api/v1/warnings/"),
]
STATUSES = [("disbursed", 40), ("declined", 12), ("withdrawn", 8), ("prescreen_declined", 5), ("under_review", 10),
            ("pending_approval", 10), ("approved", 5), ("contracting", 5), ("signed", 5)]


def seed(n: int, *, start: int = 0) -> None:
    """n more applications spread over three branches, statuses and approval tiers (bulk, for reads only)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import transaction
    from django.utils import timezone

    from applications.models import Enterprise, LoanApplication, LoanProduct
    from approvals.models import ApprovalCase, AuthorityMatrixVersion
    from loanservice.models import Branch, SlaClock

    User = get_user_model()
    rng = random.Random(start)
    branches = {b.code: b for b in Branch.objects.all()}
    rms = {"SH01": User.objects.get(username="demo_rm"), "BJ01": User.objects.get(username="bj01_rm"),
           "ZJ01": User.objects.get(username="zj01_rm")}
    products = list(LoanProduct.objects.all())
    matrix = AuthorityMatrixVersion.objects.order_by("-pk").first()
    applicant_group = Group.objects.get(name="applicant")
    now = timezone.now()
    statuses = [s for s, w in STATUSES for _ in range(w)]
    batch = 10_000
    with transaction.atomic():
        owners = User.objects.bulk_create([User(username=f"bench_owner_{start}_{i}", password="!") for i in range(max(n // 50, 1))])
        User.groups.through.objects.bulk_create([User.groups.through(user_id=u.pk, group_id=applicant_group.pk) for u in owners])
        codes = ["SH01", "BJ01", "ZJ01"]
        enterprises = Enterprise.objects.bulk_create([
            Enterprise(owner=owners[i % len(owners)], name=f"基准企业{start + i}", uscc=f"B{start + i:017d}", legal_rep_name="张三",
                       legal_rep_id_number="110101198001010010", industry_code="C3399", founded_on=dt.date(2015, 1, 1),
                       employees=30, annual_revenue=Decimal("5000000.00"), branch=branches[codes[i % 3]],
                       relationship_manager=rms[codes[i % 3]]) for i in range(max(n // 5, 1))], batch_size=batch)
        for offset in range(0, n, batch):
            apps = []
            for i in range(offset, min(offset + batch, n)):
                ent = enterprises[i % len(enterprises)]
                code = codes[i % len(enterprises) % 3]
                status = rng.choice(statuses)
                created = now - dt.timedelta(minutes=rng.randint(1, 60 * 24 * 365))
                apps.append(LoanApplication(
                    applicant_id=ent.owner_id, enterprise=ent, product=rng.choice(products),
                    amount=Decimal(rng.choice([300000, 800000, 1500000, 2500000, 6000000])), term_months=12,
                    repayment_method="equal_installment", purpose="经营周转", relationship_manager=rms[code], branch=branches[code],
                    status=status, route="" if status in ("prescreen_declined",) else rng.choice(["auto", "branch", "head_office"]),
                    created_at=created, submitted_at=created + dt.timedelta(minutes=5)))
            LoanApplication.objects.bulk_create(apps, batch_size=batch)
            pending = [a for a in apps if a.status == "pending_approval"]
            ApprovalCase.objects.bulk_create([
                ApprovalCase(application=a, route=a.route if a.route != "auto" else "branch",
                             tier=a.route if a.route in ("branch", "head_office") else "branch", prepared_by=a.relationship_manager,
                             matrix_version=matrix, created_at=a.submitted_at) for a in pending], batch_size=batch)
            open_ = [a for a in apps if a.status in ("under_review", "pending_approval", "contracting", "signed")]
            SlaClock.objects.bulk_create([
                SlaClock(case_id=a.pk, stage="due_diligence" if a.status == "under_review" else "branch_approval",
                         owner=a.relationship_manager, branch=a.branch, target_days=Decimal("2"), started_at=a.submitted_at,
                         due_at=a.submitted_at + dt.timedelta(days=2)) for a in open_], batch_size=batch)


def measure(client_for, repeat: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    out = {}
    for label, username, url in PAGES:
        client = client_for(username)
        with CaptureQueriesContext(connection) as ctx:
            r = client.get(url)
        queries = len(ctx.captured_queries)  # now: the log is reset by the next request
        if r.status_code == 404 and "/warnings/" in url:
            continue
        assert r.status_code == 200, (url, r.status_code)
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(url)
            timings.append(time.perf_counter() - started)
        from bench.common import summary

        out[label] = {**summary(timings), "queries": queries}
    return out


def run(total: int = 100_000, small: int = 1_000) -> dict:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from applications.models import LoanApplication
    from loanservice import second_factor

    def client_for(username):
        """Signed in as the person, past the second factor their role requires (as after typing the code)."""
        c = Client()
        user = get_user_model().objects.get(username=username)
        c.force_login(user)
        if second_factor.second_factor_required(user):
            session = c.session
            second_factor.mark_verified(session, user)
            session.save()
        return c

    repeat = 30
    have = LoanApplication.objects.count()
    seed(max(small - have, 0), start=1)
    small_n = LoanApplication.objects.count()
    small_res = measure(client_for, repeat)
    started = time.perf_counter()
    seed(total - small_n, start=2_000_000)
    seeded_s = time.perf_counter() - started
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    large_n = LoanApplication.objects.count()
    large_res = measure(client_for, repeat)
    pages = {label: {"small": small_res[label], "large": large_res[label]} for label in large_res if label in small_res}
    return {"applications": large_n, "small_n": small_n, "seed_seconds": round(seeded_s, 1), "pages": pages,
            "summary": {label: (f"p95 {v['large']['p95'] * 1000:.1f} ms", f"queries {v['small']['queries']}→{v['large']['queries']}")
                        for label, v in pages.items()}}
