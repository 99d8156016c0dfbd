"""Reference data for credit lines: which early-warning rules freeze a line (data, editable in admin)."""

from __future__ import annotations

from postloan.models import WarningRule


def seed_line_freezing_rules() -> None:
    """The first time only (no rule freezes lines yet): the red rules freeze a borrower's lines. Admin edits stay."""
    if not WarningRule.objects.filter(freezes_credit_line=True).exists():
        WarningRule.objects.filter(severity="red").update(freezes_credit_line=True)
