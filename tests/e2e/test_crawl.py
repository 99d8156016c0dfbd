"""The crawl: every persona logs in, follows every link reachable from its home (and the signed-out visitor from
the front door), in Chinese and English, at 1366 px and 390 px, and every page it reaches is checked for what a
person should never see: an error status, a link into the API, an internal code or a Python value, an amount
of five or more digits without separators, a rate written as a fraction, a page wider than the screen.

The data is the demo's (casework.demo.seed_demo with a short history: cases in every stage, an overdue loan with
warnings and tasks, prospects, analytics) plus a committee case with every vote cast. Each URL pattern (ids
replaced by <n>) is visited once per language and width, whichever persona reaches it first, to keep the run
short. Screenshots of every page go to $E2E_ARTIFACTS/crawl/.

The staff pages are checked by test_crawl_staff_pages; the owner's and the visitor's pages (the "pages" branch
restyles them) by test_crawl_owner_and_visitor_pages, from the same crawl.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import PASSWORD, artifacts_dir, login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LANGUAGES = ("zh-hans", "en")
WIDTHS = (1366, 390)
HISTORY = 14  # a short history: enough for the analytics pages to have content
MAX_PAGES_PER_PERSONA = 60

# Who logs in, and where the crawl starts (the home a login lands on is always added).
PERSONAS = [
    ("visitor", None),
    ("applicant", "demo_applicant"),  # also the overdue borrower: the demo's arrears loan is theirs
    ("rm", "demo_rm"),
    ("branch_approver", "demo_branch_approver"),
    ("head_approver", "demo_head_approver"),
    ("committee_chair", "demo_committee_1"),
    ("committee_member", "demo_committee_2"),
    ("operations", "demo_ops"),
    ("risk", "demo_risk"),
    ("admin", "demo_admin"),
]

# Never followed: they act (logout), change the language (a form), or belong to the Django admin's own pages
# (the admin's index is visited; its change lists are the admin's, checked by the admin tests).
SKIP = re.compile(r"^/(logout/|i18n/|static/|media/|admin/.+)")
# Files, not pages: fetched for their status only.
FILES = re.compile(r"(/pdf/|/schedule\.csv|\.csv$|\.pdf$|/export/|/documents/\d+/$|/download/|/(csv|xlsx)/$)")
OWNER_PAGES = re.compile(r"^/($|products/|prequalify/|help/|login/|register/|portal/)")

SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")
PYTHON = re.compile(r"\b(True|False|None)\b|\{'|\[\]")
# "None" is English for 无 ("None", "None yet"): a Python None shows on the Chinese page, checked there.
PYTHON_EN = re.compile(r"\b(True|False)\b|\{'|\[\]")
# Five or more digits in a row that are not part of an identifier (a contract number, a credit code, an account).
LONG_NUMBER = re.compile(r"(?<![\w.,\-/#:])(\d{5,})(\.\d+)?(?![\w\-/])")
FRACTION_RATE = re.compile(r"(?<![\d.])0\.\d{4,}\b")
PHONE = re.compile(r"^1[3-9]\d{9}$")
# The admin's icons are ligatures of an icon font (<span class="material-symbols-outlined">unfold_more</span>): what
# shows is a glyph, not the word. The visible text is read with them out of the layout, then they come back.
ICONS_HIDDEN_TEXT = """() => {
  const icons = [...document.querySelectorAll('.material-symbols-outlined')];
  const before = icons.map(e => e.getAttribute('style'));
  icons.forEach(e => e.style.setProperty('display', 'none', 'important'));  // over the theme's `block!`
  const text = document.body.innerText;
  icons.forEach((e, i) => before[i] === null ? e.removeAttribute('style') : e.setAttribute('style', before[i]));
  return text;
}"""
# A file's name as it was uploaded or imported (e.g. bank_statements.pdf) is the customer's data, not a code.
FILE_NAME = re.compile(r"[\w\-.]+\.(?:pdf|jpe?g|png|ofd|csv|xlsx?)\b", re.I)


@dataclass
class Problem:
    persona: str
    lang: str
    width: int
    path: str
    kind: str
    detail: str

    @property
    def owner_page(self) -> bool:
        return bool(OWNER_PAGES.match(self.path))

    def __str__(self) -> str:
        return f"[{self.persona} {self.lang} {self.width}px] {self.path}: {self.kind}: {self.detail}"


@dataclass
class CrawlResult:
    problems: list[Problem] = field(default_factory=list)
    visits: int = 0
    patterns: set = field(default_factory=set)
    seconds: float = 0.0


RESULT: dict[str, CrawlResult] = {}


def pattern_of(path: str, query: str) -> str:
    keys = sorted({part.split("=", 1)[0] for part in query.split("&") if part and not part.startswith("page=")})
    return re.sub(r"\d+", "<n>", path) + ("?" + "&".join(keys) if keys else "")


def allowed_words() -> set[str]:
    """Words that are data, not codes: the users' own login names (shown as who is signed in or who acted, as typed
    at registration), their e-mail addresses, and the chart of accounts' codes (numbers that are identifiers)."""
    from django.contrib.auth import get_user_model

    from ledger.models import Account

    names = set()
    for username, email in get_user_model().objects.values_list("username", "email"):
        names.add(username.lower())
        names.update(re.findall(r"[a-z_]+", (email or "").lower()))
    names.update(Account.objects.values_list("code", flat=True))  # the chart's account codes (601102) are identifiers
    return names


