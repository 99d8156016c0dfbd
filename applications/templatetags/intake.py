"""The intake pages' tags: the kernel's display filters under the names these templates load, and `tr`."""

from django import template

from loanservice.templatetags import display

register = template.Library()

# One implementation (loanservice/templatetags/display.py); `{% load intake %}` keeps working.
for _name in ("cny", "rate_pct", "lang", "money", "rate", "percent", "day", "daytime", "duration", "span", "label",
              "labels", "number", "yesno_text", "bs", "phone"):
    register.filter(_name, display.register.filters[_name])


@register.simple_tag(takes_context=True)
def tr(context, obj, field):
    """A bilingual model's field in the page's language (Bilingual.tr)."""
    return obj.tr(field)
