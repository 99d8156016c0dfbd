"""seed_demo: the demo users with their roles, cases in every stage for demo_applicant, a history that feeds every
analytics section, and a second run that changes nothing."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.core.management import call_command

pytestmark = pytest.mark.django_db

HISTORY = 14  # a small history keeps the test quick; `make run` seeds casework.demo.HISTORY_CASES


def _counts() -> dict[str, int]:
    return {m._meta.label: m.objects.count() for m in apps.get_models()
            if m._meta.app_label in ("applications", "underwriting", "approvals", "contracts", "postloan", "marketing",
                                     "loanservice", "auth")}


def test_seed_demo(db):
    """One seed (the seed takes a while) checked for users, stages, the history and idempotency."""
    from casework.demo import seed_demo

    users = seed_demo(history=HISTORY)
    _users_have_their_roles(users)
    _every_stage_has_cases(users)
    _every_stage_seeds_its_own_data()
    _history_feeds_the_analytics()
    before = _counts()
    seed_demo(history=HISTORY)
    assert _counts() == before


def _users_have_their_roles(users):
    from loanservice import roles

    expected = {"demo_applicant": roles.APPLICANT, "demo_rm": roles.RM, "demo_branch_approver": roles.BRANCH_APPROVER,
                "demo_head_approver": roles.HEAD_APPROVER, "demo_committee_1": roles.COMMITTEE, "demo_ops": roles.OPERATIONS,
                "demo_risk": roles.RISK, "demo_admin": roles.ADMIN}
    for username, role in expected.items():
        user = users[username]
        assert roles.has_role(user, role), username
        assert user.check_password("demo-pass")


def _every_stage_has_cases(users):
    from applications.models import LoanApplication

    statuses = set(LoanApplication.objects.filter(applicant=users["demo_applicant"]).values_list("status", flat=True))
    assert {"draft", "under_review", "pending_approval", "approved", "disbursed", "prescreen_declined"} <= statuses
    assert statuses & {"contracting", "signed"}


def _every_stage_seeds_its_own_data():
    """casework/demo/<stage>.py: each stage's own demo data is part of seed_demo."""
    from applications.models import Enterprise, NegativeListEntry
    from casework.demo import applications, contracts, marketing, postloan
    from marketing.models import ProspectList

    assert NegativeListEntry.objects.filter(uscc=applications.DEMO_NEGATIVE_USCC).exists()
    assert Enterprise.objects.filter(name=contracts.DEMO_ENTERPRISE).exists()
    assert Enterprise.objects.filter(name__in=[postloan.ARREARS_ENTERPRISE, postloan.RENEWAL_ENTERPRISE]).count() == 2
    assert ProspectList.objects.filter(partner_name__in=[marketing.ASSOCIATION, marketing.CORE]).count() == 2


def _history_feeds_the_analytics():
    from analytics.selectors import analytics_summary, filters_parse
    from applications.models import LoanApplication
    from marketing.models import Prospect

    history = LoanApplication.objects.filter(applicant__username__startswith="hist_")
    assert history.count() == HISTORY
    assert history.values("created_at__date").distinct().count() > 5  # spread over the year, not all today
    summary = analytics_summary(filters_parse({}).filters)
    funnel = {row["stage"]: row["n"] for row in summary["funnel"]["total"]}
    assert funnel["started"] >= HISTORY and funnel["disbursed"] > 0
    assert any(s["business_days"]["n"] for s in summary["turnaround"]["stages"])
    assert summary["decisions"]["decided"] > 0 and summary["portfolio"]["active_loans"] > 0
    assert summary["models"]["distribution"] and any(r["psi"] is not None for r in summary["models"]["psi"])
    assert Prospect.objects.exists() and summary["marketing"]["total"]["prospects"] > 0
    _nothing_happens_tomorrow()


