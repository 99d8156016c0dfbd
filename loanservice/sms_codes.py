"""One-time codes sent by SMS (短信验证码): sign-up with a mobile number instead of a username and e-mail.

A code is six digits, kept only as an HMAC (never in clear), valid 5 minutes, with 5 tries; a number gets one
code a minute per purpose (signing up, verifying an identity, signing a contract) and 5 an hour in all, an IP
address 20 an hour. The state lives in the cache (Redis in production,
shared by every web process). The text goes through settings.SMS_BACKEND: the sandbox backend logs it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

from django.conf import settings
from django.core.cache import cache
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from .errors import ApplicationError

CODE_TTL = 300
MAX_TRIES = 5
RESEND_AFTER = 60
PER_PHONE_HOUR = 5
PER_IP_HOUR = 20
# Mainland mobile numbers: 11 digits, 1 then 3-9 (China's numbering plan).
MOBILE = re.compile(r"^1[3-9]\d{9}$")
MOBILE_INVALID = _("请输入11位中国大陆手机号 / Enter an 11-digit mainland China mobile number.")
CODE_WRONG = _("验证码不正确或已过期 / The code is wrong or has expired.")
TOO_MANY = _("发送过于频繁，请稍后再试 / Too many codes requested; try again later.")


def mobile_clean(value) -> str:
    """A mobile number as typed ("138 0013 8000", "+86 13800138000") → "13800138000", or ValueError."""
    digits = re.sub(r"[\s-]", "", str(value or ""))
    if digits.startswith("+86"):
        digits = digits[3:]
    if not MOBILE.match(digits):
        raise ValueError(str(MOBILE_INVALID))
    return digits


def _digest(phone: str, purpose: str, code: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"{purpose}:{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def _key(purpose: str, phone: str) -> str:
    return f"sms-code:{purpose}:{phone}"


def _count(key: str, ttl: int) -> int:
    cache.add(key, 0, ttl)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, ttl)
        return 1


def sms_code_send(*, phone: str, purpose: str = "signup", ip: str | None = None) -> str:
    """Send a new code to `phone` (already cleaned); returns it (the page shows it only in DEBUG).
    ApplicationError when the number or the address asked too often."""
    if not cache.add(f"sms-code-wait:{purpose}:{phone}", 1, RESEND_AFTER):
        raise ApplicationError(TOO_MANY, errors={"phone": [TOO_MANY]}, code="throttled")
    if _count(f"sms-code-hour:{phone}", 3600) > PER_PHONE_HOUR or (
            ip and _count(f"sms-code-ip:{ip}", 3600) > PER_IP_HOUR):
        raise ApplicationError(TOO_MANY, errors={"phone": [TOO_MANY]}, code="throttled")
    code = f"{secrets.randbelow(10**6):06d}"
    cache.set(_key(purpose, phone), {"digest": _digest(phone, purpose, code), "tries": 0,
                                     "expires": time.time() + CODE_TTL}, CODE_TTL)
    text = str(_("【示范银行】验证码 %(code)s，5分钟内有效，请勿告诉他人。")) % {"code": code}
    import_string(settings.SMS_BACKEND)().send(phone, text)
    return code


def sms_code_check(*, phone: str, code: str, purpose: str = "signup", consume: bool = True) -> bool:
    """True once for the right code within its 5 minutes; every wrong try counts, the 5th ends the code.
    `consume` False: the code stays valid until `sms_code_discard` (called when the act it guards is done, so an
    act refused for another reason does not cost the person a new code)."""
    key = _key(purpose, phone)
    state = cache.get(key)
    if not state or state["expires"] < time.time():
        return False
    if hmac.compare_digest(state["digest"], _digest(phone, purpose, str(code or "").strip())):
        if consume:
            cache.delete(key)
        return True
    state["tries"] += 1
    if state["tries"] >= MAX_TRIES:
        cache.delete(key)
    else:
        cache.set(key, state, max(1, int(state["expires"] - time.time())))
    return False


def sms_code_discard(*, phone: str, purpose: str) -> None:
    """End the code of `purpose` sent to `phone` (the act it guarded is done)."""
    cache.delete(_key(purpose, phone))
