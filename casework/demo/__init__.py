"""Demo data: products, branches, one user per role, and cases in every stage, made through the
real services and the lifecycle conductor (no poking at models)."""

from __future__ import annotations

import copy
import datetime as dt
import io
import logging
import random
import zlib
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone
from pypdf import PdfWriter

from applications.models import DocumentRequirement, Enterprise, LoanApplication, LoanProduct
from applications.services import enterprise_create
from approvals.models import ApprovalCase, ReasonCode
from approvals.services import active_committee
from casework import lifecycle
from casework.demo.marketing import prospects_for_history
from casework.reference_data import seed_reference_data
from loanservice import roles, second_factor
from loanservice.errors import ApplicationError, Conflict
from loanservice.models import Branch, Profile
from postloan import monitoring
from postloan.models import Installment
from postloan.services import loan_position, repayment_record, survey_answer
from underwriting import services as underwriting_services
from underwriting.features import derive_features
from underwriting.models import ScorecardModel
from underwriting.providers import SandboxProvider, make_resident_id, make_uscc
from underwriting.scorecard import development_summary, validate_spec
from underwriting.selectors import scorecard_champion
from underwriting.sources import SOURCES

from . import applications as applications_demo
from . import approvals as approvals_demo
from . import contracts as contracts_demo
from . import creditlines as creditlines_demo
from . import marketing as marketing_demo
from . import postloan as postloan_demo
from . import underwriting as underwriting_demo
from .cases import (  # noqa: F401 - also for tests
    TINY_PDF,
    _demo_uscc,
    _draft,
    _enterprise,
    _sandbox_grade,
    _submit,
    _to_approval,
    sign_as_borrower,
    verify_representative,
)
from .clock import at as _at

log = logging.getLogger(__name__)
STAGE_SEEDS = [applications_demo, underwriting_demo, approvals_demo, contracts_demo, postloan_demo, creditlines_demo,
               marketing_demo]
User = get_user_model()
ALL_METHODS = ["equal_installment", "equal_principal", "interest_only", "bullet"]