def _nothing_happens_tomorrow():
    """The history ends today: a case whose next step's working time has not come waits there (the ops queue
    showed a release dated the next day)."""
    from django.utils import timezone

    from approvals.models import Decision
    from contracts.models import DisbursementOrder
    from loanservice.models import AuditEvent

    now = timezone.now()
    assert not DisbursementOrder.objects.filter(released_at__gt=now).exists()
    assert not Decision.objects.filter(created_at__gt=now).exists()
    assert not AuditEvent.objects.filter(at__gt=now).exists()
    # Nor does a committee case whose votes are all in wait for its resolution (the chair records it).
    from approvals.services import committee_resolutions_due, committee_tally

    assert not [c.application_id for c in committee_resolutions_due() if committee_tally(c)["cast"] >= committee_tally(c)["quorum"]]


def test_command_refuses_with_debug_off(settings):
    from django.core.management.base import CommandError

    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("seed_demo")


def test_demo_password_hash_is_cached_per_hasher(settings):
    from django.contrib.auth.hashers import check_password

    from casework.demo import _password_hash

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    fast = _password_hash("demo-pass-x")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    strong = _password_hash("demo-pass-x")
    assert fast.startswith("md5$") and strong.startswith("pbkdf2_sha256$")
    assert _password_hash("demo-pass-x") == strong and check_password("demo-pass-x", strong)


def test_the_history_clock_never_runs_past_now():
    """A history step due after now is not played (casework.demo._past): the case waits where it is today."""
    import datetime as dt

    from django.utils import timezone

    from casework.demo import _NotYet, _past

    with pytest.raises(_NotYet):
        _past(timezone.now() + dt.timedelta(hours=1))
    with _past(timezone.now() - dt.timedelta(days=1)):
        assert timezone.now() < timezone.now().replace(year=2100)


def test_the_demo_command_closes_the_day_once_for_the_finance_pages(products, org, client, settings, tmp_path,
                                                                    django_capture_on_commit_callbacks):
    """`manage.py seed_demo` ends with one close of business where dates are simulated (the `make run` demo;
    casework.demo.postloan.close_of_business_once): the finance pages then show the day's accruals, a voucher batch
    and the reconciliations, balanced; a second seed closes nothing more; without simulated dates nothing runs."""
    import datetime as dt

    import time_machine
    from django.utils import timezone

    from casework.demo.postloan import close_of_business_once
    from ledger.models import CoreFile, JournalEntry, VoucherBatch
    from loanservice.business_date import business_date
    from postloan.models import CobReconciliation, CobRun
    from tests.factories import ApplicantFactory, FastTrackLoanFactory

    settings.CORE_BANKING_OUTBOUND_DIR = tmp_path / "outbound"
    today = timezone.localdate()
    with time_machine.travel(dt.datetime.combine(today - dt.timedelta(days=20), dt.time(2)), tick=False):
        loan = FastTrackLoanFactory(owner=ApplicantFactory(username="cob_seed_owner"), seed=61)
    settings.ALLOW_SIMULATED_BUSINESS_DATE = False
    assert close_of_business_once(org) is None and not CobRun.objects.exists()
    settings.ALLOW_SIMULATED_BUSINESS_DATE = True
    with django_capture_on_commit_callbacks(execute=True):  # as the demo's commits do: the voucher batch is sent
        closed = close_of_business_once(org)
    assert closed["status"] == "done" and closed["until"] == today and closed["total"] >= 1 and closed["reconciled"]
    assert business_date() == today + dt.timedelta(days=1)
    loan.refresh_from_db()
    assert loan.accrued_through == today
    assert JournalEntry.objects.filter(key__startswith=f"loan:{loan.pk}:accrual:").exists()
    assert VoucherBatch.objects.exists() and CobReconciliation.objects.get().balanced
    assert CoreFile.objects.filter(business_date=today).exists()  # the core's file of the day, fetched and reconciled
    assert close_of_business_once(org) is None and CobRun.objects.count() == 1
    client.force_login(org["demo_ops"])
    page = client.get("/staff/finance/core-banking/")
    html = page.content.decode()
    assert page.status_code == 200 and "还没有凭证" not in html and "还没有对账文件" not in html
