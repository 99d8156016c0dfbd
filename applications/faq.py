"""智能客服: the FAQ knowledge base's ranking, and the seed entries every installation starts with.

Ranking is BM25 over the FAQ, with the question (and its keywords) weighted over the answer. Chinese has no
spaces, so Chinese text is cut into characters and overlapping character pairs (bigrams: "材料清单" →
材料, 料清, 清单); a pair carries the meaning, a single character only a little. English is cut into words,
lower-cased, with plural "s" dropped. A query is answered when the entries found cover enough of what it
asked (by weight); otherwise the caller logs it for the knowledge base owner.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from .models import FaqEntry

QUESTION_WEIGHT = 3.0
ANSWER_WEIGHT = 1.0
UNIGRAM_WEIGHT = 0.25  # a single Chinese character says little on its own
MIN_COVERAGE = 0.34  # share of the query's weight the best entry must match to count as an answer
UNSEEN_WEIGHT = 0.2  # query tokens found nowhere in the FAQ (mostly pairs across word boundaries) count less
RELATIVE_CUTOFF = 0.35  # entries scoring below this share of the best one are noise
BM25_K1, BM25_B = 1.2, 0.6

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff"
_RUN = re.compile(rf"[{_CJK}]+|[a-z0-9]+")
STOP_CHARS = set("的了吗呢么吧啊呀是我你您在和与及或有要能会可以请问怎么如何什么哪个这那就都也还")
STOP_WORDS = {
    "a", "an", "the", "is", "are", "am", "be", "do", "does", "did", "i", "you", "my", "me", "we", "our", "your",
    "to", "of", "in", "on", "for", "and", "or", "it", "can", "how", "what", "which", "when", "there", "this", "that",
    "with", "by", "at", "from", "please", "need", "will", "should", "get", "have", "has",
}


def _stem(word: str) -> str:
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def tokenize(text: str) -> list[tuple[str, float]]:
    """Tokens with their weight: Chinese bigrams (1.0) and characters (0.25), English words (1.0)."""
    tokens: list[tuple[str, float]] = []
    for run in _RUN.findall((text or "").lower()):
        if run[0].isascii():
            if run not in STOP_WORDS and (len(run) > 1 or run.isdigit()):
                tokens.append((_stem(run), 1.0))
            continue
        for ch in run:
            if ch not in STOP_CHARS:
                tokens.append((ch, UNIGRAM_WEIGHT))
        for i in range(len(run) - 1):
            pair = run[i:i + 2]
            if not (pair[0] in STOP_CHARS and pair[1] in STOP_CHARS):
                tokens.append((pair, 1.0))
    return tokens


@dataclass
class Hit:
    entry: object
    score: float
    coverage: float


def _fields(entry) -> tuple[list[str], list[str]]:
    question = " ".join([entry.question, entry.question_en or "", entry.keywords or ""])
    answer = " ".join([entry.answer, entry.answer_en or ""])
    return [t for t, _w in tokenize(question)], [t for t, _w in tokenize(answer)]


def rank(query: str, entries, *, limit: int = 5) -> list[Hit]:
    """Entries that answer the query, best first (an empty list: not answered)."""
    query_tokens: dict[str, float] = {}
    for token, weight in tokenize(query):
        query_tokens[token] = max(weight, query_tokens.get(token, 0.0))
    entries = list(entries)
    if not query_tokens or not entries:
        return []
    docs = []
    for entry in entries:
        q_tokens, a_tokens = _fields(entry)
        docs.append((entry, Counter(q_tokens), Counter(a_tokens),
                     QUESTION_WEIGHT * len(q_tokens) + ANSWER_WEIGHT * len(a_tokens)))
    n = len(docs)
    avg_len = sum(d[3] for d in docs) / n or 1.0
    df = Counter()
    for _entry, q, a, _length in docs:
        df.update(set(q) | set(a))
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in query_tokens}
    total = sum(idf[t] * w * (1.0 if df[t] else UNSEEN_WEIGHT) for t, w in query_tokens.items()) or 1.0
    hits = []
    for entry, q, a, length in docs:
        score = matched = 0.0
        for token, weight in query_tokens.items():
            tf = QUESTION_WEIGHT * q[token] + ANSWER_WEIGHT * a[token]
            if not tf:
                continue
            norm = BM25_K1 * (1 - BM25_B + BM25_B * length / avg_len)
            score += weight * idf[token] * tf * (BM25_K1 + 1) / (tf + norm)
            matched += weight * idf[token]
        coverage = matched / total
        if score > 0 and coverage >= MIN_COVERAGE:
            hits.append(Hit(entry, round(score, 4), round(coverage, 3)))
    hits.sort(key=lambda h: (-h.score, getattr(h.entry, "order", 0), getattr(h.entry, "pk", 0) or 0))
    if hits:
        hits = [h for h in hits if h.score >= RELATIVE_CUTOFF * hits[0].score]
    return hits[:limit]


def normalize(text: str) -> str:
    """The wording key under which an unanswered question is counted."""
    spaced = " ".join(re.sub(rf"[^{_CJK}a-z0-9]+", " ", (text or "").lower()).split())
    return re.sub(rf"(?<=[{_CJK}]) | (?=[{_CJK}])", "", spaced)[:300]  # Chinese has no spaces to count


# "Where is my application?" is answered from the applicant's own cases, not from the FAQ.
STATUS_PHRASES = ("进度", "状态", "到哪", "哪一步", "审到", "批下来", "批了没", "放款了吗", "我的申请", "审批结果",
                  "where is my", "status", "progress", "my application", "my loan application")


def asks_for_status(text: str) -> bool:
    lowered = (text or "").lower()
    return any(phrase in lowered for phrase in STATUS_PHRASES)


# question, question_en, answer, answer_en, keywords, url
FAQ_SEED = [
    ("申请贷款需要准备哪些材料？", "What documents do I need to apply?",
     "每个产品页面都公布了它的材料清单，申请时只会要求清单上的材料。营业执照等可由银行从工商登记数据核验（电子证照），无需上传；"
     "抵押经营贷还需不动产权证书、评估报告、财务报表、银行流水，有限公司和股份公司需股东会决议；供应链订单贷需核心企业订单或合同和增值税发票，"
     "金额100万元及以上另需财务报表。",
     "Each product page publishes its checklist, and the application asks for exactly that list. The business "
     "licence is verified from the business registry (e-licence), so there is nothing to upload. The secured "
     "operating loan also needs the property certificate, an appraisal, financial statements, bank statements and, "
     "for companies, a shareholder resolution; the supply-chain order loan needs the orders or contracts with the "
     "core enterprise and VAT invoices, plus financial statements from 1,000,000 CNY.",
     "材料 清单 资料 文件 准备 证件 营业执照 documents checklist paperwork papers", "/products/"),
    ("信秒贷是什么？多久能审批放款？", "What is the instant credit loan and how fast is it?",
     "信秒贷是纯信用的线上贷款，最高100万元。数据完整、评级A或B、无预警且不在负面清单的申请由系统自动审批，约一秒出结果；"
     "您接受批复并签署合同后，银行自动盖章并放款，无需人工环节。",
     "The instant credit loan (信秒贷) is an unsecured online loan of up to 1,000,000 CNY. Complete data, grade A or "
     "B, no warning and no negative-list hit: the system approves in about a second; once you accept and sign, "
     "the bank seals and disburses automatically.",
     "秒批 快 多久 时间 自动审批 纯信用 instant fast quick how long speed unsecured", "/products/xinmiaodai/"),
    ("申请贷款需要满足哪些条件？", "Who can apply? What are the admission criteria?",
     "准入条件：经营满2年；法定代表人年龄18至65周岁；纳税信用等级A、B或M；连续纳税申报满24个月；征信无当前逾期；近3个月征信查询不超过6次；"
     "按国家中小企业划型标准属于小型或微型企业；不属于本行限制类行业。各产品页面列出了适用的全部条件。",
     "In business for at least 2 years; legal representative aged 18-65; tax credit grade A, B or M; at least 24 "
     "months of tax filings; no current overdue at the credit bureau; at most 6 credit inquiries in 3 months; small "
     "or micro by the national SME classification; not in a restricted industry. Each product page lists them.",
     "条件 准入 资格 要求 能不能 符合 criteria eligible eligibility requirements qualify", "/prequalify/"),
    ("什么是负面清单？", "What is the negative list?",
     "负面清单上的企业不能获得贷款：企业或法定代表人为失信被执行人、被列入经营异常名录、有重大税收违法记录、处于破产清算或被吊销注销、"
     "5年内在本行有不良贷款，以及本行风险管理部门按统一社会信用代码或身份证号人工列入（有原因和期限）的企业或个人。",
     "Firms on the negative list cannot borrow: a dishonest judgment debtor (the firm or its legal representative), "
     "the abnormal-operations list, a major tax violation, bankruptcy or liquidation, a non-performing loan with the "
     "bank in 5 years, and entries the bank's risk team adds by USCC or ID number, with a reason and an expiry.",
     "黑名单 失信 异常 不良 禁止 negative list blacklist dishonest", ""),
    ("为什么要授权银行查询数据？会查询哪些数据？", "Why do you need my consent, and which data do you check?",
     "授权后银行直接从税务、工商、社保、海关、征信、司法和本行数据获取信息，您就不用提交这些材料。授权只用于本次申请的审查和贷后管理，"
     "每次查询都有记录；不授权的数据源会导致申请转人工审查。",
     "With your consent the bank fetches tax, business registry, social security, customs, credit bureau, judicial "
     "and its own data, so you do not have to provide them. The consent covers this application's review and the "
     "loan's follow-up only, and every query is recorded.",
     "授权 同意 隐私 数据 查询 征信 consent privacy data authorise authorize", ""),
    ("预审（测额）是什么？会保存我的信息吗？", "What is pre-qualification, and do you keep my data?",
     "预审是申请前的自助测评：输入统一社会信用代码并授权后，系统按准入条件和负面清单即时告诉您是否可能符合条件、不符合的是哪一条，"
     "并给出预授信额度参考。预审不是审批结论。我们只保存授权记录（代码、时间、IP、结论），不保存查询到的企业数据。",
     "A self-check before applying: enter the USCC and give consent, and you see at once whether you are likely "
     "eligible, which criterion fails, and an indicative limit. It is not a decision. We keep only the consent "
     "record (code, time, IP, outcome), never the data fetched.",
     "预审 测额 额度 预授信 能贷多少 prequalify prequalification limit how much estimate", "/prequalify/"),
    ("贷款利率是怎么确定的？", "How is the interest rate set?",
     "年利率 = 一年期贷款市场报价利率（LPR）+ 按评级确定的加点，并落在产品公布的利率区间内。评级越好利率越低，批复中会写明最终利率。",
     "The annual rate is the one-year Loan Prime Rate (LPR) plus a spread by credit grade, within the product's "
     "published rate band. The offer states the final rate.",
     "利率 利息 LPR 加点 费用 rate interest price pricing cost apr", ""),
    ("有哪些还款方式？", "Which repayment methods are there?",
     "等额本息（每月还款额相同）、等额本金（每月本金相同，利息递减）、先息后本（每月付息，到期还本）、到期一次还本付息，以及随借随还（按实际用款天数计息、按月付息，本金可随时提前归还）。各产品可选的方式见产品页面。",
     "Equal installments (the same payment every month), equal principal (the same principal, falling interest), "
     "interest only (principal at maturity), bullet (principal and interest at maturity), and daily interest "
     "(随借随还: interest for the days the money is used, paid monthly; principal repaid whenever you like). Each "
     "product page says which it offers.",
     "还款 等额本息 等额本金 先息后本 随借随还 按日计息 repayment repay installment method daily interest", ""),
    ("我的客户经理是谁？怎么联系？", "Who is my relationship manager and how do I reach them?",
     "提交申请后，系统按企业所在地区分配分行，并指派该分行当前案件最少的客户经理作为您的首席服务官，从申请到贷后一直为您服务。"
     "每笔申请的页面都显示客户经理的姓名和电话。",
     "On submission the case goes to the branch for your region and to the RM there with the lightest load; that "
     "RM is your single point of contact from application to after the loan. Every case page shows the RM's name "
     "and phone.",
     "客户经理 首席服务官 联系 电话 人工 relationship manager rm contact phone person", "/portal/"),
    ("上传文件有什么格式和大小要求？", "Which file formats and sizes can I upload?",
     "按清单每项的要求：PDF、JPG、PNG，部分材料（如电子发票）也接受OFD；每个文件不超过清单标注的大小（通常10 MB）。系统按文件内容识别格式，"
     "改扩展名的文件会被拒绝。",
     "As each checklist line says: PDF, JPG or PNG, and OFD for some items such as e-invoices; each file within the "
     "size shown (usually 10 MB). The type is checked from the content, so a renamed file is refused.",
     "上传 格式 大小 文件 pdf jpg png ofd upload format size file", ""),
    ("申请没有通过怎么办？", "My application was declined. What now?",
     "申请页面会列出未通过的原因（预审的具体条件或审批的原因代码）。您可以在情况改善后重新申请，或联系您的客户经理了解其他产品。",
     "The case page lists the reasons (the pre-screen criterion or the approver's reason codes). You can apply "
     "again once things change, or ask your RM about other products.",
     "拒绝 没通过 未通过 被拒 原因 declined rejected refused reason why", ""),
    ("合同怎么签署？", "How do I sign the contract?",
     "接受批复后系统生成电子合同（PDF）。在申请页面阅读合同、勾选同意后点击“签署合同”即完成电子签名；系统记录签署时间、IP和合同的SHA-256摘要，"
     "银行盖章后合同生效。",
     "After you accept the offer the contract is issued as a PDF. Read it on the case page, tick the box and click "
     "sign; the time, IP and the SHA-256 of the PDF are recorded, and the contract takes effect when the bank "
     "seals it.",
     "合同 签署 签字 电子签名 盖章 contract sign signature esign", ""),
    ("签约后多久放款？", "When is the money paid out after signing?",
     "信秒贷在您签署后由系统自动盖章放款；其他产品由运营部门在合同双方签署后1个工作日内放款，放款后您会收到通知并可查看还款计划。",
     "On the instant credit loan the system seals and pays out right after you sign; otherwise operations release "
     "the loan within 1 business day of both signatures. You are notified and can see the repayment schedule.",
     "放款 到账 打款 多久 disbursement disburse payout paid money when", ""),
    ("申请可以中途保存或撤回吗？", "Can I save an application and finish it later, or withdraw it?",
     "可以。每一步都会自动保存为草稿，在“我的申请”中点“继续填写”即可从上次的步骤继续；签约完成前，您可以随时撤回申请。",
     "Yes. Every step is saved as a draft; click Continue under My applications to resume where you stopped. "
     "Before signing you can withdraw at any time.",
     "保存 草稿 继续 撤回 取消 save draft resume continue withdraw cancel", "/portal/"),
]


def seed_faq() -> int:
    """Create the seed FAQ entries that do not exist yet (by question); admin edits are kept."""

    created = 0
    for order, (q, q_en, a, a_en, keywords, url) in enumerate(FAQ_SEED):
        _entry, made = FaqEntry.objects.get_or_create(question=q, defaults=dict(
            question_en=q_en, answer=a, answer_en=a_en, keywords=keywords, url=url, order=order))
        created += made
    return created