PRODUCTS = [
    {
        "code": "xinmiaodai", "name": "信秒贷（纯信用）", "name_en": "Instant credit loan (unsecured)", "order": 1,
        "description": "纳税信用良好的小微企业，线上申请，数据自动核验，符合条件秒批秒贷。",
        "description_en": "For small firms with a good tax record: apply online, data verified automatically, decided in about a second.",
        "customers": "经营满2年、纳税信用A/B/M级的小微企业", "customers_en": "Small and micro firms, 2+ years, tax grade A/B/M",
        "min_amount": "10000", "max_amount": "1000000", "min_term_months": 3, "max_term_months": 12,
        "repayment_methods": ["equal_installment", "equal_principal", "interest_only"], "fast_track": True,
        "rate_floor": "0.030000", "rate_cap": "0.090000",
        "checklist": [
            ("business_licence", "营业执照", "Business licence", True, None, [], ["pdf", "jpeg", "png"], "registry",
             "电子证照：由工商登记数据核验，无需上传", "e-licence: verified from the business registry, no upload"),
        ],
    },
    {
        "code": "secured-operating", "name": "抵押经营贷", "name_en": "Secured operating loan", "order": 2, "secured": True,
        "description": "以房产抵押的经营性贷款，额度高、期限长，用于日常经营周转。",
        "description_en": "An operating loan secured on property: higher limits and longer terms for working capital.",
        "customers": "有房产可抵押的小微企业", "customers_en": "Small and micro firms with property to pledge",
        "min_amount": "100000", "max_amount": "10000000", "min_term_months": 12, "max_term_months": 60,
        "repayment_methods": ALL_METHODS, "fast_track": False, "rate_floor": "0.032000", "rate_cap": "0.080000",
        # 1 to 5 years: a floating rate over the 1-year LPR, repriced every 12 months from the disbursement day
        "lpr_tenor": "1y", "rate_type": "floating", "repricing_months": 12,
        "checklist": [
            ("business_licence", "营业执照", "Business licence", True, None, [], ["pdf", "jpeg", "png"], "registry", "电子证照，无需上传", "e-licence"),
            ("property_certificate", "不动产权证书", "Property certificate", True, None, [], ["pdf", "jpeg", "png"], "", "抵押物权属证明", "Proof of title of the collateral"),
            ("appraisal", "评估报告", "Appraisal report", True, None, [], ["pdf"], "", "有资质评估机构出具", "By a licensed appraiser"),
            ("financial_statements", "近两年财务报表", "Financial statements (2 years)", True, None, [], ["pdf"], "", "", ""),
            ("bank_statements", "近6个月银行流水", "Bank statements (6 months)", True, None, [], ["pdf"], "", "", ""),
            ("shareholder_resolution", "股东会决议", "Shareholder resolution", True, None, ["llc", "jsc"], ["pdf", "jpeg", "png"], "", "同意借款及抵押的决议", "Approving the loan and the mortgage"),
        ],
    },
    {
        "code": "supply-chain-order", "name": "供应链订单贷", "name_en": "Supply-chain order loan", "order": 3,
        "description": "凭与核心企业的订单或合同融资，回款优先还贷。",
        "description_en": "Finance against orders or contracts with a core enterprise; repaid from the receivable.",
        "customers": "核心企业的上游供应商", "customers_en": "Suppliers of a core enterprise",
        "min_amount": "50000", "max_amount": "5000000", "min_term_months": 3, "max_term_months": 12,
        "repayment_methods": ["interest_only", "bullet"], "fast_track": False, "rate_floor": "0.032000", "rate_cap": "0.090000",
        "checklist": [
            ("business_licence", "营业执照", "Business licence", True, None, [], ["pdf", "jpeg", "png"], "registry", "电子证照，无需上传", "e-licence"),
            ("core_orders", "与核心企业的订单或合同", "Orders or contracts with the core enterprise", True, None, [], ["pdf", "jpeg", "png", "ofd"], "", "", ""),
            ("invoices", "增值税发票", "VAT invoices", True, None, [], ["pdf", "ofd", "jpeg", "png"], "", "", ""),
            ("financial_statements", "近一年财务报表", "Financial statements (1 year)", True, Decimal("1000000"), [], ["pdf"], "", "金额100万元及以上需要", "Needed from 1,000,000"),
        ],
    },
]
# A revolving credit line on the fast track (授信 once, 用信 any time, docs/creditlines.md): the application's amount
# is the limit, its term the validity in months, its method the default for drawdowns; daily_interest (随借随还:
# interest by the day on what is drawn, principal at will or at maturity) first among them.
PRODUCTS.append({
    "code": "xinyidai-line", "name": "信易贷循环额度（随借随还）", "name_en": "Revolving credit line (draw and repay at will)",
    "order": 4, "kind": "credit_line",
    "description": "一次授信，额度内随时在线提款，按日计息，随借随还，还款后额度自动恢复。",
    "description_en": "Approved once, then draw online whenever the business needs it within the limit; interest by the day, "
                      "repay at will, and the limit comes back.",
    "customers": "经营满2年、纳税信用A/B/M级的小微企业", "customers_en": "Small and micro firms, 2+ years, tax grade A/B/M",
    "min_amount": "50000", "max_amount": "1000000", "min_term_months": 6, "max_term_months": 12,
    "repayment_methods": ["daily_interest", "equal_installment", "interest_only"], "fast_track": True,
    "rate_floor": "0.030000", "rate_cap": "0.090000",
    "drawdown_min_amount": "1000", "drawdown_min_term_months": 1, "drawdown_max_term_months": 12,
    "drawdown_methods": ["daily_interest", "equal_installment", "interest_only"], "drawdown_maturity_cap_months": 6,
    "self_payment_limit": "300000", "review_days_before_expiry": 30,
    "checklist": [
        ("business_licence", "营业执照", "Business licence", True, None, [], ["pdf", "jpeg", "png"], "registry",
         "电子证照：由工商登记数据核验，无需上传", "e-licence: verified from the business registry, no upload"),
    ],
})
BRANCHES = [("HO", "总行", None, True, False, ""), ("SH01", "上海分行", "HO", False, True, "31"),
            ("BJ01", "北京分行", "HO", False, False, "11,12"), ("ZJ01", "浙江分行", "HO", False, False, "33")]
