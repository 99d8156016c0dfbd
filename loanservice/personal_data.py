"""Personal data at rest, across apps: which fields are encrypted, writing rows again under the newest key (after a
key rotation, or the first time in a data migration), and clearing values (retention). See loanservice.fields."""

from __future__ import annotations

from django.apps import apps as global_apps
from django.db import connection

from . import crypto
from .fields import EncryptedCharField


def encrypted_fields(model) -> list[str]:
    return [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedCharField)]


def encrypted_models(apps=global_apps) -> list:
    return [m for m in apps.get_models() if encrypted_fields(m)]


def _blind_indexes(model, fields: list[str]) -> dict[str, str]:
    return {name: model._meta.get_field(name).blind_index for name in fields if model._meta.get_field(name).blind_index}


def encrypt_rows(model, fields: list[str] | None = None, *, batch_size: int = 500) -> int:
    """Writes every row's encrypted fields again: each value is encrypted under the newest key and its blind index
    recomputed under the current blind-index key. Values still in clear (rows from before the field was encrypted)
    are read as they are, so the same call is the data migration and the rotation. Returns the rows written."""
    fields = fields or encrypted_fields(model)
    indexes = _blind_indexes(model, fields)
    names = fields + list(indexes.values())
    written, batch = 0, []
    for obj in model._base_manager.only(*fields).order_by("pk").iterator(chunk_size=batch_size):
        for source, index in indexes.items():
            setattr(obj, index, crypto.blind_index(getattr(obj, source)))
        batch.append(obj)
        if len(batch) >= batch_size:
            written += _write(model, batch, names)
            batch = []
    return written + (_write(model, batch, names) if batch else 0)


def _write(model, objs: list, names: list[str]) -> int:
    model._base_manager.bulk_update(objs, names)
    return len(objs)


def decrypt_rows(model, fields: list[str] | None = None) -> None:
    """The reverse of the data migration: clear values written back (raw SQL, past the field's encryption)."""
    fields = fields or encrypted_fields(model)
    qn = connection.ops.quote_name
    table, pk = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        for obj in model._base_manager.only(*fields).order_by("pk").iterator():
            for name in fields:
                column = model._meta.get_field(name).column
                cursor.execute(f"UPDATE {qn(table)} SET {qn(column)} = %s WHERE {qn(pk)} = %s",  # noqa: S608
                               [getattr(obj, name) or "", obj.pk])


def migration_encrypt(app_label: str, model_name: str, fields: list[str]):
    """RunPython functions (forward, backward) for a data migration encrypting existing rows."""
    def forward(apps, schema_editor):
        encrypt_rows(apps.get_model(app_label, model_name), fields)

    def backward(apps, schema_editor):
        decrypt_rows(apps.get_model(app_label, model_name), fields)

    return forward, backward
