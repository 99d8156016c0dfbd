"""The chart of accounts and the default account mapping every installation starts with (金融企业会计科目,
simplified to what SME lending posts). Seeded by migration 0002 and by the reference data after every migrate;
idempotent, admin edits kept."""

from __future__ import annotations

from django.apps import apps as registry

# code, name, English name, kind
CHART = [
    ("1301", "贷款", "Loans", "asset"),
    ("1304", "贷款损失准备", "Loan loss allowance", "contra_asset"),
    ("1132", "应收利息", "Interest receivable", "asset"),
    ("1133", "应收罚息", "Penalty interest receivable", "asset"),
    ("1134", "应收复利", "Compound interest receivable", "asset"),
    ("3001", "清算资金往来", "Clearing", "asset"),
    ("2011", "吸收存款", "Customer deposits", "liability"),
    ("2221", "应交税费-应交增值税", "VAT payable", "liability"),
    ("6011", "利息收入", "Interest income", "income"),
    ("601102", "罚息收入", "Penalty interest income", "income"),
    ("601103", "复利收入", "Compound interest income", "income"),
    ("6021", "手续费及佣金收入", "Fee income", "income"),
    ("6702", "信用减值损失", "Credit impairment loss", "expense"),
    ("6302", "核销贷款收回", "Recovery of loans written off", "income"),
    ("7001", "表外应收未收利息", "Off-balance interest receivable", "memo"),
    ("7002", "表外应收未收利息对应科目", "Off-balance interest contra", "memo_contra"),
]

# role → account code, for every product (a product-specific row in admin overrides it)
MAPPING = {
    "loan_principal": "1301",
    "interest_receivable": "1132",
    "penalty_receivable": "1133",
    "compound_receivable": "1134",
    "interest_income": "6011",
    "penalty_income": "601102",
    "compound_income": "601103",
    "fee_income": "6021",
    "vat_payable": "2221",
    "settlement": "2011",
    "clearing": "3001",
    "allowance": "1304",
    "impairment": "6702",
    "recovery_income": "6302",
    "off_balance_interest": "7001",
    "off_balance_contra": "7002",
}


def chart_seed(apps=None) -> None:
    """Idempotent: creates what is missing, changes nothing that exists (admin edits are kept)."""
    apps = apps or registry
    account_model = apps.get_model("ledger", "Account")
    mapping_model = apps.get_model("ledger", "AccountMapping")
    for code, name, name_en, kind in CHART:
        account_model.objects.get_or_create(code=code, defaults={"name": name, "name_en": name_en, "kind": kind})
    accounts = {a.code: a for a in account_model.objects.filter(code__in=MAPPING.values())}
    for role, code in MAPPING.items():
        mapping_model.objects.get_or_create(role=role, product="", defaults={"account": accounts[code]})


# 价税分离: interest, penalty and compound interest income carry 6 % output VAT (营改增, from 2016-05-01); the small and
# micro exemption is data on the rule (exempt products, exempt borrower classes).
VAT_RULES = [("6011", "2221", "0.0600"), ("601102", "2221", "0.0600"), ("601103", "2221", "0.0600")]
VAT_FROM = "2016-05-01"
VAT_EXEMPT_CLASSES = ["micro", "small"]


def vat_seed(apps=None) -> None:
    """Idempotent, like `chart_seed`: a rule per income account unless one exists."""
    apps = apps or registry
    account_model = apps.get_model("ledger", "Account")
    rule_model = apps.get_model("ledger", "VatRule")
    accounts = {a.code: a for a in account_model.objects.all()}
    for income, payable, rate in VAT_RULES:
        if income in accounts and payable in accounts and not rule_model.objects.filter(income_account=accounts[income]).exists():
            rule_model.objects.create(income_account=accounts[income], payable_account=accounts[payable], rate=rate,
                                      effective_from=VAT_FROM, exempt_tax_classes=VAT_EXEMPT_CLASSES)
