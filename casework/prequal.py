"""Pre-qualification (预审 / 测额) before applying: USCC plus consent → likely eligible or not, each failing
criterion named, and an indicative limit (预授信额度) per product.

It composes intake (the admission criteria and negative list, as data) with underwriting (the data
providers and the limit formula), so it lives here in the kernel, like the lifecycle conductor.

What is asked (DESIGN.md, Trust rules): a signed-out visitor — or anyone without a live authorisation for the
enterprise — gets only what public registers show: the registry record (国家企业信用信息公示系统, without the
legal representative's ID number) and the dishonest-debtor list (失信被执行人名单) as a yes/no. Tax, social
security, customs, credit bureau, court detail and the bank's own records are not even asked for: a query is
itself a fact the source records. A signed-in owner whose enterprise has a live data authorisation gets the
fuller check on the sources it authorised. The answer says which sources were checked and which were not.

What is kept (docs/intake.md): one audit event per check — the USCC, the consent text version and
scopes checked, the basis (public or the authorisation used), the time, the IP address, whether it looked
eligible and the codes of the failing criteria. The data fetched from the sources is used for the answer and
dropped: no enterprise, no snapshot, no payload is stored. The apply token handed back carries only what the
public registry shows (USCC, founding date, industry code) and the indicative limits, signed so it cannot be
altered.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from decimal import ROUND_DOWN, Decimal
from types import SimpleNamespace

from django.core import signing
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from applications import services as intake
from applications.identifiers import check_uscc
from applications.selectors import owner_authorisation_live, products_published
from loanservice.api import client_ip
from loanservice.audit import audit_record
from loanservice.errors import ApplicationError
from loanservice.text import in_language
from underwriting import providers as provider_lib
from underwriting import services as underwriting

log = logging.getLogger(__name__)
CONSENT_VERSION = "prequal-2026-2"
SCOPES = ["registry", "tax", "social_security", "credit_bureau", "judicial", "internal"]
# What the law publishes, per source: the fields anyone may see (None: the whole record but for the fields
# listed in PUBLIC_HIDDEN). The registry is public (企业信息公示暂行条例) except the representative's ID number;
# of the judicial source only the dishonest-debtor flags are (最高人民法院关于公布失信被执行人名单信息的若干规定).
PUBLIC_FIELDS = {"registry": None, "judicial": ("dishonest_debtor", "legal_rep_dishonest_debtor")}
PUBLIC_HIDDEN = {"registry": ("legal_rep_id_number",)}
SOURCE_NAMES = {
    "registry": ("工商登记", "business registry"), "judicial": ("失信被执行人名单", "dishonest-debtor list"),
    "tax": ("税务", "tax"), "social_security": ("社保", "social security"), "credit_bureau": ("征信", "credit bureau"),
    "internal": ("行内数据", "the bank's own records"),
}
JUDICIAL_FULL = ("司法涉诉及执行", "court cases and enforcement")
TOKEN_SALT = "casework.prequal"
TOKEN_MAX_AGE = 7 * 24 * 3600
INDICATIVE_STEP = Decimal("10000")  # an indication, not an offer: rounded down to ten thousand


class PrequalifyThrottle(SimpleRateThrottle):
    """Per client: the signed-in user, otherwise the IP address. Rate from the 'prequalify' setting."""

    scope = "prequalify"

    def get_rate(self):
        # Read at call time, so a changed setting (tests, ops) takes effect without a restart.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_ident(self, request):
        # X-Forwarded-For is the client's to write: trust it only behind configured proxies (NUM_PROXIES),
        # or anyone could dodge the limit by sending a new one each time.
        if api_settings.NUM_PROXIES is None:
            return request.META.get("REMOTE_ADDR") or "unknown"
        return super().get_ident(request)

    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        ident = f"user-{user.pk}" if getattr(user, "is_authenticated", False) else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


def _fetch(uscc: str, sources: list[str]) -> dict[str, dict | None]:
    """Ask each named source's configured provider now, keeping nothing. A push-only or failing source is a gap."""
    today = timezone.localdate()
    payloads: dict[str, dict | None] = {}
    for source in sources:
        config = underwriting.source_config(source)
        if config.provider == "push" or not config.is_active:
            payloads[source] = None
            continue
        try:
            payloads[source] = underwriting.provider_for(config).fetch(source, uscc, as_of=today, hints={})
        except provider_lib.ProviderError as exc:
            log.info("prequalification: %s unavailable (%s)", source, exc)
            payloads[source] = None
    return payloads


