"""Front door pages: home (each role lands on its own page), sign-up, notifications."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login, password_validation
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from applications.selectors import products_published
from loanservice import roles
from loanservice.api import applicant_register, client_ip
from loanservice.errors import ApplicationError
from loanservice.models import Profile
from loanservice.money import REQUIRED
from loanservice.roles import permission_required
from loanservice.sms_codes import CODE_WRONG, MOBILE_INVALID, mobile_clean, sms_code_check, sms_code_send
from loanservice.text import in_language

User = get_user_model()
PHONE_TAKEN = _("该手机号已注册，请直接登录 / This number is already registered; please sign in.")
CODE_REQUIRED = _("请输入短信验证码 / Enter the code we sent by SMS.")


def redirect_next(request, fallback: str, *args, **kwargs) -> HttpResponseRedirect:
    """Back to the form's `next` when it is a path on this site, else to `fallback` (a URL name): never another
    site, and never a name to reverse (`next=abc` was a NoReverseMatch, a 500)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target.startswith("/") and target.isprintable() and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return HttpResponseRedirect(target)
    return redirect(fallback, *args, **kwargs)


def home(request):
    if request.user.is_authenticated:
        return redirect(roles.home_url_name(request.user))
    return render(request, "home.html", {"products": products_published()})


PASSWORD_HELP = _("至少8位，不要只用数字或常见密码；以后用手机号和密码登录 / At least 8 characters, not only digits nor a "
                  "common password; you will sign in with your mobile number and this password")


class SignupForm(forms.Form):
    """Sign-up with a mobile number: the number, the code sent to it by SMS, a password. The username is the
    number; nothing else is asked (the enterprise's details come from the registry in the wizard)."""

    phone = forms.CharField(label=_("手机号 Mobile number"), max_length=20,
                            widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel-national"}),
                            error_messages={"required": REQUIRED})
    code = forms.CharField(label=_("短信验证码 SMS code"), max_length=6, required=False,
                           widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}))
    password = forms.CharField(label=_("设置密码 Password"), required=False, widget=forms.PasswordInput(
        attrs={"autocomplete": "new-password"}), help_text=PASSWORD_HELP)

    def __init__(self, *args, sending: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.sending = sending

    def clean_phone(self) -> str:
        try:
            phone = mobile_clean(self.cleaned_data["phone"])
        except ValueError:
            raise forms.ValidationError(MOBILE_INVALID, code="invalid") from None
        if User.objects.filter(username=phone).exists() or Profile.objects.filter(phone=phone).exists():
            raise forms.ValidationError(PHONE_TAKEN, code="taken")
        return phone

    def clean(self):
        data = super().clean()
        if self.sending or "phone" not in data:
            return data
        if not data.get("code"):
            self.add_error("code", CODE_REQUIRED)
        elif not sms_code_check(phone=data["phone"], code=data["code"]):
            self.add_error("code", CODE_WRONG)
        password = data.get("password") or ""
        if not password:
            self.add_error("password", REQUIRED)
        else:
            try:
                password_validation.validate_password(password, User(username=data["phone"]))
            except ValidationError as exc:
                self.add_error("password", list(exc.messages))
        return data


def register(request):
    """Sign-up in two steps on one page: "获取验证码" sends a code to the number; then the code and a password."""
    sending = "send" in request.POST
    form = SignupForm(request.POST or None, sending=sending)
    if request.method == "POST" and form.is_valid():
        phone = form.cleaned_data["phone"]
        if sending:
            try:
                code = sms_code_send(phone=phone, ip=client_ip(request))
                messages.info(request, _("验证码已发送到 %(phone)s / A code was sent to %(phone)s") % {"phone": phone})
                if settings.DEBUG:  # the sandbox's SMS goes to the log; a demo shows it here
                    messages.info(request, _("演示环境验证码：%(code)s / Demo code: %(code)s") % {"code": code})
                form = SignupForm(initial={"phone": phone})
                return render(request, "registration/register.html", {"form": form, "sent": True, "next": _next(request)})
            except ApplicationError as exc:
                form.add_error("phone", in_language(exc.message))
        else:
            user = applicant_register(username=phone, password=form.cleaned_data["password"], phone=phone, email="",
                                      ip=client_ip(request))
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, _("注册成功 / Welcome!"))
            return redirect_next(request, "portal:home")
    return render(request, "registration/register.html", {"form": form, "sent": "code" in request.POST,
                                                          "next": _next(request)})


def _next(request) -> str:
    return request.POST.get("next") or request.GET.get("next") or ""


@permission_required("loanservice.signed_in")
def notifications(request):
    items = list(request.user.notifications.all()[:100])
    request.user.notifications.filter(read_at__isnull=True).update(read_at=timezone.now())
    return render(request, "notifications.html", {"items": items})
