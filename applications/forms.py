"""The intake inputs, each checked once, here: the wizard's pages, the API (`POST /api/v1/enterprises/`,
`POST /api/v1/applications/`) and the portal's as-you-type field check all bind these forms.

A form checks what the input alone can tell: shape, identifiers (python-stdnum), dates, bounds, a free USCC.
What only the service knows (ownership, a product still on sale, the product's amount, term and repayment
methods, the case's state) the service checks, once (`services.application_request_errors`).
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _

from loanservice.money import REQUIRED, MoneyField, money_display
from loanservice.sms_codes import MOBILE_INVALID, mobile_clean
from loanservice.text import join_list

from .identifiers import check_industry_code, check_resident_id, check_uscc
from .models import DATA_SOURCES, REPAYMENT_METHODS, Enterprise, IdentityVerification, LoanProduct

MAX_EMPLOYEES = 10_000_000
EMPLOYEES_INVALID = gettext_lazy("请填写从业人数（非负整数）/ Enter the number of employees (a whole number).")
FOUNDED_INVALID = gettext_lazy("请填写有效的成立日期（不晚于今天）/ Enter a valid founding date (not in the future).")
TERM_INVALID = gettext_lazy("请填写期限（整月数）/ Enter the term in whole months.")
USCC_TAKEN = gettext_lazy("该统一社会信用代码已登记，请联系您的客户经理 / This USCC is already registered; "
                   "please contact your relationship manager.")
ENTERPRISE_NOT_FOUND = gettext_lazy("企业不存在 / Enterprise not found.")
CHANNEL_INVALID = gettext_lazy("渠道为不超过20位的小写字母代码 / A lower-case code of up to 20 letters.")


def too_long(limit: int) -> str:
    return _("不能超过 %(n)s 个字 / At most %(n)s characters.") % {"n": limit}


class TextField(forms.CharField):
    """Stripped text, required unless told, at most `limit` characters, with the house's messages."""

    def __init__(self, *, limit: int, **kwargs):
        kwargs.setdefault("error_messages", {}).setdefault("required", REQUIRED)
        super().__init__(max_length=limit, **kwargs)
        self.limit = limit
        self.validators = [v for v in self.validators if not isinstance(v, MaxLengthValidator)]

    def validate(self, value):
        super().validate(value)
        if value and len(value) > self.limit:
            raise ValidationError(too_long(self.limit), code="max_length")


def _checked(check) -> str:
    if not check.ok:
        raise ValidationError(list(check.errors))
    return check.value


