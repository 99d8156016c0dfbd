"""The credit-line inputs, each checked once here (the API and the portal's draw form): a drawdown and a limit change.
The services check what only they know (the line's state, what is available, the product's limits)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy
from rest_framework import serializers

from applications.models import REPAYMENT_METHODS
from loanservice.money import REQUIRED, MoneySerializerField

ACCOUNT_INVALID = gettext_lazy("账号为8-30位数字 / The account number is 8-30 digits.")


class PayeeSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, error_messages={"blank": REQUIRED, "required": REQUIRED})
    account = serializers.RegexField(r"^\d{8,30}$", error_messages={"invalid": ACCOUNT_INVALID, "required": REQUIRED,
                                                                   "blank": REQUIRED})


class DrawdownSerializer(serializers.Serializer):
    amount = MoneySerializerField(allow_zero=False)
    term_months = serializers.IntegerField(min_value=1, max_value=120, error_messages={"required": REQUIRED})
    repayment_method = serializers.CharField(max_length=20, error_messages={"required": REQUIRED, "blank": REQUIRED})
    payee = PayeeSerializer(required=False, allow_null=True,
                            help_text="受托支付收款人，超过自主支付限额时必填 / the named payee, required above the self-payment limit")

    def validate_repayment_method(self, value):
        known = {code for code, _label in REPAYMENT_METHODS} | {"daily_interest"}
        if value not in known:
            raise serializers.ValidationError(gettext_lazy("还款方式无效 / Unknown repayment method."))
        return value

    def to_service(self) -> dict:
        data = dict(self.validated_data)
        payee = data.pop("payee", None) or {}
        return {**data, "payee_name": payee.get("name", ""), "payee_account": payee.get("account", "")}


class LineReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, error_messages={"blank": REQUIRED, "required": REQUIRED})


class LineAdjustSerializer(LineReasonSerializer):
    limit = MoneySerializerField(allow_zero=True)


class LineChangeDecideSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=500, required=False, allow_blank=True)
