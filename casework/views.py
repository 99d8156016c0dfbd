"""Front door pages: home (each role lands on its own page), sign-up, notifications."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.forms.utils import ErrorDict
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from applications.selectors import products_published
from loanservice import roles
from loanservice.api import RegisterSerializer, applicant_register
from loanservice.roles import permission_required


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
    """The sign-up page's fields. They are checked once, by the API's RegisterSerializer, whose errors land
    under the same fields here (`POST /api/v1/auth/register/` and this page refuse alike)."""

    username = forms.CharField(label=_("用户名 Username"), max_length=150)
    phone = forms.CharField(label=_("手机号 Mobile"), max_length=11)
    email = forms.EmailField(label=_("电子邮箱 E-mail"))
    password = forms.CharField(label=_("密码 Password"), widget=forms.PasswordInput, min_length=8)

    def full_clean(self):
        self._errors, self.cleaned_data = ErrorDict(), {}
        if not self.is_bound:
            return
        ser = RegisterSerializer(data={name: self.data.get(name, "") for name in self.fields})
        if ser.is_valid():
            self.cleaned_data = dict(ser.validated_data)
            return
        for field, errors in ser.errors.items():
            self.add_error(field if field in self.fields else None, [str(e) for e in errors])


def register(request):
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = applicant_register(**form.cleaned_data, ip=request.META.get("REMOTE_ADDR"))
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("注册成功 / Welcome!"))
        return redirect_next(request, "portal:home")
    return render(request, "registration/register.html", {"form": form})


@permission_required("loanservice.signed_in")
def notifications(request):
    items = list(request.user.notifications.all()[:100])
    request.user.notifications.filter(read_at__isnull=True).update(read_at=timezone.now())
    return render(request, "notifications.html", {"items": items})
