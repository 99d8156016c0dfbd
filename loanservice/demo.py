"""Demo data: products, branches, one user per role, and cases in every stage, made through the
real services and the lifecycle conductor (no poking at models)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from applications.models import DocumentRequirement, Enterprise, LoanApplication, LoanProduct
from applications.services import application_create, consent_grant, document_upload, enterprise_create
from underwriting.providers import make_resident_id, make_uscc
from underwriting.services import site_visit_record

from . import lifecycle, roles
from .models import Branch, Profile
from .reference_data import seed_reference_data

User = get_user_model()
TINY_PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
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


def _user(username: str, role: str, branch: Branch | None, display: str, password: str) -> User:
    user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@demo.bank.example"})
    if created:
        user.set_password(password)
        if role == roles.ADMIN:
            user.is_staff = user.is_superuser = True
        user.save()
        Profile.objects.create(user=user, branch=branch, display_name=display, phone=f"139{abs(hash(username)) % 10**8:08d}")
        user.groups.add(Group.objects.get(name=role))
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


def _sandbox_grade(uscc: str) -> str:
    """The grade the champion scorecard gives the sandbox's data for this USCC (to pick demo firms)."""
    from underwriting.features import derive_features
    from underwriting.providers import SandboxProvider
    from underwriting.scorecard import score_one
    from underwriting.selectors import scorecard_champion
    from underwriting.sources import SOURCES

    today = timezone.localdate()
    payloads = {s: SandboxProvider().fetch(s, uscc, as_of=today, hints={"founded_on": (today - dt.timedelta(days=365 * 6)).isoformat()})
                for s in SOURCES}
    return score_one(scorecard_champion().spec, derive_features(payloads, as_of=today)).grade


def _demo_uscc(seed: int, tier: str, grades: str) -> str:
    """A USCC in the default branch's region whose sandbox data scores in `grades`."""
    while True:
        uscc = make_uscc(seed, tier=tier)
        if uscc[2:4] not in ("11", "12", "33") and (not grades or _sandbox_grade(uscc) in grades):
            return uscc
        seed += 1000


def _enterprise(owner, seed: int, tier: str, name: str, *, grades: str = "", industry="C3399", revenue="8000000",
                employees=45) -> Enterprise:
    uscc = _demo_uscc(seed, tier, grades)
    existing = Enterprise.objects.filter(uscc=uscc).first()
    if existing:
        return existing
    today = timezone.localdate()
    return enterprise_create(owner=owner, data={
        "name": name, "uscc": uscc, "legal_form": "llc", "legal_rep_name": "张小微",
        "legal_rep_id_number": make_resident_id(seed, birth_year=1978), "industry_code": industry,
        "founded_on": (today - dt.timedelta(days=365 * 6)).isoformat(), "employees": employees, "annual_revenue": revenue,
    })


def _draft(owner, enterprise, code: str, amount: str, term: int, method: str, purpose="采购原材料") -> LoanApplication:
    product = LoanProduct.objects.get(code=code)
    application = application_create(applicant=owner, enterprise=enterprise, product=product, amount=Decimal(amount),
                                     term_months=term, repayment_method=method, purpose=purpose, channel="web")
    for req in product.checklist.all():
        if req.required and not req.satisfied_by_source:
            document_upload(application=application, user=owner, requirement_code=req.code, name=f"{req.code}.pdf", content=TINY_PDF)
    consent_grant(application=application, user=owner, scopes=[s for s, _ in _sources()])
    return application


def _sources():
    from applications.models import DATA_SOURCES

    return DATA_SOURCES


def _submit(application, owner) -> LoanApplication:
    lifecycle.application_submit(application_id=application.pk, user=owner)
    application.refresh_from_db()
    if application.status == LoanApplication.Status.UNDER_REVIEW and not application.route:
        lifecycle.score_and_route(application.pk)  # the worker's step, done here when no eager Celery ran it
    application.refresh_from_db()
    return application


def _to_approval(application, users) -> LoanApplication:
    rm = application.relationship_manager
    site_visit_record(application=application, by=rm, mode="onsite", notes="现场核实经营正常，库存与账面相符。",
                      answers={"premises_verified": True, "operating_normally": True, "main_customers": "中 medium", "monthly_sales": "650000"})
    lifecycle.case_send_to_approval(application_id=application.pk, user=rm, recommendation="经营稳定，建议批准。")
    application.refresh_from_db()
    return application


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
        lifecycle.contract_sign(contract_id=contract.pk, user=owner, party="borrower")
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
        lifecycle.contract_sign(contract_id=manual.contracts.get().pk, user=owner, party="borrower")
    # 6. a draft to resume, and a case that fails the pre-screen or is declined
    _draft(owner, ents[2], "xinmiaodai", "100000", 6, "equal_principal", purpose="流动资金")
    _submit(_draft(owner, ents[3], "xinmiaodai", "500000", 12, "equal_installment", purpose="购车"), owner)


@transaction.atomic
def seed_demo(*, password: str = "demo-pass") -> dict[str, User]:
    seed_reference_data()
    seed_products()
    users = seed_org(password)
    seed_cases(users)
    return users
