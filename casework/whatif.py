"""Policy what-if (政策回测): replay the decided cases of a period under a draft authority matrix or a
score cut-off, before activating it.

The replay uses each case's routing facts as they were when it was routed (approvals.RoutingRecord: amount,
grade, customer rating, related party, and the fast-track blockers, which do not depend on the matrix)
and the pure `approvals.services.route_evaluate`. It reports how many cases would go automatic and to
each level, the approval rate, and how the loans of the cases whose route would change have performed
since (days past due from postloan). Lives in the kernel because it reads every stage; approvals itself
never imports postloan.

Assumption, stated on the page: a case that stays with a person keeps the decision the person took; a
case newly automatic is approved (auto) or declined (auto_decline) by the system.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

from django.db.models import Prefetch
from django.utils import timezone

from applications.models import LoanApplication
from approvals.models import AuthorityMatrixVersion, RoutingRecord
from approvals.services import RouteFacts, customer_rating_of, fast_track_blockers, route_evaluate
from postloan.models import Loan
from underwriting.models import Score

ROUTE_ORDER = ["auto", "branch", "head_office", "committee", "auto_decline"]


def _period_bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(date_from, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return start, end


def decided_cases(*, date_from: dt.date, date_to: dt.date):
    """Cases decided (automatically or by a person) in the period that were scored and routed."""
    start, end = _period_bounds(date_from, date_to)
    return (LoanApplication.objects.filter(decided_at__gte=start, decided_at__lt=end)
            .exclude(status=LoanApplication.Status.PRESCREEN_DECLINED).exclude(route="")
            .select_related("product", "enterprise", "branch")
            .prefetch_related(Prefetch("scores", queryset=Score.objects.filter(is_shadow=False).select_related("model")),
                              Prefetch("routings", queryset=RoutingRecord.objects.order_by("-created_at", "-id")),
                              "decisions")
            .order_by("decided_at", "id"))


def _actual_route(application, routing) -> str:
    if routing is not None:
        return routing.route
    if application.route == "auto" and any(d.automatic and d.decision == "decline" for d in application.decisions.all()):
        return "auto_decline"
    return application.route


def _outcome(application) -> str:
    if application.offer_amount is not None:
        return "approved"
    if application.status == LoanApplication.Status.DECLINED:
        return "declined"
    return "other"


def _facts(application, score, routing) -> tuple[RouteFacts, list[dict]]:
    if routing is not None and "blockers" in routing.facts:
        return RouteFacts.from_json(routing.facts), list(routing.facts["blockers"])
    # Routed before routing records kept their facts: rebuild them from the score and today's lists.
    blockers = fast_track_blockers(application=application, score=score)
    related = any(b["code"] in ("RELATED_PARTY", "CONFLICT_OF_INTEREST") for b in blockers)
    facts = RouteFacts(product_id=application.product_id, branch_id=application.branch_id, amount=application.amount,
                       grade=score.grade, customer_rating=customer_rating_of(score), related_party=related)
    return facts, blockers


def _rate(numerator: int, denominator: int) -> Decimal | None:
    return (Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.0001")) if denominator else None


def policy_whatif(*, date_from: dt.date, date_to: dt.date, version: AuthorityMatrixVersion,
                  cutoff_points: int | None = None) -> dict:
    """The replay. Queries: a constant number whatever the count of cases."""
    rules = list(version.rules.order_by("priority", "id"))
    cases = list(decided_cases(date_from=date_from, date_to=date_to))
    loans = {loan.application_id: loan for loan in Loan.objects.filter(application_id__in=[c.pk for c in cases], disbursement__kind="loan")}
    actual, replay = Counter(), Counter()
    approved_actual = approved_replay = 0
    changed = []
    rows = 0
    for application in cases:
        score = next(iter(application.scores.all()), None)
        if score is None:
            continue
        rows += 1
        routing = next(iter(application.routings.all()), None)
        facts, blockers = _facts(application, score, routing)
        was = _actual_route(application, routing)
        now_route, rule, _referrals = route_evaluate(rules=rules, facts=facts, blockers=blockers)
        if cutoff_points is not None and score.points < cutoff_points:
            now_route, rule = "auto_decline", None
        outcome = _outcome(application)
        projected = {"auto": "approved", "auto_decline": "declined"}.get(now_route, outcome)
        actual[was] += 1
        replay[now_route] += 1
        approved_actual += outcome == "approved"
        approved_replay += projected == "approved"
        if now_route != was:
            loan = loans.get(application.pk)
            changed.append({
                "id": application.pk, "enterprise": application.enterprise.name, "product": application.product.code,
                "branch": application.branch.code if application.branch else "", "amount": application.amount,
                "grade": score.grade, "points": score.points, "customer_rating": facts.customer_rating,
                "from": was, "to": now_route, "rule": rule.note if rule else ("cut-off" if cutoff_points is not None else ""),
                "outcome": outcome, "projected": projected,
                "loan": loan.pk if loan else None, "dpd": loan.dpd if loan else None,
                "bucket": loan.bucket if loan else "", "classification": loan.classification if loan else "",
            })
    with_loan = [c for c in changed if c["loan"] is not None]
    dpds = [c["dpd"] for c in with_loan]
    auto_keys = ("auto", "auto_decline")
    return {
        "date_from": date_from, "date_to": date_to, "version": version.number, "version_state": version.state,
        "cutoff_points": cutoff_points, "cases": rows,
        "routes": [{"route": r, "actual": actual.get(r, 0), "replay": replay.get(r, 0)} for r in ROUTE_ORDER],
        "auto_share": {"actual": _rate(sum(actual[k] for k in auto_keys), rows),
                       "replay": _rate(sum(replay[k] for k in auto_keys), rows)},
        "approval_rate": {"actual": _rate(approved_actual, rows), "replay": _rate(approved_replay, rows)},
        "changed": changed,
        "changed_performance": {
            "count": len(changed), "with_loan": len(with_loan),
            "dpd_gt_0": sum(1 for d in dpds if d > 0), "dpd_gt_30": sum(1 for d in dpds if d > 30),
            "max_dpd": max(dpds, default=None),
            "avg_dpd": (Decimal(sum(dpds)) / len(dpds)).quantize(Decimal("0.1")) if dpds else None,
        },
    }
