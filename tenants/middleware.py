"""Routing each request to its agency's schema by host name."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_tenants.middleware.main import TenantMainMiddleware

from tenants.models import Agency, AgencyStatus, public_tenant


class AgencyMiddleware(TenantMainMiddleware):
    """`<slug>.<PLATFORM_DOMAIN>` serves that agency; the bare domain serves the public site.

    Any other host, or a deleted agency's, answers 404. A suspended agency's pages
    answer a page that says so, and nothing else.
    """

    def get_tenant(self, domain_model: Any, hostname: str) -> Agency:
        if hostname == settings.PLATFORM_DOMAIN or hostname in settings.PUBLIC_HOST_ALIASES:
            return public_tenant()
        tenant: Agency = super().get_tenant(domain_model, hostname)
        if tenant.status == AgencyStatus.DELETED:
            raise domain_model.DoesNotExist(hostname)
        return tenant

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        response = super().process_request(request)
        if response is not None:
            return response
        tenant = request.tenant  # type: ignore[attr-defined]
        if tenant.status == AgencyStatus.SUSPENDED:
            return render(request, "tenants/suspended.html", {"agency": tenant}, status=403)
        return None