DEMO_USERS = [
    ("demo_applicant", roles.APPLICANT, None, "张小微"), ("demo_rm", roles.RM, "SH01", "李经理"),
    ("demo_branch_approver", roles.BRANCH_APPROVER, "SH01", "王审批"), ("demo_head_approver", roles.HEAD_APPROVER, "HO", "赵总审"),
    ("demo_committee_1", roles.COMMITTEE, "HO", "贷审委员一"), ("demo_committee_2", roles.COMMITTEE, "HO", "贷审委员二"),
    ("demo_committee_3", roles.COMMITTEE, "HO", "贷审委员三"), ("demo_ops", roles.OPERATIONS, "SH01", "陈运营"),
    ("demo_risk", roles.RISK, "HO", "周风控"), ("demo_admin", roles.ADMIN, "HO", "系统管理员"),
]


def seed_products() -> None:
    for spec in PRODUCTS:
        spec = dict(spec)
        checklist = spec.pop("checklist")
        product, created = LoanProduct.objects.get_or_create(code=spec.pop("code"), defaults=spec)
        if not created:
            continue
        for order, (code, name, name_en, required, min_amount, forms, types, source, help_zh, help_en) in enumerate(checklist):
            DocumentRequirement.objects.create(product=product, code=code, name=name, name_en=name_en, required=required,
                                               min_amount=min_amount, legal_forms=forms, accepted_types=types,
                                               satisfied_by_source=source, help_text=help_zh, help_text_en=help_en, order=order)


def _password_hash(password: str, _cache: dict = {}) -> str:  # noqa: B006 - a per-process cache on purpose
    """One hash for every demo user (same password): PBKDF2 costs about a second each on a busy machine. Kept
    per hasher, so a hash made under one PASSWORD_HASHERS setting is never reused under another."""
    key = (password, settings.PASSWORD_HASHERS[0])
    if key not in _cache:
        _cache[key] = make_password(password)
    return _cache[key]


def _user(username: str, role: str, branch: Branch | None, display: str, password: str) -> User:
    user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@demo.bank.example"})
    if created:
        user.password = _password_hash(password)
        if role == roles.ADMIN:
            user.is_staff = user.is_superuser = True
        user.save()
        Profile.objects.create(user=user, branch=branch, display_name=display, phone=f"139{zlib.crc32(username.encode()) % 10**8:08d}")
        user.groups.add(Group.objects.get(name=role))
    if created and role != roles.APPLICANT:
        # The second factor (docs/security.md): a TOTP device whose key follows from the username, as public as
        # the demo password; the demo's verification page shows its current code (DEMO_OTP_HINTS).
        second_factor.demo_device_ensure(user)
    return user


def seed_org(password: str) -> dict[str, User]:
    for code, name, parent, ho, default, prefixes in BRANCHES:
        Branch.objects.get_or_create(code=code, defaults={"name": name, "parent": Branch.objects.filter(code=parent).first(),
                                                          "is_head_office": ho, "is_default": default, "region_prefixes": prefixes})
    branches = {b.code: b for b in Branch.objects.all()}
    users = {u: _user(u, role, branches.get(b), display, password) for u, role, b, display in DEMO_USERS}
    # Other branches are staffed by generated users so history can spread.
    for code in ("BJ01", "ZJ01"):
        for role, suffix in ((roles.RM, "rm"), (roles.BRANCH_APPROVER, "approver")):
            _user(f"{code.lower()}_{suffix}", role, branches[code], f"{branches[code].name}{suffix}", password)
    supervisor = users["demo_branch_approver"]
    Profile.objects.filter(user=users["demo_rm"]).update(supervisor=supervisor)
    return users


