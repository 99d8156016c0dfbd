"""Template helpers for the case pages: the due-diligence workspace of a case, read in one place."""

from __future__ import annotations

from django import template

from ..selectors import case_workspace as _case_workspace

register = template.Library()


@register.simple_tag
def case_workspace(application) -> dict:
    """Collateral, guarantors, notes, visits, requests for information and the referral reasons of a case."""
    return _case_workspace(application)
