"""Set-up helpers for the contract and disbursement tests: cases brought to the stage under test through the
public API and the lifecycle conductor (the same steps the journeys take), never by poking models."""

from __future__ import annotations

import datetime as dt
import itertools

from tests.conftest import client_for, draft_via_api, new_applicant, uscc_for

_seq = itertools.count(1)


def submit(client, pk: int) -> str:
    """Submit; run the scoring step here when no commit happened to dispatch it (tests without transaction=True)."""
    from applications.models import LoanApplication
    from casework import lifecycle

    r = client.post(f"/api/v1/applications/{pk}/submit/")
    assert r.status_code == 200, r.content
    application = LoanApplication.objects.get(pk=pk)
    if application.status == LoanApplication.Status.UNDER_REVIEW and not application.route:
        lifecycle.score_and_route(pk)
    return LoanApplication.objects.get(pk=pk).status


def fast_track_offer(*, seed: int = 1, amount: str = "300000.00", term: int = 12, method: str = "equal_installment"):
    """A 信秒贷 case decided automatically (approved), and its owner's API client."""
    owner = new_applicant(f"ft{seed}_{next(_seq)}")
    client = client_for(owner)
    pk = draft_via_api(client, uscc=uscc_for("AB", seed=seed), amount=amount, term=term, method=method, seed=seed)
    assert submit(client, pk) == "approved"
    return pk, owner, client


def manual_case_approved(org, *, seed: int = 7, product: str = "secured-operating", amount: str = "2000000.00",
                         term: int = 24, method: str = "equal_principal", conditions: list[dict] | None = None):
    """A case routed to the default branch, visited, sent to approval and approved by the branch approver
    (with the approver's conditions precedent, if any). Returns (pk, owner, owner's API client)."""
    from applications.models import LoanApplication
    from casework import lifecycle
    from underwriting.selectors import questionnaire_for
    from underwriting.services import site_visit_record

    owner = new_applicant(f"mc{seed}_{next(_seq)}")
    client = client_for(owner)
    pk = draft_via_api(client, uscc=uscc_for("ABC", seed=seed, tier="good"), product=product, amount=amount, term=term,
                       method=method, seed=seed)
    assert submit(client, pk) == "under_review"
    application = LoanApplication.objects.get(pk=pk)
    answers = {}
    for q in questionnaire_for(application.product):
        answers[q.code] = True if q.qtype == "yes_no" else (q.choices[0] if q.choices else ("600000" if q.qtype == "number" else "正常"))
    site_visit_record(application=application, by=application.relationship_manager, mode="onsite", notes="现场核实经营正常",
                      answers=answers)
    lifecycle.case_send_to_approval(application_id=pk, user=application.relationship_manager, recommendation="经营稳定，建议批准")
    lifecycle.case_decide(application_id=pk, user=org["demo_branch_approver"], decision="approve", comment="同意",
                          conditions=conditions or [])
    assert LoanApplication.objects.get(pk=pk).status == "approved"
    return pk, owner, client


def accept(client, pk: int) -> dict:
    r = client.post(f"/api/v1/applications/{pk}/accept-offer/")
    assert r.status_code == 200, r.content
    return r.json()


def contracts_of(pk: int):
    from contracts.models import Contract

    return list(Contract.objects.filter(application_id=pk).order_by("id"))


def signed_case(org, **kwargs):
    """A manual case with every contract signed by the customer and sealed by the bank (status signed)."""
    pk, owner, client = manual_case_approved(org, **kwargs)
    return pk, owner, client, sign_all(org, client, accept(client, pk))


def sign_all(org, client, detail: dict) -> int:
    """The customer signs every contract of the package (borrower, then guarantor), then the bank seals."""
    for party in ("borrower", "guarantor"):
        for c in detail["contracts"]:
            if c["customer_party"] == party and c["status"] == "issued":
                r = client.post(f"/api/v1/contracts/{c['id']}/sign/", {"agree": True}, format="json")
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