def seed_cases(users) -> None:
    owner = users["demo_applicant"]
    if LoanApplication.objects.filter(applicant=owner).exists():
        return
    ents = [_enterprise(owner, 1, "prime", "上海小微精密制造有限公司", grades="AB"),
            _enterprise(owner, 2, "good", "上海申江贸易有限公司", grades="BC", industry="F5123", revenue="15000000", employees=12),
            _enterprise(owner, 3, "good", "上海浦东食品加工有限公司", grades="BC", industry="C1391"),
            _enterprise(owner, 4, "bad", "上海某某物流有限公司", industry="G5430")]
    # 1. fast track all the way to a loan (信秒贷)
    fast = _submit(_draft(owner, ents[0], "xinmiaodai", "300000", 12, "equal_installment"), owner)
    if fast.status == LoanApplication.Status.APPROVED:
        lifecycle.offer_accept(application_id=fast.pk, user=owner)
        contract = fast.contracts.get()
        sign_as_borrower(contract, owner)
        lifecycle.fast_track_complete(contract.pk)
    # 2. a fast-track offer waiting for the applicant
    _submit(_draft(owner, ents[0], "xinmiaodai", "200000", 6, "interest_only", purpose="季节性备货"), owner)
    # 3. in the RM's queue (secured, routed to the branch)
    _submit(_draft(owner, ents[1], "secured-operating", "2000000", 36, "equal_principal", purpose="扩大经营"), owner)
    # 4. waiting for the branch approver
    pending = _submit(_draft(owner, ents[2], "secured-operating", "1500000", 24, "equal_installment", purpose="设备更新"), owner)
    if pending.status == LoanApplication.Status.UNDER_REVIEW:
        _to_approval(pending, users)
    # 5. approved by a person, contract signed by the borrower, waiting for the bank's seal, then disbursement
    manual = _submit(_draft(owner, ents[1], "supply-chain-order", "800000", 6, "bullet", purpose="履行核心企业订单"), owner)
    if manual.status == LoanApplication.Status.UNDER_REVIEW:
        _to_approval(manual, users)
        lifecycle.case_decide(application_id=manual.pk, user=users["demo_branch_approver"], decision="approve", comment="同意")
        lifecycle.offer_accept(application_id=manual.pk, user=owner)
        sign_as_borrower(manual.contracts.get(), owner)
    # 6. a draft to resume, and a case that fails the pre-screen or is declined
    _draft(owner, ents[2], "xinmiaodai", "100000", 6, "equal_principal", purpose="流动资金")
    _submit(_draft(owner, ents[3], "xinmiaodai", "500000", 12, "equal_installment", purpose="购车"), owner)


# ---------------------------------------------------------------- the history (a year of cases, for analytics)
HISTORY_CASES = 200
HISTORY_SEED = 20260808
HISTORY_PREFIX = "hist_"
PRODUCT_MIX = [("xinmiaodai", 0.55), ("supply-chain-order", 0.3), ("secured-operating", 0.15)]
TIER_MIX = [("prime", 0.3), ("good", 0.35), ("fair", 0.2), ("weak", 0.1), ("bad", 0.05)]
CHANNEL_MIX = [("web", 0.45), ("mobile", 0.3), ("rm", 0.15), ("partner", 0.1)]
REGIONS = {"SH01": "31", "BJ01": "11", "ZJ01": "33"}
# Behaviour of the history's people (probabilities), not policy: the system decides everything else.
APPROVE_BY_GRADE = {"A": 0.95, "B": 0.9, "C": 0.7, "D": 0.35, "E": 0.1}
ON_TIME_BY_TIER = {"prime": 0.99, "good": 0.96, "fair": 0.9, "weak": 0.8, "bad": 0.6}
DEFAULT_BY_TIER = {"prime": 0.03, "good": 0.07, "fair": 0.14, "weak": 0.25, "bad": 0.4}
COMMENTS = {9: "审批很快，客户经理服务周到", 10: "线上申请方便，放款快", 7: "材料要求还可以再简化", 6: "等待审批时间偏长",
            3: "放款前反复补充资料，体验较差"}


def _pick(rng, mix):
    r, acc = rng.random(), 0.0
    for value, weight in mix:
        acc += weight
        if r < acc:
            return value
    return mix[-1][0]


def _workday_at(moment: dt.datetime, hour: float) -> dt.datetime:
    """The same day at `hour` (bank time), moved to Monday when it falls on a weekend."""
    local = timezone.localtime(moment)
    while local.weekday() >= 5:
        local += dt.timedelta(days=1)
    return local.replace(hour=int(hour), minute=int((hour % 1) * 60), second=0, microsecond=0)


def _work_after(moment: dt.datetime, hours: float) -> dt.datetime:
    """`hours` of working time (09:00-18:00, Monday-Friday) after `moment`."""
    local = _workday_at(moment, max(9.0, min(17.9, timezone.localtime(moment).hour + timezone.localtime(moment).minute / 60)))
    remaining = hours
    while True:
        end_of_day = local.replace(hour=18, minute=0)
        left = (end_of_day - local).total_seconds() / 3600
        if remaining <= left:
            return local + dt.timedelta(hours=remaining)
        remaining -= left
        local = _workday_at(local + dt.timedelta(days=1), 9)


