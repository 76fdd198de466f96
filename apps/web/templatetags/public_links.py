"""`{% public_url "find_agency" %}`: a root-domain page's absolute URL, from an agency's pages."""

from django import template

from apps.web.links import public_url as _public_url

register = template.Library()


@register.simple_tag
def public_url(name: str) -> str:
    return _public_url(name)
