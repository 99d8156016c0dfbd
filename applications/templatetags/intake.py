from django import template

from applications.text import in_language

register = template.Library()


@register.filter
def lang(message):
    """The user's half of a "中文 / English" message."""
    return in_language(message)


@register.simple_tag(takes_context=True)
def tr(context, obj, field):
    """A bilingual model's field in the page's language (Bilingual.tr)."""
    return obj.tr(field)
