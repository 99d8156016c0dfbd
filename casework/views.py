"""Front door pages: home (each role lands on its own page), sign-up, notifications."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from applications.selectors import products_published
from loanservice import roles
from loanservice.api import RegisterSerializer, applicant_register


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


class RegisterForm(forms.Form):
    username = forms.CharField(label=_("用户名 Username"), max_length=150)
    phone = forms.CharField(label=_("手机号 Mobile"), max_length=11)
    email = forms.EmailField(label=_("电子邮箱 E-mail"))
    password = forms.CharField(label=_("密码 Password"), widget=forms.PasswordInput, min_length=8)


def register(request):
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        ser = RegisterSerializer(data=form.cleaned_data)
        if ser.is_valid():
            user = applicant_register(**ser.validated_data, ip=request.META.get("REMOTE_ADDR"))
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, _("注册成功 / Welcome!"))
            return redirect_next(request, "portal:home")
        for field, errs in ser.errors.items():
            for err in errs:
                form.add_error(field if field in form.fields else None, err)
    return render(request, "registration/register.html", {"form": form})


@login_required
def notifications(request):
    items = list(request.user.notifications.all()[:100])
    request.user.notifications.filter(read_at__isnull=True).update(read_at=timezone.now())
    return render(request, "notifications.html", {"items": items})
