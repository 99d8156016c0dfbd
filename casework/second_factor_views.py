"""The staff's second factor pages: verification after the password, and enrolment of a TOTP app (a QR code drawn
here as inline SVG; the key never leaves the bank). Rules in loanservice/second_factor.py."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from loanservice import second_factor
from loanservice.roles import permission_required

from .views import redirect_next


def _texts() -> dict:
    return {
        "code_label": _("验证码 / Code"),
        "code_help": _("身份验证器应用中显示的 6 位数字 / The 6 digits your authenticator app shows."),
        "submit": _("验证 / Verify"),
    }


@permission_required("loanservice.signed_in")
@require_http_methods(["GET", "POST"])
def second_factor_verify(request):
    user = request.user
    if not second_factor.second_factor_required(user) or second_factor.is_verified(request):
        return redirect_next(request, "home")
    if not second_factor.confirmed_devices(user):
        return _to_enrol(request)
    error = ""
    if request.method == "POST":
        if second_factor.verify(request, request.POST.get("code", "")):
            return redirect_next(request, "home")
        error = _("验证码不正确或已过期，请输入应用中当前显示的验证码 / That code is wrong or has expired; enter the "
                  "one your app shows now.")
    return render(request, "registration/second_factor_verify.html", {
        "error": error, "next": request.POST.get("next") or request.GET.get("next", ""),
        "demo_code": second_factor.demo_hint(user), **_texts(),
        "title": _("二次验证 / Second factor"),
        "intro": _("请打开身份验证器应用，输入当前的 6 位验证码 / Open your authenticator app and enter the current "
                   "6-digit code."),
        "demo_label": _("演示环境验证码 / Demo code"),
    })


def _to_enrol(request):
    return HttpResponseRedirect(f"{reverse('second_factor_enrol')}?{urlencode({'next': request.GET.get('next', '')})}")


@permission_required("loanservice.staff")  # staff only: to anyone else the page does not exist
@require_http_methods(["GET", "POST"])
def second_factor_enrol(request):
    user = request.user
    if second_factor.confirmed_devices(user) and not second_factor.is_verified(request):
        # A second device is added only by someone who passed the first (a stolen password alone adds none).
        return second_factor_verify(request)
    device = second_factor.enrolment_device(user)
    error = ""
    if request.method == "POST":
        if second_factor.enrol_confirm(request, device, request.POST.get("code", "")):
            return redirect_next(request, "home")
        error = _("验证码不正确，请核对手机时间后重试 / That code is wrong; check your phone's clock and try again.")
    return render(request, "registration/second_factor_enrol.html", {
        "error": error, "next": request.POST.get("next") or request.GET.get("next", ""),
        "qr_svg": second_factor.qr_svg(device), "key": second_factor.key_base32(device), **_texts(),
        "title": _("设置二次验证 / Set up the second factor"),
        "intro": _("审批、运营、风险和系统管理岗位登录时须输入身份验证器应用的验证码。请用应用扫描二维码（或手工输入密钥），"
                   "再输入应用显示的验证码 / Approvers, operations, risk and administrators enter a code from an "
                   "authenticator app when they sign in. Scan the QR code with the app (or type the key in), then "
                   "enter the code it shows."),
        "key_label": _("密钥 / Key"),
        "required": second_factor.second_factor_required(user),
    })
