"""Cases in every stage, made through the public API and the lifecycle conductor (never by poking models).

Used by the browser journeys, the security, fault and schema tests. Each function works both inside a
test transaction (where on-commit Celery dispatch never fires: the worker's step is run here) and in a
transactional test with eager Celery (where it already ran: the conductor's steps are idempotent)."""

from __future__ import annotations

from tests.conftest import client_for, draft_via_api, new_applicant, uscc_for


def _app(pk: int):
    from applications.models import LoanApplication

    return LoanApplication.objects.get(pk=pk)


def submitted_case(*, seed: int = 7, owner=None, product: str = "secured-operating", amount: str = "2000000.00",
                   term: int = 24, method: str = "equal_principal", grades: str = "ABC", tier: str = "good") -> int:
    """Submitted and scored; for the default secured product: under review with the default branch's RM."""
    from casework import lifecycle

    owner = owner or new_applicant(f"owner{seed}")
    client = client_for(owner)
    pk = draft_via_api(client, uscc=uscc_for(grades, seed=seed, tier=tier), product=product, amount=amount, term=term,
                       method=method, seed=seed)
    r = client.post(f"/api/v1/applications/{pk}/submit/")
    assert r.status_code == 200, r.content
    if _app(pk).status == "under_review" and not _app(pk).route:
        lifecycle.score_and_route(pk)
    return pk


def visit_answers(application) -> dict:
    from underwriting.selectors import questionnaire_for

    answers = {}
    for q in questionnaire_for(application.product):
        if q.qtype == "yes_no":
            answers[q.code] = True
        elif q.choices:
            answers[q.code] = q.choices[0]
        else:
            answers[q.code] = "600000" if q.qtype == "number" else "正常经营"
    return answers


def pending_approval_case(*, seed: int = 7, owner=None, notes: str = "现场核实经营正常", recommendation: str = "经营稳定，建议批准") -> int:
    from casework import lifecycle
    from underwriting.services import site_visit_record

    pk = submitted_case(seed=seed, owner=owner)
    application = _app(pk)
    assert application.status == "under_review" and application.route == "branch", (application.status, application.route)
    site_visit_record(application=application, by=application.relationship_manager, mode="onsite", notes=notes,
                      answers=visit_answers(application))
    lifecycle.case_send_to_approval(application_id=pk, user=application.relationship_manager, recommendation=recommendation)
    assert _app(pk).status == "pending_approval"
    return pk


def borrower_signed_case(*, approver, seed: int = 7, owner=None, comment: str = "同意") -> tuple[int, int]:
    """Approved by `approver`, accepted and signed by the borrower: waiting for the bank's seal."""
    from casework import lifecycle

    pk = pending_approval_case(seed=seed, owner=owner)
    lifecycle.case_decide(application_id=pk, user=approver, decision="approve", comment=comment)
    application = _app(pk)
    lifecycle.offer_accept(application_id=pk, user=application.applicant)
    contract = application.contracts.get(kind="loan")  # secured cases also have a mortgage contract (#6)
    lifecycle.contract_sign(contract_id=contract.pk, user=application.applicant, party="borrower")
    return pk, contract.pk


def fast_track_disbursed(*, seed: int = 1, owner=None, amount: str = "300000.00") -> tuple[int, int, int]:
    """信秒贷 all the way: (application, contract, loan)."""
    from casework import lifecycle
    from postloan.models import Loan

    pk = submitted_case(seed=seed, owner=owner, product="xinmiaodai", amount=amount, term=12, method="equal_installment",
                        grades="AB", tier="prime")
    assert _app(pk).status == "approved", _app(pk).status
    lifecycle.offer_accept(application_id=pk, user=_app(pk).applicant)
    contract = _app(pk).contracts.get()
    lifecycle.contract_sign(contract_id=contract.pk, user=_app(pk).applicant, party="borrower")
    lifecycle.fast_track_complete(contract.pk)
    assert _app(pk).status == "disbursed"
    return pk, contract.pk, Loan.objects.get(application_id=pk).pk