def history_contract_pdf(*, template, number: str, terms: dict) -> bytes:
    """Historic contracts carry a one-page placeholder PDF: WeasyPrint costs about a second a contract and the
    history has a hundred. Everything else (numbers, terms, signatures, the bank's PAdES seal) is the real thing.
    The history renders with it through the CONTRACT_RENDERER setting."""
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.add_metadata({"/Title": f"Loan contract {number} (demo history placeholder)"})
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


@dataclass
class _Plan:
    n: int
    start: dt.datetime
    product: str
    tier: str
    region: str
    channel: str
    abandon: bool
    info_request: bool
    return_first: bool
    accept: bool
    dd_hours: float
    approval_hours: float
    accept_hours: float
    sign_hours: float
    seal_hours: float
    release_hours: float
    uscc: str = ""
    name: str = ""


def _history_plans(rng: random.Random, count: int, today: dt.date) -> list[_Plan]:
    plans = []
    for n in range(count):
        # More cases in recent months (the book grows); none in the last week so each has a past.
        days_ago = int(365 * (1 - rng.random() ** 0.8)) + 7
        start = _workday_at(timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(10))),
                            9 + rng.random() * 8)
        plans.append(_Plan(
            n=n, start=start, product=_pick(rng, PRODUCT_MIX), tier=_pick(rng, TIER_MIX),
            region=_pick(rng, [("SH01", 0.5), ("BJ01", 0.25), ("ZJ01", 0.25)]), channel=_pick(rng, CHANNEL_MIX),
            abandon=rng.random() < 0.08, info_request=rng.random() < 0.15, return_first=rng.random() < 0.1,
            accept=rng.random() < 0.88, dd_hours=rng.lognormvariate(2.3, 0.7), approval_hours=rng.lognormvariate(1.6, 0.8),
            accept_hours=rng.uniform(0.2, 30), sign_hours=rng.uniform(0.5, 20), seal_hours=rng.uniform(0.5, 12),
            release_hours=rng.uniform(0.2, 8),
        ))
    return sorted(plans, key=lambda p: p.start)


def _history_uscc(n: int, tier: str, region: str) -> str:
    seed = 700000 + n
    while True:
        uscc = make_uscc(seed, tier=tier)
        if uscc[2:4] == REGIONS[region]:
            return uscc
        seed += 1000


def _history_owner(n: int, password_hash: str) -> User:
    username = f"{HISTORY_PREFIX}owner{n:04d}"
    user, created = User.objects.get_or_create(username=username, defaults={"password": password_hash})
    if created:
        user.groups.add(Group.objects.get(name=roles.APPLICANT))
    return user


INDUSTRIES = ["C3399", "F5123", "C1391", "C2927", "F5212", "E5012", "I6513", "C3311", "L72", "H6210"]
NAMES = ["精密机械", "商贸", "食品", "塑料制品", "超市", "装饰工程", "软件科技", "金属结构", "商务咨询", "餐饮管理"]
CITY = {"SH01": "上海", "BJ01": "北京", "ZJ01": "杭州"}


def _history_enterprise(plan: _Plan, owner) -> Enterprise:
    k = plan.n % len(INDUSTRIES)
    rng = random.Random(plan.n)
    return enterprise_create(
        owner=owner, name=plan.name or f"{CITY[plan.region]}{NAMES[k]}{plan.n:03d}有限公司", uscc=plan.uscc, legal_form="llc",
        legal_rep_name="历史客户", legal_rep_id_number=make_resident_id(700000 + plan.n, birth_year=1970 + plan.n % 25),
        industry_code=INDUSTRIES[k], founded_on=plan.start.date() - dt.timedelta(days=365 * (3 + plan.n % 9)),
        employees=8 + rng.randint(0, 150), annual_revenue=Decimal(rng.randint(20, 400) * 100000),
    )


