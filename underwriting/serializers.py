"""The RM's due-diligence inputs, each checked once, here, for the case API and the staff case page alike:
collateral, guarantors, notes. The services take the checked values and check what only they know: the
product (secured or not), the policy's appraisal age and LTV caps, the borrower and the guarantors on file."""

from __future__ import annotations

from django.utils import timezone
from django.utils.functional import lazy
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from applications.identifiers import check_resident_id, check_uscc
from loanservice.money import REQUIRED, MoneySerializerField

from .models import COLLATERAL_KINDS, Guarantor, SiteVisit

DATE_INVALID = gettext_lazy("请使用 YYYY-MM-DD 格式的日期 / Enter a date as YYYY-MM-DD.")
LTV_INVALID = gettext_lazy("请填写 0 到 1 之间的小数，如 0.70 / Enter a fraction such as 0.70.")
COLLATERAL_INVALID = gettext_lazy("押品信息有误 / The collateral details are not valid.")
GUARANTOR_INVALID = gettext_lazy("保证人信息有误 / The guarantor details are not valid.")
NOTE_INVALID = gettext_lazy("请填写笔记内容 / Write the note.")


# Messages with a number in them, translated when shown (not when the module loads).
_at_most = lazy(lambda n: gettext("不能超过 %(n)s 个字符 / At most %(n)s characters.") % {"n": n}, str)
_one_of = lazy(lambda kinds: gettext("可选：%(k)s / One of: %(k)s") % {"k": kinds}, str)


def _text(limit: int, *, required: bool = True) -> serializers.CharField:
    messages = {"blank": REQUIRED, "required": REQUIRED, "null": REQUIRED,
                "max_length": _at_most(limit)}
    if required:
        return serializers.CharField(max_length=limit, error_messages=messages)
    return serializers.CharField(max_length=limit, required=False, allow_blank=True, default="", error_messages=messages)


class _BlankAsNone:
    """A page's empty input, or an API's "" or null, is no value (the service's default applies)."""

    def validate_empty_values(self, data):
        if data == "":
            data = None
        return super().validate_empty_values(data)


class FractionField(_BlankAsNone, serializers.DecimalField):
    pass


class DateOrNone(_BlankAsNone, serializers.DateField):
    pass


@extend_schema_serializer(component_name="CollateralIn")  # the schema's name before the move
class CollateralSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[k for k, _label in COLLATERAL_KINDS], error_messages={
        "invalid_choice": _one_of(", ".join(k for k, _label in COLLATERAL_KINDS))})
    description = _text(200)
    valuation = MoneySerializerField(allow_zero=False)
    appraiser = _text(100)
    appraised_on = serializers.DateField(error_messages={"invalid": DATE_INVALID, "required": REQUIRED, "null": REQUIRED})
    ltv = FractionField(max_digits=5, decimal_places=4, required=False, allow_null=True, error_messages={
        key: LTV_INVALID for key in ("invalid", "max_digits", "max_decimal_places", "max_whole_digits", "max_string_length")})
    owner_name = _text(100, required=False)
    certificate_no = _text(60, required=False)

    def validate_appraised_on(self, value):
        if value > timezone.localdate():
            raise serializers.ValidationError(gettext_lazy("评估日期不能晚于今天 / The appraisal date cannot be in the future."))
        return value

    def validate_ltv(self, value):
        if value is not None and not 0 < value <= 1:
            raise serializers.ValidationError(LTV_INVALID)
        return value


@extend_schema_serializer(component_name="GuarantorIn")  # the schema's name before the move
class GuarantorSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[k for k, _label in Guarantor.KINDS],
                                   error_messages={"invalid_choice": gettext_lazy("可选：enterprise, person")})
    name = _text(200)
    uscc = serializers.CharField(required=False, allow_blank=True, default="")
    id_number = serializers.CharField(required=False, allow_blank=True, default="")
    relationship = _text(100, required=False)
    guaranteed_amount = MoneySerializerField(allow_zero=False,
                                             required=False, allow_null=True)

    def validate(self, attrs):
        """An enterprise is named by its USCC, a person by the resident ID; the other is dropped."""
        if attrs["kind"] == Guarantor.ENTERPRISE:
            field, check = "uscc", check_uscc(attrs["uscc"])
            attrs["id_number"] = ""
        else:
            field, check = "id_number", check_resident_id(attrs["id_number"])
            attrs["uscc"] = ""
        if not check.ok:
            raise serializers.ValidationError({field: list(check.errors)})
        attrs[field] = check.value
        return attrs


@extend_schema_serializer(component_name="NoteIn")  # the schema's name before the move
class CaseNoteSerializer(serializers.Serializer):
    text = _text(4000)


@extend_schema_serializer(component_name="RequestInfo")  # the schema's name before the move
class InfoRequestSerializer(serializers.Serializer):
    """A request for information (the RM's or an approver's): what to upload from the checklist, what to
    answer, by when. Whether the documents are on the product's checklist is the service's check."""

    message = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    due_on = DateOrNone(required=False, allow_null=True, default=None, error_messages={"invalid": DATE_INVALID})
    documents = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False, default=list)
    questions = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False, default=list)

    def validate_due_on(self, value):
        if value is not None and value < timezone.localdate():
            raise serializers.ValidationError(gettext_lazy("截止日期不能早于今天 / The due date cannot be in the past."))
        return value

    def validate_documents(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(c.strip() for c in value if c.strip()))

    def validate_questions(self, value: list[str]) -> list[str]:
        asked = [q.strip() for q in value if q.strip()]
        if any(len(q) > 300 for q in asked):
            raise serializers.ValidationError(gettext_lazy("每个问题不超过300字 / Each question at most 300 characters."))
        return asked


class SiteVisitSerializer(serializers.Serializer):
    """A site or video visit, or its waiver. The answers are checked against the product's questionnaire,
    and a waiver against the case's risk, by the service (site_visit_record)."""

    mode = serializers.ChoiceField(choices=[m for m, _label in SiteVisit.MODES],
                                   error_messages={"invalid_choice": gettext_lazy("可选：onsite, video, waived")})
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    answers = serializers.DictField(required=False, default=dict)

    def validate(self, attrs):
        attrs["notes"] = attrs["notes"].strip()
        if attrs["mode"] != "waived" and not attrs["notes"]:
            raise serializers.ValidationError({"notes": [gettext_lazy("请填写走访记录 / Write the visit notes.")]})
        return attrs
