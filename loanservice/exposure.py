"""Where stages that hold exposure the conductor cannot name yet report it: the registry of credit-line contributors.

The borrower's total exposure (DESIGN.md "Revolving credit lines": each line at the larger of its limit and its
outstanding, term loans outstanding, offers approved but not yet taken, related parties') is summed by the
conductor (`casework.exposure`). Term loans and offers it reads itself; credit lines are a stage of their own that
registers here, in its `AppConfig.ready`, a callable taking enterprise ids:

    from loanservice.exposure import LineExposure, register_credit_lines

    def lines_exposure(enterprise_ids):            # each line at max(limit, outstanding)
        ...
        return LineExposure(amounts={enterprise_id: amount, ...}, loan_ids=drawdowns, application_ids=line_cases)

    register_credit_lines(lines_exposure)

`loan_ids` are the loans already counted inside a line (its drawdowns) and `application_ids` the applications whose
line is counted: the conductor leaves them out of term loans and of offers not taken, so nothing counts twice. The
kernel imports no stage, so the names come to it, as for the labels registry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class LineExposure:
    """What one contributor reports: an amount per enterprise, and what it already counts."""

    amounts: dict[int, Decimal] = field(default_factory=dict)
    loan_ids: frozenset[int] = frozenset()
    application_ids: frozenset[int] = frozenset()


LineContributor = Callable[[list[int]], LineExposure]

_lock = threading.Lock()
credit_line_contributors: list[LineContributor] = []


def register_credit_lines(contributor: LineContributor) -> None:
    """Add a contributor (once: registering the same callable again changes nothing)."""
    with _lock:
        if contributor not in credit_line_contributors:
            credit_line_contributors.append(contributor)


def unregister_credit_lines(contributor: LineContributor) -> None:
    with _lock:
        if contributor in credit_line_contributors:
            credit_line_contributors.remove(contributor)


def credit_lines_exposure(enterprise_ids: Iterable[int]) -> LineExposure:
    """Every contributor's report for these enterprises, added up."""
    ids = sorted(set(enterprise_ids))
    amounts: dict[int, Decimal] = {}
    loans: set[int] = set()
    applications: set[int] = set()
    if not ids:
        return LineExposure()
    for contributor in list(credit_line_contributors):
        part = contributor(ids)
        for enterprise_id, amount in part.amounts.items():
            amounts[enterprise_id] = amounts.get(enterprise_id, Decimal("0.00")) + Decimal(amount)
        loans |= set(part.loan_ids)
        applications |= set(part.application_ids)
    return LineExposure(amounts=amounts, loan_ids=frozenset(loans), application_ids=frozenset(applications))
