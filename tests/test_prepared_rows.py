"""Plain-column reads compiled once per process (loanservice.prepared.PreparedRows, issue #20): the rows the ORM gives for
each set of arguments, in one statement; a shape whose argument does not reach the statement as it is, refused."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from applications.models import LoanApplication
from tests.factories import FastTrackApplicationFactory


def test_prepared_rows_give_what_the_orm_gives_and_refuse_a_transformed_argument(products, org):
    """PreparedRows: the values_list rows the ORM gives for each set of arguments (None matches nothing), one
    statement; a shape whose argument is hashed on the way (an encrypted field's lookup) is refused when compiled."""
    import datetime as dt

    from django.db.models import Q

    from applications.models import Enterprise
    from loanservice.prepared import PreparedRows

    first, second = FastTrackApplicationFactory(seed=8, stage="draft"), FastTrackApplicationFactory(seed=9, stage="draft")

    def build(pk, name, since):
        return (LoanApplication.objects.filter(Q(pk=pk) | Q(enterprise__name=name), created_at__date__gte=since)
                .order_by("pk").values_list("pk", "status"))

    rows = PreparedRows(build, int, str, dt.date)
    today = dt.date.today() - dt.timedelta(days=1)
    for pk, name in ((first.pk, second.enterprise.name), (second.pk, None), (-1, None)):
        with CaptureQueriesContext(connection) as ctx:
            got = rows.rows(pk, name, today)
        assert len(ctx) == 1
        expected = LoanApplication.objects.filter(Q(pk=pk) | Q(enterprise__name=name) if name else Q(pk=pk),
                                                  created_at__date__gte=today).order_by("pk").values_list("pk", "status")
        assert got == list(expected)
    assert rows.rows(first.pk, second.enterprise.name, today) == [(first.pk, "draft"), (second.pk, "draft")]

    hashed = PreparedRows(lambda number: Enterprise.objects.filter(legal_rep_id_number=number).values_list("pk"), str)
    with pytest.raises(ValueError, match="do not reach the statement"):
        hashed.rows("110101199001011234")


def test_prepared_rows_give_the_orm_types_on_every_backend(products, org):
    """Decimals come back as Decimal, dates as dates (SQLite's driver gives floats and text without the backend's
    converters: `make run`'s demo seed failed on a collateral's valuation × LTV)."""
    import datetime as dt
    from decimal import Decimal

    from loanservice.prepared import PreparedRows

    app = FastTrackApplicationFactory(seed=10, stage="draft")
    rows = PreparedRows(lambda pk: LoanApplication.objects.filter(pk=pk).values_list("amount", "created_at"), int)
    got = rows.rows(app.pk)
    assert got == list(LoanApplication.objects.filter(pk=app.pk).values_list("amount", "created_at"))
    assert isinstance(got[0][0], Decimal) and isinstance(got[0][1], dt.datetime)


def test_roles_of_a_lazy_request_user_in_a_fresh_process(org):
    """request.user is a SimpleLazyObject: the roles' read, compiled by the first request of a process, must not
    look at the user's class (every staff page answered 500 in a fresh `make run` when it did)."""
    from django.contrib.auth import get_user_model
    from django.utils.functional import SimpleLazyObject

    from loanservice import roles

    user = get_user_model().objects.filter(groups__isnull=False).order_by("pk").first()  # a staff member of `org`
    roles._GROUPS._compiled = None  # as in a process that has not asked yet
    lazy = SimpleLazyObject(lambda: get_user_model().objects.get(pk=user.pk))
    assert roles.user_roles(lazy) == frozenset(user.groups.values_list("name", flat=True)) != frozenset()
