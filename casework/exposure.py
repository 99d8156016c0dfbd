"""The borrower's total exposure (授信敞口) for routing and authority (DESIGN.md "Revolving credit lines").

Approvals, a stage below contracts and post-loan, cannot read loans: the conductor adds the exposure up here and hands
it to routing (`approvals.services.route_decide(..., exposure=...)`), where the authority matrix's amount bands compare
against **this request + what the borrower already has**, so a top-up cannot stay on the fast track by its own amount.

The parts, each named so a decision can be explained later (stored on the routing record and its audit event):

* `term_loans` — outstanding principal of the borrower's active loans (not those counted inside a credit line);
* `offers_not_taken` — offers approved and not yet taken (approved, contracting, signed, not disbursed), this
  request left out;
* `credit_lines` — each line at the larger of its limit and its outstanding (an expired line: its outstanding), from
  `creditlines.selectors.lines_exposure`, which also names the drawdown loans and line applications it counts so that
  term loans and offers leave them out;
* `related_parties` — the same three parts for the borrower's related enterprises: those with the same legal
  representative (the same resident ID number), the only relation the data holds (`applications.selectors.
  related_enterprises`). The bank's insider list (`approvals.RelatedParty`) is another matter: it sends the case to
  the committee whatever its amount.

Most borrowers have nothing with the bank yet. One statement reads the borrower's group (itself and its related
enterprises) and, per enterprise, whether it has anything the parts could count (a credit line, an active loan, an
offer not taken: EXISTS over the same selectors' querysets the sums use); only when one has are the parts summed
(three more statements). Read in the case's transaction every time, nothing cached: a loan booked a moment ago counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Exists, OuterRef

from applications.models import LoanApplication
from applications.selectors import enterprise_group, offers_not_taken, offers_not_taken_by_enterprise
from creditlines.selectors import lines_exposed, lines_exposure
from loanservice import crypto
from loanservice.prepared import PreparedRows
from postloan.selectors import loans_active, loans_outstanding_by_enterprise

ZERO = Decimal("0.00")
PARTS = ("term_loans", "offers_not_taken", "credit_lines", "related_parties")


@dataclass(frozen=True)
class Exposure:
    """This request and what the borrower (and its related enterprises) already has with the bank."""

    request: Decimal
    term_loans: Decimal = ZERO
    offers_not_taken: Decimal = ZERO
    credit_lines: Decimal = ZERO
    related_parties: Decimal = ZERO
    related: list[dict] = field(default_factory=list)  # each related enterprise: id, name, amount

    @property
    def existing(self) -> Decimal:
        return sum((getattr(self, part) for part in PARTS), ZERO)

    @property
    def total(self) -> Decimal:
        return self.request + self.existing

    def as_json(self) -> dict:
        return {"request": f"{self.request:.2f}", **{part: f"{getattr(self, part):.2f}" for part in PARTS},
                "existing": f"{self.existing:.2f}", "total": f"{self.total:.2f}",
                "related": [{**r, "amount": f"{r['amount']:.2f}"} for r in self.related]}


def _parts(enterprise_ids: list[int], *, exclude_application_ids: list[int]) -> dict[int, dict[str, Decimal]]:
    """term_loans, offers_not_taken and credit_lines per enterprise (a constant number of queries)."""
    lines = lines_exposure(enterprise_ids)
    loans = loans_outstanding_by_enterprise(enterprise_ids=enterprise_ids, exclude_loan_ids=lines.loan_ids)
    offers = offers_not_taken_by_enterprise(enterprise_ids=enterprise_ids,
                                            exclude_application_ids=[*exclude_application_ids, *lines.application_ids])
    return {e: {"term_loans": loans.get(e, ZERO), "offers_not_taken": offers.get(e, ZERO),
                "credit_lines": lines.amounts.get(e, ZERO)} for e in enterprise_ids}


_GROUP = PreparedRows(
    lambda pk, rep_index, application_pk: enterprise_group(pk=pk, rep_index=rep_index).annotate(
        has_lines=Exists(lines_exposed().filter(enterprise_id=OuterRef("pk"))),
        has_loans=Exists(loans_active().filter(enterprise_id=OuterRef("pk"))),
        has_offers=Exists(offers_not_taken(exclude_application_ids=[application_pk]).filter(enterprise_id=OuterRef("pk"))),
    ).order_by("pk").values_list("pk", "name", "has_lines", "has_loans", "has_offers"), int, str, int)


def _group(application: LoanApplication) -> list[tuple[int, str, bool, bool, bool]]:
    """(id, name, has a line, an active loan, an offer not taken) for the borrower and each related enterprise, by
    id: one statement, compiled once per process (loanservice.prepared)."""
    enterprise = application.enterprise
    return _GROUP.rows(enterprise.pk, crypto.blind_index(enterprise.legal_rep_id_number) or None, application.pk)


def application_exposure(application: LoanApplication) -> Exposure:
    """The exposure routing and authority see for this application: its amount plus each named part."""
    enterprise = application.enterprise
    group = _group(application)
    if not any(lines or loans or offers for _pk, _name, lines, loans, offers in group):
        return Exposure(request=application.amount)  # nothing to sum: every part is zero, no related amount
    related = [(pk, name) for pk, name, *_flags in group if pk != enterprise.pk]
    parts = _parts([enterprise.pk, *[pk for pk, _name in related]], exclude_application_ids=[application.pk])
    own = parts[enterprise.pk]
    others = [{"id": pk, "name": name, "amount": sum(parts[pk].values(), ZERO)} for pk, name in related]
    others = [r for r in others if r["amount"] > 0]
    return Exposure(request=application.amount, term_loans=own["term_loans"], offers_not_taken=own["offers_not_taken"],
                    credit_lines=own["credit_lines"], related_parties=sum((r["amount"] for r in others), ZERO),
                    related=others)


def exposure_shown(application: LoanApplication, routing=None) -> dict:
    """The exposure as staff see it (the case API's staff view, the review page): what the case was routed on when
    the routing record kept it (`basis: routing`), else as it stands now (`basis: current`)."""
    parts = (routing.facts or {}).get("exposure_parts") if routing is not None else None
    if parts:
        return {**parts, "basis": "routing"}
    return {**application_exposure(application).as_json(), "basis": "current"}
