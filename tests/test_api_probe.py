"""No request gets a 5xx (issue #15): the cases a new user found.

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