class EnterpriseForm(forms.Form):
    """An enterprise as its owner registers it (the wizard's first step and `POST /api/v1/enterprises/`)."""

    name = TextField(label=gettext_lazy("企业名称 Enterprise name"), limit=200)
    uscc = forms.CharField(label=gettext_lazy("统一社会信用代码 USCC"), error_messages={"required": REQUIRED},
                           help_text=gettext_lazy("18位，见营业执照 / 18 characters, on the business licence"),
                           widget=forms.TextInput(attrs={"autocomplete": "off", "pattern": "[0-9A-Za-z]{18}",
                                                         "inputmode": "text", "autocapitalize": "characters"}))
    legal_form = forms.ChoiceField(label=gettext_lazy("组织形式 Legal form"), choices=Enterprise.LEGAL_FORMS, required=False,
                                   error_messages={"invalid_choice": gettext_lazy("组织形式无效 / Unknown legal form.")})
    legal_rep_name = TextField(label=gettext_lazy("法定代表人 Legal representative"), limit=100)
    legal_rep_id_number = forms.CharField(label=gettext_lazy("法定代表人身份证号 Legal representative's ID"),
                                          error_messages={"required": REQUIRED},
                                          widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}))
    industry_code = forms.CharField(label=gettext_lazy("行业代码（GB/T 4754）Industry code"), error_messages={"required": REQUIRED},
                                    help_text=gettext_lazy("例如 C1711（制造业）、F5123（批发）/ e.g. C1711, F5123"))
    founded_on = forms.DateField(label=gettext_lazy("成立日期 Founded on"), widget=forms.DateInput(attrs={"type": "date"}),
                                 error_messages={"required": REQUIRED, "invalid": FOUNDED_INVALID})
    employees = forms.IntegerField(label=gettext_lazy("从业人数 Employees"), min_value=0, max_value=MAX_EMPLOYEES,
                                   widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
                                   error_messages={"required": REQUIRED, "invalid": EMPLOYEES_INVALID,
                                                   "min_value": EMPLOYEES_INVALID, "max_value": EMPLOYEES_INVALID})
    annual_revenue = MoneyField(label=gettext_lazy("年营业收入（元）Annual revenue (CNY)"))

    def clean_uscc(self) -> str:
        uscc = _checked(check_uscc(self.cleaned_data["uscc"]))
        if Enterprise.objects.filter(uscc=uscc).exists():
            raise ValidationError(USCC_TAKEN, code="taken")
        return uscc

    def clean_legal_rep_id_number(self) -> str:
        check = check_resident_id(self.cleaned_data["legal_rep_id_number"])
        # A county code unknown for the birth year only warns (DESIGN.md, Identifiers); the audit keeps it.
        self.id_warnings = list(check.warnings) if check.ok else []
        return _checked(check)

    def clean_industry_code(self) -> str:
        return _checked(check_industry_code(self.cleaned_data["industry_code"]))

    def clean_legal_form(self) -> str:
        return self.cleaned_data["legal_form"] or "llc"

    def clean_founded_on(self):
        founded_on = self.cleaned_data["founded_on"]
        if founded_on > timezone.localdate() or founded_on.year < 1900:
            raise ValidationError(FOUNDED_INVALID, code="invalid")
        return founded_on

    def clean(self):
        data = super().clean()
        data["id_warnings"] = getattr(self, "id_warnings", [])
        return data


LOOKUP_CONSENT = gettext_lazy("请勾选同意查询，或在下方手动填写 / Tick to authorise the lookup, or fill in the form below.")


class RegistryLookupForm(forms.Form):
    """The wizard's first question: the credit code, and the owner's consent to read the registry, so the public
    part of the enterprise form is filled for them."""

    uscc = EnterpriseForm.base_fields["uscc"]
    consent = forms.BooleanField(label=gettext_lazy("我确认代表本企业办理，同意银行查询其工商登记信息用于自动填写 "
                                                    "I act for this enterprise and authorise the bank to read its "
                                                    "registry record to fill in this form"),
                                 error_messages={"required": LOOKUP_CONSENT})
    clean_uscc = EnterpriseForm.clean_uscc


PURPOSES = [
    ("采购原材料", gettext_lazy("采购原材料 buying materials or stock")),
    ("支付货款", gettext_lazy("支付货款 paying suppliers")),
    ("发放工资", gettext_lazy("发放工资 paying wages")),
    ("设备购置", gettext_lazy("设备购置 buying equipment")),
    ("租金及经营费用", gettext_lazy("租金及经营费用 rent and running costs")),
    ("other", gettext_lazy("其他用途 other")),
]


