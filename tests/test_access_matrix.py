"""The access matrix: every role against every object endpoint of the API and every staff and portal page.

One world is built once for the module through the real services (an applicant's draft, a case under
review at the default branch, and a fast-track case disbursed to a loan) and every cell is a request
made in a rolled-back transaction, so no cell sees another's effects. Bodies of state-changing calls
are deliberately incomplete: a role that may act gets the validation or state answer (400/409), a role
that may not gets 401/403 (who you are) or 404 (not yours), exactly as DESIGN.md says. Every cell also
checks that no 500 happens and that a refused answer carries nothing of the object it refused.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import TINY_PDF, module_transaction, verify_via_api
from tests.factories import enterprise_payload, sign_as_borrower, uscc_for

ROLES = ["anon", "applicant", "other_applicant", "rm", "rm_other_branch", "branch_approver", "head_approver",
         "committee", "operations", "risk", "admin", "integration"]
STAFF = ["rm", "rm_other_branch", "branch_approver", "head_approver", "committee", "operations", "risk", "admin"]
APPROVERS = ["branch_approver", "head_approver", "committee"]
# Who sees a submitted case of the default branch (applications_visible_to): its owner, that branch's RM and
# approver, and the head-office roles (head office, committee, operations, risk, admin).
SEES_CASE = ["applicant", "rm", "branch_approver", "head_approver", "committee", "operations", "risk", "admin"]
# A draft is the applicant's own; branch staff do not see drafts, head-office roles do.
SEES_DRAFT = ["applicant", "head_approver", "committee", "operations", "risk", "admin"]
# Loans are also read by the integration account (core banking imports repayments against them).
SEES_LOAN = [*SEES_CASE, "integration"]


def row(default, **cells):
    """Expected status per role: `default` for every role not named."""
    return {role: cells.get(role, default) for role in ROLES}


def visible(ok, *, who=SEES_CASE, anon=401, hidden=404, **cells):
    out = {role: (ok if role in who else hidden) for role in ROLES}
    out["anon"] = anon
    out.update(cells)
    return out


# ---------------------------------------------------------------- the world, built once
@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from applications.models import LoanApplication
    from casework import lifecycle
    from casework.demo import seed_org, seed_products
    from loanservice import roles
    from loanservice.api import applicant_register
    from loanservice.models import Profile
    from postloan.models import Loan

    with module_transaction(django_db_blocker):
        seed_products()
        org = seed_org("demo-pass")
        User = get_user_model()
        owner = applicant_register(username="matrix_owner", password="S3cure-pass-123", phone="13900000001", email="o@example.com")
        other = applicant_register(username="matrix_other", password="S3cure-pass-123", phone="13900000002", email="x@example.com")
        integration = User.objects.create_user(username="matrix_integration", password="S3cure-pass-123")
        Profile.objects.create(user=integration, display_name="core banking")
        integration.groups.add(Group.objects.get_or_create(name=roles.INTEGRATION)[0])
        users = {"anon": None, "applicant": owner, "other_applicant": other, "rm": org["demo_rm"],
                 "rm_other_branch": User.objects.get(username="bj01_rm"), "branch_approver": org["demo_branch_approver"],
                 "head_approver": org["demo_head_approver"], "committee": org["demo_committee_1"], "operations": org["demo_ops"],
                 "risk": org["demo_risk"], "admin": org["demo_admin"], "integration": integration}

        owner_api = APIClient()
        owner_api.force_authenticate(owner)

        def draft(uscc, product, amount, term, method, seed):
            r = owner_api.post("/api/v1/enterprises/", enterprise_payload(uscc, seed=seed, name=f"矩阵测试企业{seed}号"), format="json")
            assert r.status_code == 201, r.content
            ent = r.json()["id"]
            verify_via_api(owner_api, ent)
            r = owner_api.post("/api/v1/applications/", {"enterprise": ent, "product": product, "amount": amount, "term_months": term,
                                                         "repayment_method": method, "purpose": "采购原材料"}, format="json")
            assert r.status_code == 201, r.content
            return ent, r.json()["id"]

        def complete(pk, product_code):
            from applications.models import LoanProduct

            for req in LoanProduct.objects.get(code=product_code).checklist.all():
                if req.required and not req.satisfied_by_source:
                    r = owner_api.post(f"/api/v1/applications/{pk}/documents/",
                                       {"requirement": req.code, "file": _upload(f"{req.code}.pdf")}, format="multipart")
                    assert r.status_code == 201, r.content
            r = owner_api.post(f"/api/v1/applications/{pk}/consent/", {"scopes": _sources()}, format="json")
            assert r.status_code == 201, r.content

        # A draft, a case under review with the RM, and a fast-track case all the way to a loan.
        _e, draft_pk = draft(uscc_for("AB", seed=11), "xinmiaodai", "100000.00", 6, "equal_installment", 11)
        review_ent, review_pk = draft(uscc_for("ABC", seed=7, tier="good"), "secured-operating", "2000000.00", 24, "equal_principal", 7)
        complete(review_pk, "secured-operating")
        lifecycle.application_submit(application_id=review_pk, user=owner)
        lifecycle.score_and_route(review_pk)  # the worker's step (on_commit never fires inside this transaction)
        fast_ent, fast_pk = draft(uscc_for("AB", seed=1), "xinmiaodai", "300000.00", 12, "equal_installment", 1)
        complete(fast_pk, "xinmiaodai")
        lifecycle.application_submit(application_id=fast_pk, user=owner)
        lifecycle.score_and_route(fast_pk)
        lifecycle.offer_accept(application_id=fast_pk, user=owner)
        fast = LoanApplication.objects.get(pk=fast_pk)
        contract = fast.contracts.get()
        sign_as_borrower(contract, owner)
        assert lifecycle.fast_track_complete(contract.pk) == "disbursed"
        # A credit line (fast track, signed: active) with one drawdown, the owner's.
        from creditlines.services import drawdown_create

        line_ent, line_pk = draft(uscc_for("AB", seed=2), "xinyidai-line", "300000.00", 12, "equal_installment", 2)
        complete(line_pk, "xinyidai-line")
        lifecycle.application_submit(application_id=line_pk, user=owner)
        lifecycle.score_and_route(line_pk)
        lifecycle.offer_accept(application_id=line_pk, user=owner)
        line_contract = LoanApplication.objects.get(pk=line_pk).contracts.get()
        sign_as_borrower(line_contract, owner)
        assert lifecycle.fast_track_complete(line_contract.pk) == "signed"
        line = LoanApplication.objects.get(pk=line_pk).credit_line
        drawdown, _created = drawdown_create(line_id=line.pk, user=owner, idempotency_key="matrix", amount=Decimal("50000.00"),
                                             term_months=6, repayment_method="equal_installment")
        review = LoanApplication.objects.get(pk=review_pk)
        assert review.status == "under_review" and review.route == "branch" and review.relationship_manager == org["demo_rm"]
        yield {
            "users": users, "draft": draft_pk, "review": review_pk, "fast": fast_pk, "contract": contract.pk,
            "loan": Loan.objects.get(application_id=fast_pk).pk,
            "review_enterprise": review_ent, "fast_enterprise": fast_ent,
            "document": review.documents.first().pk,
            "line": line.pk, "drawdown": drawdown.pk, "line_loan": drawdown.loan_id,
            "secrets": [review.enterprise.uscc, review.enterprise.name, fast.enterprise.uscc, fast.enterprise.name,
                        line.enterprise.uscc, line.enterprise.name],
        }


def _upload(name):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, TINY_PDF, content_type="application/pdf")


def _sources():
    from tests.conftest import ALL_SOURCES

    return ALL_SOURCES


# ---------------------------------------------------------------- the API (token/session: DRF)
API = [
    # (name, method, path template, body, expected)
    ("application detail", "get", "/api/v1/applications/{review}/", None, visible(200)),
    ("draft detail", "get", "/api/v1/applications/{draft}/", None, visible(200, who=SEES_DRAFT)),
    ("documents upload", "post", "/api/v1/applications/{draft}/documents/", {}, row(403, anon=401, applicant=400, other_applicant=404)),
    ("consent", "post", "/api/v1/applications/{draft}/consent/", {}, row(403, anon=401, applicant=400, other_applicant=404)),
    ("consent withdraw (none given)", "post", "/api/v1/applications/{draft}/consent/withdraw/", {},
     row(403, anon=401, applicant=409, other_applicant=404)),
    ("verify representative (empty)", "post", "/api/v1/enterprises/{review_enterprise}/verify-representative/", {},
     row(403, anon=401, applicant=400, other_applicant=404)),
    ("verification in force", "get", "/api/v1/enterprises/{review_enterprise}/verify-representative/", None,
     row(403, anon=401, applicant=200, other_applicant=404)),
    ("verify code (empty)", "post", "/api/v1/enterprises/{review_enterprise}/verify-representative/code/", {},
     row(403, anon=401, applicant=400, other_applicant=404)),
    ("authorisation text", "get", "/api/v1/authorisation-text/", None, row(200)),
    ("submit (already submitted)", "post", "/api/v1/applications/{review}/submit/", {}, row(403, anon=401, applicant=409, other_applicant=404)),
    ("request info", "post", "/api/v1/applications/{review}/request-info/", {},
     row(403, anon=401, rm=400, rm_other_branch=404, branch_approver=400, head_approver=400, committee=400)),
    ("respond (nothing asked)", "post", "/api/v1/applications/{review}/respond/", {}, row(403, anon=401, applicant=400, other_applicant=404)),
    ("site visit", "post", "/api/v1/applications/{review}/site-visit/", {}, row(403, anon=401, rm=400, rm_other_branch=404)),
    ("send to approval", "post", "/api/v1/applications/{review}/send-to-approval/", {}, row(403, anon=401, rm=400, rm_other_branch=404)),
    ("decide", "post", "/api/v1/applications/{review}/decide/", {},
     row(403, anon=401, branch_approver=400, head_approver=400, committee=400)),
    ("accept offer (not approved)", "post", "/api/v1/applications/{review}/accept-offer/", {},
     row(403, anon=401, applicant=409, other_applicant=404)),
    ("withdraw (disbursed)", "post", "/api/v1/applications/{fast}/withdraw/", {}, row(403, anon=401, applicant=409, other_applicant=404)),
    ("contract", "get", "/api/v1/contracts/{contract}/", None, visible(200)),
    ("contract pdf", "get", "/api/v1/contracts/{contract}/pdf/", None, visible(200)),
    ("contract verify", "post", "/api/v1/contracts/{contract}/verify/", {}, visible(200)),
    ("contract sign (no agree)", "post", "/api/v1/contracts/{contract}/sign/", {},
     row(403, anon=401, applicant=400, other_applicant=404, operations=400)),
    ("contract signing code (already signed)", "post", "/api/v1/contracts/{contract}/sign/code/", {},
     row(403, anon=401, applicant=409, other_applicant=404, operations=409)),
    ("disburse (no key)", "post", "/api/v1/contracts/{contract}/disburse/", {}, row(403, anon=401, operations=400)),
    ("loan", "get", "/api/v1/loans/{loan}/", None, visible(200, who=SEES_LOAN)),
    ("repayment (empty)", "post", "/api/v1/loans/{loan}/repayments/", {}, row(403, anon=401, operations=400, integration=400)),
    ("push snapshot (empty)", "put", "/api/v1/enterprises/{review_enterprise}/data/tax/", {}, row(403, anon=401, risk=400, integration=400)),
    ("reason codes", "get", "/api/v1/reason-codes/", None, row(200, anon=401, applicant=403, other_applicant=403, integration=403)),
    ("products", "get", "/api/v1/products/", None, row(200)),
    ("credit line", "get", "/api/v1/credit-lines/{line}/", None, visible(200, who=SEES_LOAN)),
    ("drawdown (no key)", "post", "/api/v1/credit-lines/{line}/drawdowns/",
     {"amount": "1000.00", "term_months": 3, "repayment_method": "equal_installment"},
     row(403, anon=401, applicant=400, other_applicant=404)),
    ("line freeze (no reason)", "post", "/api/v1/credit-lines/{line}/freeze/", {}, row(403, anon=401, rm=400, rm_other_branch=404, risk=400)),
    ("line unfreeze (no reason)", "post", "/api/v1/credit-lines/{line}/unfreeze/", {}, row(403, anon=401, rm=400, rm_other_branch=404, risk=400)),
    ("line adjust (empty)", "post", "/api/v1/credit-lines/{line}/adjust/", {}, row(403, anon=401, rm=400, rm_other_branch=404, risk=400)),
    ("line request approve (none)", "post", "/api/v1/credit-line-requests/999999/approve/", {},
     row(403, anon=401, risk=404, branch_approver=404, head_approver=404, committee=404)),
    ("drawdown receipt", "get", "/api/v1/drawdowns/{drawdown}/receipt/", None, visible(200, who=SEES_LOAN)),
    ("drawdown loan", "get", "/api/v1/loans/{line_loan}/", None, visible(200, who=SEES_LOAN)),
    ("enterprises list", "get", "/api/v1/enterprises/", None, row(200, anon=401)),
    ("applications list", "get", "/api/v1/applications/", None, row(200, anon=401)),
]


MULTIPART = {"documents upload": "multipart"}


def _cells(table):
    return [pytest.param(name, method, path, body, role, expected[role], id=f"{name}-{role}")
            for name, method, path, body, expected in table for role in ROLES]


def _assert_no_leak(response, world, *, status):
    if status in (401, 403, 404, 405, 302):
        text = response.content.decode(errors="replace")
        for secret in world["secrets"]:
            assert secret not in text, f"refused answer leaks {secret!r}"


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "method", "path", "body", "role", "expected"), _cells(API))
def test_api_matrix(world, name, method, path, body, role, expected):
    client = APIClient()
    user = world["users"][role]
    if user is not None:
        client.force_authenticate(user)
    url = path.format(**world)
    kwargs = {"format": MULTIPART.get(name, "json")} if body is not None else {}
    response = getattr(client, method)(url, body, **kwargs) if body is not None else getattr(client, method)(url)
    assert response.status_code != 500
    assert response.status_code == expected, f"{method.upper()} {url} as {role}: {response.status_code} {response.content[:300]!r}"
    _assert_no_leak(response, world, status=response.status_code)
    if response.status_code >= 400 and response.get("Content-Type", "").startswith("application/json"):
        assert {"detail", "errors"} <= set(response.json()), response.json()


# ---------------------------------------------------------------- lists never show what is not yours
@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES[1:])
def test_api_lists_show_only_what_the_role_may_see(world, role):
    client = APIClient()
    client.force_authenticate(world["users"][role])
    apps = {a["id"] for a in client.get("/api/v1/applications/?limit=200").json()}
    ents = {e["id"] for e in client.get("/api/v1/enterprises/").json()}
    case_ids = {world["review"], world["fast"]}
    if role in SEES_CASE:
        assert case_ids <= apps
    else:
        assert not apps & {world["review"], world["fast"], world["draft"]}
    # Enterprises: their owner, the branch's staff and head-office roles; integration pushes data to any.
    sees_enterprises = role in SEES_CASE or role == "integration"
    assert ({world["review_enterprise"], world["fast_enterprise"]} <= ents) == sees_enterprises
    if not sees_enterprises:
        assert not ents & {world["review_enterprise"], world["fast_enterprise"]}
    assert (world["draft"] in apps) == (role in SEES_DRAFT)


# ---------------------------------------------------------------- pages (session)
LOGIN = "login"  # a redirect to the login page
PAGES = [
    ("rm queue", "get", "/staff/cases/", row(404, anon=LOGIN, rm=200, rm_other_branch=200)),
    ("case page", "get", "/staff/cases/{review}/", visible(200, anon=LOGIN, applicant=404)),
    ("case page of a draft", "get", "/staff/cases/{draft}/", visible(200, who=SEES_DRAFT, anon=LOGIN, applicant=404)),
    ("case action send", "post", "/staff/cases/{review}/action/send/",
     row(404, anon=LOGIN, rm=302, branch_approver=302, head_approver=302, committee=302)),
    ("approver queue", "get", "/staff/approvals/", row(404, anon=LOGIN, branch_approver=200, head_approver=200, committee=200)),
    ("review page", "get", "/staff/approvals/{review}/", row(404, anon=LOGIN, branch_approver=200, head_approver=200, committee=200)),
    ("operations queue", "get", "/staff/operations/", row(404, anon=LOGIN, operations=200)),
    ("operations release (no order)", "post", "/staff/operations/{review}/action/release/", row(404, anon=LOGIN, operations=302)),
    ("operations release confirmation (no order)", "get", "/staff/operations/{review}/release/", row(404, anon=LOGIN)),
    ("staff contract page", "get", "/staff/contracts/{contract}/", visible(200, anon=LOGIN, applicant=404)),
    ("staff contract pdf", "get", "/staff/contracts/{contract}/pdf/", visible(200, anon=LOGIN, applicant=404)),
    ("staff contract schedule", "get", "/staff/contracts/{contract}/schedule.csv", visible(200, anon=LOGIN, applicant=404)),
    ("risk home", "get", "/staff/risk/", row(404, anon=LOGIN, risk=200, admin=200)),
    ("document download", "get", "/staff/documents/{document}/", visible(200, anon=LOGIN, applicant=404)),
    ("portal home", "get", "/portal/", row(404, anon=LOGIN, applicant=200, other_applicant=200)),
    ("portal application", "get", "/portal/applications/{fast}/", row(404, anon=LOGIN, applicant=200)),
    ("portal wizard documents", "get", "/portal/applications/{draft}/documents/", row(404, anon=LOGIN, applicant=200)),
    ("portal wizard identity", "get", "/portal/applications/{draft}/verify/", row(404, anon=LOGIN, applicant=200)),
    ("portal withdraw consent (none given)", "post", "/portal/applications/{draft}/action/withdraw_consent/",
     row(404, anon=LOGIN, applicant=302)),
    ("portal wizard of a submitted case", "get", "/portal/applications/{review}/review/", row(404, anon=LOGIN)),
    ("portal withdraw (disbursed)", "post", "/portal/applications/{fast}/action/withdraw/", row(404, anon=LOGIN, applicant=302)),
    ("portal contract page", "get", "/portal/contracts/{contract}/", visible(200, anon=LOGIN)),
    ("portal contract pdf", "get", "/portal/contracts/{contract}/pdf/", visible(200, anon=LOGIN)),
    ("portal loan", "get", "/portal/loans/{loan}/", visible(200, who=SEES_LOAN, anon=LOGIN)),
    ("portal credit line", "get", "/portal/credit-lines/{line}/", row(404, anon=LOGIN, applicant=200)),
    ("portal draw (empty)", "post", "/portal/credit-lines/{line}/draw/", row(404, anon=LOGIN, applicant=302)),
    ("portal drawdown receipt", "get", "/portal/drawdowns/{drawdown}/receipt/", visible(200, who=SEES_LOAN, anon=LOGIN)),
    ("staff credit line", "get", "/staff/credit-lines/{line}/", visible(200, anon=LOGIN, applicant=404)),
    ("staff line freeze (no reason)", "post", "/staff/credit-lines/{line}/change/freeze/",
     row(404, anon=LOGIN, rm=302, risk=302)),
    ("django admin", "get", "/admin/", row("admin-login", admin=200)),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "method", "path", "body", "role", "expected"),
                         _cells([(n, m, p, None, e) for n, m, p, e in PAGES]))
def test_page_matrix(world, name, method, path, body, role, expected):
    client = Client()
    user = world["users"][role]
    if user is not None:
        client.force_login(user)
    url = path.format(**world)
    response = getattr(client, method)(url)
    assert response.status_code != 500
    if expected == LOGIN:
        assert response.status_code == 302 and response["Location"].startswith("/login/"), (url, role, response.status_code)
    elif expected == "admin-login":
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), (url, role, response.status_code)
    else:
        assert response.status_code == expected, f"{method.upper()} {url} as {role}: {response.status_code}"
        if expected == 302:
            assert not response["Location"].startswith("/login/")
    _assert_no_leak(response, world, status=response.status_code)


# ---------------------------------------------------------------- every GET route, as the pages and API grow
def _routes():
    """Every URL pattern under /api/v1/, /staff/ and /portal/ with its path parameters (from the resolver)."""
    from django.urls import URLPattern, URLResolver, get_resolver

    out = []

    def walk(patterns, prefix):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                route = prefix + str(p.pattern)
                if route.startswith(("api/v1/", "staff/", "portal/")):
                    out.append("/" + route)

    walk(get_resolver().url_patterns, "")
    return sorted(set(out))


def _fill(route: str, world) -> str | None:
    import re

    kinds = {"contracts": "contract", "loans": "loan", "documents": "document", "enterprises": "review_enterprise",
             "customers": "review_enterprise", "credit-lines": "line", "drawdowns": "drawdown"}

    def value(match):
        name, before = match.group(2), route[:match.start()]
        segment = before.rstrip("/").rsplit("/", 1)[-1]
        if match.group(1) in ("int", "") and name in ("pk", "id"):
            return str(world[kinds.get(segment, "review")])
        if name == "source":
            return "tax"
        if name == "action":
            return "view"
        if name == "code":
            return "xinmiaodai"
        return None

    filled = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: value(m) or "\0", route)
    return None if "\0" in filled else filled


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["other_applicant", "rm_other_branch"])
def test_every_get_route_refuses_strangers_without_leaking(world, role):
    """Whatever routes the stages add, a stranger to the case gets no 200 with its data and never a 500."""
    api, page = APIClient(), Client()
    api.force_authenticate(world["users"][role])
    page.force_login(world["users"][role])
    checked = 0
    for route in _routes():
        url = _fill(route, world)
        if url is None:
            continue
        client = api if url.startswith("/api/") else page
        r = client.get(url)
        assert r.status_code != 500, url
        assert not (r.status_code == 200 and r.get("Content-Type", "").startswith(("application/pdf", "application/octet"))), \
            f"GET {url} as {role} downloads a file"
        if r.status_code == 200:
            text = r.content.decode(errors="replace")
            for secret in world["secrets"]:
                assert secret not in text, f"GET {url} as {role} shows {secret!r}"
        checked += 1
    assert checked >= 20
