"""In-app notifications, e-mail (console by default) and SMS behind a pluggable backend."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils.module_loading import import_string

from .models import Notification

log = logging.getLogger(__name__)


class ConsoleSmsBackend:
    def send(self, phone: str, text: str) -> None:
        log.info("SMS to %s: %s", phone, text)


def notify(*, user, kind: str, title: str, body: str = "", url: str = "", email: bool = True, sms: bool = False):
    if user is None:
        return None
    note = Notification.objects.create(user=user, kind=kind, title=title, body=body, url=url)

    def send():
        try:
            if email and user.email:
                send_mail(title, f"{body}\n\n{url}".strip(), settings.DEFAULT_FROM_EMAIL, [user.email])
            phone = getattr(getattr(user, "profile", None), "phone", "")
            if sms and phone:
                import_string(settings.SMS_BACKEND)().send(phone, title)
        except Exception:  # a mail server down must not undo the business step
            log.exception("notification delivery failed for %s", user.pk)

    transaction.on_commit(send)
    return note
