"""In-app notifications, e-mail (console by default) and SMS behind a pluggable backend.

Every notice is stored in-app at once; e-mail and SMS go out after the transaction commits (a rolled-back
step sends nothing, and a mail server down never undoes the business step). The applicant's milestones
(submission, pre-screen result, information requested, decision, contract ready, disbursement, a new RM)
also go by SMS; `NOTIFICATION_SMS_KINDS` in settings can change that list. `SMS_BACKEND` names a class with
`send(phone, text)`: the console backend logs, the locmem backend keeps messages for tests, a gateway
client can be dropped in.

A notice is stored as sent, so its texts are made in the default language (Chinese, whose "中文 / English"
msgids carry both halves), never in the language of whoever acted: an English-speaking approver's decision
reaches a Chinese applicant in Chinese too. A call site builds its texts inside `in_default_language()`
(translated labels it interpolates included); `notify` renders lazy texts under it as well. Celery tasks
run in the default language already (`config.celery.DefaultLanguageTask`).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import translation
from django.utils.module_loading import import_string

from .models import Notification

log = logging.getLogger(__name__)
DEFAULT_SMS_KINDS = frozenset({"submitted", "prescreen_declined", "info_requested", "decision", "contract_ready",
                               "disbursed", "rm_changed"})


class ConsoleSmsBackend:
    def send(self, phone: str, text: str) -> None:
        log.info("SMS to %s: %s", phone, text)


class LocmemSmsBackend:
    """Keeps sent messages in `LocmemSmsBackend.outbox` (like Django's locmem e-mail backend)."""

    outbox: list[tuple[str, str]] = []

    def send(self, phone: str, text: str) -> None:
        LocmemSmsBackend.outbox.append((phone, text))


def sms_kinds() -> frozenset[str]:
    return frozenset(getattr(settings, "NOTIFICATION_SMS_KINDS", DEFAULT_SMS_KINDS))


def in_default_language():
    """The language notices are written in (settings.LANGUAGE_CODE), whatever the acting user's UI language."""
    return translation.override(settings.LANGUAGE_CODE)


def notify(*, user, kind: str, title: str, body: str = "", url: str = "", email: bool = True, sms: bool | None = None):
    """Store the in-app notice now; send e-mail and (for the applicant's milestones) SMS on commit.

    Build `title` and `body` inside `in_default_language()`; a lazy text is rendered in it here."""
    if user is None:
        return None
    with in_default_language():
        title, body = str(title), str(body)
    note = Notification.objects.create(user=user, kind=kind, title=title[:200], body=body, url=url)
    send_sms = kind in sms_kinds() if sms is None else sms

    def send():
        try:
            if email and user.email:
                send_mail(title, f"{body}\n\n{url}".strip(), settings.DEFAULT_FROM_EMAIL, [user.email])
        except Exception:  # a mail server down must not undo the business step
            log.exception("e-mail delivery failed for %s", user.pk)
        try:
            phone = getattr(getattr(user, "profile", None), "phone", "")
            if send_sms and phone:
                import_string(settings.SMS_BACKEND)().send(phone, title)
        except Exception:
            log.exception("SMS delivery failed for %s", user.pk)

    transaction.on_commit(send)
    return note
