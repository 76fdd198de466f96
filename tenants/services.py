"""Creating, changing, suspending and deleting agencies."""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import OperationalError, connection, transaction
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
    email_verified: bool = True,
) -> Agency:
    """Create a working agency: row, domain, schema (cloned) and owner, all or nothing.

    `email_verified`: whether the owner's address counts as confirmed. An operator (the admin, the
    `create_agency` command, the demo) vouches for it; self-service signup passes False, and the
    agency can then neither connect accounts nor publish until the owner follows the emailed link
    (apps.web.email_verification).

    Raises ValidationError with per-field messages on bad input; nothing is left behind
    on any failure because everything, the schema's DDL included, runs in one transaction.
    """
    slug = slug.strip().lower()
    owner_email = owner_email.strip().lower()
    _validate_new_agency(
        slug=slug, name=name, owner_email=owner_email, owner_password=owner_password, plan=plan
    )
    with transaction.atomic():
        agency = Agency(
            slug=slug,
            schema_name=slug_to_schema(slug),
            name=name.strip(),
            plan=plan,
            email_verified_at=timezone.now() if email_verified else None,
        )
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
                changes={
                    "agency": agency.slug,
                    "plan": plan,
                    "operator": getattr(operator, "email", ""),
                    "email_verified": email_verified,
                },
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


def agency_confirm_email(*, agency: Agency, operator: Any) -> bool:
    """An operator vouches for the owner's address of an unconfirmed signup (support: the owner
    cannot receive our email): it may connect accounts and publish from now on. Audited in the
    agency's log as "agency.email_verified" with the operator; returns False if it already was."""
    with transaction.atomic():
        current = Agency.objects.select_for_update().get(pk=agency.pk)
        if current.email_verified_at is not None:
            return False
        current.email_verified_at = timezone.now()
        current.save(update_fields=["email_verified_at"])
        agency_audit_operator_action(agency=current, action="agency.email_verified", operator=operator)
    return True


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


STATUS_ACTIONS = {
    AgencyStatus.SUSPENDED: "agency.suspended",
    AgencyStatus.ACTIVE: "agency.reactivated",
    AgencyStatus.DELETED: "agency.deleted",
}
REASON_MAX_LENGTH = 2000


def agency_status_reason_check(operator: Any, reason: str) -> str:
    """An operator's status change needs a reason, which the owner is told; the system's own ones
    (an abandoned signup removed) give theirs elsewhere. Raises ValidationError (key reason)."""
    reason = reason.strip()
    if operator is not None and not reason:
        raise ValidationError(
            {"reason": ["Give a reason: it is emailed to the agency's owner and kept in the audit logs."]}
        )
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationError({"reason": [f"Keep the reason to {REASON_MAX_LENGTH} characters."]})
    return reason


def _set_status(agency: Agency, status: str, operator: Any, reason: str) -> Agency:
    from apps.operators.models import OperatorAuditLog
    from apps.operators.tasks import operators_email_owners

    reason = agency_status_reason_check(operator, reason)
    action = STATUS_ACTIONS[AgencyStatus(status)]
    previous = agency.status
    now = timezone.now()
    agency.status = status
    agency.status_changed_at = now
    agency.deleted_at = now if status == AgencyStatus.DELETED else None
    agency.save(update_fields=["status", "status_changed_at", "deleted_at"])
    if previous != status:
        changes: dict[str, Any] = {"status": [previous, status]}
        if reason:
            changes["reason"] = reason
        agency_audit_operator_action(agency=agency, action=action, operator=operator, changes=changes)
        if operator is not None:
            entry = OperatorAuditLog.objects.create(
                operator=operator if getattr(operator, "pk", None) else None,
                operator_email=getattr(operator, "email", "") or "",
                action=action,
                agency_ref=agency.pk,
                agency_slug=agency.slug,
                agency_name=agency.name,
                reason=reason,
                changes={"status": [previous, status]},
            )
            entry_id = str(entry.pk)
            transaction.on_commit(lambda: _send_quietly(operators_email_owners, entry_id))
    return agency


def _send_quietly(actor: Any, *args: Any) -> None:
    try:
        actor.send(*args)
    except Exception:
        # The change stands and is in both logs; the operator can tell the owner by hand.
        logger.exception("Could not queue %s%r", actor.actor_name, args)


@transaction.atomic
def agency_suspend(*, agency: Agency, operator: Any = None, reason: str = "") -> Agency:
    """Its pages answer "suspended" and its posts stop publishing; nothing is removed.

    An operator must give a `reason` (ValidationError otherwise, nothing changed): it is emailed
    to the agency's owners and recorded in the operators' audit log and the agency's own."""
    return _set_status(agency, AgencyStatus.SUSPENDED, operator, reason)


@transaction.atomic
def agency_reactivate(*, agency: Agency, operator: Any = None, reason: str = "") -> Agency:
    """Active again: its jobs, skipped meanwhile, go out. A post that fell due while it was not
    active is published at once when it is at most PUBLISH_MISSED_WINDOW_SECONDS late; a later one
    is failed, saying why (nothing was sent to TikTok: a person retries or reschedules it).
    An operator gives a `reason`, as for `agency_suspend`."""
    from apps.publishing.services import posts_fail_missed

    previous = agency.status
    agency = _set_status(agency, AgencyStatus.ACTIVE, operator, reason)
    if previous != AgencyStatus.ACTIVE:
        window = settings.PUBLISH_MISSED_WINDOW_SECONDS
        hours = f"{window / 3600:g} hour" + ("" if window == 3600 else "s")
        label = AgencyStatus(previous).label.lower()
        with schema_context(agency.schema_name):
            missed = posts_fail_missed(
                late_by_seconds=window,
                code="missed_while_inactive",
                message=(
                    f"This post fell due while the agency was {label} and was more than {hours} late "
                    "when it was reactivated, so it was not published. Nothing was sent to TikTok: "
                    "retry it to publish it now, or reschedule it."
                ),
            )
        if missed:
            logger.info(
                "Agency %s reactivated: %d post(s) that missed their time failed", agency.slug, missed
            )
    return agency


