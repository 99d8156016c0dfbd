"""No request gets a 5xx (issue #15): the cases a new user found, then a probe of every route.

The world is the access matrix's (personas and cases in every stage, built once for the module); every
request runs in a savepoint that is rolled back, so no probe sees another's effects."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests import test_access_matrix as matrix

world = matrix.world  # the fixture: the same personas and cases as the access matrix


def _send(client, method: str, url: str, body=None, *, content_type: str = "application/json"):
    from django.db import transaction

    with transaction.atomic():
        kwargs = {} if body is None else {"data": body, "content_type": content_type}
        response = getattr(client, method)(url, **kwargs)
        transaction.set_rollback(True)
    return response


def _api(world, role: str) -> APIClient:
    client = APIClient()
    if world["users"][role] is not None:
        client.force_authenticate(world["users"][role])
    return client


def _assert_invalid(response, *fields: str):
    assert response.status_code == 400, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) >= {"detail", "errors"}, body
    for field in fields:
        assert field in body["errors"], body


# ---------------------------------------------------------------- what the issue found
@pytest.mark.django_db
@pytest.mark.parametrize("query", ["limit=abc", "limit=-1", "limit=1e9", "limit=0", "limit=1.5", "limit=%D9%A1",
                                   "offset=abc", "offset=-5", "offset=%00"])
@pytest.mark.parametrize("path", ["/api/v1/applications/", "/api/v1/enterprises/"])
def test_a_malformed_page_parameter_is_a_400_naming_it(world, path, query):
    response = _send(_api(world, "risk"), "get", f"{path}?{query}")
    _assert_invalid(response, query.split("=")[0])


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/applications/", "/api/v1/enterprises/", "/api/v1/warnings/"])
def test_a_limit_above_the_maximum_is_capped_and_the_list_pages_on(world, path):
    client = _api(world, "risk")
    for query in ("limit=99999999999999999999&offset=99999999999999999999", f"limit={'9' * 5000}&offset={'9' * 5000}"):
        response = _send(client, "get", f"{path}?{query}")
        assert response.status_code == 200, response.content[:300]
    response = _send(client, "get", f"{path}?limit=1")
    assert response.status_code == 200
    rows = response.json() if isinstance(response.json(), list) else response.json()["results"]
    assert len(rows) <= 1


@pytest.mark.django_db
def test_the_application_list_keeps_its_contract_a_json_array_with_paging_in_the_headers(world):
    client = _api(world, "risk")
    everything = _send(client, "get", "/api/v1/applications/?limit=200").json()
    assert isinstance(everything, list) and len(everything) >= 3
    first = _send(client, "get", "/api/v1/applications/?limit=1")
    second = _send(client, "get", "/api/v1/applications/?limit=1&offset=1")
    assert [a["id"] for a in first.json() + second.json()] == [a["id"] for a in everything[:2]]
    assert int(first["X-Total-Count"]) == len(everything)
    assert 'rel="next"' in first["Link"]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "query", "field"), [
    ("/api/v1/applications/", "status=nonsense", "status"),
    ("/api/v1/warnings/", "severity=purple", "severity"),
])
def test_a_malformed_filter_is_a_400_naming_it(world, path, query, field):
    _assert_invalid(_send(_api(world, "risk"), "get", f"{path}?{query}"), field)


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["true", "[1, 2]", '"text"', "12", "null", "1e999"])
@pytest.mark.parametrize(("role", "path"), [
    ("applicant", "/api/v1/enterprises/"),
    ("rm", "/api/v1/applications/{review}/notes/"),
    ("rm", "/api/v1/applications/{review}/collateral/"),
    ("applicant", "/api/v1/applications/{review}/respond/"),
    ("operations", "/api/v1/contracts/{contract}/sign/"),
])
def test_a_json_body_that_is_not_an_object_is_a_400(world, role, path, body):
    response = _send(_api(world, role), "post", path.format(**world), body)
    _assert_invalid(response, "non_field_errors")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/applications/{id}/", "/api/v1/applications/{id}/notes/", "/api/v1/contracts/{id}/",
                                  "/api/v1/loans/{id}/", "/staff/cases/{id}/", "/portal/applications/{id}/"])
@pytest.mark.parametrize("pk", ["99999999999999999999", "9223372036854775808", "2147483648"])
def test_an_id_beyond_the_database_integer_range_is_a_404(world, path, pk):
    role = "applicant" if path.startswith("/portal/") else "rm"
    client = _api(world, role)
    if not path.startswith("/api/"):
        from django.test import Client

        client = Client()
        client.force_login(world["users"][role])
    assert _send(client, "get", path.format(id=pk)).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "method", "path", "body"), [
    ("rm", "post", "/api/v1/applications/{review}/notes/", '{"text": "\\u0000"}'),
    ("applicant", "post", "/api/v1/applications/{review}/withdraw/", '{"reason": ["\\u0000"]}'),
    ("applicant", "post", "/api/v1/enterprises/", '{"legal_form": {"a": 1}}'),
    ("applicant", "post", "/api/v1/loans/{loan}/survey/", '{"score": 5, "comment": true}'),
    ("applicant", "post", "/api/v1/enterprises/", '{"employees": 1e999}'),
    ("applicant", "post", "/api/v1/enterprises/", '{"name": ' + "[" * 50_000 + "]" * 50_000 + "}"),
    ("anon", "post", "/api/v1/auth/token/", '{"username": "' + "u" * 300 + '", "password": "x"}'),
])
def test_a_json_field_of_the_wrong_type_or_text_postgres_cannot_hold_is_a_4xx(world, role, method, path, body):
    response = _send(_api(world, role), method, path.format(**world), body)
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "url", "expected"), [
    ("anon", "/help/?q=%00", 400), ("risk", "/staff/analytics/?product=%00", 400), ("risk", "/postloan/warnings/?branch=%00", 400),
    ("rm", "/api/v1/warnings/?branch=%00", 400), ("anon", "/api/v1/help/?q=a%00b", 400), ("rm", "/staff/cases/%00/", 400),
    ("risk", "/api/v1/analytics/summary/?date_to=0001-01-01", 400), ("risk", "/staff/analytics/?date_from=9999-12-31", 200),
])
def test_a_nul_character_or_a_date_at_the_calendars_end_in_the_query_is_refused(world, role, url, expected):
    client = _api(world, role)
    if world["users"][role] is not None:
        client.force_login(world["users"][role])
    assert _send(client, "get", url).status_code == expected


@pytest.mark.django_db
@pytest.mark.parametrize("next_url", ["abc", "https://evil.example/", "//evil.example/", "/staff/cases/\x00/"])
def test_a_case_action_goes_back_to_next_only_on_this_site(world, next_url):
    from django.test import Client

    client = Client()
    client.force_login(world["users"]["rm"])
    response = _send(client, "post", f"/staff/cases/{world['review']}/action/note/", f"text=x&next={next_url}",
                     content_type="application/x-www-form-urlencoded")
    assert response.status_code in (302, 400)
    assert response.status_code == 400 or response["Location"] == f"/staff/cases/{world['review']}/"


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "method", "url", "expected"), [
    ("admin", "get", "/admin/applications/loanapplication/1/change/?_to_field=", 400),
    ("admin", "post", "/admin/auth/group/1/delete/?_to_field=", 400),
    ("admin", "get", "/admin/contracts/contract/{contract}/change/", 200),
    ("anon", "options", "/api/docs/", 405),
])
def test_pages_outside_the_api_the_probe_found(world, role, method, url, expected):
    client = _api(world, role)
    if world["users"][role] is not None:
        client.force_login(world["users"][role])
    assert _send(client, method, url.format(**world)).status_code == expected


# ---------------------------------------------------------------- the probe: every route, malformed
# Every route of the resolver (the API, the pages, the admin), as anonymous and as each persona that gets past its
# door (a well-formed request that is not refused: 401/403, a login redirect, 404 for every id of the world, 405).
# Then the malformed requests: path parameters the database cannot hold or store, query parameters of every wrong
# kind under every name the view reads (and the names a page's own links use, and those every list reads), bodies of
# every JSON type, form-encoded, multipart and empty, and odd headers. By default each malformed request is sent once
# per route and method, dealt round the personas that got past the door, and the admin (Django's views, alike for
# every model) gets one of them per route in turn (ADMIN_SAMPLE); PROBE_FULL=1 sends every one as every persona
# (≈ 43,000 requests, seven minutes on Postgres).
PERSONAS = ["anon", "applicant", "rm", "branch_approver", "committee", "operations", "risk", "admin", "integration"]
BAD_INTS = ["0", "2147483648", "9223372036854775808", "99999999999999999999"]
BAD_TEXTS = ["nonexistent", "%00", "99999999999999999999", "x" * 300, "%E2%80%AE%F0%9F%92%A5"]
BAD_VALUES = ["abc", "-1", "99999999999999999999", "1e999", "", "\x00", "2024-02-30", "0001-01-01", "9999-12-31", "x" * 3000]
LIST_KEYS = ["limit", "offset", "page", "q", "status", "next", "format"]
JSON_VALUES = [{"a": [1, {"b": None}]}, [1, "x"], 99999999999999999999, -1.5, True, "\x00", "x" * 5000, "2024-02-30",
               "0001-01-01", "9999-12-31", None]
NOT_OBJECTS = ["[1, 2]", '"text"', "12", "true", "null", "{", '{"a": ' * 50_000 + "1" + "}" * 50_000]
FORM = "application/x-www-form-urlencoded"
ODD_HEADERS = {"Accept-Language": "xx-ZZ;q=abc", "Idempotency-Key": "k" * 300, "Authorization": "Token " + "0" * 300,
               "If-Modified-Since": "yesterday", "Range": "bytes=9-1"}
# The path segment before an id says what it is: the world's candidates, tried in turn until one is not refused.
IDS = {"applications": ["review", "draft", "fast"], "cases": ["review", "draft"], "approvals": ["review", "loan_approval"],
       "operations": ["review", "fast"], "contracts": ["contract"], "loans": ["loan"], "documents": ["document"],
       "enterprises": ["review_enterprise"], "customers": ["review_enterprise"], "collateral": ["collateral"],
       "guarantors": ["guarantor"], "prospects": ["prospect"], "imports": ["repayment_import"], "credit-lines": ["line"],
       "drawdowns": ["drawdown"]}
TEXT_DEFAULTS = {"source": "tax", "code": "xinmiaodai", "object_id": "1", "content_type_id": "1", "id": "1"}
ADMIN_SAMPLE = 1  # malformed requests per admin route by default


@pytest.fixture(scope="module")
def probe_world(world, django_db_blocker):
    """The matrix's world, and objects for the routes it has none for: a collateral item and a guarantor on the case
    under review, an extension of the loan waiting for approval, an imported prospect and a repayment file."""
    import datetime as dt
    from decimal import Decimal

    from applications.models import LoanApplication
    from marketing.services import prospect_list_import
    from postloan.imports import repayment_import_preview
    from postloan.models import Loan
    from postloan.services import restructure_request
    from tests.factories import uscc_for
    from underwriting.models import COLLATERAL_KINDS
    from underwriting.providers import make_resident_id
    from underwriting.services import collateral_add, guarantor_add

    users = world["users"]
    with django_db_blocker.unblock():  # inside the world's module transaction, rolled back with it
        review = LoanApplication.objects.get(pk=world["review"])
        loan = Loan.objects.get(pk=world["loan"])
        collateral = collateral_add(application=review, by=users["rm"], kind=COLLATERAL_KINDS[0][0], description="厂房",
                                    valuation=Decimal("1500000.00"), appraiser="上海某评估公司", appraised_on=dt.date.today())
        guarantor = guarantor_add(application=review, by=users["rm"], kind="person", name="李四",
                                  id_number=make_resident_id(3, birth_year=1975))
        extension = restructure_request(loan=loan, kind="extension", reason="经营周转需要", by=users["risk"], extra_months=3)
        prospects = prospect_list_import(kind="industrial_park", partner_name="张江园区", file_name="p.csv", by=users["rm"],
                                         content=f"uscc,name\n{uscc_for('AB', seed=31)},张江某科技有限公司\n".encode())
        batch = repayment_import_preview(file_name="r.csv", by=users["operations"], content=(
            f"loan_id,reference,amount,paid_on\n{loan.pk},PROBE-1,100.00,{dt.date.today()}\n").encode())
    return {**world, "collateral": collateral.pk, "guarantor": guarantor.pk, "loan_approval": extension.pk,
            "prospect": prospects.prospects.get().pk, "repayment_import": batch.pk}


class _Reads:
    """The names a view reads from request.GET / request.POST (QueryDict), recorded while a request runs."""

    names: set[str] | None = None

    @classmethod
    def patched(cls):
        import contextlib
        from unittest import mock

        from django.http import QueryDict

        stack = contextlib.ExitStack()
        for method in ("get", "getlist", "__getitem__", "__contains__"):
            original = getattr(QueryDict, method)

            def recording(self, key, *args, _original=original):
                if cls.names is not None and isinstance(key, str):
                    cls.names.add(key)
                return _original(self, key, *args)

            stack.enter_context(mock.patch.object(QueryDict, method, recording))
        return stack


def _routes() -> list[tuple[str, dict, object]]:
    """(template, {parameter: converter kind, or the alternatives of a regex group}, view) of every URL pattern."""
    import re

    from django.urls import URLPattern, URLResolver, get_resolver
    from django.urls.resolvers import RegexPattern

    out = []

    def text(pattern):
        if not isinstance(pattern, RegexPattern):
            return str(pattern), {name: type(conv).__name__.removesuffix("Converter").lower()
                                  for name, conv in pattern.converters.items()}
        params = {}

        def group(m):
            params[m.group(1)] = m.group(2).split("|") if re.fullmatch(r"[\w|]+", m.group(2)) else "str"
            return f"<{m.group(1)}>"

        return re.sub(r"\(\?P<(\w+)>([^)]*)\)", group, str(pattern)).lstrip("^").rstrip("$"), params

    def walk(patterns, prefix, params):
        for p in patterns:
            part, more = text(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + part, {**params, **more})
            elif isinstance(p, URLPattern):
                out.append(("/" + prefix + part, {**params, **more}, p.callback))

    walk(get_resolver().url_patterns, "", {})
    return out


def _methods(view) -> list[str]:
    cls = getattr(view, "view_class", None) or getattr(view, "cls", None)
    if cls is None:
        return ["get", "post"]  # a function view: what it does not take answers 405, which is its door
    return [m for m in ("get", "post", "put", "patch", "delete") if hasattr(cls, m)]


def _fill(template: str, values: dict) -> str:
    import re

    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], template)


def _at_the_door(response) -> bool:
    if response is None:
        return False
    if response.status_code == 302:
        return response["Location"].startswith(("/login/", "/admin/login/"))
    return response.status_code in (401, 403, 404, 405)


class Probe:
    def __init__(self, world, *, full: bool):
        from django.urls import reverse

        self.world, self.full = world, full
        self.clients = {}
        for persona in PERSONAS:
            client = APIClient()
            user = world["users"][persona]
            if user is not None:
                client.force_login(user)  # pages
                client.force_authenticate(user)  # the API
            self.clients[persona] = client
        self.sent, self.statuses, self.failures = 0, {}, {}
        self.seen: dict[tuple[str, str], set[str]] = {}  # (route, path parameter) → values the pages link to
        self.query_names: dict[str, set[str]] = {}  # route → query parameter names the pages link with
        # The admin site has one door (AdminSite.has_permission): asked once, at its index.
        self.admin = reverse("admin:index")
        self.admin_personas = [p for p in PERSONAS if not _at_the_door(self.send(p, "get", self.admin))]

    def send(self, persona: str, method: str, url: str, *, route: str = "", query=None, body: bytes | str = b"",
             content_type: str | None = None, headers: dict | None = None):
        """One request, in a savepoint rolled back; a 5xx or an exception the view let out is a failure."""
        from http.cookies import SimpleCookie
        from urllib.parse import urlencode

        from django.db import transaction

        client = self.clients[persona]
        cookies = SimpleCookie(client.cookies)  # a logout or a language switch is undone with the rest
        if query:
            url = f"{url}?{urlencode(query)}"
        self.sent += 1
        response, error = None, None
        try:
            with transaction.atomic():
                response = client.generic(method.upper(), url, body, content_type=content_type if body else None,
                                          headers=headers)
                transaction.set_rollback(True)
        except Exception as exc:  # the test client re-raises what the view let out: that is the 500
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        finally:
            client.cookies = cookies
        status = None if response is None else response.status_code
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status is not None and status >= 500:
            error = f"{status} {response.content[:200]!r}"
        if error:
            example = f"{method.upper()} {url[:200]} as {persona}, body {str(body)[:60]!r}, headers {headers}"
            self.failures.setdefault((route or url, method, error[:90]), [error, example, 0])[2] += 1
        if status == 200 and method == "get" and response.get("Content-Type", "").startswith("text/html"):
            self._learn(response.content.decode(errors="replace"), route)
        return response

    def _learn(self, html: str, route: str):
        """The path values (actions, codes, keys) and query names the page's links and forms use."""
        import re
        from urllib.parse import parse_qsl, unquote

        from django.urls import Resolver404, resolve

        for target in set(re.findall(r'(?:href|action)="([^"#]*)', html)):
            path, _sep, query = unquote(target.replace("&amp;", "&")).partition("?")
            if path.startswith("/"):
                try:
                    match = resolve(path)
                except Resolver404:
                    continue
                linked = "/" + match.route if not path.startswith(self.admin) else ""
                for name, value in match.kwargs.items():
                    if isinstance(value, str) and linked:
                        self.seen.setdefault((linked, name), set()).add(value)
            elif path == "":
                linked = route
            else:
                continue
            if linked and query:
                self.query_names.setdefault(linked, set()).update(k for k, _v in parse_qsl(query, keep_blank_values=True))

    def personas(self, template: str) -> list[str]:
        if not template.startswith(self.admin):
            return PERSONAS
        return self.admin_personas if not self.full else ["anon", *self.admin_personas]

    def fillings(self, template: str, params: dict) -> list[list[dict]]:
        """Per combination of text parameters (each action a page links to is its own), the well-formed fillings
        of the ids to try in turn: the world's objects named by the segment before each id."""
        import itertools

        texts, ids = {}, {}
        for name, kind in params.items():
            if isinstance(kind, list):
                texts[name] = kind[:1]
            elif kind != "int":
                texts[name] = sorted(self.seen.get((template, name), ())) or [TEXT_DEFAULTS.get(name, "x")]
            else:
                segment = template.split(f"<int:{name}>")[0].rstrip("/").rsplit("/", 1)[-1]
                keys = IDS.get(segment, [])
                ids[name] = [str(self.world[k]) for k in keys] or ["1"]
        tries = max((len(v) for v in ids.values()), default=1)
        id_fillings = [{name: values[min(i, len(values) - 1)] for name, values in ids.items()} for i in range(tries)]
        return [[{**dict(zip(texts, combo, strict=True)), **filling} for filling in id_fillings]
                for combo in itertools.product(*texts.values())]

    def route(self, template: str, params: dict, view, documented: set[str], *, index: int) -> bool:
        """Probe one route; True when some persona other than anonymous got past its door."""
        admin = template.startswith(self.admin)
        # The admin's views take GET and POST behind one door: by default, its GET answers for both.
        methods = ["get"] if admin and not self.full else _methods(view)
        past: dict[str, list[tuple[str, dict]]] = {}  # method → (persona, good filling)
        read: set[str] = set()
        door = []  # anonymous, refused: the door must hold against malformed paths too
        first_past: list[str] = []  # who got past the door of the first action or code: asked first for the others
        for k, tries in enumerate(self.fillings(template, params)):
            for persona in dict.fromkeys(first_past + self.personas(template)) if k and not self.full else self.personas(template):
                got_past = False
                for method in methods:
                    for values in tries:
                        _Reads.names = read
                        response = self.send(persona, method, _fill(template, values), route=template)
                        _Reads.names = None
                        if not _at_the_door(response):
                            past.setdefault(method, []).append((persona, values))
                            got_past = True
                            if not k and persona not in first_past:
                                first_past.append(persona)
                            break
                        if response is None or response.status_code != 404:
                            break  # refused for the role or the method: another id will not open it
                    if persona == "anon" and _at_the_door(response) and response.status_code != 405:
                        door.append((method, tries[0]))
                    if not got_past and _at_the_door(response) and response.status_code != 405:
                        break  # refused for who the persona is: the route's other methods have the same door
                if k and got_past and not self.full:
                    break  # a further action or code: the first persona past its door is enough
        if admin and not self.full and "get" in past and "post" in _methods(view):
            past["post"] = past["get"]
        names = read | documented | self.query_names.get(template, set())
        requests = [(method, pairs, variant) for method, pairs in past.items()
                    for variant in _variants(method, template, params, names)]
        if admin and not self.full and requests:
            # The admin is Django's, the same views for every model: a few malformed requests per route, in
            # turn through the list, so that across its routes every kind is sent.
            requests = (requests * 2)[index * ADMIN_SAMPLE % len(requests):][:ADMIN_SAMPLE]
        for i, (method, pairs, variant) in enumerate(requests):
            for persona, values in pairs if self.full else [pairs[i % len(pairs)]]:
                request = variant(values)
                self.send(persona, request.pop("method", method), route=template, **request)
        if admin and not self.full:
            door = [("get", tries[0])]  # anonymous was refused at the admin's door already: one malformed path each
        for i, (method, values) in enumerate(door if params else []):
            bad = _bad_paths(template, params, method)
            for variant in bad if self.full else bad[(index + i) % len(bad):][:1]:
                self.send("anon", method, route=template, **variant(values))
        return any(p != "anon" for pairs in past.values() for p, _v in pairs)


