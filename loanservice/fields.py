"""Model fields for personal data encrypted at rest (loanservice.crypto).

`EncryptedCharField` stores a Fernet token in a text column and gives the clear value back when read; it keeps
`max_length` for the clear value (forms, validation). It cannot be searched by its content: with
`blind_index="<sibling field>"` the lookups `exact` and `in` (`filter(legal_rep_id_number=x)`,
`Q(id_number__in=ids)`) become lookups on that sibling `BlindIndexField`, which holds the value's HMAC and is set
whenever the row is saved (save, create, bulk_create). Any other lookup on an encrypted field is refused, so
nothing silently compares ciphertext. `QuerySet.update()` and `bulk_update()` do not recompute the blind index:
change these fields through `save()`.
"""

from __future__ import annotations

from django.core.exceptions import FieldError
from django.db import models
from django.db.models.lookups import Exact, In, IsNull

from . import crypto


class EncryptedCharField(models.CharField):
    def __init__(self, *args, blind_index: str = "", **kwargs):
        self.blind_index = blind_index
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.blind_index:
            kwargs["blind_index"] = self.blind_index
        return name, path, args, kwargs

    def db_type(self, connection):
        return connection.data_types["TextField"]

    def cast_db_type(self, connection):
        return self.db_type(connection)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return crypto.encrypt(str(value))

    def from_db_value(self, value, expression, connection):
        if value in (None, "") or not crypto.is_token(value):
            return value  # blank, or a row written before this field was encrypted (its migration encrypts it)
        return crypto.decrypt(value)

    def get_lookup(self, lookup_name):
        if lookup_name == "isnull":
            return IsNull
        if self.blind_index and lookup_name in ("exact", "iexact"):
            return BlindExact
        if self.blind_index and lookup_name == "in":
            return BlindIn
        raise FieldError(f"{self.model.__name__}.{self.name} is encrypted: look it up by its blind index "
                         f"(exact or in), not by '{lookup_name}'.")


class _OnBlindIndex:
    """Moves the lookup from the encrypted column to its blind index and hashes the value(s) looked for."""

    def __init__(self, lhs, rhs):
        field = lhs.output_field
        index = field.model._meta.get_field(field.blind_index)
        lhs = index.get_col(lhs.alias) if hasattr(lhs, "alias") else lhs
        if self.lookup_name == "in":
            rhs = [crypto.blind_index(v) for v in rhs]
        else:
            rhs = crypto.blind_index(rhs)
        super().__init__(lhs, rhs)


class BlindExact(_OnBlindIndex, Exact):
    lookup_name = "exact"


class BlindIn(_OnBlindIndex, In):
    lookup_name = "in"


class BlindIndexField(models.CharField):
    """HMAC-SHA256 of the field `source` (a sibling EncryptedCharField), indexed; set on every save."""

    def __init__(self, *args, source: str, **kwargs):
        self.source = source
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("db_index", True)
        kwargs.setdefault("default", "")
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"] = self.source
        for key, default in (("max_length", 64), ("blank", True), ("editable", False), ("db_index", True),
                             ("default", "")):
            if kwargs.get(key, default) == default:
                kwargs.pop(key, None)
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        value = crypto.blind_index(getattr(model_instance, self.source))
        setattr(model_instance, self.attname, value)
        return value
