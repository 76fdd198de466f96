"""The brand's two public files on an agency's site: its logo (by signed URL) and its colour."""

from __future__ import annotations

from botocore.exceptions import ClientError
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from apps.brand.selectors import brand_of, logo_bytes, logo_name_for
from tenants.models import Agency


def _agency(request: HttpRequest) -> Agency:
    agency: Agency = request.tenant  # type: ignore[attr-defined]
    if agency.is_public:
        raise Http404("No such page.")
    return agency


@require_GET
def logo(request: HttpRequest, token: str) -> HttpResponse:
    """The agency's current logo, for the signed token its pages and emails carry (mail clients
    fetch it without a session). Anything else, or a replaced logo, is not found."""
    agency = _agency(request)
    if logo_name_for(agency, token) is None:
        raise Http404("No such logo.")
    try:
        data = logo_bytes(agency)
    except (OSError, ClientError):  # gone from storage
        raise Http404("No such logo.") from None
    response = HttpResponse(data, content_type=agency.brand_logo_type)
    # A new logo gets a new name, so a new URL: this one never changes.
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
def stylesheet(request: HttpRequest) -> HttpResponse:
    """`--brand-colour` for static/css/brand.css: a validated hex colour, never anything typed."""
    brand = brand_of(_agency(request))
    response = HttpResponse(f":root {{ --brand-colour: {brand.colour}; }}\n", content_type="text/css")
    response["Cache-Control"] = "public, max-age=300"
    return response