def public_view(source: str, payload: dict | None) -> dict | None:
    """The part of a source's answer the law publishes (PUBLIC_FIELDS), or None when nothing of it is public."""
    if payload is None or source not in PUBLIC_FIELDS:
        return None
    fields = PUBLIC_FIELDS[source]
    hidden = PUBLIC_HIDDEN.get(source, ())
    return {k: v for k, v in payload.items() if (fields is None or k in fields) and k not in hidden}


def authorised_scopes(*, uscc: str, user) -> tuple[int | None, list[str]]:
    """The live authorisation a signed-in owner holds for the enterprise with this USCC (its id, the sources in
    force among SCOPES), or (None, []) when there is none."""
    authorisation, sources = owner_authorisation_live(uscc=uscc, user=user)
    return authorisation, sorted(set(sources) & set(SCOPES))


def _names(items) -> list[dict]:
    return [{"source": code, "name": zh, "name_en": en} for code, (zh, en) in items]


def _indicative_limit(product, payloads: dict) -> Decimal | None:
    if not payloads.get("tax"):
        return None  # no revenue or tax figure to size it
    revenue = Decimal(payloads["tax"]["revenue_12m"])
    application = SimpleNamespace(product=product, enterprise=SimpleNamespace(annual_revenue=revenue),
                                  collateral=SimpleNamespace(all=lambda: []))
    limit = underwriting.limit_recommend(application=application, payloads=payloads,
                                         policy=underwriting.pricing_policy(), collateral_value=Decimal("0"))
    return (limit / INDICATIVE_STEP).to_integral_value(rounding=ROUND_DOWN) * INDICATIVE_STEP


def _reason(item: dict) -> dict:
    return {"code": item["code"], "message": item["message"], "message_en": item.get("message_en") or item["message"]}


def prequalification_run(*, uscc: str, consent: bool, user=None, ip: str | None = None) -> dict:
    """One self-check. Raises ApplicationError naming the field for a bad USCC or a missing consent."""
    errors = {}
    check = check_uscc(uscc or "")
    if not (uscc or "").strip():
        errors["uscc"] = [_("此项为必填项 / This field is required.")]
    elif not check.ok:
        errors["uscc"] = check.errors
    if consent is not True:
        errors["consent"] = [_("请阅读并同意授权，银行才能查询数据 / Please read and accept the consent so the bank "
                               "can look up the data.")]
    if errors:
        raise ApplicationError(_("预审信息有误 / The pre-qualification request is not valid."), errors=errors)
    code = check.value
    authorisation, authorised = authorised_scopes(uscc=code, user=user)
    if authorisation is None:  # public registers only
        fetched = _fetch(code, list(PUBLIC_FIELDS))
        payloads = {s: public_view(s, fetched.get(s)) for s in SCOPES}
        checked = list(PUBLIC_FIELDS)
    else:  # the sources authorised in full, the public registers as anyone sees them
        fetched = _fetch(code, sorted(set(authorised) | set(PUBLIC_FIELDS)))
        payloads = {s: fetched.get(s) if s in authorised else public_view(s, fetched.get(s)) for s in SCOPES}
        checked = [s for s in SCOPES if s in authorised or s in PUBLIC_FIELDS]
    checked_names = [(s, JUDICIAL_FULL if s == "judicial" and s in authorised else SOURCE_NAMES[s]) for s in checked]
    unchecked_names = [(s, SOURCE_NAMES[s]) for s in SCOPES if s not in checked]
    if "judicial" not in authorised:
        unchecked_names.append(("judicial_detail", JUDICIAL_FULL))
    products = list(products_published())
    assessment = intake.prequalification_assess(uscc=code, payloads=payloads, products=products,
                                                manual_list=authorisation is not None)
    results, failing, gaps_seen = [], {}, {}
    for product in products:
        summary = assessment["products"][product.code]
        limit = _indicative_limit(product, payloads)
        reasons = [_reason(r) for r in summary["reasons"]]
        if limit is not None and limit < product.min_amount and not reasons:
            reasons.append({"code": "limit_below_minimum",
                            "message": _("按经营和纳税数据测算的额度低于本产品最低金额"),
                            "message_en": "The limit the data supports is below this product's minimum amount"})
        for r in reasons:
            failing.setdefault(r["code"], r)
        gaps = [_reason(g) for g in summary["gaps"]]
        for g in gaps:
            gaps_seen.setdefault(g["code"], g)
        results.append({
            "code": product.code, "name": product.name, "name_en": product.name_en,
            "likely_eligible": not reasons,
            "needs_verification": bool(gaps),
            "indicative_limit": None if limit is None or reasons else f"{min(limit, product.max_amount):.2f}",
            "reasons": reasons, "gaps": gaps,
        })
    likely = any(r["likely_eligible"] for r in results)
    prospect = assessment["prospect"]
    token = signing.dumps({
        "uscc": code,
        "founded_on": prospect.founded_on.isoformat() if prospect.founded_on else None,
        "industry_code": prospect.industry_code or None,
        "limits": {r["code"]: r["indicative_limit"] for r in results if r["indicative_limit"]},
    }, salt=TOKEN_SALT, compress=True) if likely else None
    audit_record(actor=user if getattr(user, "is_authenticated", False) else None, action="prequalify.check",
                 object_type="prequalification", object_id=secrets.token_hex(8), ip=ip,
                 data={"uscc": code, "consent_version": CONSENT_VERSION, "scopes": checked, "likely_eligible": likely,
                       "failed": sorted(failing), "basis": "authorised" if authorisation else "public",
                       "authorisation": authorisation})
    return {
        "uscc": code,
        "likely_eligible": likely,
        "products": results,
        "reasons": list(failing.values()),
        "gaps": list(gaps_seen.values()),
        "apply_token": token,
        "token_valid_until": (timezone.now() + dt.timedelta(seconds=TOKEN_MAX_AGE)).isoformat() if token else None,
        "consent_version": CONSENT_VERSION,
        "basis": "authorised" if authorisation else "public",
        "authorisation": authorisation,
        "checked": _names(checked_names),
        "not_checked": _names(unchecked_names),
        "notice": (_("已按您的授权核查所列数据 / Checked on the data you authorised.") if authorisation else
                   _("未登录或未授权：仅核查公开信息（工商登记、失信被执行人名单）；征信、税务、社保、司法涉诉等需登录、身份核验并授权后核查 / "
                     "Signed out or not authorised: only public registers were checked (business registry, "
                     "dishonest-debtor list); credit bureau, tax, social security and court records are checked "
                     "only after you sign in, verify your identity and authorise the bank.")),
    }


