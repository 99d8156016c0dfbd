"""API plumbing shared by every app: the error format, the domain-exception mapping, sign-up and tokens
(JSON bodies and list paging: loanservice.drf)."""

from __future__ import annotations

from django import forms
from django.contrib.auth import authenticate, get_user_model, password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import Http404
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from . import roles, second_factor
from .audit import audit_record
from .errors import ApplicationError, Conflict, NotFound
from .models import Profile
from .sms_codes import MOBILE, MOBILE_INVALID


class VerifiedSessionScheme(SessionScheme):
    """The OpenAPI schema's cookie authentication is the session one that waits for the staff's second factor."""

    target_class = "loanservice.drf.VerifiedSessionAuthentication"


User = get_user_model()


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR")


def _flatten(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out = {}
        for key, value in detail.items():
            if isinstance(value, dict):
                for sub, msgs in _flatten(value).items():
                    out[f"{key}.{sub}"] = msgs
            else:
                out[key] = [str(v) for v in (value if isinstance(value, list) else [value])]
        return out
    if isinstance(detail, list):
        return {"non_field_errors": [str(v) for v in detail]}
    return {}


def exception_handler(exc, context):
    """Errors are {"detail": ..., "errors": {field: [messages]}} (DESIGN.md)."""
    if isinstance(exc, ApplicationError):
        code = status.HTTP_403_FORBIDDEN if exc.code == "forbidden" else status.HTTP_400_BAD_REQUEST
        return Response({"detail": exc.message, "errors": exc.errors}, status=code)
    if isinstance(exc, Conflict):
        body = {"detail": exc.message, "errors": {}, "state": exc.state}
        if exc.code:
            body["reason"] = exc.code
        if exc.current is not None:
            body["current"] = exc.current
        return Response(body, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, (TransitionNotAllowed, ConcurrentTransition)):
        obj = getattr(exc, "object", None)
        state = getattr(obj, "status", None)
        return Response({"detail": "当前状态不允许此操作，或已被他人处理 / Not allowed in the current state, or someone acted first.",
                         "errors": {}, "state": state}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, (NotFound, Http404)):
        exc = exceptions.NotFound("未找到 / Not found.")
    if isinstance(exc, DjangoValidationError):
        return Response({"detail": "输入无效 / Invalid input.", "errors": {"non_field_errors": exc.messages}}, status=400)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": "输入无效 / Invalid input.", "errors": _flatten(exc.detail)}
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else str(response.data)
        response.data = {"detail": str(detail), "errors": {}}
    return response


SINGLE_VALUE = "请填写单个值 / Enter a single value."


def form_input(form_class, data, *, message: str, **kwargs) -> dict:
    """An API body checked by the Django form the pages use (one check per input): the form's cleaned data,
    or an ApplicationError naming each field. A list or an object where a form expects one value is refused
    under its field (a form would read it as text)."""
    if not hasattr(data, "get"):
        raise ApplicationError(message, errors={"non_field_errors": ["请求体须为 JSON 对象 / The body must be a JSON object."]})
    if hasattr(data, "getlist"):  # a form post (QueryDict): text and files, as the page's form reads them
        nested = {name: [SINGLE_VALUE] for name, field in form_class.base_fields.items()
                  if not isinstance(field, forms.FileField) and hasattr(data.get(name), "read")}  # a file for text
        text = data.copy() if nested else data
        for name in nested:
            text.pop(name)
    else:  # JSON: a list, an object where the form expects one value is refused; numbers and booleans as text
        nested = {name: [SINGLE_VALUE] for name, field in form_class.base_fields.items()
                  if not isinstance(field, forms.MultipleChoiceField | forms.FileField)
                  and not isinstance(data.get(name), str | int | float | bool | type(None))}
        text = {k: (str(v) if isinstance(v, int | float | bool) else v) for k, v in data.items() if k not in nested}
    form = form_class(data=text, **kwargs)
    if nested or not form.is_valid():
        errors = {"non_field_errors" if name == "__all__" else name: [str(e) for e in errs]
                  for name, errs in form.errors.items()}
        errors.update(nested)
        raise ApplicationError(message, errors=errors)
    return form.cleaned_data


def serializer_input(serializer_class, data, *, message: str) -> dict:
    """An input checked by the serializer the API and the page share: its validated data, or an
    ApplicationError naming each field (pages show it as a flash message, the API as a 400)."""
    ser = serializer_class(data=data)
    if not ser.is_valid():
        raise ApplicationError(message, errors=_flatten(ser.errors))
    return ser.validated_data


class RulePermission(BasePermission):
    """The API's face of a named permission (loanservice.roles): anonymous → 401, signed in without it → 403.
    Whether the object is the caller's is the scoped selector's answer (404), asked in the view."""

    perm: str = ""

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and roles.can(request.user, self.perm))


