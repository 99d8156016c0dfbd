"""The RM's case queue and the approvers' queue a page at a time: QUEUE_PAGE_SIZE rows in the queue's order, a
pager with the count whose links keep the filters, SLA clocks computed for the rows shown only, page numbers
that are not pages answered with the first or the last page, and the same number of queries whatever the book."""

from __future__ import annotations

import html
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from casework import staff_views
from casework.staff_views import QUEUE_PAGE_SIZE
from tests.approvals_support import fast_passwords  # noqa: F401
from tests.factories import ApplicantFactory, ApprovalsCaseFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


def _cases(n: int, *, start: int, amount: str = "2000000.00") -> list[int]:
    """n cases pending approval at the default branch (in its RM's queue and its approver's), oldest first. The
    sandbox's data declines some enterprises at the pre-screen; those cases are in neither queue and are skipped.
    Seeds of one test must differ modulo 1000 (a seed whose data misses the grades moves on by 1000)."""
    pks: list[int] = []
    seed = start
    while len(pks) < n:
        owner = ApplicantFactory(username=f"q{seed}")
        application = ApprovalsCaseFactory(applicant=owner, seed=seed, amount=amount, stage="submitted")
        if application.status == "under_review":
            pks.append(ApprovalsCaseFactory.advance(application, to="pending_approval").pk)
        seed += 1
    return pks


def _get(client, url: str, params: dict | None = None) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(url, params or {})
    assert r.status_code == 200, r.status_code
    return r.content.decode(), len(ctx.captured_queries)


