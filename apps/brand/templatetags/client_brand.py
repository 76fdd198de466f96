"""`{% agency_brand as brand %}`: the brand of the agency a template is rendered for (the
request's tenant, else the agency whose schema the connection is in), or None outside one."""

from __future__ import annotations

from typing import Any

from django import template

from apps.brand.selectors import Brand, brand_of
from tenants.db import connection
from tenants.models import Agency

register = template.Library()


@register.simple_tag(takes_context=True)
def agency_brand(context: Any) -> Brand | None:
    if isinstance(context.get("brand"), Brand):
        return context["brand"]
    request = context.get("request")
    agency = getattr(request, "tenant", None) or context.get("agency") or getattr(connection, "tenant", None)
    if not isinstance(agency, Agency) or agency.is_public or agency.pk is None:
        return None
    return brand_of(agency)