@transaction.atomic
def agency_delete(*, agency: Agency, operator: Any = None, reason: str = "") -> Agency:
    """Mark deleted: its hosts answer 404 at once; the schema stays for the grace period. Its
    TikTok grants are revoked at TikTok by a worker job once this commits (suspending, which is
    reversible, keeps them). An operator gives a `reason`, as for `agency_suspend`."""
    was_deleted = agency.status == AgencyStatus.DELETED
    agency = _set_status(agency, AgencyStatus.DELETED, operator, reason)
    if not was_deleted and _has_tiktok_grants(agency):
        schema = agency.schema_name
        transaction.on_commit(lambda: _send_revoke(schema))
    return agency


def _has_tiktok_grants(agency: Agency) -> bool:
    from apps.accounts.models import TikTokAccount

    with schema_context(agency.schema_name):
        return TikTokAccount.all_objects.exclude(access_token="", refresh_token="").exists()


def _send_revoke(schema: str) -> None:
    from apps.accounts.tasks import accounts_revoke_for_deleted_agency
    from tenants.dramatiq import SCHEMA_OPTION

    try:
        message = accounts_revoke_for_deleted_agency.message()
        message.options[SCHEMA_OPTION] = schema
        accounts_revoke_for_deleted_agency.broker.enqueue(message)
    except Exception:
        # The deletion stands; the operator can delete again (or revoke by hand) once Redis is back.
        logger.exception("Could not queue the revocation of %s's TikTok tokens", schema)


def agency_purge(*, agency: Agency) -> None:
    """Drop a deleted agency's schema, its rows in the public schema and its row, for good.
    Refuses any other status."""
    if agency.status != AgencyStatus.DELETED:
        raise ValueError(f"Agency {agency.slug} is {agency.status}; only deleted agencies can be purged.")
    # Its media first: should that fail, the agency is still there to purge again.
    removed = media_storage().delete_agency(agency.schema_name)
    logger.info("Agency %s: %d media objects deleted", agency.slug, removed)
    # Its public rows (due jobs, domains, webhook routes, ...) in a transaction of their own, before
    # the schema goes: nothing that reads them (the dispatcher, webhooks) can then reach the dropped
    # schema, and the drop never waits on a dispatcher holding one of its job rows.
    with transaction.atomic():
        _lock_deleted(agency)
        _public_rows_delete(agency)
    # The drop locks each of the schema's tables in turn; a job still running for the agency (one
    # that started before it was deleted) may hold one and want another: PostgreSQL then ends one
    # side as a deadlock. Dropping again is safe, so the purge tries a few times before giving up.
    for attempt in range(1, PURGE_DROP_ATTEMPTS + 1):
        try:
            _schema_drop(agency)
            break
        except OperationalError as exc:
            if attempt == PURGE_DROP_ATTEMPTS or not isinstance(
                exc.__cause__, psycopg.errors.DeadlockDetected | psycopg.errors.LockNotAvailable
            ):
                raise
            logger.warning(
                "Purging %s met a running job (%s); trying again", agency.slug, type(exc.__cause__).__name__
            )
            time.sleep(0.5 * attempt)
    logger.info("Agency %s purged", agency.slug)


PURGE_DROP_ATTEMPTS = 5


def _schema_drop(agency: Agency) -> None:
    with transaction.atomic():
        _lock_deleted(agency)
        with connection.cursor() as cursor:
            # Deleting wrote to the schema (its audit log); when that was in this same transaction,
            # run its deferred checks now, or PostgreSQL refuses to drop tables with pending ones.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            # Never queue for long behind a job's transaction (others queue behind the drop).
            cursor.execute("SET LOCAL lock_timeout = '10s'")
            cursor.execute(f"DROP SCHEMA IF EXISTS {quote_ident(agency.schema_name)} CASCADE")
        # Whatever a job still running for it wrote meanwhile (a retry's due job, say).
        _public_rows_delete(agency)
        Agency.objects.filter(pk=agency.pk).delete()


def _lock_deleted(agency: Agency) -> None:
    """Lock the agency's row; refuse when it was reactivated meanwhile."""
    status = Agency.objects.select_for_update().filter(pk=agency.pk).values_list("status", flat=True).first()
    if status != AgencyStatus.DELETED:
        raise ValueError(f"Agency {agency.slug} is {status}; only deleted agencies can be purged.")


def _public_rows_delete(agency: Agency) -> None:
    """Every public-schema row of the agency: those that reference its row (domains, webhook routes,
    welcome tokens, and any table added later) and its due jobs, which name its schema."""
    with connection.cursor() as cursor:
        # Left behind, every dispatcher tick would reach the dropped schema.
        cursor.execute("DELETE FROM public.publishing_duejob WHERE schema_name = %s", [agency.schema_name])
    for field in Agency._meta.get_fields(include_hidden=True):
        manager = getattr(field.related_model, "_default_manager", None)
        if field.one_to_many and field.auto_created and manager is not None:
            manager.filter(**{field.field.name: agency.pk}).delete()
