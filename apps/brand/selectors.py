"""The agency's brand as clients see it: its name, logo and colour, on pages, PDFs and emails.

The colour and the logo's storage name live on the agency (tenants.Agency); the logo's bytes in
the agency's own media storage. Browsers and mail clients reach the logo by a signed URL
(apps.brand.views.logo) that names one agency's one logo, and the colour by a tiny stylesheet
(apps.brand.views.stylesheet): the Content Security Policy allows no inline styles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core import signing
from django.urls import reverse

from apps.media.storage import media_storage
from tenants.models import BRAND_COLOUR_PATTERN, Agency

DEFAULT_COLOUR = "#3b5bdb"  # Postline's own accent, for an agency that chose none
LOGO_SALT = "brand.logo"


@dataclass(frozen=True)
class Brand:
    name: str
    colour: str  # always a valid "#rrggbb"
    logo_path: str  # the logo's signed URL path on the agency's site, "" without a logo
    css_path: str
    site_url: str  # "https://<agency>.<domain>" without the trailing slash

    @property
    def logo_url(self) -> str:
        """The logo's absolute URL (for emails), "" without a logo."""
        return f"{self.site_url}{self.logo_path}" if self.logo_path else ""


def logo_token(agency: Agency) -> str:
    """What the logo's URL carries: the agency's schema and the logo's name, signed."""
    return signing.dumps({"schema": agency.schema_name, "name": agency.brand_logo}, salt=LOGO_SALT)


def logo_name_for(agency: Agency, token: str) -> str | None:
    """The logo's storage name if `token` is this agency's current logo, else None."""
    try:
        value = signing.loads(token, salt=LOGO_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(value, dict) or value.get("schema") != agency.schema_name:
        return None
    name = value.get("name")
    return name if name and name == agency.brand_logo else None


def logo_bytes(agency: Agency) -> bytes:
    """The logo's bytes from the agency's media storage (the connection must be in its schema)."""
    with media_storage().open(agency.brand_logo, "rb") as handle:  # type: ignore[attr-defined]
        return bytes(handle.read())


def brand_of(agency: Agency) -> Brand:
    colour = agency.brand_colour if re.match(BRAND_COLOUR_PATTERN, agency.brand_colour or "") else ""
    colour = colour or DEFAULT_COLOUR
    logo_path = reverse("brand:logo", kwargs={"token": logo_token(agency)}) if agency.brand_logo else ""
    return Brand(
        name=agency.name,
        colour=colour,
        logo_path=logo_path,
        css_path=f"{reverse('brand:stylesheet')}?v={colour.removeprefix('#')}",
        site_url=agency.url.rstrip("/"),
    )
