"""Exactly one Loan under concurrent releases: parallel requests, each thread on its own database connection,
on Postgres (row locks) and on the embedded SQLite default (BEGIN IMMEDIATE: the losers wait their turn and get
a 409, not a 503 "database is locked")."""

from __future__ import annotations

import pytest

from tests.concurrency import run_in_parallel
from tests.conftest import client_for
from tests.contracts_support import signed_case

pytestmark = [
    pytest.mark.django_db(transaction=True),
]
THREADS = 6


@pytest.fixture(autouse=True)
def _outbound(settings, tmp_path):
    settings.CORE_BANKING_OUTBOUND_DIR = tmp_path / "outbound"
    settings.CORE_BANKING_BACKEND = "sandbox"


def _release(user, contract_id: int, key_for):
    def post(i: int):
        r = client_for(user).post(f"/api/v1/contracts/{contract_id}/disburse/", HTTP_IDEMPOTENCY_KEY=key_for(i))
        return r.status_code, r.json()

    return post


def test_concurrent_releases_with_different_keys_make_exactly_one_loan(products, org):
    from contracts.models import CoreBankingOutbound, DisbursementOrder
    from postloan.models import Loan

    pk, owner, client, contract_id = signed_case(org, seed=7)
    results = run_in_parallel(THREADS, _release(org["demo_ops"], contract_id, lambda i: f"race-{i}"), what="a release")
    assert all(isinstance(r, tuple) for r in results), results
    codes = sorted(code for code, _body in results)
    assert codes == [201] + [409] * (THREADS - 1), results
    winner = next(body for code, body in results if code == 201)
    losers = [body for code, body in results if code == 409]
    assert all(body["state"] == "released" for body in losers)

    assert Loan.objects.filter(application_id=pk).count() == 1
    assert Loan.objects.get(application_id=pk).pk == winner["loan"]
    order = DisbursementOrder.objects.get(application_id=pk)
    assert order.status == "released" and order.idempotency_key == f"race-{results.index((201, winner))}"
    assert CoreBankingOutbound.objects.filter(order=order).count() == 1


def test_concurrent_repeats_of_one_key_all_get_the_same_loan(products, org):
    from postloan.models import Loan

    pk, owner, client, contract_id = signed_case(org, seed=7)
    results = run_in_parallel(THREADS, _release(org["demo_ops"], contract_id, lambda i: "same-key"), what="a release")
    assert all(isinstance(r, tuple) for r in results), results
    assert {code for code, _body in results} == {201}, results
    assert len({body["loan"] for _code, body in results}) == 1
    assert Loan.objects.filter(application_id=pk).count() == 1
