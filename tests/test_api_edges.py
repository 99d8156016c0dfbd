"""The malformed inputs issue #15 names answer 4xx, never 5xx: list parameters, JSON bodies of the wrong type, ids
beyond the database's integers. (The probe that walks every route with such inputs is still to come.)"""

from __future__ import annotations

import pytest

from tests.conftest import client_for
from tests.factories import ApplicantFactory, ApplicationFactory


@pytest.fixture
def world(products, org):
    owner = ApplicantFactory(username="edges_owner")
    return {"owner": owner, "rm": org["demo_rm"], "case": ApplicationFactory(seed=7, applicant=owner, stage="submitted")}


@pytest.mark.parametrize("limit", ["abc", "-1", "0", "1e9", "1.5"])
def test_a_bad_list_limit_is_a_400_naming_it(world, limit):
    response = client_for(world["owner"]).get("/api/v1/applications/", {"limit": limit})
    assert response.status_code == 400 and "limit" in response.json()["errors"]


def test_the_list_limit_and_status_filter_still_work(world):
    client = client_for(world["owner"])
    assert len(client.get("/api/v1/applications/", {"limit": "1"}).json()) == 1
    assert client.get("/api/v1/applications/", {"limit": "99999999999999999999"}).status_code == 200  # taken as 200
    assert client.get("/api/v1/applications/", {"status": "draft"}).json() == []
    assert client.get("/api/v1/applications/", {"status": "nonsense"}).status_code == 400


@pytest.mark.parametrize("body", ["true", "[1,2]", '"text"', "12", "null"])
@pytest.mark.parametrize("who, path", [("owner", "/api/v1/enterprises/"), ("owner", "/api/v1/applications/"),
                                       ("rm", "/api/v1/applications/{case}/notes/")])
def test_a_json_body_that_is_not_an_object_is_a_400(world, body, who, path):
    response = client_for(world[who]).post(path.format(case=world["case"].pk), data=body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["detail"]


def test_an_id_beyond_the_databases_integers_is_not_found(world):
    assert client_for(world["owner"]).get("/api/v1/applications/99999999999999999999/").status_code == 404