def text_problems(text: str, allowed: set[str], lang: str = "zh-hans") -> list[tuple[str, str]]:
    found = []
    python = PYTHON if lang.startswith("zh") else PYTHON_EN
    for line in text.splitlines():
        for word in SNAKE.findall(FILE_NAME.sub(" ", line)):
            if word not in allowed and not any(word in a for a in allowed if "_" in a and a in line.lower()):
                found.append(("code", f"{word!r} in {line.strip()[:120]!r}"))
        for match in python.finditer(line.strip()):
            found.append(("python value", f"{match.group(0)!r} in {line.strip()[:120]!r}"))
        for match in LONG_NUMBER.finditer(line):
            digits = match.group(1)
            if PHONE.match(digits) or len(digits) >= 12 or (digits in allowed and not match.group(2)):
                continue  # a mobile number, an account or reference number: not amounts
            found.append(("number without separators", f"{match.group(0)!r} in {line.strip()[:120]!r}"))
        for match in FRACTION_RATE.finditer(line):
            found.append(("rate as a fraction", f"{match.group(0)!r} in {line.strip()[:120]!r}"))
    return found


def seed():
    """The demo, a short history, and a committee case with every vote cast (waiting for its resolution)."""
    from approvals.services import approval_decide, committee_configure
    from casework.demo import seed_demo
    from tests.factories import PendingApprovalFactory

    users = seed_demo(history=HISTORY)
    committee_configure(by=users["demo_admin"], chair=users["demo_committee_1"], quorum=3)
    case = PendingApprovalFactory(related_party=True, seed=41)
    approval_decide(application=case, user=users["demo_branch_approver"], decision="approve", comment="同意上报贷审会")
    for member, decision in (("demo_committee_1", "approve"), ("demo_committee_2", "approve"), ("demo_committee_3", "decline")):
        approval_decide(application=case, user=users[member], decision=decision, comment="表决意见",
                        reason_codes=["INDUSTRY_RISK"] if decision == "decline" else [])
    return users


def known_pages(persona: str) -> list[str]:
    """Pages a persona's links reach only in some states, started from directly: the staff page of the demo's credit
    line (its case is signed, so it is in no queue until its annual review)."""
    from creditlines.models import CreditLine

    if persona in ("rm", "risk"):
        return [f"/staff/credit-lines/{pk}/" for pk in CreditLine.objects.order_by("pk").values_list("pk", flat=True)[:1]]
    return []


def log_in(page, base: str, username: str) -> None:
    """Through the login page, and the second factor where the user must pass it (tests/e2e/conftest.py)."""
    login(page, base, username, PASSWORD)


def links_of(page, base: str) -> list[str]:
    hrefs = page.locator("a[href]").evaluate_all("els => els.map(e => e.href)")
    out = []
    for href in hrefs:
        parts = urlsplit(href)
        if f"{parts.scheme}://{parts.netloc}" != base or parts.fragment and not parts.path:
            continue
        out.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return out


