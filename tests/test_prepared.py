"""Hot reads compiled once per process (loanservice.prepared, issue #20): the same rows, the same instances as the
ORM gives, the same refusals."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from applications.models import LoanApplication
from applications.selectors import application_read
from applications.services import lock_application
from loanservice.prepared import PreparedRead
from tests.factories import FastTrackApplicationFactory


def _same(a, b) -> None:
    for field in type(a)._meta.concrete_fields:
        assert getattr(a, field.attname) == getattr(b, field.attname), field.name


def test_a_prepared_read_gives_what_the_orm_gives(products, org):
    first, second = FastTrackApplicationFactory(seed=5, stage="draft"), FastTrackApplicationFactory(seed=6, stage="draft")
    for app in (first, second):  # compiled at the first, run again with the second key
        orm = LoanApplication.objects.select_related("product", "enterprise", "applicant").get(pk=app.pk)
        with CaptureQueriesContext(connection) as ctx:
            read = application_read(app.pk)
            related = (read.product, read.enterprise, read.applicant)  # read along: no further query
        assert len(ctx) == 1 and read.pk == app.pk
        _same(orm, read)
        for mine, theirs in zip(related, (orm.product, orm.enterprise, orm.applicant), strict=True):
            _same(mine, theirs)
        assert read.enterprise.legal_rep_id_number == orm.enterprise.legal_rep_id_number != ""  # decrypted
        assert read._state.adding is False and read._state.db == "default"
        with transaction.atomic():
            locked = lock_application(app.pk)
            _same(orm, locked)
            locked.save()  # an instance like any other (the FSM's concurrency check passes)


@pytest.mark.django_db(transaction=True)  # autocommit, as outside any request's transaction
def test_a_prepared_read_refuses_what_the_orm_refuses():
    with pytest.raises(LoanApplication.DoesNotExist):
        application_read(2_000_000_001)
    with pytest.raises(TransactionManagementError):
        lock_application(2_000_000_001)  # FOR UPDATE outside a transaction
    with transaction.atomic(), pytest.raises(LoanApplication.DoesNotExist):
        lock_application(2_000_000_001)
    two_keys = PreparedRead(lambda pk: LoanApplication.objects.filter(pk=pk, applicant_id=pk))
    with pytest.raises(ValueError, match="one parameter"):
        two_keys.get(1)
