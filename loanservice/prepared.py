"""Hot reads compiled once per process (issue #20): `PreparedRead` for whole instances by one key, `PreparedRows`
for plain columns by several arguments.

Django compiles a queryset to SQL on every evaluation. For a wide read — a case with its product, enterprise and
applicant, ~110 columns — the compiling costs more than the rest: 1.4 ms of the 2 ms of CPU that
`lock_application` took, and a case reads its row that way four times. A `PreparedRead` keeps what the compiler
produced for one queryset shape (the SQL, the columns' converters, the populators of the related objects) and runs
it again with another key: the same statement, the same model instances (`from_db`, the fields' converters, so
encrypted fields decrypt as usual), at a third of the cost.

    CASE_FOR_UPDATE = PreparedRead(lambda pk: LoanApplication.objects.select_for_update(of=("self",))
                                   .select_related("product", "enterprise").filter(pk=pk))
    application = CASE_FOR_UPDATE.get(pk)       # DoesNotExist when there is no such row

Only for a shape whose one varying parameter is the key: the shape is compiled with a marker value, which must
appear exactly once among the statement's parameters (the others are constants of the shape). `get(key)` for a
filter on a unique column; `all(key)` for the rows of one key in the shape's order (a case's snapshots). A key
that is not an integer (a token) needs a `marker` of its type, a value no row has.

    TOKEN = PreparedRead(lambda key: Token.objects.select_related("user").filter(key=key), marker="(no such key)")
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.db import connections, transaction
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=Model)
_SHAPES: weakref.WeakSet = weakref.WeakSet()  # every prepared read of this process (forget_compiled)


def forget_compiled() -> None:
    """Every prepared read compiles again at its next use, as in a process that has not asked yet (tests: the first
    request of a fresh process compiles the shapes with whatever its user and arguments are)."""
    for shape in list(_SHAPES):
        with shape._lock:
            shape._compiled = None
_MARK = -7_391_234_567_891  # a key no row has: where the real key goes in the compiled statement's parameters


class _Compiled:
    def __init__(self, queryset: QuerySet, marker: Any = _MARK) -> None:
        db = queryset.db
        compiler = queryset.query.get_compiler(using=db)
        with transaction.atomic(using=db, savepoint=False):  # a FOR UPDATE shape compiles only in a transaction
            sql, params = compiler.as_sql()
        self.params = list(params)
        self.slot = [i for i, p in enumerate(self.params) if type(p) is type(marker) and p == marker]
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


class _CompiledOnce:
    """A shape compiled at its first use in this process (once, under a lock: `_compile()`), forgotten by
    `forget_compiled()`."""

    def __init__(self) -> None:
        self._compiled = None
        self._lock = threading.Lock()
        _SHAPES.add(self)

    def _compile(self):
        raise NotImplementedError

    def _shape(self):
        compiled = self._compiled
        if compiled is None:
            with self._lock:
                if self._compiled is None:
                    self._compiled = self._compile()
                compiled = self._compiled
        return compiled


class PreparedRead(_CompiledOnce, Generic[M]):
    """One queryset shape, `build(key)`, compiled at its first use in this process (on the database the queryset
    reads from then: the project has one)."""

    def __init__(self, build: Callable[[Any], QuerySet[M]], *, marker: Any = _MARK) -> None:
        super().__init__()
        self._build = build
        self._marker = marker

    def _compile(self) -> _Compiled:
        return _Compiled(self._build(self._marker), self._marker)

    def _rows(self, key: Any, shape: _Compiled, size: int | None) -> list:
        connection = connections[shape.db]
        if shape.for_update and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = list(shape.params)
        params[shape.slot[0]] = key
        with connection.cursor() as cursor:
            cursor.execute(shape.sql, params)
            rows = cursor.fetchmany(size) if size is not None else cursor.fetchall()
        if rows and shape.converters:
            rows = list(shape.compiler.apply_converters(rows, shape.converters))
        return rows

    def _instance(self, shape: _Compiled, row) -> M:
        obj = shape.model.from_db(shape.db, shape.init_list, row[shape.start:shape.end])
        for populator in shape.related:
            populator.populate(row, obj)
        return obj

    def get(self, key: Any) -> M:
        shape = self._shape()
        rows = self._rows(key, shape, 2)
        if not rows:
            raise shape.model.DoesNotExist(f"{shape.model._meta.object_name} matching query does not exist.")
        if len(rows) > 1:
            raise shape.model.MultipleObjectsReturned(f"get() returned more than one {shape.model._meta.object_name}")
        return self._instance(shape, rows[0])

    def all(self, key: Any) -> list[M]:
        """Every row of the shape for this key, in its order."""
        shape = self._shape()
        return [self._instance(shape, row) for row in self._rows(key, shape, None)]


# PreparedRows: a `values_list` shape with several arguments (ids, text, dates) run again with other values, without
# the ORM compiling the EXISTS subqueries or the UNION each time (1.5 ms of CPU a case for routing's two reads).
# Integer markers inside a 32-bit key's range (auth.User's id is one): Django answers a lookup beyond the column's
# range with an empty result, not with SQL, so a 64-bit marker compiled nothing for such a key.
_INT_MARK = 2_147_480_000

_MARKERS = {int: lambda i: _INT_MARK + i, str: lambda i: f"\x1fprepared-argument-{i}\x1f",
            dt.date: lambda i: dt.date(1, 1, 1) + dt.timedelta(days=i)}


class PreparedRows(_CompiledOnce):
    """A read of plain columns (`values_list`) whose parameters are its builder's arguments, compiled once per
    process like `PreparedRead`: `rows(*args)` runs the compiled statement with these values and returns
    the tuples the ORM's values_list would (the backend's converters applied: SQLite's decimals, dates, booleans).

        GROUP = PreparedRows(lambda pk, index: Enterprise.objects.filter(Q(pk=pk) | Q(rep_bidx=index))
                             .values_list("pk", "name"), int, str)
        GROUP.rows(enterprise.pk, None)     # None where a value is missing: `= NULL` matches nothing

    The builder is called once with a marker per argument, of the kind given (int, str or date); each argument must
    reach the statement's parameters as it is, at least once (no hashing, no casting: pass a blind index, not the
    value it indexes), else the shape is refused when first compiled."""

    def __init__(self, build: Callable[..., QuerySet], *kinds: type) -> None:
        super().__init__()
        self._build, self._kinds = build, kinds

    def _compile(self) -> tuple:
        marks = [_MARKERS[kind](i) for i, kind in enumerate(self._kinds)]
        queryset = self._build(*marks)
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        # the backend's converters of the selected columns (SQLite's decimals come as floats without them)
        converters = compiler.get_converters([col for col, _sql, _alias in compiler.select[:compiler.col_count]])
        where = {(type(m), m): (i, False) for i, m in enumerate(marks)}
        # a backend that passes dates as ISO text (SQLite) gets the argument as ISO text too
        where.update({(str, m.isoformat()): (i, True) for i, m in enumerate(marks) if type(m) is dt.date})
        slots = [(pos, *where[(type(p), p)]) for pos, p in enumerate(params)
                 if isinstance(p, (int, str, dt.date)) and (type(p), p) in where]
        missing = set(range(len(marks))) - {i for _pos, i, _iso in slots}
        if missing:
            raise ValueError(f"prepared rows: arguments {sorted(missing)} do not reach the statement as they are")
        return sql, list(params), slots, queryset.db, converters

    def rows(self, *args: Any) -> list[tuple]:
        sql, template, slots, db, converters = self._shape()
        params = list(template)
        for pos, i, iso in slots:
            params[pos] = args[i].isoformat() if iso and args[i] is not None else args[i]
        connection = connections[db]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if not converters:
            return rows
        converted = []
        for row in rows:
            row = list(row)
            for pos, (functions, expression) in converters.items():
                for convert in functions:
                    row[pos] = convert(row[pos], expression, connection)
            converted.append(tuple(row))
        return converted
