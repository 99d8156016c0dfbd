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
    # FOR UPDATE outside a transaction: refused where the database has it (SQLite has none, and the ORM ignores it there)
    with pytest.raises(TransactionManagementError if connection.features.has_select_for_update else LoanApplication.DoesNotExist):
        lock_application(2_000_000_001)
    with transaction.atomic(), pytest.raises(LoanApplication.DoesNotExist):
        lock_application(2_000_000_001)
    two_keys = PreparedRead(lambda pk: LoanApplication.objects.filter(pk=pk, applicant_id=pk))
    with pytest.raises(ValueError, match="one parameter"):
        two_keys.get(1)


def test_several_rows_and_a_text_key(products, org):
    """`all(key)`: an enterprise's snapshots in the shape's order, as the ORM gives them; a token (a text key, its
    own marker) read with its user, as DRF's token authentication reads it."""
    from rest_framework.authtoken.models import Token
    from rest_framework.exceptions import AuthenticationFailed

    from loanservice.drf import PreparedTokenAuthentication
    from underwriting.models import DataSnapshot
    from underwriting.selectors import latest_ok_snapshots

    app = FastTrackApplicationFactory(seed=7, stage="approved")
    shape = PreparedRead(lambda enterprise_id: DataSnapshot.objects.filter(enterprise_id=enterprise_id)
                         .order_by("source", "-id"))
    orm = list(DataSnapshot.objects.filter(enterprise_id=app.enterprise_id).order_by("source", "-id"))
    with CaptureQueriesContext(connection) as ctx:
        read = shape.all(app.enterprise_id)
    assert len(ctx) == 1 and [s.pk for s in read] == [s.pk for s in orm] and len(read) >= 7
    for mine, theirs in zip(read, orm, strict=True):
        _same(mine, theirs)
    assert shape.all(2_000_000_001) == []
    assert {s: snap.pk for s, snap in latest_ok_snapshots(app.enterprise).items() if snap} == {
        snap.source: snap.pk for snap in reversed(orm) if snap.status == DataSnapshot.OK}
    token = Token.objects.create(user=app.applicant)
    user, found = PreparedTokenAuthentication().authenticate_credentials(token.key)
    assert (user.pk, found.pk) == (app.applicant_id, token.key)

    from rest_framework.authentication import TokenAuthentication

    def refusal(auth, key):  # what it says (DRF's own words, in the request's language)
        with pytest.raises(AuthenticationFailed) as refused:
            auth.authenticate_credentials(key)
        return str(refused.value.detail)

    assert refusal(PreparedTokenAuthentication(), "0" * 40) == refusal(TokenAuthentication(), "0" * 40)
    app.applicant.is_active = False
    app.applicant.save()
    inactive = refusal(PreparedTokenAuthentication(), token.key)
    assert inactive == refusal(TokenAuthentication(), token.key) != refusal(TokenAuthentication(), "0" * 40)
