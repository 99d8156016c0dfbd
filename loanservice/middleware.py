"""A dropped database connection becomes a clear 503, never a 500 with a half-written record."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections
from django.http import JsonResponse
from django.template.response import SimpleTemplateResponse

log = logging.getLogger(__name__)
MESSAGE = "服务暂时不可用，请稍后重试 / The service is briefly unavailable; please try again shortly."


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        log.error("database unavailable: %s", exception)
        for conn in connections.all():
            conn.close_if_unusable_or_obsolete()
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": MESSAGE, "errors": {}}, status=503)
        else:
            response = SimpleTemplateResponse("503.html", {"message": MESSAGE}, status=503)
            response.render()
        response["Retry-After"] = "5"
        return response


class DefaultLanguageMiddleware:
    """Chinese is the default UI language whatever the browser sends; the switcher (a cookie) changes it.

    Placed before LocaleMiddleware: without the language cookie, the Accept-Language header is dropped.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.cookie = settings.LANGUAGE_COOKIE_NAME

    def __call__(self, request):
        if self.cookie not in request.COOKIES:
            request.META.pop("HTTP_ACCEPT_LANGUAGE", None)
        return self.get_response(request)
