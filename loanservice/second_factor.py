"""The staff's second factor: TOTP (django-otp) for the roles that decide on money or run the system.

Who is asked: every user of a role in settings.OTP_REQUIRED_ROLES (approvers, operations, risk, administrators;
superusers and `is_staff` users too), and any other staff member (an RM) who has enrolled a device of their own.
Applicants are never asked. settings.OTP_REQUIRED=False turns the second factor off (never in production).

The demo's users (casework.demo, published passwords) get a TOTP device with a key derived from their username, so
the demo can show the current code on the verification page (settings.DEMO_OTP_HINTS, only with DEBUG on).
"""

from __future__ import annotations

import base64
import hashlib
import io
import time

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.db import transaction
from django_otp import DEVICE_ID_SESSION_KEY, devices_for_user
from django_otp import login as otp_login
from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import roles
from .audit import audit_record

DEMO_DEVICE = "demo"


def required_roles() -> frozenset[str]:
    return frozenset(getattr(settings, "OTP_REQUIRED_ROLES", ()))


def confirmed_devices(user) -> list[TOTPDevice]:
    return [d for d in devices_for_user(user, confirmed=True) if isinstance(d, TOTPDevice)]


def second_factor_required(user) -> bool:
    """Must this signed-in user pass the second factor before any staff page, the admin or a session API call?"""
    if not getattr(settings, "OTP_REQUIRED", True) or not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser or user.is_staff or roles.user_roles(user) & required_roles():
        return True
    return bool(roles.user_roles(user) & set(roles.STAFF_ROLES)) and bool(confirmed_devices(user))


def is_verified(request) -> bool:
    verified = getattr(request.user, "is_verified", None)
    return bool(verified and verified())


def enrolment_device(user) -> TOTPDevice:
    """The user's device being enrolled (unconfirmed), made now if there is none."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)


def qr_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// URL as an inline SVG QR code (no external service sees the key)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    out = io.BytesIO()
    image.save(out)
    text = out.getvalue().decode()
    return text[text.index("<svg"):]


def key_base32(device: TOTPDevice) -> str:
    return base64.b32encode(device.bin_key).decode()


@transaction.atomic
def enrol_confirm(request, device: TOTPDevice, code: str) -> bool:
    """Confirm the enrolment with a first code from the app; the session counts as verified from then on."""
    device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=request.user)
    if not device.verify_token((code or "").strip()):
        return False
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    otp_login(request, device)
    audit_record(actor=request.user, action="otp.enrol", obj=request.user, data={"device": device.persistent_id},
                 ip=request.META.get("REMOTE_ADDR"))
    return True


def verify(request, code: str) -> bool:
    """Check a code against the user's confirmed devices (django-otp throttles repeated failures per device)."""
    code = (code or "").strip()
    for device in confirmed_devices(request.user):
        with transaction.atomic():
            locked = TOTPDevice.objects.select_for_update().get(pk=device.pk)
            if locked.verify_token(code):
                otp_login(request, locked)
                audit_record(actor=request.user, action="otp.verify", obj=request.user,
                             data={"device": locked.persistent_id}, ip=request.META.get("REMOTE_ADDR"))
                return True
    audit_record(actor=request.user, action="otp.fail", obj=request.user, ip=request.META.get("REMOTE_ADDR"))
    return False


def verify_user_code(user, code: str) -> bool:
    """For the API's token endpoint: a code from one of the user's confirmed devices."""
    code = (code or "").strip()
    for device in confirmed_devices(user):
        with transaction.atomic():
            if TOTPDevice.objects.select_for_update().get(pk=device.pk).verify_token(code):
                return True
    return False


# --- the demo's devices ---------------------------------------------------------------------------------------------

def demo_key(username: str) -> str:
    """A demo user's TOTP key (hex): derived from the username, as public as the demo's password."""
    return hashlib.sha256(f"loanservice-demo-totp:{username}".encode()).hexdigest()[:40]  # 20 bytes, as TOTP keys are


def demo_device_ensure(user) -> TOTPDevice:
    device, _created = TOTPDevice.objects.get_or_create(
        user=user, name=DEMO_DEVICE, defaults={"key": demo_key(user.get_username()), "confirmed": True})
    return device


def current_code(device: TOTPDevice, *, wait: bool = False) -> str:
    """The code the device accepts next: the current time step's, or the next step's when the current one was used
    already (a second sign-in within 30 s); with `wait`, sleeps when even that is out of the device's tolerance."""
    while True:
        device.refresh_from_db(fields=["last_t"])
        now = (int(time.time()) - device.t0) // device.step
        step = max(now, device.last_t + 1)
        if step <= now + device.tolerance or not wait:
            return f"{hotp(device.bin_key, step, digits=device.digits):0{device.digits}d}"
        time.sleep(max(0.2, device.step - (time.time() - device.t0) % device.step))


def demo_hint(user) -> str:
    """The current code of a demo user's device, shown on the verification page only in the demo."""
    if not (settings.DEBUG and getattr(settings, "DEMO_OTP_HINTS", False)):
        return ""
    device = TOTPDevice.objects.filter(user=user, name=DEMO_DEVICE, confirmed=True).first()
    return current_code(device) if device else ""


def mark_verified(session, user) -> None:
    """Tests: a session signed in with force_login counts as having passed the second factor (the device is the
    user's demo device, made if need be)."""
    session[DEVICE_ID_SESSION_KEY] = demo_device_ensure(user).persistent_id