def rule_permission(perm: str) -> type[BasePermission]:
    return type(f"Rule_{perm.replace('.', '_')}", (RulePermission,), {"perm": perm})


class RegisterSerializer(serializers.Serializer):
    username = serializers.RegexField(r"^[\w.@+-]{3,150}$", error_messages={"invalid": "用户名为3-150位字母、数字或 @.+-_ / 3-150 letters, digits or @.+-_"})
    password = serializers.CharField(write_only=True, min_length=8)
    phone = serializers.RegexField(MOBILE, error_messages={"invalid": MOBILE_INVALID})
    email = serializers.EmailField()

    def validate_username(self, value):
        if User.objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError("用户名已被使用 / This username is taken.")
        return value

    def validate(self, attrs):
        try:
            password_validation.validate_password(attrs["password"], User(username=attrs["username"], email=attrs["email"]))
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}) from None
        return attrs


@transaction.atomic
def applicant_register(*, username: str, password: str, phone: str, email: str, ip: str | None = None):
    user = User.objects.create_user(username=username, password=password, email=email)
    Profile.objects.create(user=user, phone=phone, display_name=username)
    user.groups.add(Group.objects.get_or_create(name=roles.APPLICANT)[0])
    audit_record(actor=user, action="user.register", obj=user, ip=ip)
    return user


class RegisterView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle]

    @extend_schema(request=RegisterSerializer, responses={201: inline_serializer("Registered", {"id": serializers.IntegerField(), "username": serializers.CharField(), "token": serializers.CharField()})})
    def post(self, request):
        ser = RegisterSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        user = applicant_register(**ser.validated_data, ip=client_ip(request))
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"id": user.pk, "username": user.username, "token": token.key}, status=status.HTTP_201_CREATED)


class TokenSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)  # the user model's; a longer one overflowed the lockout record
    password = serializers.CharField(write_only=True)
    otp_token = serializers.CharField(required=False, allow_blank=True, max_length=12, write_only=True,
                                      help_text="Staff who must use the second factor: the current TOTP code.")


class TokenView(APIView):
    """Token for {username, password}; repeated failures lock the account for a while (django-axes). Staff who must
    use the second factor (loanservice/second_factor.py) get a token only with a current TOTP code (`otp_token`);
    system integrations are users of the integration role, which is not asked (docs/security.md)."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(request=TokenSerializer, responses={200: inline_serializer("TokenOut", {"token": serializers.CharField()})})
    def post(self, request):
        ser = TokenSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        user = authenticate(request=request, username=ser.validated_data["username"],
                            password=ser.validated_data["password"])
        if getattr(request, "axes_locked_out", False):
            return Response({"detail": "登录失败次数过多，账户已暂时锁定 / Too many failed attempts; locked for a while.", "errors": {}},
                            status=status.HTTP_403_FORBIDDEN)
        if user is None:
            return Response({"detail": "用户名或密码不正确 / Wrong username or password.", "errors": {}},
                            status=status.HTTP_400_BAD_REQUEST)
        if second_factor.second_factor_required(user) and not second_factor.verify_user_code(
                user, ser.validated_data.get("otp_token", "")):
            return Response({"detail": "需要二次验证码 / A second-factor code is needed.",
                             "errors": {"otp_token": ["请输入身份验证器中的当前验证码 / Enter the current code from "
                                                      "your authenticator app."]}}, status=status.HTTP_400_BAD_REQUEST)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
