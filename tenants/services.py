"""Creating, changing, suspending and deleting agencies."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.utils import timezone
from django_otp import user_has_device
from django_tenants.utils import schema_context, schema_exists

from apps.audit.services import audit_record
from apps.common.sql import quote_ident
from apps.media.storage import media_storage
from apps.users.models import Role, User, validate_time_zone
from tenants import provisioning
from tenants.models import (
    Agency,
    AgencyStatus,
    Domain,
    MfaPolicy,
    Plan,
    slug_to_schema,
    validate_agency_slug,
)

logger = logging.getLogger(__name__)


def _validate_new_agency(*, slug: str, name: str, owner_email: str, owner_password: str, plan: str) -> None:
    errors: dict[str, list[str]] = {}

    def add(field: str, error: ValidationError) -> None:
        errors.setdefault(field, []).extend(error.messages)

    try:
        validate_agency_slug(slug)
    except ValidationError as exc:
        add("slug", exc)
    else:
        host = Agency(slug=slug).primary_host
        if (
            Agency.objects.filter(slug=slug).exists()
            or Agency.objects.filter(schema_name=slug_to_schema(slug)).exists()
            or Domain.objects.filter(domain=host).exists()
            or schema_exists(slug_to_schema(slug))
        ):
            add("slug", ValidationError(f"The address “{slug}” is already taken; choose another."))
    if not name.strip():
        add("name", ValidationError("Give the agency a name."))
    elif len(name) > 120:
        add("name", ValidationError("Keep the agency name to 120 characters."))
    if plan not in Plan.values:
        add("plan", ValidationError(f"Unknown plan “{plan}”; choose one of {', '.join(Plan.values)}."))
    try:
        validate_email(owner_email)
    except ValidationError:
        add("owner_email", ValidationError("Enter a valid email address for the owner."))
    try:
        validate_password(owner_password, User(email=owner_email))
    except ValidationError as exc:
        add("owner_password", exc)
    if errors:
        raise ValidationError(errors)


def agency_create(
    *,
    slug: str,
    name: str,
    owner_email: str,
    owner_password: str,
    plan: str = Plan.TRIAL,
    owner_name: str = "",
    operator: Any = None,
) -> Agency:
    """Create a working agency: row, domain, schema (cloned) and owner, all or nothing.

    Raises ValidationError with per-field messages on bad input; nothing is left behind
    on any failure because everything, the schema's DDL included, runs in one transaction.
    """
    slug = slug.strip().lower()
    owner_email = owner_email.strip().lower()
    _validate_new_agency(
        slug=slug, name=name, owner_email=owner_email, owner_password=owner_password, plan=plan
    )
    with transaction.atomic():
        agency = Agency(slug=slug, schema_name=slug_to_schema(slug), name=name.strip(), plan=plan)
        agency.save()
        Domain.objects.create(domain=agency.primary_host, tenant=agency, is_primary=True)
        provisioning.schema_clone(agency.schema_name)
        with schema_context(agency.schema_name):
            # Within its own schema the owner holds every permission, the admin's included.
            owner = User.objects.create_superuser(
                owner_email, owner_password, name=owner_name, role=Role.OWNER
            )
            audit_record(
                action="agency.created",
                obj=owner,
                changes={"agency": agency.slug, "plan": plan, "operator": getattr(operator, "email", "")},
            )
    logger.info("Agency %s created", agency.slug)
    return agency


def agency_update_settings(
    *, agency: Agency, name: str, default_time_zone: str, by: Any = None, request: Any = None
) -> Agency:
    """Change the agency's own settings (name, default time zone); only what changed is saved.

    Raises ValidationError with per-field messages. A change is recorded in the agency's audit
    log as "settings.changed" with each field's old and new value; saving the same values again
    records nothing. Returns the agency as saved (the caller's instance is left untouched).
    """
    name = name.strip()
    errors: dict[str, list[str]] = {}
    if not name:
        errors["name"] = ["Give the agency a name."]
    elif len(name) > 120:
        errors["name"] = ["Keep the agency name to 120 characters."]
    try:
        validate_time_zone(default_time_zone)
    except ValidationError as exc:
        errors["default_time_zone"] = exc.messages
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        current = Agency.objects.select_for_update().get(pk=agency.pk)
        wanted = {"name": name, "default_time_zone": default_time_zone}
        changes = {
            field: {"old": getattr(current, field), "new": value}
            for field, value in wanted.items()
            if getattr(current, field) != value
        }
        if not changes:
            return current
        for field in changes:
            setattr(current, field, wanted[field])
        current.save(update_fields=list(changes))
        # The audit log lives in the agency's schema, whichever schema the caller is in.
        with schema_context(current.schema_name):
            audit_record(action="settings.changed", actor=by, obj=current, request=request, changes=changes)
    return current


def agency_set_mfa_policy(*, agency: Agency, policy: str, by: Any, request: Any = None) -> Agency:
    """Set who must use two-step sign-in in the agency (an owner's decision).

    Raises ValidationError (key mfa_policy) when `by` is not an owner, the policy is unknown, or
    `by` would require it without using it themselves (they would be sent to set it up at once).
    Audited as "settings.changed" when it changes.
    """
    if getattr(by, "role", None) != Role.OWNER:
        raise ValidationError({"mfa_policy": ["Only an owner can change who must use two-step sign-in."]})
    if policy not in MfaPolicy.values:
        raise ValidationError({"mfa_policy": ["Choose one of the options."]})
    if policy != MfaPolicy.NOBODY and not user_has_device(by):
        raise ValidationError(
            {"mfa_policy": ["Turn on two-step sign-in for yourself first (Two-step sign-in in your menu)."]}
        )
    with transaction.atomic():
        current = Agency.objects.select_for_update().get(pk=agency.pk)
        if current.mfa_policy == policy:
            return current
        changes = {"mfa_policy": {"old": current.mfa_policy, "new": policy}}
        current.mfa_policy = policy
        current.save(update_fields=["mfa_policy"])
        with schema_context(current.schema_name):
            audit_record(action="settings.changed", actor=by, obj=current, request=request, changes=changes)
    return current


def agency_audit_operator_action(
    *, agency: Agency, action: str, operator: Any, changes: dict[str, Any] | None = None
) -> None:
    """Record what an operator did to the agency in the agency's own audit log.

    Operators are not the agency's users, so the entry has no actor; their email is kept in
    the entry's changes.
    """
    with schema_context(agency.schema_name):
        audit_record(
            action=action,
            obj=agency,
            changes={**(changes or {}), "operator": getattr(operator, "email", "")},
        )


def _set_status(agency: Agency, status: str, action: str, operator: Any) -> Agency:
    previous = agency.status
    now = timezone.now()
    agency.status = status
    agency.status_changed_at = now
    agency.deleted_at = now if status == AgencyStatus.DELETED else None
    agency.save(update_fields=["status", "status_changed_at", "deleted_at"])
    if previous != status:
        agency_audit_operator_action(
            agency=agency, action=action, operator=operator, changes={"status": [previous, status]}
        )
    return agency


@transaction.atomic
def agency_suspend(*, agency: Agency, operator: Any = None) -> Agency:
    """Its pages answer "suspended" and its posts stop publishing; nothing is removed."""
    return _set_status(agency, AgencyStatus.SUSPENDED, "agency.suspended", operator)


@transaction.atomic
def agency_reactivate(*, agency: Agency, operator: Any = None) -> Agency:
    return _set_status(agency, AgencyStatus.ACTIVE, "agency.reactivated", operator)


@transaction.atomic
def agency_delete(*, agency: Agency, operator: Any = None) -> Agency:
    """Mark deleted: its hosts answer 404 at once; the schema stays for the grace period."""
    return _set_status(agency, AgencyStatus.DELETED, "agency.deleted", operator)


def agency_purge(*, agency: Agency) -> None:
    """Drop a deleted agency's schema, domains and row, for good. Refuses any other status."""
    if agency.status != AgencyStatus.DELETED:
        raise ValueError(f"Agency {agency.slug} is {agency.status}; only deleted agencies can be purged.")
    # Its media first: should that fail, the agency is still there to purge again.
    removed = media_storage().delete_agency(agency.schema_name)
    logger.info("Agency %s: %d media objects deleted", agency.slug, removed)
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Deleting wrote to the schema (its audit log); when that was in this same transaction,
            # run its deferred checks now, or PostgreSQL refuses to drop tables with pending ones.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"DROP SCHEMA IF EXISTS {quote_ident(agency.schema_name)} CASCADE")
            # Its due jobs live in the public schema: left behind, every dispatcher tick would fail
            # on the dropped schema and no agency would publish.
            cursor.execute(
                "DELETE FROM public.publishing_duejob WHERE schema_name = %s", [agency.schema_name]
            )
        agency.domains.all().delete()
        Agency.objects.filter(pk=agency.pk).delete()
    logger.info("Agency %s purged", agency.slug)
