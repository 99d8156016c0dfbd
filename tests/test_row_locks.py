"""Two bugs the load test found (issue #9), kept from coming back.

1. Locking a case locked its product and enterprise rows too (SELECT … FOR UPDATE with select_related and no
   `of`): every submission and every scoring of the same product queued behind one another, and so did every
   new application of that product (its foreign-key check needs a KEY SHARE lock on the product row). At 10
   submissions/s the p50 went from 35 ms to 260 ms with requests waiting on the product's row.
2. django-fsm-2's refresh_from_db switches the field's `protected` flag off and on again on the shared Field
   object: two threads of one gunicorn worker refreshing at once made the other's refresh raise
   "Direct status modification is not allowed" (a 500 at the submit endpoint, once in ~200 under load).
"""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection, transaction

from tests.concurrency import held_elsewhere
from tests.conftest import client_for, draft_via_api, using_postgres
from tests.factories import ApplicantFactory, uscc_for


def _two_drafts():
    from applications.models import LoanApplication

    owner = ApplicantFactory(username="lock_owner")
    client = client_for(owner)
    first = draft_via_api(client, uscc=uscc_for("AB", seed=41), seed=41)
    second = draft_via_api(client, uscc=uscc_for("AB", seed=42), seed=42)
    return LoanApplication.objects.get(pk=first), LoanApplication.objects.get(pk=second)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not using_postgres(), reason="row locks need Postgres (SQLite serialises writers)")
def test_locking_a_case_does_not_lock_its_product_or_enterprise(products, org):
    from applications.models import LoanApplication
    from applications.services import lock_application

    first, second = _two_drafts()
    with held_elsewhere(lambda: lock_application(first.pk)):
        with transaction.atomic():
            with connection.cursor() as cur:
                cur.execute("SET LOCAL lock_timeout = '2s'")
            # Another case of the same product, locked at once (NOWAIT raises if any joined row is taken).
            locked = LoanApplication.objects.select_for_update(nowait=True, of=("self",)).get(pk=second.pk)
            assert lock_application(second.pk).pk == locked.pk
            # A new application of the same product and enterprise: its key checks do not wait either.
            LoanApplication.objects.create(applicant=first.applicant, enterprise=first.enterprise, product=first.product,
                                           amount=first.amount, term_months=12, repayment_method="equal_installment",
                                           purpose="周转")
            # The case itself is still locked by the holder.
            with pytest.raises(OperationalError):
                with transaction.atomic():
                    LoanApplication.objects.select_for_update(nowait=True).get(pk=first.pk)


@pytest.mark.django_db
def test_refresh_from_db_never_relies_on_the_shared_protected_flag(products, org, monkeypatch):
    """Another thread setting `protected` back to True in the middle of our refresh (the race) must not matter."""
    from django_fsm import FSMField

    from applications.models import LoanApplication

    first, _second = _two_drafts()
    stale = LoanApplication.objects.get(pk=first.pk)
    LoanApplication.objects.filter(pk=first.pk).update(status=LoanApplication.Status.UNDER_REVIEW)
    # The flag as a concurrent thread would leave it: protected, whatever this thread sets.
    monkeypatch.setattr(FSMField, "protected", property(lambda self: True, lambda self, value: None), raising=False)
    stale.refresh_from_db()
    assert stale.status == LoanApplication.Status.UNDER_REVIEW
    with pytest.raises(AttributeError):  # still protected against direct assignment
        stale.status = LoanApplication.Status.DRAFT
