"""One lock order everywhere (issue #15): within a transaction the application is locked before its approval
case, its contracts and its disbursement order, and those before the loan and its installments — so two writers
of one case queue instead of deadlocking. The locks each transaction takes are recorded along a whole journey."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
import time_machine
from django.db import connections

from tests.approvals_support import fast_passwords  # noqa: F401
from tests.conftest import client_for
from tests.contracts_support import accept, sign_all
from tests.factories import ApplicantFactory, ApplicationFactory, FastTrackLoanFactory, owner_view

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords")]
RANK = {"LoanApplication": 0, "ApprovalCase": 1, "Contract": 2, "DisbursementOrder": 3, "Loan": 4, "Installment": 5}


@pytest.fixture
def locks(monkeypatch):
    """(transaction number, model) for every select_for_update, in the order taken."""
    from django.db.models.query import QuerySet

    taken: list[tuple[int, str]] = []
    began = [0]
    connection = connections["default"]
    set_autocommit, select_for_update = connection.set_autocommit, QuerySet.select_for_update

    def counting(autocommit, *args, **kwargs):
        if not autocommit:  # an outermost transaction.atomic begins
            began[0] += 1
        return set_autocommit(autocommit, *args, **kwargs)

    def recording(self, *args, **kwargs):
        taken.append((began[0], self.model.__name__))
        return select_for_update(self, *args, **kwargs)

    from loanservice.prepared import PreparedRead

    prepared_get = PreparedRead.get

    def recording_prepared(self, key):  # a prepared FOR UPDATE read (lock_application) takes its lock here
        if self._shape().for_update:
            taken.append((began[0], self._shape().model.__name__))
        return prepared_get(self, key)

    monkeypatch.setattr(connection, "set_autocommit", counting)
    monkeypatch.setattr(QuerySet, "select_for_update", recording)
    monkeypatch.setattr(PreparedRead, "get", recording_prepared)
    return taken


def _out_of_order(taken):
    per_transaction = defaultdict(list)
    for number, model in taken:
        if model in RANK:
            per_transaction[number].append(model)
    return {n: models for n, models in per_transaction.items()
            if [RANK[m] for m in models] != sorted(RANK[m] for m in models)}, per_transaction


def test_a_manual_case_from_decision_to_repayment_locks_in_one_order(products, org, locks):
    from contracts.models import Contract
    from postloan.models import Loan
    from postloan.services import repayment_record

    pk, _owner, client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=7))
    detail = accept(client, pk)
    ops = client_for(org["demo_ops"])
    loan_contract = Contract.objects.get(pk=detail["contract"])
    r = ops.post(f"/api/v1/contracts/{loan_contract.pk}/correct/", {"reason": "账号有误", "account": {"number": "6222020000000001"}},
                 format="json")
    assert r.status_code in (200, 201), r.content
    detail = client.get(f"/api/v1/applications/{pk}/").json()
    contract_id = sign_all(org, client, detail)
    r = ops.post(f"/api/v1/contracts/{contract_id}/disburse/", HTTP_IDEMPOTENCY_KEY="order-1")
    assert r.status_code == 201, r.content
    loan = Loan.objects.get(application_id=pk)
    first = loan.installments.order_by("n").first()
    with time_machine.travel(dt.datetime.combine(first.due_date, dt.time(12)), tick=False):
        repayment_record(loan=loan, amount=first.total, paid_on=first.due_date, reference="LO-1", by=org["demo_ops"])

    wrong, per_transaction = _out_of_order(locks)
    assert not wrong, wrong
    # The journey did take the locks in question together: the release the application and its order.
    assert any(models[:2] == ["LoanApplication", "DisbursementOrder"] for models in per_transaction.values()), per_transaction
    assert any({"LoanApplication", "Contract"} <= set(models) for models in per_transaction.values()), per_transaction


def test_the_fast_track_from_submission_to_the_systems_release_locks_in_one_order(products, org, locks):
    FastTrackLoanFactory(owner=ApplicantFactory(username="lock_order_ft"), seed=63)
    wrong, per_transaction = _out_of_order(locks)
    assert not wrong, wrong
    assert any(models[:2] == ["LoanApplication", "DisbursementOrder"] for models in per_transaction.values()), per_transaction
