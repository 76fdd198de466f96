"""Absolute links between the root domain and agency subdomains (they are different sites)."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse


def public_url(name: str) -> str:
    """Absolute URL of a root-domain page, from any host."""
    port = f":{settings.SITE_PORT}" if settings.SITE_PORT else ""
    path = reverse(name, urlconf=settings.PUBLIC_SCHEMA_URLCONF)
    return f"{settings.SITE_SCHEME}://{settings.PLATFORM_DOMAIN}{port}{path}"
