"""The English catalog: complete, compiled from the current .po, and used by the pages when the language cookie
says en; without the cookie the pages stay Chinese whatever the browser asks for."""

from __future__ import annotations

import gettext
import importlib.util
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from tests.factories import PendingApprovalFactory

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "locale" / "en" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# Chinese kept on purpose in English text: the product's brand, and the Chinese CSV headers the import accepts.
KEPT_CHINESE = ("信秒贷", "贷款编号", "流水号", "金额", "还款日期")


def _fill_module():
    spec = importlib.util.spec_from_file_location("i18n_fill", ROOT / "scripts" / "i18n_fill.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("i18n_fill", module)
    spec.loader.exec_module(module)
    return module


FILL = _fill_module()
ENTRIES = [e for e in FILL.parse(PO.read_text(encoding="utf-8")) if e.msgid and not e.obsolete]


def test_catalog_is_complete_with_matching_placeholders():
    assert len(ENTRIES) > 1000
    problems = []
    for entry in ENTRIES:
        if entry.fuzzy:
            problems.append(("fuzzy", entry.msgid))
        if not entry.msgstr.strip():
            problems.append(("empty", entry.msgid))
            continue
        problem = FILL.placeholder_problem(entry.msgid, entry.msgstr)
        if problem:
            problems.append((problem, entry.msgid))
        if " / " in entry.msgstr:  # in_language() takes the text after " / " as the English half of a pair
            problems.append(("' / ' in the English", entry.msgid))
        rest = entry.msgstr
        for kept in KEPT_CHINESE:
            rest = rest.replace(kept, "")
        if CJK.search(rest):
            problems.append(("Chinese left in the English", entry.msgid))
    assert problems == []


def test_placeholder_check_catches_a_bad_translation():
    assert FILL.placeholder_problem("在途 %(n)s 件", "%(n)s open cases") is None
    assert FILL.placeholder_problem("在途 %(n)s 件", "open cases") == "missing placeholders ['%(n)s']"
    assert FILL.placeholder_problem("在途 %(n)s 件", "%(count)s open cases") is not None
    # A pair needs only its English half's placeholders.
    assert FILL.placeholder_problem("已%(s)s / Request %(s_en)s", "Request %(s_en)s%(s).s") is None
    assert FILL.placeholder_problem("已%(s)s / Request %(s_en)s", "Request") is not None


def test_fill_keeps_gettexts_comment_order_on_fuzzy_entries(tmp_path):
    """makemessages marks a changed msgid fuzzy and keeps the previous one ("#|", after "#,"); the fill step
    must write them back in that order (msgfmt refuses "#|" first) and drop "#|" once the entry is filled."""
    po = tmp_path / "django.po"
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
                  '#: a.py:1\n#, fuzzy\n#| msgid "旧 / Old"\nmsgid "新 / New"\nmsgstr "Old"\n\n'
                  '#: a.py:2\n#, fuzzy\n#| msgid "旧的"\nmsgid "新的"\nmsgstr "Old"\n', encoding="utf-8")
    FILL.main(["--po", str(po)])
    text = po.read_text(encoding="utf-8")
    assert '#: a.py:1\nmsgid "新 / New"\nmsgstr "New"' in text
    assert '#: a.py:2\n#, fuzzy\n#| msgid "旧的"\nmsgid "新的"' in text


def test_mo_is_compiled_from_the_current_po():
    with MO.open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    stale = [e.msgid for e in ENTRIES if compiled.gettext(e.msgid) != e.msgstr]
    assert stale == [], "run `make messages` (or manage.py compilemessages) and commit the .mo"


