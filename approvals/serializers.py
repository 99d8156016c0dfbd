"""The approver's decision as it comes in, checked once for the case API (`POST .../decide/`) and the review
page alike. Its shape is checked here; what the catalogue, the product and the request allow (reason codes
of the right kind, conditions, amount, rate and term within bounds) is the service's check (approval_decide)."""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from loanservice.money import MoneySerializerField

DECISIONS = ["approve", "decline", "return"]


@extend_schema_field({"oneOf": [
    {"type": "string", "description": "a condition code of the catalogue"},
    {"type": "object", "properties": {"code": {"type": "string"}, "text": {"type": "string"}}, "required": ["code"]},
]})
class ConditionField(serializers.Field):
    """A condition: a catalogue code, or {"code": ..., "text": ...} with the case's own wording."""

    default_error_messages = {"invalid": gettext_lazy("条件须为代码或 {code, text} / A condition is a code or {code, text}.")}

    def to_internal_value(self, data) -> dict:
        if isinstance(data, str) and data.strip():
            return {"code": data.strip(), "text": ""}
        if isinstance(data, dict) and isinstance(data.get("code"), str) and data["code"].strip() \
                and isinstance(data.get("text") or "", str):
            return {"code": data["code"].strip(), "text": (data.get("text") or "").strip()}
        raise serializers.ValidationError(self.error_messages["invalid"], code="invalid")  # braces: not fail()

    def to_representation(self, value):
        return value


@extend_schema_serializer(component_name="Decide")  # the schema's name before the move
class DecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=DECISIONS, error_messages={
        "invalid_choice": gettext_lazy("可选：approve, decline, return")})
    reason_codes = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    approved_amount = MoneySerializerField(allow_zero=False, required=False, allow_null=True)
    rate = serializers.DecimalField(max_digits=7, decimal_places=6, min_value=0, required=False, allow_null=True)
    term_months = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    conditions = serializers.ListField(child=ConditionField(), required=False, default=list)

    def validate_reason_codes(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(c.strip() for c in value if c.strip()))

    def validate(self, attrs):
        if attrs["decision"] != "approve" and any(attrs.get(k) for k in ("approved_amount", "rate", "term_months", "conditions")):
            raise serializers.ValidationError({"decision": [
                gettext_lazy("只有批准可以附带金额、利率、期限或条件 / Only an approval carries an amount, rate, term or conditions.")]})
        return attrs


class DecisionPageSerializer(DecisionSerializer):
    """The review page's decision: the rate typed as a percentage (4.35, as people write it), kept as the
    fraction the API takes (0.0435)."""

    rate_percent = serializers.DecimalField(max_digits=7, decimal_places=4, min_value=0, max_value=100, required=False,
                                            allow_null=True)

    def validate(self, attrs):
        percent = attrs.pop("rate_percent", None)
        if percent is not None:
            attrs["rate"] = (percent / 100).quantize(Decimal("0.000001"))
        return super().validate(attrs)
