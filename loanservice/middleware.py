"""A dropped database connection becomes a clear 503, never a 500 with a half-written record; staff sessions time out
when idle and wait at the second factor (StaffSessionMiddleware)."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlencode

from csp.constants import UNSAFE_EVAL
from csp.middleware import CSPMiddleware
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect
from django.template.response import SimpleTemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from . import roles, second_factor

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


NUL_MESSAGE = "不能包含空字符 / Must not contain a NUL character (\\0)."


class NulCharacterMiddleware:
    """A NUL character in the path, a query parameter or a form field is a 400 naming it, before any view: no text
    of the bank has one and Postgres text cannot hold one, so wherever a view passed a value on unchecked the
    request was a 500. (JSON bodies: loanservice.drf.ObjectJSONParser; serializer and form fields refuse it too.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        names = ["path"] if "\0" in request.path else []
        names += [name for name, values in request.GET.lists() if "\0" in name or any("\0" in v for v in values)]
        if request.method == "POST" and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            names += [name for name, values in request.POST.lists() if "\0" in name or any("\0" in v for v in values)]
        if not names:
            return self.get_response(request)
        names = [name.replace("\0", "\\0") for name in names]
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": "输入无效 / Invalid input.", "errors": dict.fromkeys(names, [NUL_MESSAGE])}, status=400)
        return HttpResponseBadRequest(f"{NUL_MESSAGE} ({', '.join(names)})", content_type="text/plain; charset=utf-8")


class StaffSessionMiddleware:
    """Staff sessions (docs/security.md): signed out after STAFF_SESSION_IDLE_SECONDS without a request, and held at
    the second factor (loanservice.second_factor) until it is passed: every page, the admin included, sends a
    signed-in staff member who must use TOTP to the verification page (or to enrolment, without a device yet).
    The API's session authentication refuses such a session itself (loanservice.drf.VerifiedSessionAuthentication).
    After django_otp's OTPMiddleware."""

    EXEMPT = ("/static/", "/i18n/", "/api/", "/login/", "/logout/", "/account/second-factor/", "/admin/logout/")
    TOUCH_EVERY = 60  # seconds: the last-seen time is written at most this often (a session write per minute)

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and _is_staff(user):
            expired = self._idle_expired(request)
            if expired is not None:
                return expired
            if not request.path.startswith(self.EXEMPT) and second_factor.second_factor_required(user) \
                    and not second_factor.is_verified(request):
                target = "second_factor_verify" if second_factor.confirmed_devices(user) else "second_factor_enrol"
                return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)

    def _idle_expired(self, request):
        now = int(time.time())
        last = request.session.get(LAST_SEEN_KEY)
        idle = getattr(settings, "STAFF_SESSION_IDLE_SECONDS", 1800)
        if last is not None and idle and now - last > idle:
            logout(request)
            if request.path.startswith("/api/"):
                return None  # the request goes on signed out: the API answers 401/403 itself
            messages.info(request, _("长时间未操作，已自动退出，请重新登录 / You were signed out after a period without "
                                     "activity; please sign in again."))
            return redirect(f"{reverse('login')}?{urlencode({'next': request.get_full_path()})}")
        if last is None or now - last >= self.TOUCH_EVERY:
            request.session[LAST_SEEN_KEY] = now
        return None


LAST_SEEN_KEY = "staff_last_seen"


def last_seen_at_login(sender, request, user, **kwargs) -> None:
    """`user_logged_in`: the idle clock starts at sign-in, so the first page after it does not write the session."""
    if request is not None and hasattr(request, "session"):
        request.session[LAST_SEEN_KEY] = int(time.time())


def _is_staff(user) -> bool:
    return user.is_superuser or user.is_staff or bool(roles.user_roles(user) & set(roles.STAFF_ROLES))


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's header (settings.CONTENT_SECURITY_POLICY: scripts only from this site, never inline). The admin
    adds 'unsafe-eval' to script-src: django-unfold's Alpine.js evaluates its x-data expressions with Function()
    (it ships no CSP build); inline script stays refused there too (docs/security.md)."""

    ADMIN_PREFIX = "/admin/"

    def get_policy_parts(self, request, response, report_only=False):
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only and request.path_info.startswith(self.ADMIN_PREFIX):
            parts.update = {**(parts.update or {}), "script-src": [UNSAFE_EVAL]}
        return parts