def _amount(rng, code: str) -> tuple[str, int, str]:
    product = LoanProduct.objects.get(code=code)
    low, high = int(product.min_amount), int(min(product.max_amount, Decimal("3000000")))
    amount = max(low, min(high, int(rng.lognormvariate(13.0, 0.6)) // 10000 * 10000))
    term = rng.choice([t for t in (6, 12, 24, 36) if product.min_term_months <= t <= product.max_term_months] or [product.min_term_months])
    return str(amount), term, rng.choice(product.repayment_methods)


def _approvers(users) -> dict:
    by_branch = {}
    for user in User.objects.filter(groups__name=roles.BRANCH_APPROVER).select_related("profile"):
        by_branch.setdefault(user.profile.branch_id if hasattr(user, "profile") else None, user)
    return {"branch": by_branch, "head_office": users["demo_head_approver"],
            "committee": [users["demo_committee_1"], users["demo_committee_2"], users["demo_committee_3"]]}


def _reason(kind: str) -> list[str]:
    code = ReasonCode.objects.filter(kind=kind).order_by("code").values_list("code", flat=True).first()
    return [code] if code else []


class _NotYet(Exception):
    """A history step whose working-time moment lies after now."""

    def __init__(self, status: str = "open"):
        super().__init__(status)
        self.status = status


def _past(moment: dt.datetime):
    """The demo clock at `moment`, which must not be in the future: the history ends today."""
    if moment > timezone.now():
        raise _NotYet()
    return _at(moment)


def _decide_all(app, plan: _Plan, t: dt.datetime, users, approvers, rng, grade: str) -> dt.datetime:
    """The approvers of each tier decide in turn until the case is approved, declined or returned."""

    approve = rng.random() < APPROVE_BY_GRADE.get(grade, 0.5)
    for _step in range(6):
        app.refresh_from_db()
        if app.status != LoanApplication.Status.PENDING_APPROVAL:
            return t
        case = ApprovalCase.objects.filter(application=app, status=ApprovalCase.Status.PENDING).first()
        if case is None:
            return t
        t = _work_after(t, plan.approval_hours)
        if case.tier == "committee":
            voters = [u for u in approvers["committee"] if not case.decisions.filter(approver=u).exists()]
            decider = voters[0] if voters else None
            if decider is None:  # every member has voted: the chair records the resolution (it does not wait)
                chair = active_committee().chair
                if chair is not None:
                    with _past(t):
                        lifecycle.case_resolve(application_id=app.pk, user=chair, text="按表决结果形成决议")
                continue
        elif case.tier == "head_office":
            decider = approvers["head_office"]
        else:
            decider = approvers["branch"].get(app.branch_id) or users["demo_branch_approver"]
        if decider is None:
            return t
        decision = {"decision": "approve", "comment": "同意"} if approve else \
            {"decision": "decline", "reason_codes": _reason("decline"), "comment": "风险较高，不予批准"}
        with _past(t):
            lifecycle.case_decide(application_id=app.pk, user=decider, **decision)
    return t


def _pay(loan, today: dt.date, tier: str, rng) -> None:
    """Repay each installment due before today: mostly on the due day, sometimes late; a defaulter stops."""

    stop_after = rng.randint(0, 4) if rng.random() < DEFAULT_BY_TIER[tier] else None
    due = list(Installment.objects.filter(loan=loan, due_date__lt=today).order_by("n"))
    for k, inst in enumerate(due):
        if stop_after is not None and k >= stop_after:
            return
        late = 0 if rng.random() < ON_TIME_BY_TIER[tier] else rng.choice([3, 8, 15, 25, 40, 55])
        paid_on = inst.due_date + dt.timedelta(days=late)
        if paid_on >= today:  # not paid yet: in arrears today
            return
        with _at(timezone.make_aware(dt.datetime.combine(paid_on, dt.time(11)))):
            if late:  # what is owed that day, penalty interest included
                position = loan_position(loan, on=paid_on)
                nxt = position["next_due"]
                amount = position["overdue"] + position["penalty"] + (nxt.due_remaining if nxt and nxt.due_date <= paid_on else 0)
            else:
                inst.refresh_from_db()
                amount = inst.due_remaining
            if amount > 0:
                repayment_record(loan=loan, amount=amount.quantize(Decimal("0.01")), paid_on=paid_on,
                                 reference=f"HIST-{loan.pk}-{inst.n}", by=None, channel="import")
        loan.refresh_from_db(fields=["status"])
        if loan.status != "active":
            return


def _play(plan: _Plan, users, approvers, rng, password_hash: str, today: dt.date) -> str:
    """One case through the real services, each step at its own time. Returns where it stopped: a step whose
    time has not come yet is not played (the case waits there today; no release dated tomorrow)."""
    try:
        return _play_steps(plan, users, approvers, rng, password_hash, today)
    except _NotYet as stopped:
        return stopped.status


def _play_steps(plan: _Plan, users, approvers, rng, password_hash: str, today: dt.date) -> str:
    owner = _history_owner(plan.n, password_hash)
    with _at(plan.start):
        enterprise = _history_enterprise(plan, owner)
        amount, term, method = _amount(rng, plan.product)
        app = _draft(owner, enterprise, plan.product, amount, term, method, purpose="经营周转", channel=plan.channel)
    if plan.abandon:
        return "draft"
    t = plan.start + dt.timedelta(minutes=25)
    with _past(t):
        app = _submit(app, owner)
    if app.status == LoanApplication.Status.UNDER_REVIEW:
        score = app.scores.filter(is_shadow=False).first()
        grade = score.grade if score else "C"
        rm = app.relationship_manager
        if plan.info_request:
            t = _work_after(t, plan.dd_hours / 2)
            with _past(t):
                lifecycle.case_request_info(application_id=app.pk, user=rm, message="请补充近6个月银行流水说明")
            t = _work_after(t, rng.uniform(2, 30))
            with _past(t):
                lifecycle.case_respond(application_id=app.pk, user=owner, response="已补充，请查收")
        t = _work_after(t, plan.dd_hours)
        with _past(t):
            _to_approval(app, users)
        if plan.return_first:
            app.refresh_from_db()
            reviewer = approvers["branch"].get(app.branch_id) or users["demo_branch_approver"]
            t = _work_after(t, plan.approval_hours)
            with _past(t):
                lifecycle.case_decide(application_id=app.pk, user=reviewer, decision="return", reason_codes=_reason("return"),
                                      comment="请补充经营现金流分析")
            t = _work_after(t, plan.dd_hours / 2)
            with _past(t):
                lifecycle.case_send_to_approval(application_id=app.pk, user=rm, recommendation="已补充现金流分析，建议批准。")
        t = _decide_all(app, plan, t, users, approvers, rng, grade)
    app.refresh_from_db()
    if app.status != LoanApplication.Status.APPROVED:
        return app.status
    t = _work_after(t, plan.accept_hours)
    if not plan.accept:
        with _past(t):
            lifecycle.application_withdraw(application_id=app.pk, user=owner, reason="已从他行获得融资")
        return "withdrawn"
    with _past(t):
        lifecycle.offer_accept(application_id=app.pk, user=owner)
    t = _work_after(t, plan.sign_hours)
    contract = app.contracts.order_by("id").first()
    with _past(t):
        sign_as_borrower(contract, owner)
        if app.route == "auto":
            lifecycle.fast_track_complete(contract.pk)
    app.refresh_from_db()
    if app.status == LoanApplication.Status.CONTRACTING:
        t = _work_after(t, plan.seal_hours)
        with _past(t):
            lifecycle.contract_sign(contract_id=contract.pk, user=users["demo_ops"], party="bank")
        app.refresh_from_db()
    if app.status == LoanApplication.Status.SIGNED:
        t = _work_after(t, plan.release_hours)
        with _past(t):
            lifecycle.disbursement_release(application_id=app.pk, user=users["demo_ops"], idempotency_key=f"hist-{app.pk}")
        app.refresh_from_db()
    if app.status == LoanApplication.Status.DISBURSED:
        loan = app.loans.get()
        _pay(loan, today, plan.tier, rng)
        _survey(loan, owner, rng, today)
    return app.status


def _survey(loan, owner, rng, today: dt.date) -> None:
    if rng.random() > 0.45:
        return
    score = rng.choice([10, 10, 9, 9, 9, 7, 6, 3])
    when = min(timezone.localtime(loan.created_at) + dt.timedelta(days=3), timezone.make_aware(
        dt.datetime.combine(today - dt.timedelta(days=1), dt.time(15))))
    with _at(when):
        survey_answer(loan=loan, by=owner, score=score, comment=COMMENTS.get(score, ""))


def seed_history(users, *, cases: int = HISTORY_CASES, today: dt.date | None = None) -> dict:
    """A year of cases through the real services and conductor, each step run at its own past time (the clock
    travels with the demo clock, casework/demo/clock.py; nothing is back-dated afterwards). Idempotent: skipped when the history exists."""
    if User.objects.filter(username__startswith=HISTORY_PREFIX).exists():
        return {}
    today = today or timezone.localdate()
    rng = random.Random(HISTORY_SEED)
    plans = _history_plans(rng, cases, today)

    listed = timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=300), dt.time(10)))
    later = [p for p in plans if p.start > listed + dt.timedelta(days=10) and not p.abandon]
    for plan, (uscc, name) in zip(later[::6], prospects_for_history(users, at=listed), strict=False):
        plan.uscc, plan.name, plan.channel = uscc, name, "invite"
    for plan in plans:
        plan.uscc = plan.uscc or _history_uscc(plan.n, plan.tier, plan.region)
    approvers = _approvers(users)
    password_hash = make_password(None)  # history applicants never log in
    outcomes: dict[str, int] = {}
    with override_settings(CONTRACT_RENDERER="casework.demo.history_contract_pdf"):
        for plan in plans:
            try:
                with transaction.atomic():
                    outcome = _play(plan, users, approvers, rng, password_hash, today)
            except (ApplicationError, Conflict) as exc:
                log.warning("demo history case %s stopped: %s", plan.n, exc)
                outcome = "stopped"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    # Tonight's monitoring, as the nightly run would do it: days past due, buckets, classes, early warnings.
    monitoring.delinquency_refresh(today=today)
    monitoring.warnings_evaluate(today=today)
    return outcomes


