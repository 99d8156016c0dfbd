"""Post-loan policy read from data (edited in admin): the policy in force, the overdue buckets, the five-category
floors, prepayment rules, when an installment is overdue, when an RM task is due. Read by the services, the
nightly monitoring and close of business alike."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from loanservice import refcache
from loanservice.bizcal import due_at
from loanservice.business_date import business_date
from loanservice.sla import business_calendar

from .models import CATEGORY_ORDER, ClassificationFloor, DelinquencyBucket, PostloanPolicy, PrepaymentRule


def rank(category: str) -> int:
    return CATEGORY_ORDER.index(category)


def policy_in_force(on: dt.date | None = None) -> PostloanPolicy:
    on = on or business_date()
    return refcache.cached(("postloan_policy", on), lambda: PostloanPolicy.objects.filter(effective_from__lte=on)
                           .order_by("-effective_from").first()) or PostloanPolicy(effective_from=on)


def bucket_table() -> list[tuple[str, int, int | None]]:
    """The overdue buckets (data, seeded by postloan's reference policy). An empty table is a misconfiguration,
    never a silent default."""
    rows = list(DelinquencyBucket.objects.order_by("min_dpd").values_list("code", "min_dpd", "max_dpd"))
    if not rows:
        raise ImproperlyConfigured("No overdue buckets (postloan.DelinquencyBucket): run migrate or edit them in admin.")
    return rows


def bucket_for(dpd: int, table=None) -> str:
    for code, low, high in table or bucket_table():
        if dpd >= low and (high is None or dpd <= high):
            return code
    return (table or bucket_table())[-1][0]


def floor_table() -> list[tuple[str, int]]:
    """The five-category floors (data, seeded by postloan's reference policy); empty is a misconfiguration."""
    rows = list(ClassificationFloor.objects.order_by("dpd_over").values_list("category", "dpd_over"))
    if not rows:
        raise ImproperlyConfigured("No classification floors (postloan.ClassificationFloor): run migrate or edit them in admin.")
    return rows


def classification_floor(dpd: int, table=None) -> str:
    """The 2023 rules as a floor (data): any overdue at least 关注, >90 次级, >270 可疑, >360 损失."""
    floor = "normal"
    for category, over in table or floor_table():
        if dpd > over and rank(category) > rank(floor):
            floor = category
    return floor


def prepayment_rule(product_code: str) -> PrepaymentRule:
    rules = refcache.cached(("prepayment_rules", product_code), lambda: {
        r.product_code: r for r in PrepaymentRule.objects.filter(product_code__in=[product_code, ""])})
    return rules.get(product_code) or rules.get("") or PrepaymentRule(product_code="")


def overdue_cutoff(today: dt.date, policy: PostloanPolicy | None = None) -> dt.date:
    """Installments due on or before this date are overdue today. With holiday rollover, a due date on a
    non-business day may be paid on the next business day: overdue only once that day has passed."""
    policy = policy or policy_in_force(today)
    if policy.holiday_rollover:
        return business_calendar().previous_business_day(today)
    return today - dt.timedelta(days=1)


def task_due(*, severity: str, policy: PostloanPolicy, now=None) -> tuple[Decimal, dt.datetime]:
    days = {"red": policy.red_task_days, "orange": policy.orange_task_days}.get(severity, policy.yellow_task_days)
    now = now or timezone.now()
    return days, due_at(timezone.localtime(now), days, business_calendar())
