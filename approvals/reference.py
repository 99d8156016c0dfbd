"""Approval policy every installation starts with, as data (edited in admin afterwards, never overwritten).

Called from casework.reference_data.seed_reference_data (post_migrate and seed_demo); idempotent.
"""

from __future__ import annotations

from decimal import Decimal

from .models import CreditCommittee, ReferralRule

# The early-warning signals of DESIGN.md's post-loan rules, applied at origination: any of them keeps
# a case off the fast track ("no warning") and names the reason for the person who takes it.
REFERRAL_RULES = [
    # code, source, field, operator, threshold, message, message_en
    ("TAX_REVENUE_DROP", "features", "revenue_growth", "lt", "-0.30", "应税收入同比下降超过30%",
     "Taxable revenue down more than 30 % year on year"),
    ("SETTLEMENT_INFLOW_DROP", "features", "settlement_inflow_trend", "lt", "-0.30", "本行结算流入同比下降超过30%",
     "Settlement inflow with the bank down more than 30 % year on year"),
    ("HEADCOUNT_DROP", "features", "headcount_trend", "lt", "-0.30", "社保缴纳人数同比下降超过30%",
     "Social-security headcount down more than 30 % year on year"),
    ("ENFORCEMENT_CASE", "features", "enforcement_cases", "gt", "0", "存在被执行案件",
     "There is an enforcement case against the enterprise"),
    ("LEGAL_REP_CHANGED", "registry", "legal_rep_changed_12m", "is_true", None, "近12个月法定代表人发生变更",
     "The legal representative changed in the last 12 months"),
    ("OVERDUE_ELSEWHERE", "features", "max_dpd_24m", "gt", "30", "近24个月他行最长逾期超过30天",
     "Overdue more than 30 days elsewhere in the last 24 months"),
]


def seed_referral_rules() -> None:
    for order, (code, source, field, operator, threshold, message, message_en) in enumerate(REFERRAL_RULES):
        ReferralRule.objects.get_or_create(code=code, defaults=dict(
            source=source, field=field, operator=operator, threshold=None if threshold is None else Decimal(threshold),
            message=message, message_en=message_en, order=order))


def seed_committee() -> None:
    if not CreditCommittee.objects.exists():
        CreditCommittee.objects.create(quorum=3)


def seed_approval_policy() -> None:
    seed_referral_rules()
    seed_committee()