DEVELOPMENT_SAMPLE = 500


def seed_development_sample() -> None:
    """The expert scorecard has no training data; it is monitored (PSI) against a deterministic sample of the
    sandbox population, stored with the model through the underwriting service. Skipped when one is stored."""

    model = scorecard_champion()
    if model.development:
        return
    today = timezone.localdate()
    provider = SandboxProvider()
    rng = random.Random(HISTORY_SEED + 1)
    rows = []
    for i in range(DEVELOPMENT_SAMPLE):  # firms like the applicants: the same tier mix and declared figures
        uscc = make_uscc(500000 + i, tier=_pick(rng, TIER_MIX))
        hints = {"founded_on": (today - dt.timedelta(days=365 * (3 + i % 9))).isoformat(), "employees": 8 + rng.randint(0, 150),
                 "annual_revenue": str(rng.randint(20, 400) * 100000), "industry_code": INDUSTRIES[i % len(INDUSTRIES)]}
        rows.append(derive_features({s: provider.fetch(s, uscc, as_of=today, hints=hints) for s in SOURCES}, as_of=today))
    columns = {name: [r.get(name) for r in rows] for name in rows[0]}
    summary = {**development_summary(model.spec, columns), "sample": f"sandbox population, {DEVELOPMENT_SAMPLE} firms"}
    underwriting_services.scorecard_development_set(model=model, summary=summary, by=None)
    seed_challenger(model)