def test_django_uses_the_catalog():
    sample = ENTRIES[:: max(1, len(ENTRIES) // 50)]
    with translation.override("en"):
        assert [translation.gettext(e.msgid) for e in sample] == [e.msgstr for e in sample]
        assert translation.gettext("我的申请") == "My applications"
    with translation.override("zh-hans"):
        assert translation.gettext("我的申请") == "我的申请"


class _Text(HTMLParser):
    """Text nodes and the user-visible attributes of a page (scripts and styles left out)."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        self.parts.extend(value.strip() for name, value in attrs if name in ("placeholder", "aria-label", "title") and value)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.parts.append(data.strip())


def _texts(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    return parser.parts


TEMPLATE_LABELS = {e.msgid for e in ENTRIES
                   if CJK.search(e.msgid) and any("templates/" in c for c in e.comments if c.startswith("#:"))}


@pytest.fixture
def case(products, org):
    """demo_applicant's application pending approval at the branch: RM case page, approver queue and portal."""
    return PendingApprovalFactory(applicant=org["demo_applicant"], seed=61)


def _pages(case, org):
    """(user, url, labels that must show in Chinese, their English) for the key pages."""
    return [
        (None, "/", "注册并申请", "Register and apply"),
        (None, "/products/", "不确定是否符合条件？先预审测额", "Not sure whether you qualify? Pre-qualify first"),
        (None, f"/products/{case.product.code}/", "材料清单", "Document checklist"),
        (None, "/login/", "手机号或用户名", "Mobile number or username"),
        (org["demo_applicant"], "/portal/", "我的申请", "My applications"),
        (org["demo_rm"], f"/staff/cases/{case.pk}/", "企业画像", "Enterprise profile"),
        (org["demo_branch_approver"], "/staff/approvals/", "审批队列", "Approval queue"),
        (org["demo_ops"], "/staff/operations/", "待银行签章的合同", "Contracts awaiting the bank's seal"),
        (org["demo_risk"], "/staff/risk/", "逾期贷款", "Overdue loans"),
    ]


@pytest.mark.django_db
def test_key_pages_in_english_with_the_cookie(client, case, org):
    from loanservice.models import Branch

    data = set(Branch.objects.values_list("name", flat=True))  # "总行" is a branch's name as well as a label
    seen_application = False
    for user, url, chinese, english in _pages(case, org):
        if user is None:
            client.logout()  # clears the cookies too
        else:
            client.force_login(user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert english in html and chinese not in html, url
        assert '<html lang="en"' in html, url
        untranslated = sorted({t for t in _texts(html) if t in TEMPLATE_LABELS} - data)
        assert untranslated == [], url
        seen_application |= f"/portal/applications/{case.pk}/" in html
    assert seen_application  # the applicant's portal listed the case, so its row was rendered too


@pytest.mark.django_db
def test_key_pages_stay_chinese_without_the_cookie(client, case, org):
    for user, url, chinese, english in _pages(case, org):
        if user is None:
            client.logout()
        else:
            client.force_login(user)
        html = client.get(url, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
        assert chinese in html and english not in html, url


@pytest.mark.django_db
def test_switcher_sets_the_cookie(client):
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/products/"})
    assert response.status_code == 302 and response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    assert "Loan products" in client.get("/products/").content.decode()
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/products/"})
    assert "贷款产品" in client.get("/products/").content.decode()


def _svgs(html: str) -> str:
    return "".join(re.findall(r"<svg.*?</svg>", html, flags=re.S))


def _options(html: str, select_id: str) -> list[str]:
    select = re.search(rf'<select id="{select_id}".*?</select>', html, flags=re.S).group(0)
    return [label.strip() for label in re.findall(r"<option[^>]*>(.*?)</option>", select, flags=re.S)]


@pytest.mark.django_db
def test_labels_units_product_names_and_lists_follow_the_language(client, case, org):
    """What the pages built outside the templates' {% translate %}: analytics section titles and stage labels,
    the profile charts' units and scorecard dimensions, product names in the filter dropdowns, and lists
    ("、" in Chinese, ", " in English)."""
    product = case.product
    checks = [
        (org["demo_risk"], "/staff/analytics/", lambda html: html,
         ["Turnaround and SLA", "Model monitoring", "Started"], ["流程时效", "模型监控", "发起申请"]),
        (org["demo_risk"], "/staff/analytics/turnaround/", lambda html: html, ["Submit → decision"], ["提交→审批决定"]),
        (org["demo_rm"], f"/staff/cases/{case.pk}/", _svgs, ["Credit standing", "Willingness to repay"],
         ["信用状况", "还款意愿", "万", "亿"]),
        (org["demo_branch_approver"], "/staff/approvals/", lambda html: " | ".join(_options(html, "f-product")),
         [product.name_en], [product.name]),
        (org["demo_risk"], "/staff/analytics/", lambda html: " | ".join(_options(html, "f-product")),
         [product.name_en], [product.name]),
        (org["demo_rm"], "/staff/cases/", lambda html: html.split("<table", 1)[-1], [product.name_en], [product.name]),
        (None, f"/products/{product.code}/", lambda html: " | ".join(re.findall(r"<dd>([^<]*)</dd>", html)),
         ["Equal installment, Equal principal"], ["、"]),
    ]
    for user, url, part, english, chinese in checks:
        if user is None:
            client.logout()
        else:
            client.force_login(user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        html = part(client.get(url).content.decode())
        assert [t for t in english if t not in html] == [], url
        assert [t for t in chinese if t in html] == [], url
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
        html = part(client.get(url).content.decode())
        assert [t for t in chinese if t not in html and t not in ("万", "亿")] == [], url
    client.force_login(org["demo_rm"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    assert re.search(r"\d万|\d\.\d\d亿", _svgs(client.get(f"/staff/cases/{case.pk}/").content.decode()))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert re.search(r"\d(\.\d)?[KMB]<", _svgs(client.get(f"/staff/cases/{case.pk}/").content.decode()))


def test_chart_amounts_in_the_readers_units():
    from underwriting.charts import _fmt

    with translation.override("zh-hans"):
        assert [_fmt(v, "cny") for v in (9_999, 12_345, 8_000_000, 123_456_789)] == ["9,999", "1万", "800万", "1.23亿"]
    with translation.override("en"):
        assert [_fmt(v, "cny") for v in (9_999, 12_345, 8_000_000, 123_456_789, 2_500_000_000)] == [
            "9,999", "12K", "8.0M", "123.5M", "2.50B"]


@pytest.mark.django_db
def test_flash_messages_in_the_readers_language_fields_named(client, case, org):
    """A refused staff action's message (and each field's error) shows in the reader's language only."""
    client.force_login(org["demo_branch_approver"])
    url = f"/staff/cases/{case.pk}/action/decide/"
    for language in ("zh-hans", "en"):
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
        html = client.post(url, {"decision": "decline", "next": f"/staff/approvals/{case.pk}/"}, follow=True).content.decode()
        shown = re.search(r'<ul class="messages"><li class="error">(.*?)</li>', html, flags=re.S)
        assert shown, html[:2000]
        text = shown.group(1)
        assert "reason_codes: " in text
        assert " / " not in text
        if language == "en":
            assert not CJK.search(text), text
        else:
            assert CJK.search(text) and not re.search(r"[A-Za-z]{4,} [a-z]+", text.replace("reason_codes", "")), text
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    html = client.post(f"/staff/cases/{case.pk}/action/decide/", {"decision": "approve", "comment": "同意"}, follow=True).content.decode()
    assert '<li class="success">审批意见已记录</li>' in html


ZH_PO = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def test_chinese_catalog_keeps_only_the_chinese_of_labels():
    """The Chinese UI shows "待审批", not "待审批 pending approval"; a "中文 / English" pair stays whole (notices and
    flash messages are stored bilingual and split per reader), pure Chinese is left to the msgid."""
    assert FILL.chinese_of("待审批 pending approval") == "待审批"
    assert FILL.chinese_of("中位数(小时) median (clock hours)") == "中位数(小时)"
    assert FILL.chinese_of("各阶段用时（营业日）Stage turnaround (business days)") == "各阶段用时（营业日）"
    assert FILL.chinese_of("审批意见已记录 / Decision recorded.") is None
    assert FILL.chinese_of("贷款产品") is None
    assert FILL.chinese_of("12个月前 12m ago") == "12个月前"
    assert FILL.chinese_of("演示账户：demo_rm 密码 demo-pass") is None  # Latin in the Chinese part: left whole
    entries = [e for e in FILL.parse(ZH_PO.read_text(encoding="utf-8")) if e.msgid and not e.obsolete]
    assert {e.msgid for e in entries} == {e.msgid for e in ENTRIES}, "run `make messages`"
    stale = [e.msgid for e in entries if e.msgstr != (FILL.chinese_of(e.msgid) or "")]
    assert stale == [], "run `make messages`"
    with ZH_PO.with_suffix(".mo").open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    assert [e.msgid for e in entries if e.msgstr and compiled.gettext(e.msgid) != e.msgstr] == []


@pytest.mark.django_db
def test_chinese_pages_show_labels_in_chinese_only(client, case, org):
    client.force_login(org["demo_rm"])
    html = client.get(f"/staff/cases/{case.pk}/").content.decode()
    assert "待审批" in html and "pending approval" not in html
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get(f"/staff/cases/{case.pk}/").content.decode()
    assert "Pending approval" in html and "待审批" not in html


def test_translation_functions_keep_names_makemessages_reads():
    """makemessages finds strings only under the names xgettext is told (_, gettext, gettext_lazy, …): an alias such
    as `gettext_lazy as _lazy` drops every string marked with it from the catalogs without a word."""
    import re
    from pathlib import Path

    known = {"_", "gettext", "gettext_lazy", "gettext_noop", "ngettext", "ngettext_lazy", "pgettext", "pgettext_lazy",
             "npgettext", "npgettext_lazy"}
    root = Path(__file__).resolve().parent.parent
    aliased = []
    for path in root.glob("*/**/*.py"):
        if {".venv", "migrations", "tests"} & set(path.relative_to(root).parts):
            continue
        for name, alias in re.findall(r"\b(n?p?gettext(?:_lazy|_noop)?) as (\w+)", path.read_text()):
            if alias not in known:
                aliased.append(f"{path.relative_to(root)}: {name} as {alias}")
    assert aliased == []