def _bad_paths(template: str, params: dict, method: str) -> list:
    body = {} if method == "get" else {"body": "{}", "content_type": "application/json"}
    return [lambda values, name=name, bad=bad: {"url": _fill(template, {**values, name: bad}), **body}
            for name, kind in params.items() for bad in (BAD_INTS if kind == "int" else BAD_TEXTS)]


def _variants(method: str, template: str, params: dict, names: set[str]) -> list:
    """The malformed requests of a route and method, each a function of the well-formed path values."""
    import json
    from urllib.parse import urlencode

    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    def at(**kwargs):
        return lambda values: {"url": _fill(template, values), **kwargs}

    out = _bad_paths(template, params, method)
    if method == "get":
        keys = sorted(names | set(LIST_KEYS))
        out += [at(query=dict.fromkeys(keys, value)) for value in BAD_VALUES]
        out.append(at(query=[(k, v) for k in keys for v in ("1", "abc")]))  # each name twice
        out.append(at(headers=ODD_HEADERS))
        if template.startswith("/api/"):
            out += [at(headers={"Accept": "text/html"}), lambda values: {"url": _fill(template, values), "method": "options"}]
        return out
    keys = sorted(names) or ["x"]
    # An object of each wrong field type where JSON is read (the API); the pages read forms: one object shows it.
    values = JSON_VALUES if template.startswith("/api/") else JSON_VALUES[:1]
    out += [at(body=json.dumps(dict.fromkeys(keys, value)), content_type="application/json") for value in values]
    if template.startswith("/api/"):
        out.append(at(body="{" + ", ".join(f'"{k}": 1e999' for k in keys) + "}", content_type="application/json"))
    out += [at(body=raw, content_type="application/json") for raw in NOT_OBJECTS]
    out += [at(body=urlencode(dict.fromkeys(keys, value)), content_type=FORM) for value in ("abc", "\x00", "99999999999999999999", "0001-01-01", "")]
    out.append(at(body=urlencode([(k, v) for k in keys for v in ("1", "abc")]), content_type=FORM))
    out.append(at())  # empty, no content type
    out.append(at(body=encode_multipart(BOUNDARY, {k: SimpleUploadedFile(f"{k}.pdf", b"\x00%PDF not really") for k in keys}),
                  content_type=MULTIPART_CONTENT))  # every field a file that is not what it claims
    out.append(at(body="{}", content_type="application/json; charset=utf-32", headers=ODD_HEADERS))
    out.append(at(query=dict.fromkeys(LIST_KEYS, "abc"), body="{}", content_type="application/json"))
    return out


