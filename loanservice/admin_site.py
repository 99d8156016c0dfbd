"""The default admin site (INSTALLED_APPS names loanservice.apps.AdminConfig instead of django.contrib.admin), themed
by django-unfold."""

from __future__ import annotations

from functools import wraps

from django.contrib.admin.exceptions import DisallowedModelAdminToField
from django.contrib.admin.options import TO_FIELD_VAR
from django.core.paginator import InvalidPage
from django.http import HttpResponseBadRequest
from unfold.sites import UnfoldAdminSite


class AdminSite(UnfoldAdminSite):
    """Unfold's admin site (the theme, config/settings.py UNFOLD) with the project's guard below."""

    def admin_view(self, view, cacheable=False):
        """Django's admin takes an empty `?_to_field=` for a field name: it passes the `if to_field` check, then
        `get_field("")` raises FieldDoesNotExist, a 500 on every change and delete page. Refused here as Django
        refuses any other field it may not reference (400), behind the same login door."""

        @wraps(view)
        def refusing_an_empty_to_field(request, *args, **kwargs):
            if "" in (request.GET.get(TO_FIELD_VAR), request.POST.get(TO_FIELD_VAR)):
                raise DisallowedModelAdminToField("The field '' cannot be referenced.")
            return view(request, *args, **kwargs)

        return super().admin_view(refusing_an_empty_to_field, cacheable)

    def search(self, request, extra_context=None):
        """Unfold's search box pages its results with `?page=` read as given: a page that is not a number, or past
        the last, raised out of the view (a 500). A 400 naming it here, in Django's own words."""
        try:
            return super().search(request, extra_context)
        except InvalidPage as exc:
            return HttpResponseBadRequest(str(exc))
