"""Reads of plain columns compiled once per process (issue #20), beside `loanservice.prepared` (whole instances by
one key): a `values_list` shape with several arguments — ids, text, dates — run again with other values, without
the ORM compiling the EXISTS subqueries or the UNION each time (1.5 ms of CPU a case for routing's two reads)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.models import QuerySet

# Integer markers inside a 32-bit key's range (auth.User's id is one): Django answers a lookup beyond the column's
# range with an empty result, not with SQL, so a 64-bit marker compiled nothing for such a key.
_INT_MARK = 2_147_480_000

_MARKERS = {int: lambda i: _INT_MARK + i, str: lambda i: f"\x1fprepared-argument-{i}\x1f",
            dt.date: lambda i: dt.date(1, 1, 1) + dt.timedelta(days=i)}


class PreparedRows:
    """A read of plain columns (`values_list`) whose parameters are its builder's arguments, compiled once per
    process like `loanservice.prepared.PreparedRead`: `rows(*args)` runs the compiled statement with these values and returns
    the tuples the ORM's values_list would (the backend's converters applied: SQLite's decimals, dates, booleans).

        GROUP = PreparedRows(lambda pk, index: Enterprise.objects.filter(Q(pk=pk) | Q(rep_bidx=index))
                             .values_list("pk", "name"), int, str)
        GROUP.rows(enterprise.pk, None)     # None where a value is missing: `= NULL` matches nothing

    The builder is called once with a marker per argument, of the kind given (int, str or date); each argument must
    reach the statement's parameters as it is, at least once (no hashing, no casting: pass a blind index, not the
    value it indexes), else the shape is refused when first compiled."""

    def __init__(self, build: Callable[..., QuerySet], *kinds: type) -> None:
        self._build, self._kinds = build, kinds
        self._compiled: tuple | None = None
        self._lock = threading.Lock()

    def _shape(self) -> tuple:
        compiled = self._compiled
        if compiled is None:
            with self._lock:
                if self._compiled is None:
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
                    self._compiled = (sql, list(params), slots, queryset.db, converters)
                compiled = self._compiled
        return compiled

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
