"""The after-loan inputs, each checked once, here: a repayment (the API and every line of a CSV import), a
collateral value (the loan page), a renewal or top-up request (the API and the portal). The services take
the checked values and check what only they know (the loan's state, the last payment, idempotency)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from loanservice.business_date import business_date
from loanservice.money import REQUIRED, MoneySerializerField

DATE_FORMATS = ["iso-8601", "%Y/%m/%d"]
NOT_IN_FUTURE = gettext_lazy("日期格式 YYYY-MM-DD，不晚于今天 / YYYY-MM-DD, not in the future.")
_DATE_MESSAGES = {"invalid": NOT_IN_FUTURE, "required": REQUIRED, "null": REQUIRED}


def _not_in_future(value):
    if value > business_date():
        raise serializers.ValidationError(NOT_IN_FUTURE)
    return value


class RepaymentSerializer(serializers.Serializer):
    amount = MoneySerializerField(allow_zero=False)
    paid_on = serializers.DateField(input_formats=DATE_FORMATS, error_messages=_DATE_MESSAGES)
    reference = serializers.CharField(max_length=80, error_messages={
        "blank": REQUIRED, "required": REQUIRED, "max_length": gettext_lazy("流水号必填，最多80字符 / Required, at most 80 characters.")})

    def validate_paid_on(self, value):
        return _not_in_future(value)


class CollateralValueSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=200, error_messages={"blank": REQUIRED, "required": REQUIRED})
    value = MoneySerializerField(allow_zero=False)
    valued_on = serializers.DateField(input_formats=DATE_FORMATS, error_messages=_DATE_MESSAGES)

    def validate_valued_on(self, value):
        return _not_in_future(value)


@extend_schema_serializer(component_name="RenewalIn")  # the schema's name before the move
class RenewalSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["renewal", "top_up"], required=False, default="renewal",
                                   error_messages={"invalid_choice": gettext_lazy("renewal 或 top_up")})
    amount = MoneySerializerField(allow_zero=False, required=False, allow_null=True)

    def validate(self, attrs):
        if attrs["kind"] == "top_up" and attrs.get("amount") is None:
            raise serializers.ValidationError({"amount": [REQUIRED]})
        return attrs


MODE_CHOICES = [("shorten_term", gettext_lazy("缩短期限 shorten the term")),
                ("lower_installment", gettext_lazy("减少月供 lower the installment"))]
_MODE_MESSAGES = {"invalid_choice": gettext_lazy("shorten_term 或 lower_installment / shorten_term or lower_installment."),
                  "required": REQUIRED, "null": REQUIRED}
_QUOTE_DATE_MESSAGES = {"invalid": gettext_lazy("日期格式 YYYY-MM-DD / YYYY-MM-DD."), "required": REQUIRED, "null": REQUIRED}


class PayoffQuoteQuery(serializers.Serializer):
    on = serializers.DateField(required=False, input_formats=DATE_FORMATS, error_messages=_QUOTE_DATE_MESSAGES,
                               help_text="the payoff date, the business date or later (default: the business date)")


class PrepaymentQuoteSerializer(serializers.Serializer):
    amount = MoneySerializerField(allow_zero=False, help_text="principal to prepay")
    on = serializers.DateField(required=False, input_formats=DATE_FORMATS, error_messages=_QUOTE_DATE_MESSAGES,
                               help_text="the business date or later (default: the business date)")
    mode = serializers.ChoiceField(choices=MODE_CHOICES, error_messages=_MODE_MESSAGES)


class PrepaymentSerializer(serializers.Serializer):
    amount = MoneySerializerField(allow_zero=False, help_text="principal to prepay")
    mode = serializers.ChoiceField(choices=MODE_CHOICES, error_messages=_MODE_MESSAGES)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, error_messages={"blank": REQUIRED, "required": REQUIRED})


class AutoDebitSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(help_text="true: the borrower's settlement account is debited for what is due at "
                                                 "close of business (自动扣款); false: revoked")
    reason = serializers.CharField(max_length=300, required=False, default="", allow_blank=True)


class GuarantorConsentSerializer(serializers.Serializer):
    guarantor = serializers.IntegerField(help_text="the guarantor's id (the application's guarantors)")
    consented_on = serializers.DateField(input_formats=DATE_FORMATS, error_messages=_DATE_MESSAGES)
    document = serializers.CharField(max_length=200, help_text="the written consent: its number or reference")


class ExtensionSerializer(ReasonSerializer):
    extra_months = serializers.IntegerField(min_value=1, max_value=60)
    guarantor_consents = GuarantorConsentSerializer(many=True, required=False, default=list)


class RecoverySerializer(serializers.Serializer):
    amount = MoneySerializerField(allow_zero=False)
    paid_on = serializers.DateField(input_formats=DATE_FORMATS, error_messages=_DATE_MESSAGES)
    reference = serializers.CharField(max_length=80, error_messages={
        "blank": REQUIRED, "required": REQUIRED, "max_length": gettext_lazy("流水号必填，最多80字符 / Required, at most 80 characters.")})

    def validate_paid_on(self, value):
        return _not_in_future(value)
