"""Template helpers for the case pages: the due-diligence workspace of a case, read in one place."""

from __future__ import annotations

from django import template

from ..selectors import case_workspace as _case_workspace

register = template.Library()


@register.simple_tag
def case_workspace(application) -> dict:
    """Collateral, guarantors, notes, visits, requests for information and the referral reasons of a case."""
    return _case_workspace(application)


@register.simple_tag
def open_info_request(application):
    """The request for information the applicant has still to answer, with what it asks for (or None)."""
    return (application.info_requests.filter(responded_at__isnull=True).order_by("-created_at")
            .prefetch_related("items__requirement").first())