def _request_fields() -> dict[str, set[str]]:
    """The body fields the OpenAPI schema documents, per path (`{id}` style)."""
    from drf_spectacular.generators import SchemaGenerator

    spec = SchemaGenerator().get_schema(request=None, public=True)
    schemas = spec.get("components", {}).get("schemas", {})
    out: dict[str, set[str]] = {}
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                schema = media.get("schema", {})
                schema = schemas.get(schema.get("$ref", "").rsplit("/", 1)[-1], schema)
                out.setdefault(path, set()).update(schema.get("properties", {}))
    return out


def _schema_path(template: str) -> str:
    import re

    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "{" + ("id" if m.group(1) == "pk" else m.group(1)) + "}", template)


@pytest.mark.django_db
def test_no_route_answers_a_5xx_to_anything(probe_world, capsys):
    import logging
    import os
    import time

    documented = _request_fields()
    # Routes with text parameters last: the pages probed before them show which actions and codes they link to.
    routes = sorted(_routes(), key=lambda r: any(kind != "int" for kind in r[1].values()))
    logging.disable(logging.CRITICAL)  # thousands of 4xx and suspicious requests by design; the 5xx are collected
    start = time.monotonic()
    try:
        probe = Probe(probe_world, full=os.environ.get("PROBE_FULL") == "1")
        with _Reads.patched():
            closed = [template for index, (template, params, view) in enumerate(routes)
                      if not probe.route(template, params, view, documented.get(_schema_path(template), set()), index=index)]
    finally:
        logging.disable(logging.NOTSET)
    seconds = time.monotonic() - start
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(probe.statuses.items(), key=lambda kv: str(kv[0])))
    with capsys.disabled():
        print(f"\nprobe: {probe.sent} requests to {len(routes)} routes in {seconds:.1f} s ({statuses}); "
              f"no persona got past the door of {len(closed)} routes: {', '.join(closed)}")
    report = [f"{route} {method.upper()}: {error} ×{n}\n    e.g. {example}"
              for (route, method, _key), (error, example, n) in sorted(probe.failures.items())]
    assert not report, f"{len(report)} kinds of request got a 5xx:\n" + "\n".join(report)
    # Most routes were reached past their door by someone (the rest need objects the world does not have).
    assert len(closed) <= len(routes) // 10, closed
