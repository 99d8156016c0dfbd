"""Codes → names in the reader's language: the one table behind the `label` template filter.

The kernel imports no stage, so the names come to it: every model field with choices is read through
`django.apps` (status, stage, category, route, source, channel, bucket ...), and each app adds what is not a
model choice in its `AppConfig.ready` — audit event kinds, reason codes (`register`), and codes kept in data
tables such as products and branches (`register_model`: read from the table, in the reader's language).

    label("draft")                          → "草稿" / "Draft"      (any kind)
    label("credit_bureau", "source")        → "征信" / "credit bureau"
    label("xinmiaodai", "product")          → the product's name
    label("application.create", "event")    → "创建申请" / "created the application"

A code nobody named comes back readable ("some code"), never as `some_code`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from django.apps import apps
from django.db.models.signals import post_delete, post_save
from django.utils.translation import get_language

from .text import in_language

_lock = threading.Lock()
_explicit: dict[str, dict[str, object]] = {}  # kind → {code: lazy label}, registered by the apps
_tables: dict[str, tuple[str, str, Callable]] = {}  # kind → (model label, code field, name of a row)
_table_cache: dict[tuple[str, str], dict[str, str]] = {}  # (kind, language) → {code: name}
_choices: dict[str, dict[str, object]] | None = None  # kind → {code: lazy label}, from model choices


def register(kind: str, labels: Iterable[tuple[str, object]] | dict) -> None:
    """Names for codes of one kind (an event kind, a reason code ...): `(code, gettext_lazy(...))` pairs."""
    items = labels.items() if isinstance(labels, dict) else labels
    with _lock:
        _explicit.setdefault(kind, {}).update({str(code): name for code, name in items})


def register_model(kind: str, model: str, *, code: str = "code", name: Callable | str = "name") -> None:
    """Codes of a data table (products, branches): `name` is a field or a callable taking the row (e.g. one
    that picks the English twin). Read once per language, forgotten when a row is saved or deleted."""
    getter = name if callable(name) else (lambda row, field=name: getattr(row, field))
    with _lock:
        _tables[kind] = (model, code, getter)
    model_class = apps.get_model(model)
    post_save.connect(_forget_tables, sender=model_class, dispatch_uid=f"labels-{kind}-save")
    post_delete.connect(_forget_tables, sender=model_class, dispatch_uid=f"labels-{kind}-delete")


def _forget_tables(**kwargs) -> None:
    _table_cache.clear()


def _model_choices() -> dict[str, dict[str, object]]:
    """Every choices field of every model, under "app.model.field", "model.field" and the field's name."""
    global _choices
    if _choices is None:
        found: dict[str, dict[str, object]] = {}
        for model in apps.get_models():
            for field in model._meta.get_fields():
                choices = getattr(field, "flatchoices", None)
                if not choices or not getattr(field, "concrete", False):
                    continue
                names = (f"{model._meta.label_lower}.{field.name}", f"{model._meta.model_name}.{field.name}",
                         field.name)
                for key in names:
                    table = found.setdefault(key, {})
                    for code, name in choices:
                        if code not in (None, ""):
                            table.setdefault(str(code), name)
        _choices = found
    return _choices


def _table(kind: str) -> dict[str, str]:
    spec = _tables.get(kind)
    if spec is None:
        return {}
    language = (get_language() or "zh-hans")[:2]
    key = (kind, language)
    if key not in _table_cache:
        model, code_field, getter = spec
        rows = apps.get_model(model)._default_manager.all()
        _table_cache[key] = {str(getattr(row, code_field)): str(getter(row)) for row in rows}
    return _table_cache[key]


def lookup(code, kind: str = "") -> str | None:
    """The name of `code` (of `kind` when given, else of any kind), or None when nobody named it."""
    code = str(code)
    if kind:
        if kind in _explicit and code in _explicit[kind]:
            return in_language(_explicit[kind][code])
        if kind in _tables:
            name = _table(kind).get(code)
            if name is not None:
                return in_language(name)
        choices = _model_choices().get(kind.lower())
        if choices and code in choices:
            return in_language(choices[code])
    for table in _explicit.values():
        if code in table:
            return in_language(table[code])
    for table in _model_choices().values():
        if code in table:
            return in_language(table[code])
    return None  # data tables (products, branches) are read only when their kind is named


def label(code, kind: str = "") -> str:
    """`lookup`, or the code made readable ("special mention") when nobody named it; "" for an empty code."""
    if code is None or code == "":
        return ""
    name = lookup(code, kind)
    if name is not None:
        return name
    return str(code).replace("_", " ").replace(".", " ")
