"""Hot reads compiled once per process (issue #20).

Django compiles a queryset to SQL on every evaluation. For a wide read — a case with its product, enterprise and
applicant, ~110 columns — the compiling costs more than the rest: 1.4 ms of the 2 ms of CPU that
`lock_application` took, and a case reads its row that way four times. A `PreparedRead` keeps what the compiler
produced for one queryset shape (the SQL, the columns' converters, the populators of the related objects) and runs
it again with another key: the same statement, the same model instances (`from_db`, the fields' converters, so
encrypted fields decrypt as usual), at a third of the cost.

    CASE_FOR_UPDATE = PreparedRead(lambda pk: LoanApplication.objects.select_for_update(of=("self",))
                                   .select_related("product", "enterprise").filter(pk=pk))
    application = CASE_FOR_UPDATE.get(pk)       # DoesNotExist when there is no such row

Only for a shape whose one parameter is the key (a filter on the primary key or another unique column): the
shape is compiled with a marker value, which must appear exactly once among the statement's parameters.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.db import connections, transaction
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=Model)
_MARK = -7_391_234_567_891  # a key no row has: where the real key goes in the compiled statement's parameters


class _Compiled:
    def __init__(self, queryset: QuerySet) -> None:
        db = queryset.db
        compiler = queryset.query.get_compiler(using=db)
        with transaction.atomic(using=db, savepoint=False):  # a FOR UPDATE shape compiles only in a transaction
            sql, params = compiler.as_sql()
        self.params = list(params)
        self.slot = [i for i, p in enumerate(self.params) if p == _MARK]
        if len(self.slot) != 1:
            raise ValueError(f"a prepared read takes one parameter, the key; this shape has {self.params}")
        self.db, self.sql, self.compiler = db, sql, compiler
        self.for_update = queryset.query.select_for_update and connections[db].features.has_select_for_update
        self.converters = compiler.get_converters([s[0] for s in compiler.select])
        klass_info = compiler.klass_info
        self.model = klass_info["model"]
        fields = klass_info["select_fields"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.init_list = [f[0].target.attname for f in compiler.select[self.start:self.end]]
        self.related = get_related_populators(klass_info, compiler.select, db)


class PreparedRead(Generic[M]):
    """One queryset shape, `build(key)`, compiled at its first use in this process (on the database the queryset
    reads from then: the project has one)."""

    def __init__(self, build: Callable[[Any], QuerySet[M]]) -> None:
        self._build = build
        self._compiled: _Compiled | None = None
        self._lock = threading.Lock()

    def _shape(self) -> _Compiled:
        compiled = self._compiled
        if compiled is None:
            with self._lock:
                compiled = self._compiled = self._compiled or _Compiled(self._build(_MARK))
        return compiled

    def get(self, key: Any) -> M:
        shape = self._shape()
        connection = connections[shape.db]
        if shape.for_update and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = list(shape.params)
        params[shape.slot[0]] = key
        with connection.cursor() as cursor:
            cursor.execute(shape.sql, params)
            rows = cursor.fetchmany(2)
        if not rows:
            raise shape.model.DoesNotExist(f"{shape.model._meta.object_name} matching query does not exist.")
        if len(rows) > 1:
            raise shape.model.MultipleObjectsReturned(f"get() returned more than one {shape.model._meta.object_name}")
        row = rows[0]
        if shape.converters:
            row = next(iter(shape.compiler.apply_converters([row], shape.converters)))
        obj = shape.model.from_db(shape.db, shape.init_list, row[shape.start:shape.end])
        for populator in shape.related:
            populator.populate(row, obj)
        return obj
