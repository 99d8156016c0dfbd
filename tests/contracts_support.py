"""What the contract and disbursement tests do through the public API (accept, sign, push data) on cases made by
tests/factories.py, and a case with its whole package signed and sealed."""

from __future__ import annotations

import datetime as dt

from tests.conftest import borrower_sign_via_api, client_for
from tests.factories import ApplicationFactory, owner_view


def accept(client, pk: int) -> dict:
    r = client.post(f"/api/v1/applications/{pk}/accept-offer/")
    assert r.status_code == 200, r.content
    return r.json()


def contracts_of(pk: int):
    from contracts.models import Contract

    return list(Contract.objects.filter(application_id=pk).order_by("id"))


def signed_case(org, **kwargs):
    """A manual case with every contract signed by the customer and sealed by the bank (status signed)."""
    pk, owner, client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", **kwargs))
    return pk, owner, client, sign_all(org, client, accept(client, pk))


def sign_all(org, client, detail: dict) -> int:
    """The customer signs every contract of the package (borrower, then guarantor), then the bank seals."""
    for party in ("borrower", "guarantor"):
        for c in detail["contracts"]:
            if c["customer_party"] == party and c["status"] == "issued":
                r = (borrower_sign_via_api(client, c["id"]) if party == "borrower"
                     else client.post(f"/api/v1/contracts/{c['id']}/sign/", {"agree": True}, format="json"))
                assert r.status_code == 200, r.content
                break
    ops = client_for(org["demo_ops"])
    r = ops.post(f"/api/v1/contracts/{detail['contract']}/sign/", {"agree": True}, format="json")
    assert r.status_code == 200 and r.json()["application_status"] == "signed", r.content
    return detail["contract"]


def push_internal(enterprise_id: int, *, inflow: str, deposit: str, integration_user=None):
    """The bank's own ledger data for the enterprise (as an integration pushes it)."""
    from applications.models import Enterprise
    from underwriting.services import snapshot_push

    snapshot_push(enterprise=Enterprise.objects.get(pk=enterprise_id), source="internal", as_of=dt.date.today(),
                  payload={"settlement_inflow_12m": inflow, "settlement_inflow_prev_12m": inflow,
                           "avg_deposit_balance_6m": deposit, "npl_5y": False, "existing_exposure": "0.00"},
                  by=integration_user)