class RequestForm(forms.Form):
    """The loan request of a draft (the wizard's second step, the API's create): its shape. Whether the
    product offers that amount, term and repayment method is the service's check."""

    amount = MoneyField(label=gettext_lazy("申请金额（元）Amount (CNY)"), allow_zero=False)
    term_months = forms.IntegerField(label=gettext_lazy("期限（月）Term (months)"),
                                     widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
                                     error_messages={"required": REQUIRED, "invalid": TERM_INVALID})
    repayment_method = forms.CharField(label=gettext_lazy("还款方式 Repayment method"), error_messages={"required": REQUIRED},
                                       widget=forms.Select(choices=REPAYMENT_METHODS))
    purpose = TextField(label=gettext_lazy("贷款用途 Purpose"), limit=300,
                        error_messages={"required": gettext_lazy("请说明贷款用途 / Please state the purpose of the loan.")})

    def __init__(self, *args, product: LoanProduct | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if product is not None:  # what the page offers; the service refuses anything else
            self.fields["repayment_method"].widget.choices = [c for c in REPAYMENT_METHODS if c[0] in product.repayment_methods]
            self.fields["amount"].help_text = _("%(min)s 至 %(max)s 元 / %(min)s to %(max)s CNY") % {
                "min": money_display(product.min_amount, 0), "max": money_display(product.max_amount, 0)}
            self.fields["term_months"].help_text = _("%(min)s 至 %(max)s 个月 / %(min)s to %(max)s months") % {
                "min": product.min_term_months, "max": product.max_term_months}
            self.fields["term_months"].widget.attrs.update({"min": product.min_term_months, "max": product.max_term_months})


class ApplicationCreateForm(RequestForm):
    """`POST /api/v1/applications/`: the request, plus which enterprise, which product and the channel."""

    enterprise = forms.ModelChoiceField(queryset=Enterprise.objects.all(),
                                        error_messages={"required": REQUIRED, "invalid_choice": ENTERPRISE_NOT_FOUND})
    product = forms.ModelChoiceField(queryset=LoanProduct.objects.all(), to_field_name="code",
                                     error_messages={"required": REQUIRED,
                                                     "invalid_choice": gettext_lazy("未知产品 / Unknown product.")})
    channel = forms.RegexField(r"^[a-z][a-z0-9_]{0,19}$", required=False, error_messages={"invalid": CHANNEL_INVALID})

    def clean_channel(self) -> str:
        return self.cleaned_data["channel"] or "api"


def field_errors(form_class: type[forms.Form], name: str, value, **kwargs) -> tuple[list[str], forms.Form]:
    """One field of a form checked on its own (the portal's as-you-type check): its errors and the form."""
    form = form_class(data={name: value}, **kwargs)
    return [str(e) for e in form.errors.get(name, [])], form


_choose_sources = lazy(lambda: gettext("请勾选要授权的数据源：%(s)s / Tick the data sources you authorise: %(s)s")
                       % {"s": join_list(label for _code, label in DATA_SOURCES)}, str)


class ConsentForm(forms.Form):
    """The data sources the applicant authorises (the wizard's consent step, `POST .../consent/`)."""

    scopes = forms.MultipleChoiceField(choices=DATA_SOURCES, error_messages={
        "required": _choose_sources(), "invalid_choice": _choose_sources(), "invalid_list": _choose_sources()})


class ConsentWithdrawForm(forms.Form):
    """`POST .../consent/withdraw/`: the sources to withdraw; none named withdraws them all."""

    scopes = forms.MultipleChoiceField(choices=DATA_SOURCES, required=False, error_messages={
        "invalid_choice": _choose_sources(), "invalid_list": _choose_sources()})


SMS_CODE_INVALID = gettext_lazy("请输入6位短信验证码 / Enter the 6-digit SMS code.")


class PhoneForm(forms.Form):
    """The phone an SMS code goes to (identity verification, signing)."""

    phone = forms.CharField(label=gettext_lazy("手机号 Mobile number"), error_messages={"required": REQUIRED},
                            widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}))

    def clean_phone(self) -> str:
        try:
            return mobile_clean(self.cleaned_data["phone"])
        except ValueError:
            raise ValidationError(MOBILE_INVALID, code="invalid") from None