def _rm_ids(page: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr id="rm-row-(\d+)">', page)]


def _approver_ids(page: str) -> list[int]:
    return [int(x) for x in re.findall(r'id="queue-row-(\d+)"', page)]


def _status(page: str) -> str:
    return re.search(r'<span id="pager-status">(.*?)</span>', page).group(1)


def _link(page: str, which: str) -> str | None:
    found = re.search(rf'id="pager-{which}" href="([^"]*)"', page)
    return html.unescape(found.group(1)) if found else None


@pytest.fixture
def clocks_computed(monkeypatch) -> list[list[int]]:
    """The case ids each call of staff_views._clocks computed SLA clocks for."""
    calls: list[list[int]] = []
    real = staff_views._clocks

    def spy(case_ids):
        ids = list(case_ids)
        calls.append(ids)
        return real(ids)

    monkeypatch.setattr(staff_views, "_clocks", spy)
    return calls


def test_rm_queue_pages_through_every_case_in_a_constant_number_of_queries(client, products, org, clocks_computed):
    assert QUEUE_PAGE_SIZE == 50  # the figures below assume it
    cases = _cases(60, start=100)
    client.force_login(org["demo_rm"])
    client.get("/staff/cases/")  # warm the calendar cache

    first, queries_60 = _get(client, "/staff/cases/")
    assert _rm_ids(first) == cases[:50]  # oldest submission first
    assert _status(first) == "第 1 / 2 页，共 60 件"
    assert _link(first, "previous") is None and _link(first, "next") == "?page=2"
    assert clocks_computed[-1] == cases[:50]  # the clocks of the rows shown, not of the whole queue

    second, _ = _get(client, "/staff/cases/", {"page": "2"})
    assert _rm_ids(second) == cases[50:]
    assert _status(second) == "第 2 / 2 页，共 60 件"
    assert _link(second, "previous") == "?page=1" and _link(second, "next") is None
    assert clocks_computed[-1] == cases[50:]

    # Not a page: not a number → the first page; below 1 or past the end → the last.
    for raw, number in [("abc", 1), ("", 1), ("1.5", 1), ("0", 2), ("-3", 2), ("3", 2), ("9" * 30, 2)]:
        page, _ = _get(client, "/staff/cases/", {"page": raw})
        assert _status(page).startswith(f"第 {number} / 2 页"), raw
        assert _rm_ids(page) == (cases[:50] if number == 1 else cases[50:]), raw

    more = _cases(60, start=400)
    first, queries_120 = _get(client, "/staff/cases/")
    assert _status(first) == "第 1 / 3 页，共 120 件" and _rm_ids(first) == cases[:50]
    assert queries_120 == queries_60
    last, queries_last = _get(client, "/staff/cases/", {"page": "3"})
    assert _rm_ids(last) == more[40:] and queries_last == queries_60


def test_approver_queue_pager_keeps_the_filters_in_a_constant_number_of_queries(client, products, org, clocks_computed):
    big = _cases(55, start=100)
    small = _cases(3, start=300, amount="1500000.00")
    client.force_login(org["demo_branch_approver"])
    client.get("/staff/approvals/")  # warm the calendar cache

    unfiltered, queries_58 = _get(client, "/staff/approvals/")
    assert _approver_ids(unfiltered) == big[:50] and _status(unfiltered) == "第 1 / 2 页，共 58 件"
    assert clocks_computed[-1] == big[:50]

    first, _ = _get(client, "/staff/approvals/", {"tier": "branch", "amount_min": "1800000"})
    assert _approver_ids(first) == big[:50] and _status(first) == "第 1 / 2 页，共 55 件"
    next_url = _link(first, "next")
    assert next_url == "?tier=branch&amount_min=1800000&page=2"
    second, _ = _get(client, "/staff/approvals/" + next_url)
    assert _approver_ids(second) == big[50:]  # the filter still applies: none of the smaller cases
    assert _link(second, "previous") == "?tier=branch&amount_min=1800000&page=1"
    assert clocks_computed[-1] == big[50:]
    # The form and the tier tabs start again from the first page.
    assert 'name="page"' not in second and 'href="?tier=branch"' in second

    # Not a page, whatever the filters: the first or the last page, never an error.
    for raw, number in [("x", 1), ("0", 2), ("99", 2)]:
        page, _ = _get(client, "/staff/approvals/", {"amount_min": "1800000", "page": raw})
        assert _status(page) == f"第 {number} / 2 页，共 55 件", raw

    more = _cases(62, start=400)
    first, queries_120 = _get(client, "/staff/approvals/")
    assert _status(first) == "第 1 / 3 页，共 120 件" and _approver_ids(first) == big[:50]
    assert queries_120 == queries_58
    last, queries_last = _get(client, "/staff/approvals/", {"page": "3"})
    assert _approver_ids(last) == more[42:] and queries_last == queries_58
    middle, _ = _get(client, "/staff/approvals/", {"page": "2"})
    assert _approver_ids(middle) == big[50:] + small + more[:42]


def test_an_empty_queue_has_no_pager(client, products, org):
    client.force_login(org["demo_rm"])
    page, _ = _get(client, "/staff/cases/", {"page": "7"})
    assert "暂无案件" in page and 'id="pager"' not in page
    client.force_login(org["demo_branch_approver"])
    page, _ = _get(client, "/staff/approvals/", {"page": "-1"})
    assert "暂无待审批案件" in page and 'id="pager"' not in page


def test_the_pager_in_english(client, products, org, settings):
    _cases(1, start=100)
    client.force_login(org["demo_rm"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page, _ = _get(client, "/staff/cases/")
    assert _status(page) == "Page 1 of 1, 1 cases"


def test_rm_queue_counts_per_stage_and_filters_by_stage_and_sla(client, products, org):
    from tests.factories import ApplicationFactory

    reviewing = ApplicationFactory(seed=7, stage="submitted")
    pending = ApplicationFactory(seed=8, stage="pending_approval")
    client.force_login(org["demo_rm"])
    page = client.get("/staff/cases/").content.decode()
    assert re.search(r'id="stage-under_review"[^>]*>[^<]*<span[^>]*>1<', page), re.findall(r'id="stage-[^<]*<span[^<]*', page)
    assert re.search(r'id="stage-pending_approval"[^>]*>[^<]*<span[^>]*>1<', page)
    assert set(_rm_ids(page)) == {reviewing.pk, pending.pk}
    assert _rm_ids(client.get("/staff/cases/?stage=pending_approval").content.decode()) == [pending.pk]
    assert _rm_ids(client.get("/staff/cases/?sla=overdue").content.decode()) == []  # both clocks have time left
    assert set(_rm_ids(client.get("/staff/cases/?sla=ok&stage=nonsense").content.decode())) == {reviewing.pk, pending.pk}
