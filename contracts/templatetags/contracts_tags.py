"""Template helpers for contract lists (the package of a case as serialised by application_detail)."""

from django import template

register = template.Library()


@register.filter
def awaiting_customer(contracts) -> list:
    """The contracts of the package still waiting for the customer's (borrower's or guarantor's) signature."""
    return [c for c in contracts or [] if (c.get("status") if isinstance(c, dict) else c.status) == "issued"]