class IdentityVerificationForm(PhoneForm):
    """Who acts for the enterprise (the wizard's verification step, `POST .../verify-representative/`): the legal
    representative, or an agent with a power of attorney; name, ID number, phone and the SMS code sent to it."""

    field_order = ["method", "name", "id_number", "phone", "sms_code", "power_of_attorney"]
    method = forms.ChoiceField(label=gettext_lazy("办理人 Who is acting"), choices=IdentityVerification.METHODS,
                               initial=IdentityVerification.LEGAL_REP, widget=forms.RadioSelect, required=False,
                               error_messages={
                                               "invalid_choice": gettext_lazy("请选择办理人 / Choose who is acting.")})
    name = TextField(label=gettext_lazy("姓名 Name"), limit=100)
    id_number = forms.CharField(label=gettext_lazy("身份证号 Resident ID number"), error_messages={"required": REQUIRED},
                                widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}))
    sms_code = forms.RegexField(r"^\d{6}$", label=gettext_lazy("短信验证码 SMS code"), error_messages={
        "required": SMS_CODE_INVALID, "invalid": SMS_CODE_INVALID},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}))
    power_of_attorney = forms.FileField(label=gettext_lazy("授权委托书（经办人必传）Power of attorney (agents)"),
                                        required=False)

    def clean_method(self) -> str:
        return self.cleaned_data["method"] or IdentityVerification.LEGAL_REP  # the usual case may be left out

    def clean_id_number(self) -> str:
        return _checked(check_resident_id(self.cleaned_data["id_number"]))

    def clean(self):
        data = super().clean()
        upload = data.get("power_of_attorney")
        if data.get("method") == IdentityVerification.AGENT and not upload:
            self.add_error("power_of_attorney", gettext_lazy("经办人须上传授权委托书 / An agent uploads the power of attorney."))
        elif upload and upload.size > MAX_UPLOAD_MB * 1024 * 1024:
            self.add_error("power_of_attorney", gettext_lazy("文件过大 / The file is too large."))
        return data


MAX_UPLOAD_MB = 50  # the edge's cap on any upload; each checklist item's own limit is the service's check
CHOOSE_FILE = gettext_lazy("请选择文件 / Choose a file.")
UPLOAD_INCOMPLETE = gettext_lazy("上传信息不完整 / The upload is incomplete.")


class DocumentUploadForm(forms.Form):
    """A document for a checklist item: the wizard's documents step, the answer to a request for
    information, `POST .../documents/`. The file's real type and the item's size limit are the service's."""

    requirement = forms.CharField(error_messages={"required": gettext_lazy("请选择材料项 / Choose the checklist item.")})
    file = forms.FileField(error_messages={"required": CHOOSE_FILE, "missing": CHOOSE_FILE, "invalid": CHOOSE_FILE,
                                           "empty": gettext_lazy("文件为空 / The file is empty.")})

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_MB * 1024 * 1024:
            raise ValidationError(gettext_lazy("文件过大 / The file is too large."), code="too_large")
        return upload


class ChecklistFilterForm(forms.Form):
    """The product page's "what will I need?" filter: the amount and legal form the application will have."""

    amount = MoneyField(allow_zero=False, required=False)
    legal_form = forms.ChoiceField(choices=Enterprise.LEGAL_FORMS, required=False)


class PortalRequestForm(RequestForm):
    """The wizard's loan request: the purpose chosen from a list, with "other" and a line of text."""

    field_order = ["amount", "term_months", "repayment_method", "purpose", "purpose_other"]

    purpose_other = TextField(label=gettext_lazy("其他用途说明 Other purpose"), limit=300, required=False)

    def __init__(self, *args, initial=None, **kwargs):
        initial = dict(initial or {})
        if initial.get("purpose") and initial["purpose"] not in dict(PURPOSES):
            initial["purpose_other"], initial["purpose"] = initial["purpose"], "other"
        super().__init__(*args, initial=initial, **kwargs)
        # The same text field as the API's (same checks, same messages), offered as a list with "other".
        self.fields["purpose"].widget = forms.Select(choices=[("", gettext_lazy("请选择 Choose"))] + PURPOSES)

    def clean(self):
        data = super().clean()
        other = data.pop("purpose_other", "")
        if data.get("purpose") == "other":
            if other:
                data["purpose"] = other
            else:
                self.add_error("purpose_other", gettext_lazy("请说明用途 / Please say what the loan is for."))
        return data
