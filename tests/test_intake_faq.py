"""Smart customer service (智能客服): an admin-edited FAQ in Chinese and English, a search box on every portal page
answering in ranked order, "where is my application?" from the applicant's own cases, unanswered questions logged."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from applications.faq import FAQ_SEED, asks_for_status, normalize, rank, tokenize
from applications.models import FaqEntry, UnansweredQuestion
from applications.services import application_create, assistant_answer, enterprise_create
from loanservice.models import AuditEvent
from tests.factories import ApplicantFactory, enterprise_payload, uscc_for


def _entry(pk, question, answer, question_en="", answer_en="", keywords=""):
    return SimpleNamespace(pk=pk, order=0, question=question, question_en=question_en, answer=answer, answer_en=answer_en,
                           keywords=keywords)


# ---------------------------------------------------------------- tokenising and ranking (no database)
def test_chinese_is_cut_into_characters_and_pairs_english_into_words():
    tokens = dict(tokenize("材料清单 Documents needed"))
    assert tokens["材料"] == 1.0 and tokens["清单"] == 1.0 and tokens["料清"] == 1.0
    assert tokens["材"] < 1.0
    assert tokens["document"] == 1.0 and "needed" in tokens
    assert "的" not in dict(tokenize("我的申请")) and "the" not in dict(tokenize("the loan"))


def test_the_question_weighs_more_than_the_answer():
    in_question = _entry(1, "利率怎么定？", "按评级定价。")
    in_answer = _entry(2, "合同怎么签？", "签署前请看利率和期限。")
    filler = [_entry(n, f"问题{n}", f"回答{n}") for n in range(3, 8)]
    hits = rank("利率", [in_answer, in_question, *filler])
    assert [h.entry.pk for h in hits][:2] == [1, 2]


def test_nothing_relevant_means_no_answer():
    entries = [_entry(n, q, a, qe, ae, k) for n, (q, qe, a, ae, k, _url) in enumerate(FAQ_SEED)]
    for query in ("明天下雨吗", "how is the weather", "股市行情", "", "！！！"):
        assert rank(query, entries) == [], query


@pytest.mark.parametrize("query, expected", [
    ("需要准备什么材料", "申请贷款需要准备哪些材料？"),
    ("要交哪些资料", "申请贷款需要准备哪些材料？"),
    ("what documents do I need", "申请贷款需要准备哪些材料？"),
    ("信秒贷多久能批", "信秒贷是什么？多久能审批放款？"),
    ("how fast is the instant loan", "信秒贷是什么？多久能审批放款？"),
    ("利率怎么算", "贷款利率是怎么确定的？"),
    ("interest rate", "贷款利率是怎么确定的？"),
    ("可以上传OFD发票吗", "上传文件有什么格式和大小要求？"),
    ("签约后多久放款", "签约后多久放款？"),
    ("被拒绝了怎么办", "申请没有通过怎么办？"),
    ("客户经理电话", "我的客户经理是谁？怎么联系？"),
    ("我能贷多少", "预审（测额）是什么？会保存我的信息吗？"),
    ("失信被执行人能贷款吗", "什么是负面清单？"),
    ("can I withdraw my application", "申请可以中途保存或撤回吗？"),
])
def test_real_questions_find_the_right_entry_first(query, expected):
    entries = [_entry(n, q, a, qe, ae, k) for n, (q, qe, a, ae, k, _url) in enumerate(FAQ_SEED)]
    hits = rank(query, entries)
    assert hits and hits[0].entry.question == expected, [(h.entry.question, h.score) for h in hits]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))


def test_status_questions_are_recognised():
    assert asks_for_status("我的申请到哪一步了？") and asks_for_status("Where is my application?")
    assert not asks_for_status("需要哪些材料")
    assert normalize("  Where is MY application?? ") == "where is my application"


# ---------------------------------------------------------------- the service and the pages
@pytest.mark.django_db
def test_the_knowledge_base_is_seeded_with_real_entries_in_both_languages():
    entries = list(FaqEntry.objects.all())
    assert len(entries) >= 12
    assert all(e.question and e.question_en and e.answer and e.answer_en for e in entries)


@pytest.mark.django_db
def test_unanswered_questions_are_logged_once_per_wording_and_counted(org):
    user = org["demo_applicant"]
    assert assistant_answer(user=user, text="明天下雨吗？", language="zh-hans")["answered"] is False
    assert assistant_answer(user=None, text="明天 下雨吗", language="zh-hans")["answered"] is False
    row = UnansweredQuestion.objects.get()
    assert row.times_asked == 2 and row.text == "明天下雨吗？" and row.asked_by == user
    assert assistant_answer(user=user, text="需要哪些材料", language="zh-hans")["answered"] is True
    assert UnansweredQuestion.objects.count() == 1


@pytest.mark.django_db
def test_where_is_my_application_is_answered_from_my_own_cases_only(client, products):
    mine, theirs = ApplicantFactory(username="faq_mine"), ApplicantFactory(username="faq_theirs")
    cases = {}
    for owner, seed in ((mine, 81), (theirs, 82)):
        enterprise = enterprise_create(owner=owner, **enterprise_payload(uscc_for("", seed=seed), seed=seed,
                                                                            name=f"{owner.username}有限公司"))
        cases[owner.username] = application_create(applicant=owner, enterprise=enterprise, product=products["xinmiaodai"],
                                                   amount=Decimal("300000"), term_months=12,
                                                   repayment_method="equal_installment", purpose="流动资金")
    client.force_login(mine)
    html = client.get("/help/", {"q": "我的申请到哪一步了"}).content.decode()
    assert f"/portal/applications/{cases['faq_mine'].pk}/" in html and "草稿" in html
    assert f"/portal/applications/{cases['faq_theirs'].pk}/" not in html
    # over the API too, for other front ends
    from tests.conftest import client_for

    body = client_for(mine).get("/api/v1/help/", {"q": "where is my application"}).json()
    assert [c["id"] for c in body["cases"]] == [cases["faq_mine"].pk] and body["cases"][0]["holder"]
    # anonymous: asked to log in, and that is an answer (not logged as unanswered)
    client.logout()
    html = client.get("/help/", {"q": "我的申请进度"}).content.decode()
    assert "登录后即可查看您的申请进度" in html
    assert not UnansweredQuestion.objects.exists()


@pytest.mark.django_db
def test_help_answers_in_ranked_order_over_htmx_and_in_english(client):
    r = client.get("/help/", {"q": "利率怎么算"}, HTTP_HX_REQUEST="true")
    html = r.content.decode()
    assert r.status_code == 200 and "<html" not in html and 'class="faq-answers"' in html
    assert html.index("贷款利率是怎么确定的？") < html.index("</li>")
    client.cookies["django_language"] = "en"
    html = client.get("/help/", {"q": "interest rate"}).content.decode()
    assert "How is the interest rate set?" in html and "Loan Prime Rate" in html
    html = client.get("/help/", {"q": "asdfgh qwerty"}).content.decode()
    assert 'id="help-unanswered"' in html


@pytest.mark.django_db
def test_the_search_box_is_on_every_portal_page_and_not_on_staff_pages(client, products, org):
    owner = ApplicantFactory(username="faq_pages")
    enterprise = enterprise_create(owner=owner, **enterprise_payload(uscc_for("", seed=83), seed=83))
    application = application_create(applicant=owner, enterprise=enterprise, product=products["xinmiaodai"],
                                      amount=Decimal("300000"), term_months=12, repayment_method="equal_installment",
                                      purpose="流动资金")
    public = ["/", "/products/", "/products/xinmiaodai/", "/prequalify/", "/help/", "/login/", "/register/"]
    for url in public:
        assert 'id="assistant-q"' in client.get(url).content.decode(), url
    client.force_login(owner)
    for url in ["/portal/", "/portal/apply/xinmiaodai/", f"/portal/applications/{application.pk}/",
                f"/portal/applications/{application.pk}/request/", f"/portal/applications/{application.pk}/documents/",
                f"/portal/applications/{application.pk}/verify/", f"/portal/applications/{application.pk}/review/",
                "/notifications/"]:
        html = client.get(url).content.decode()
        assert html.count('id="assistant-q"') == 1, url
        # outside <main>, so a page's own forms stay the only forms in it
        assert html.index("</main>") < html.index('id="assistant"'), url
    client.force_login(org["demo_rm"])
    assert 'id="assistant-q"' not in client.get("/staff/cases/").content.decode()


@pytest.mark.django_db
def test_admin_edits_the_knowledge_base_audited_and_sees_the_unanswered(client, org):
    admin = org["demo_admin"]
    client.force_login(admin)
    r = client.post("/admin/applications/faqentry/add/", {
        "question": "可以提前还款吗？", "question_en": "Can I repay early?", "answer": "可以，提前还款按合同约定。",
        "answer_en": "Yes, as the contract says.", "keywords": "提前还款 prepay", "url": "", "is_active": "on", "order": 20})
    assert r.status_code == 302
    entry = FaqEntry.objects.get(question="可以提前还款吗？")
    assert AuditEvent.objects.filter(action="admin.add", object_type="applications.faqentry", object_id=str(entry.pk)).exists()
    result = assistant_answer(user=None, text="能提前还款吗", language="zh-hans")
    assert result["faq"][0].entry == entry
    assistant_answer(user=None, text="你们几点下班", language="zh-hans")
    page = client.get("/admin/applications/unansweredquestion/").content.decode()
    assert "你们几点下班" in page
    row = UnansweredQuestion.objects.get()
    client.post("/admin/applications/unansweredquestion/", {"action": "mark_resolved", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.resolved
