"""Reads of the contracts stage: the operations queue, a case's contract package, outbound records."""

from __future__ import annotations

import datetime as dt

from django.db.models import Prefetch

from applications.models import LoanApplication

from .models import Contract, CoreBankingOutbound, DisbursementOrder


def contracting_cases(*, limit: int = 200) -> list[LoanApplication]:
    """Cases in contracting with their current contracts (two queries whatever the count)."""
    current = Contract.objects.exclude(status=Contract.Status.VOIDED).order_by("id")
    return list(LoanApplication.objects.filter(status=LoanApplication.Status.CONTRACTING)
                .select_related("enterprise", "product", "branch")
                .prefetch_related(Prefetch("contracts", queryset=current, to_attr="current_contracts"))
                .order_by("updated_at")[:limit])


def disbursements_pending(*, limit: int = 200) -> list[DisbursementOrder]:
    return list(DisbursementOrder.objects.filter(status=DisbursementOrder.Status.PENDING)
                .select_related("application__enterprise", "application__product", "contract")
                .order_by("created_at")[:limit])


def disbursements_recent(*, limit: int = 20) -> list[DisbursementOrder]:
    return list(DisbursementOrder.objects.filter(status=DisbursementOrder.Status.RELEASED)
                .select_related("application__enterprise", "outbound").order_by("-released_at")[:limit])


def core_banking_pending(*, older_than: dt.datetime, limit: int = 500) -> list[int]:
    return list(CoreBankingOutbound.objects.filter(status=CoreBankingOutbound.Status.PENDING, created_at__lt=older_than)
                .values_list("pk", flat=True)[:limit])
