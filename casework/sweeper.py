"""The sweeper: background steps that never ran (a broker outage, a killed worker) are dispatched again, and
committee resolutions nobody recorded are reminded of.

Every task it re-sends is idempotent, so a step that did run is not doubled.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from applications.models import LoanApplication
from approvals.services import committee_resolution_remind
from casework import tasks
from contracts import tasks as contract_tasks
from contracts.models import Contract
from contracts.selectors import core_banking_pending

GRACE = dt.timedelta(seconds=30)


def sweep(*, now=None, grace: dt.timedelta = GRACE) -> dict:
    now = now or timezone.now()
    unscored = list(LoanApplication.objects.filter(status=LoanApplication.Status.UNDER_REVIEW, route="",
                                                   scoring_requested_at__lt=now - grace).values_list("pk", flat=True)[:500])
    for pk in unscored:
        tasks.score_and_route.apply_async(args=[pk], retry=False)
    unsealed = list(Contract.objects.filter(status=Contract.Status.BORROWER_SIGNED, application__route="auto",
                                            signatures__party="borrower", signatures__signed_at__lt=now - grace)
                    .values_list("pk", flat=True)[:500])
    for pk in unsealed:
        tasks.fast_track_complete.apply_async(args=[pk], retry=False)
    # Sealed but never released: a worker died between the bank's seal and the disbursement (two transactions).
    unreleased = list(Contract.objects.filter(status=Contract.Status.SIGNED, application__route="auto",
                                              application__status=LoanApplication.Status.SIGNED, signatures__party="bank",
                                              signatures__signed_at__lt=now - grace).values_list("pk", flat=True)[:500])
    for pk in unreleased:
        tasks.fast_track_complete.apply_async(args=[pk], retry=False)
    # Released disbursements whose core-banking record was never sent (broker or core banking down).

    unsent = core_banking_pending(older_than=now - grace)
    for pk in unsent:
        contract_tasks.core_banking_send.apply_async(args=[pk], retry=False)
    # Committee cases voted (or lapsed) whose resolution nobody has recorded: a reminder, so nothing waits unseen.
    reminded = committee_resolution_remind(now=now)
    return {"rescored": len(unscored), "resealed": len(unsealed), "released": len(unreleased), "resent": len(unsent),
            "committee_reminded": reminded}