def seed_challenger(champion) -> None:
    """A challenger scoring in shadow: the expert card with more weight on the bank's own settlement data (made as
    `train_scorecard --save` makes a version, then set through the underwriting service)."""


    if ScorecardModel.objects.filter(is_challenger=True).exists():
        return
    spec = copy.deepcopy(champion.spec)
    spec["name"] = "expert-sme-v2-settlement"
    for feature in spec.get("features", []):
        if feature.get("name") in ("settlement_inflow_trend", "deposit_to_revenue"):
            for b in feature.get("bins", []):
                b["points"] = int(round(b["points"] * 1.6))
    validate_spec(spec)
    model = ScorecardModel.objects.create(name=spec["name"], spec=spec, metrics={"kind": "expert", "note": "demo challenger"})
    underwriting_services.scorecard_challenger_set(model=model, by=None)


def seed_demo(*, password: str = "demo-pass", history: int = HISTORY_CASES, close_of_business: bool = False) -> dict[str, User]:
    """`close_of_business`: then close yesterday once (casework.demo.postloan.close_of_business_once), as `manage.py
    seed_demo` does for `make run`, so the finance pages have a closed day; the tests' seeds leave it out."""
    with transaction.atomic():
        seed_reference_data()
        seed_products()
        users = seed_org(password)
        seed_development_sample()
        seed_cases(users)
        for stage in STAGE_SEEDS:  # each stage's own demo data, in the order of the stages
            stage.seed_demo_data(users)
    # The history in one transaction of its own, its notifications kept off the console.
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"), transaction.atomic():
        outcomes = seed_history(users, cases=history)
    if outcomes:
        log.info("demo history: %s", outcomes)
    if close_of_business:
        closed = postloan_demo.close_of_business_once(users)
        if closed:
            log.info("demo close of business: %s", closed)
    return users