def prequal_token_read(token: str) -> dict | None:
    """The prefill a pre-qualification handed out, or None when it is missing, altered or too old."""
    if not token:
        return None
    try:
        data = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not check_uscc(str(data.get("uscc") or "")).ok:
        return None
    return data


# ---------------------------------------------------------------- API
class PrequalifySerializer(serializers.Serializer):
    uscc = serializers.CharField(max_length=40, allow_blank=True, help_text="统一社会信用代码 (18 characters)")
    consent = serializers.BooleanField(help_text="The applicant accepts the data-query consent (must be true)")


class PrequalifyView(APIView):
    """POST /api/v1/prequalify/ — anonymous, rate limited per client ('prequalify' throttle)."""

    permission_classes = [AllowAny]
    throttle_classes = [PrequalifyThrottle]

    @extend_schema(request=PrequalifySerializer, responses={200: inline_serializer("PrequalOut", {
        "uscc": serializers.CharField(), "likely_eligible": serializers.BooleanField(),
        "products": serializers.ListField(child=serializers.DictField()),
        "reasons": serializers.ListField(child=serializers.DictField()),
        "gaps": serializers.ListField(child=serializers.DictField()), "apply_token": serializers.CharField(allow_null=True),
        "token_valid_until": serializers.DateTimeField(allow_null=True), "consent_version": serializers.CharField(),
        "basis": serializers.ChoiceField(choices=["public", "authorised"]),
        "authorisation": serializers.IntegerField(allow_null=True),
        "checked": serializers.ListField(child=serializers.DictField()),
        "not_checked": serializers.ListField(child=serializers.DictField()), "notice": serializers.CharField(),
    })})
    def post(self, request):
        ser = PrequalifySerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        result = prequalification_run(uscc=ser.validated_data["uscc"], consent=ser.validated_data["consent"],
                                      user=request.user, ip=client_ip(request))
        return Response(result)


# ---------------------------------------------------------------- page
def prequalify_page(request):
    """The public self-check page. Same rules, same throttle as the API."""
    context = {"consent_version": CONSENT_VERSION, "scopes": SCOPES, "values": {}, "errors": {}}
    if request.method == "POST":
        throttle = PrequalifyThrottle()
        if not throttle.allow_request(request, None):
            wait = throttle.wait()
            context["throttled"] = int(wait or 60)
            return render(request, "portal/prequalify.html", context, status=429)
        uscc = request.POST.get("uscc", "")
        context["values"] = {"uscc": uscc, "consent": request.POST.get("consent") == "on"}
        try:
            context["result"] = prequalification_run(uscc=uscc, consent=request.POST.get("consent") == "on",
                                                     user=request.user, ip=client_ip(request))
        except ApplicationError as exc:
            context["errors"] = {k: [in_language(m) for m in v] for k, v in exc.errors.items()}
            return render(request, "portal/prequalify.html", context, status=400)
    return render(request, "portal/prequalify.html", context)
