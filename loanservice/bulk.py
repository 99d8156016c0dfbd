"""Set-based writes that Django's ORM does slowly.

`rows_update` writes the same fields of many rows in one statement per batch. Django's `bulk_update` builds one
`CASE WHEN id = … THEN …` per field with a branch per row: building it costs the Python process more than the rest of
close of business for a chunk of loans, and Postgres evaluates it row by row against every branch. On Postgres this
joins the table to a VALUES list instead (`UPDATE … FROM (VALUES …)`): linear on both sides. Elsewhere (SQLite in the
quick tests) it is `bulk_update`.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, router
from django.db.models.fields import NOT_PROVIDED


def rows_update(model, objs: Sequence, fields: Sequence[str], *, batch_size: int = 1000) -> int:
    """UPDATE `fields` of each object in `objs` (model instances with their pk) to the values they hold; returns the
    rows written. Like `bulk_update`: no signals, no `save()`, auto_now fields are not touched."""
    objs = list(objs)
    if not objs or not fields:
        return 0
    db = router.db_for_write(model)
    connection = connections[db]
    if connection.vendor != "postgresql":
        return model.objects.using(db).bulk_update(objs, fields, batch_size=batch_size)
    meta, quote = model._meta, connection.ops.quote_name
    pk = meta.pk
    columns = [meta.get_field(name) for name in fields]
    # Each value cast to its column's type: a NULL or a literal in a VALUES list has no type of its own.
    casts = [f"%s::{pk.rel_db_type(connection) if pk.is_relation else pk.db_type(connection)}"] + [
        f"%s::{field.db_type(connection)}" for field in columns]
    row_sql = "(" + ", ".join(casts) + ")"
    names = ", ".join(quote(f"v_{k}") for k in range(len(casts)))
    assignments = ", ".join(f"{quote(field.column)} = v.{quote(f'v_{k + 1}')}" for k, field in enumerate(columns))
    written = 0
    with connection.cursor() as cursor:
        for start in range(0, len(objs), batch_size):
            part = objs[start:start + batch_size]
            params = []
            for obj in part:
                params.append(pk.get_db_prep_save(obj.pk, connection))
                params.extend(field.get_db_prep_save(getattr(obj, field.attname), connection) for field in columns)
            cursor.execute(f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "  # noqa: S608 - names from the model
                           f"FROM (VALUES {', '.join([row_sql] * len(part))}) AS v({names}) "
                           f"WHERE t.{quote(pk.column)} = v.{quote('v_0')}", params)
            written += cursor.rowcount
    return written


def rows_insert(model, fields: Sequence[str], rows: Sequence[tuple], *, returning: bool = False,
                batch_size: int = 2000) -> list[int]:
    """INSERT `rows` (tuples of values for `fields`, attnames such as `entry_id`) into the model's table in one
    statement, the other columns at their model defaults (evaluated once for the lot); returns the new pks in the
    order of `rows` when `returning`. What `bulk_create` does without building a model instance and preparing each
    value field by field: on Postgres only (elsewhere `bulk_create`)."""
    rows = list(rows)
    if not rows:
        return []
    db = router.db_for_write(model)
    connection = connections[db]
    meta = model._meta
    by_attname = {f.attname: f for f in meta.concrete_fields}
    named = [by_attname.get(name) or meta.get_field(name) for name in fields]
    # every other column as bulk_create would fill it (its default, "" for text, NULL where nullable), except those
    # the database fills itself (db_default)
    extra = [f for f in meta.concrete_fields if f not in named and not f.primary_key and f.db_default is NOT_PROVIDED]
    if connection.vendor != "postgresql":
        objs = model.objects.using(db).bulk_create([
            model(**dict(zip([f.attname for f in named], row, strict=True))) for row in rows], batch_size=batch_size)
        return [obj.pk for obj in objs]
    tail = tuple(f.get_db_prep_save(f.get_default(), connection) for f in extra)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in (*named, *extra))
    template = "(" + ", ".join(["%s"] * (len(named) + len(extra))) + ")"

    def sql(n: int) -> str:  # names from the model, values as parameters
        return (f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {', '.join([template] * n)}"  # noqa: S608
                + (f" RETURNING {quote(meta.pk.column)}" if returning else ""))

    pks: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch_size):
            part = rows[start:start + batch_size]
            cursor.execute(sql(len(part)), [value for row in part for value in (*row, *tail)])
            if returning:
                pks.extend(r[0] for r in cursor.fetchall())
    return pks
