"""Demo data for approvals (wired by casework.demo.seed_demo): the committee's chair, the escalation
chain for SLA breaches, and a draft authority matrix to replay on the what-if page. Idempotent."""

from __future__ import annotations

from decimal import Decimal

from approvals import services
from approvals.models import AuthorityMatrixVersion, CreditCommittee
from loanservice.models import Profile


def seed_demo_data(users: dict) -> None:
    committee = CreditCommittee.objects.filter(is_active=True).first()
    if committee is None or committee.chair_id is None:
        services.committee_configure(by=users.get("demo_admin"), chair=users["demo_committee_1"], quorum=3)
    # SLA breaches escalate along Profile.supervisor: RM → branch approver → head office → committee chair.
    chain = [("demo_rm", "demo_branch_approver"), ("demo_branch_approver", "demo_head_approver"),
             ("demo_ops", "demo_branch_approver"), ("demo_head_approver", "demo_committee_1")]
    for user, supervisor in chain:
        if user in users and supervisor in users:
            Profile.objects.filter(user=users[user], supervisor__isnull=True).update(supervisor=users[supervisor])
    if not AuthorityMatrixVersion.objects.filter(is_active=False, activated_at__isnull=True).exists():
        # A draft that delegates more to the default branch: its approvers decide up to 5,000,000.
        draft = services.matrix_version_draft_create(by=users.get("demo_risk"), note="演示草稿：上海分行授权提高至500万")
        default_branch = Profile.objects.filter(user=users["demo_branch_approver"]).values_list("branch_id", flat=True).first()
        services.authority_rule_save(version=draft, by=users.get("demo_risk"), priority=55, branch_id=default_branch,
                                     max_amount=Decimal("5000000"), grades=["A", "B", "C"], route="branch",
                                     note="分行授权提高（上海分行） / raised branch delegation")
