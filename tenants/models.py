"""Agencies (tenants) and their domains. Public schema."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django_tenants.models import DomainMixin, TenantMixin

from apps.users.models import validate_time_zone
from tenants.db import connection

SLUG_PATTERN = r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$"
BRAND_COLOUR_PATTERN = r"^#[0-9a-f]{6}$"
_BRAND_COLOUR_RE = re.compile(BRAND_COLOUR_PATTERN)


def validate_brand_colour(value: str) -> None:
    """A brand colour is six hex digits after '#', lowercase (as the settings form saves it)."""
    if value and not _BRAND_COLOUR_RE.match(value):
        raise ValidationError(
            "Give the colour as # and six hex digits, e.g. #1f6feb.", code="invalid_brand_colour"
        )


_SLUG_RE = re.compile(SLUG_PATTERN)


def validate_agency_slug(slug: str) -> None:
    """A slug is the agency's subdomain and, with '-' as '_', its schema name."""
    if not _SLUG_RE.match(slug) or "--" in slug:
        raise ValidationError(
            "Use 3 to 40 characters: lowercase letters, digits and single hyphens, "
            "starting with a letter and not ending with a hyphen.",
            code="invalid_slug",
        )
    if (
        slug in settings.RESERVED_SLUGS
        or slug.startswith("pg-")
        or slug_to_schema(slug) in settings.RESERVED_SLUGS
    ):
        raise ValidationError(f"“{slug}” is reserved; choose another name.", code="reserved_slug")


def slug_to_schema(slug: str) -> str:
    return slug.replace("-", "_")


class Plan(models.TextChoices):
    TRIAL = "trial", "Trial"
    STARTER = "starter", "Starter"
    GROWTH = "growth", "Growth"
    ENTERPRISE = "enterprise", "Enterprise"


class AgencyStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    DELETED = "deleted", "Deleted"


class MfaPolicy(models.TextChoices):
    """Who must use two-step sign-in in an agency (everyone may)."""

    NOBODY = "none", "Nobody (each person chooses)"
    ADMINS = "admins", "Owners and admins"
    EVERYONE = "everyone", "Everyone"


class Agency(TenantMixin):
    # Schemas are made by tenants.services.agency_create (cloned, in one transaction).
    auto_create_schema = False
    auto_drop_schema = False

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=40, unique=True, validators=[validate_agency_slug])
    plan = models.CharField(max_length=16, choices=Plan.choices, default=Plan.TRIAL)
    status = models.CharField(max_length=16, choices=AgencyStatus.choices, default=AgencyStatus.ACTIVE)
    default_time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="IANA time zone the agency works in, e.g. Europe/Paris.",
    )
    mfa_policy = models.CharField(
        "two-step sign-in required for", max_length=16, choices=MfaPolicy.choices, default=MfaPolicy.NOBODY
    )
    # Self-service signups start unconfirmed: until the owner who signed up follows the link we
    # email them, the agency can neither connect TikTok accounts nor publish, and it is removed
    # once abandoned (apps.web.email_verification). Agencies made by an operator start confirmed.
    email_verified_at = models.DateTimeField(
        "email confirmed at",
        null=True,
        blank=True,
        help_text="When the owner confirmed their email address; empty: not yet, so nothing can be "
        "connected or published.",
    )
    # When the newest confirmation link was made: only that link works.
    email_verification_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The agency's brand on what its clients see (reports, review pages, emails): apps.brand.
    brand_colour = models.CharField(
        "brand colour", max_length=7, blank=True, validators=[validate_brand_colour]
    )
    # The logo's name in the agency's own media storage (apps.media.storage), e.g. brand/<uuid>.png.
    brand_logo = models.CharField("logo", max_length=200, blank=True, editable=False)
    brand_logo_type = models.CharField(max_length=32, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "agencies"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(slug__regex=SLUG_PATTERN), name="tenants_agency_slug_format"),
            models.CheckConstraint(
                condition=Q(status__in=AgencyStatus.values), name="tenants_agency_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(mfa_policy__in=MfaPolicy.values), name="tenants_agency_mfa_policy_valid"
            ),
            models.CheckConstraint(
                condition=Q(brand_colour="") | Q(brand_colour__regex=BRAND_COLOUR_PATTERN),
                name="tenants_agency_brand_colour_hex",
            ),
            models.CheckConstraint(
                condition=~Q(status=AgencyStatus.DELETED) | Q(deleted_at__isnull=False),
                name="tenants_agency_deleted_has_time",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def unverified_refusal(self) -> str:
        """Why this agency may not connect accounts or publish yet ("" once its owner confirmed)."""
        if self.is_email_verified:
            return ""
        return (
            f"{self.name} cannot connect TikTok accounts or publish until its owner confirms their email "
            "address with the link we emailed them (see “Confirm your email address” at the top of the "
            "page to send it again)."
        )

    @property
    def is_public(self) -> bool:
        return self.schema_name == "public"

    @property
    def primary_host(self) -> str:
        return f"{self.slug}.{settings.PLATFORM_DOMAIN}"

    @property
    def url(self) -> str:
        port = f":{settings.SITE_PORT}" if settings.SITE_PORT else ""
        return f"{settings.SITE_SCHEME}://{self.primary_host}{port}/"


class Domain(DomainMixin):
    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain


def public_tenant() -> Agency:
    """The root domain's stand-in tenant: the public schema, never saved."""
    return Agency(schema_name="public", name="Postline", slug="", status=AgencyStatus.ACTIVE)


def current_agency() -> Agency:
    """The agency whose schema the connection is in (a request's, or a job's), as its row."""
    tenant = getattr(connection, "tenant", None)
    if isinstance(tenant, Agency) and tenant.pk is not None:
        return tenant
    return Agency.objects.get(schema_name=connection.schema_name)
