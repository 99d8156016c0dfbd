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

import datetime as dt
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


_MARKERS = {int: lambda i: _MARK - 1 - i, str: lambda i: f"\x1fprepared-argument-{i}\x1f",
            dt.date: lambda i: dt.date(1, 1, 1) + dt.timedelta(days=i)}


class PreparedRows:
    """A read of plain columns (`values_list`) whose parameters are its builder's arguments, compiled once per
    process like PreparedRead: `rows(*args)` runs the compiled statement with these values and returns the driver's
    tuples (no field converters: for columns the driver returns as they are wanted — ids, text, booleans, timestamps).

        GROUP = PreparedRows(lambda pk, index: Enterprise.objects.filter(Q(pk=pk) | Q(rep_bidx=index))
                             .values_list("pk", "name"), int, str)
        GROUP.rows(enterprise.pk, None)     # None where a value is missing: `= NULL` matches nothing

    The builder is called once with a marker per argument, of the kind given (int, str or date); each argument must
    reach the statement's parameters as it is, at least once (no hashing, no casting: pass a blind index, not the
    value it indexes), else the shape is refused when first compiled."""

    def __init__(self, build: Callable[..., QuerySet], *kinds: type) -> None:
        self._build, self._kinds = build, kinds
        self._compiled: tuple[str, list, list[tuple[int, int]], str] | None = None
        self._lock = threading.Lock()

    def _shape(self) -> tuple[str, list, list[tuple[int, int]], str]:
        compiled = self._compiled
        if compiled is None:
            with self._lock:
                if self._compiled is None:
                    marks = [_MARKERS[kind](i) for i, kind in enumerate(self._kinds)]
                    queryset = self._build(*marks)
                    sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
                    where = {(type(m), m): i for i, m in enumerate(marks)}
                    slots = [(pos, where[(type(p), p)]) for pos, p in enumerate(params)
                             if isinstance(p, (int, str, dt.date)) and (type(p), p) in where]
                    missing = set(range(len(marks))) - {i for _pos, i in slots}
                    if missing:
                        raise ValueError(f"prepared rows: arguments {sorted(missing)} do not reach the statement as they are")
                    self._compiled = (sql, list(params), slots, queryset.db)
                compiled = self._compiled
        return compiled

    def rows(self, *args: Any) -> list[tuple]:
        sql, template, slots, db = self._shape()
        params = list(template)
        for pos, i in slots:
            params[pos] = args[i]
        with connections[db].cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