def crawl(browser, base: str, result: CrawlResult) -> None:
    allowed = allowed_words()
    shots = artifacts_dir() / "crawl"
    shots.mkdir(parents=True, exist_ok=True)
    seen_patterns: set[tuple[str, str, int]] = set()
    for persona, username in PERSONAS:
        context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900}, timezone_id="Asia/Shanghai")
        context.set_default_timeout(15_000)
        page = context.new_page()
        try:
            start = ["/"]
            if username:
                log_in(page, base, username)
                home = urlsplit(page.url)
                start = [home.path, "/", *known_pages(persona)]
            for lang in LANGUAGES:
                context.add_cookies([{"name": "django_language", "value": lang, "url": base}])
                for width in WIDTHS:
                    page.set_viewport_size({"width": width, "height": 900 if width > 500 else 844})
                    _crawl_persona(page, base, persona, lang, width, start, seen_patterns, allowed, shots, result)
        finally:
            context.close()


def _crawl_persona(page, base, persona, lang, width, start, seen_patterns, allowed, shots, result) -> None:
    queue = list(dict.fromkeys(start))
    visited: set[str] = set()
    count = 0
    while queue and count < MAX_PAGES_PER_PERSONA:
        url = queue.pop(0)
        if url in visited:
            continue
        visited.add(url)
        parts = urlsplit(url)
        key = (pattern_of(parts.path, parts.query), lang, width)
        if key in seen_patterns and url not in start:
            continue
        seen_patterns.add(key)
        result.patterns.add(key[0])

        def problem(kind, detail, path=parts.path):
            result.problems.append(Problem(persona, lang, width, path, kind, detail))

        if FILES.search(parts.path):
            response = page.request.get(base + url)
            if response.status >= 400:
                problem("status", str(response.status))
            continue
        response = page.goto(base + url)
        result.visits += 1
        count += 1
        status = response.status if response else 0
        if status >= 400:
            problem("status", str(status))
            continue
        path = urlsplit(page.url).path
        for link in links_of(page, base):
            link_path = urlsplit(link).path
            if link_path.startswith("/api/"):
                problem("link into the API", link, path)
                continue
            if SKIP.match(link_path) or link in visited:
                continue
            queue.append(link)
        text = page.evaluate(ICONS_HIDDEN_TEXT)
        for kind, detail in text_problems(text, allowed, lang):
            problem(kind, detail, path)
        scroll, inner = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
        if scroll > inner + 1:
            problem("wider than the screen", f"{scroll}px on a {inner}px screen", path)
        name = re.sub(r"[^\w.-]+", "_", f"{persona}-{lang}-{width}-{path.strip('/') or 'home'}")[:150]
        page.screenshot(path=str(shots / f"{name}.png"), full_page=width < 500)


@pytest.fixture
def crawl_result(live_server, browser):
    if "crawl" not in RESULT:
        result = CrawlResult()
        RESULT["crawl"] = result  # kept even if the crawl itself breaks, so the second test reports it
        started = time.monotonic()
        seed()
        crawl(browser, live_server.url, result)
        result.seconds = time.monotonic() - started
        print(f"\ncrawl: {result.visits} page visits, {len(result.patterns)} URL patterns, {result.seconds:.0f} s")
    return RESULT["crawl"]


def _report(problems: list[Problem]) -> str:
    unique = {}
    for p in problems:
        unique.setdefault((p.path, p.kind, p.detail), p)
    return f"{len(unique)} problems:\n" + "\n".join(str(p) for p in list(unique.values())[:150])


def test_crawl_staff_pages(crawl_result):
    """Every page a member of staff reaches: no problem at all."""
    assert crawl_result.visits > 50, crawl_result.visits
    assert {"/staff/cases/", "/staff/approvals/", "/staff/operations/", "/staff/risk/"} <= crawl_result.patterns
    problems = [p for p in crawl_result.problems if not p.owner_page]
    assert not problems, _report(problems)


def test_crawl_owner_and_visitor_pages(crawl_result):
    assert {"/", "/portal/", "/products/"} <= crawl_result.patterns
    problems = [p for p in crawl_result.problems if p.owner_page]
    assert not problems, _report(problems)
