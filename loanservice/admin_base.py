"""The admin's base classes: django-unfold's ModelAdmin and inlines, with JSON shown as people read it.

A JSON field that is read-only on the page (listed in readonly_fields, or the user may only view the record, as with
the evidence in ReadOnlyAdmin) is shown pretty-printed in a <pre> with Chinese as characters, not \\uXXXX; an editable
one is edited indented, Chinese as characters too.
"""

from __future__ import annotations

import json

from django import forms
from django.db import models
from django.utils.html import format_html
from unfold import admin as unfold_admin
from unfold.widgets import UnfoldAdminTextareaWidget

READABLE_SUFFIX = "_readable"


def readable_json(value, encoder=None) -> str:
    """The value as indented JSON, non-ASCII characters kept (the <pre> a reader of the evidence sees)."""
    if value is None:
        return ""
    try:
        return json.dumps(value, ensure_ascii=False, indent=2, cls=encoder)
    except TypeError:
        return str(value)


class ReadableJSONFormField(forms.JSONField):
    """Django's JSON form field, indented for editing."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return readable_json(value, self.encoder)


class ReadableJsonMixin:
    """Shows each read-only JSON field of the model through a `<name>_readable` display instead of the raw field."""

    formfield_overrides = {
        **unfold_admin.ModelAdmin.formfield_overrides,
        models.JSONField: {"form_class": ReadableJSONFormField, "widget": UnfoldAdminTextareaWidget},
    }

    def _json_fields(self) -> dict[str, models.JSONField]:
        return {f.name: f for f in self.model._meta.get_fields() if isinstance(f, models.JSONField)}

    def _view_only(self, request, obj) -> bool:
        return not self.has_change_permission(request, obj) if obj is not None else not self.has_add_permission(request)

    def get_readonly_fields(self, request, obj=None):
        declared = list(super().get_readonly_fields(request, obj))
        json_fields = self._json_fields()
        names = [f"{n}{READABLE_SUFFIX}" if n in json_fields else n for n in declared]
        if self._view_only(request, obj):
            names += [f"{n}{READABLE_SUFFIX}" for n in json_fields if f"{n}{READABLE_SUFFIX}" not in names]
        return names

    def get_fields(self, request, obj=None):
        readonly = set(self.get_readonly_fields(request, obj))
        shown = []
        for name in super().get_fields(request, obj):
            if isinstance(name, str) and f"{name}{READABLE_SUFFIX}" in readonly:
                name = f"{name}{READABLE_SUFFIX}"
            if name not in shown:
                shown.append(name)
        return shown

    def __getattr__(self, name):
        if name.endswith(READABLE_SUFFIX) and not name.startswith("_"):
            field = self._json_fields().get(name[: -len(READABLE_SUFFIX)])
            if field is not None:

                def display(obj):
                    text = readable_json(getattr(obj, field.name), field.encoder)
                    return format_html('<pre class="whitespace-pre-wrap break-words text-sm">{}</pre>', text) if text else "-"

                display.short_description = field.verbose_name
                return display
        raise AttributeError(name)


class ModelAdmin(ReadableJsonMixin, unfold_admin.ModelAdmin):
    """The project's ModelAdmin: unfold's, JSON readable."""


TabularInline = unfold_admin.TabularInline
StackedInline = unfold_admin.StackedInline
