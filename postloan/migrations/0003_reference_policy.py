"""Reference post-loan policy as data: buckets, five-category floors (2023 rules), the default policy,
prepayment rules and the early-warning rules. Edited in admin afterwards."""

import datetime as dt
from decimal import Decimal

from django.db import migrations

BUCKETS = [("M0", 0, 0), ("M1", 1, 30), ("M2", 31, 60), ("M3", 61, 90), ("M4+", 91, None)]
FLOORS = [("special_mention", 0), ("substandard", 90), ("doubtful", 270), ("loss", 360)]
RULES = [
    # code, name, source, kind, field, compare_field, threshold, severity
    ("tax_revenue_drop", "纳税销售收入同比下降超30% / Taxed revenue down > 30 % YoY", "tax", "drop_yoy", "revenue_12m",
     "revenue_prev_12m", "0.30", "orange"),
    ("settlement_inflow_drop", "结算流入同比下降超30% / Settlement inflow down > 30 % YoY", "internal", "drop_yoy",
     "settlement_inflow_12m", "settlement_inflow_prev_12m", "0.30", "orange"),
    ("headcount_drop", "社保人数同比下降超30% / Headcount down > 30 % YoY", "social_security", "drop_yoy", "headcount",
     "headcount_12m_ago", "0.30", "yellow"),
    ("legal_rep_changed", "法定代表人变更 / Legal representative changed", "registry", "flag", "legal_rep_changed_12m", "", "0", "yellow"),
    ("abnormal_operations", "列入经营异常名录 / On the abnormal-operations list", "registry", "flag", "abnormal_operations", "", "0", "orange"),
    ("enforcement_new", "新增被执行案件 / New enforcement case", "judicial", "increase", "enforcement_cases", "", "0", "red"),
    ("dishonest_debtor", "企业列入失信被执行人 / Listed as a dishonest judgment debtor", "judicial", "flag", "dishonest_debtor", "", "0", "red"),
    ("legal_rep_dishonest", "法定代表人列入失信被执行人 / Legal representative listed as dishonest debtor", "judicial", "flag",
     "legal_rep_dishonest_debtor", "", "0", "red"),
    ("bureau_overdue", "征信出现他行逾期 / Overdue elsewhere at the credit bureau", "credit_bureau", "positive",
     "current_overdue_amount", "", "0", "red"),
    ("collateral_ltv", "押品抵押率超过70% / Collateral LTV above 70 %", "collateral", "ltv_above", "", "", "0.70", "orange"),
]


def seed(apps, schema_editor):
    Bucket = apps.get_model("postloan", "DelinquencyBucket")
    Floor = apps.get_model("postloan", "ClassificationFloor")
    Policy = apps.get_model("postloan", "PostloanPolicy")
    Prepayment = apps.get_model("postloan", "PrepaymentRule")
    Rule = apps.get_model("postloan", "WarningRule")
    for code, low, high in BUCKETS:
        Bucket.objects.get_or_create(code=code, defaults={"min_dpd": low, "max_dpd": high})
    for category, over in FLOORS:
        Floor.objects.get_or_create(category=category, defaults={"dpd_over": over})
    Policy.objects.get_or_create(effective_from=dt.date(2023, 7, 1))
    Prepayment.objects.get_or_create(product_code="", defaults={"allowed": True, "fee_rate": Decimal("0")})
    Prepayment.objects.get_or_create(product_code="secured-operating", defaults={
        "allowed": True, "lock_in_months": 0, "fee_rate": Decimal("0.0100"), "fee_free_after_months": 12, "mode": "reduce_installment"})
    for code, name, source, kind, field, compare, threshold, severity in RULES:
        Rule.objects.get_or_create(code=code, defaults={"name": name, "source": source, "kind": kind, "field": field,
                                                        "compare_field": compare, "threshold": Decimal(threshold), "severity": severity})


def product_codes(apps, schema_editor):
    Loan = apps.get_model("postloan", "Loan")
    for loan in Loan.objects.filter(product_code="").select_related("application__product"):
        Loan.objects.filter(pk=loan.pk).update(product_code=loan.application.product.code)


class Migration(migrations.Migration):
    dependencies = [("postloan", "0002_monitoring_policy")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop),
                  migrations.RunPython(product_codes, migrations.RunPython.noop)]
