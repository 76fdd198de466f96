"""Confirming the owner's email address after self-service signup, and removing abandoned signups.

Until its owner confirms their address, an agency made by signup can neither connect TikTok
accounts nor publish (`Agency.unverified_refusal`, checked by the connect flow in apps.accounts
and by scheduling and publishing in apps.posts and apps.publishing), so an address nobody reads
cannot farm agencies that act on TikTok.

The link:
- made by a worker (`email_verification_send`, queued at signup and by "Send it again"), so the
  token exists only in the email, never in a queue message or a page;
- signed (django.core.signing, its own salt) over the agency, the owner and a hash of their
  address, and expires after EMAIL_VERIFICATION_LINK_HOURS;
- the newest only: it names the time it was made, which the agency row keeps
  (`email_verification_sent_at`), so every new link voids the earlier ones;
- single use: once the agency is confirmed no link does anything more;
- opening it (GET) only asks; the click (POST) confirms, so a mail scanner that follows links
  confirms nothing.

Agencies still unconfirmed UNVERIFIED_AGENCY_REMOVE_DAYS after signup are deleted and purged
(`unverified_agencies_sweep`, sent by the scheduler): they never connected or published
anything, and their address is free again for someone else. Every email says on which day that
happens; UNVERIFIED_AGENCY_WARNING_DAYS before it the owner gets a reminder with a new link, and
no agency is removed sooner than that after its last email (a link asked for at the last minute
postpones the removal).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import zoneinfo
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.audit.services import audit_record
from apps.users.models import Role, User, email_normalize
from tenants.models import Agency, AgencyStatus, current_agency
from tenants.services import agency_delete, agency_purge

logger = logging.getLogger(__name__)

_SALT = "postline.web.email-verification"


def link_hours() -> int:
    return int(settings.EMAIL_VERIFICATION_LINK_HOURS)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _stamp(moment: dt.datetime | None) -> int:
    """A link's moment in whole microseconds (what the database keeps of it, exactly)."""
    return (moment - _EPOCH) // dt.timedelta(microseconds=1) if moment is not None else 0


def removal_due(agency: Agency) -> dt.datetime:
    """When `agency`, if still unconfirmed, is removed: UNVERIFIED_AGENCY_REMOVE_DAYS after signup,
    and never sooner than UNVERIFIED_AGENCY_WARNING_DAYS after the last email we sent it."""
    due = agency.created_at + dt.timedelta(days=settings.UNVERIFIED_AGENCY_REMOVE_DAYS)
    if agency.email_verification_sent_at is not None:
        due = max(
            due,
            agency.email_verification_sent_at + dt.timedelta(days=settings.UNVERIFIED_AGENCY_WARNING_DAYS),
        )
    return due


def _reminder_due(agency: Agency) -> bool:
    """No email sent since the reminder's time (UNVERIFIED_AGENCY_WARNING_DAYS before removal by age)."""
    remind_at = agency.created_at + dt.timedelta(
        days=settings.UNVERIFIED_AGENCY_REMOVE_DAYS - settings.UNVERIFIED_AGENCY_WARNING_DAYS
    )
    sent = agency.email_verification_sent_at
    return sent is None or sent < remind_at


def _address_hash(email: str) -> str:
    return hashlib.sha256(email_normalize(email).encode()).hexdigest()[:24]


class VerificationError(Exception):
    """The link cannot confirm anything; `code` is one of unknown, foreign, expired, replaced,
    used (the agency is confirmed already: nothing left to do)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


# --- Sending the link (a worker) ---


def email_verification_send(*, user_id: Any, reminder: bool = False) -> bool:
    """Email a new confirmation link to the owner `user_id` of the current agency, voiding the
    earlier links (`reminder`: the one sent before the agency is removed). Sends nothing (False)
    once the agency is confirmed or when `user_id` is no longer an active owner. The email goes
    out before the new link is committed: should sending fail, the earlier link still works and
    the job is retried."""
    agency = current_agency()
    with transaction.atomic():
        current = Agency.objects.select_for_update().get(pk=agency.pk)
        if current.is_email_verified:
            return False
        owner = User.objects.filter(pk=user_id, is_active=True, role=Role.OWNER).first()
        if owner is None:
            return False
        current.email_verification_sent_at = timezone.now()
        current.save(update_fields=["email_verification_sent_at"])
        token = signing.dumps(
            {
                "a": current.pk,
                "u": str(owner.pk),
                "e": _address_hash(owner.email),
                "s": _stamp(current.email_verification_sent_at),
            },
            salt=_SALT,
            compress=True,
        )
        path = reverse("email_verification_confirm", urlconf=settings.ROOT_URLCONF, kwargs={"token": token})
        audit_record(
            action="agency.email_verification_sent",
            obj=current,
            changes={"to": owner.email, **({"reminder": True} if reminder else {})},
        )
        remove_on = removal_due(current).astimezone(zoneinfo.ZoneInfo(current.default_time_zone))
        subject = f"Confirm your email address for {current.name} on Postline"
        if reminder:
            subject = f"Reminder: {subject[0].lower()}{subject[1:]}, or it is removed on {remove_on:%-d %B}"
        send_mail(
            subject=subject,
            message=render_to_string(
                "web/email_verification_email.txt",
                {
                    "agency": current,
                    "owner": owner,
                    "link": f"{current.url.rstrip('/')}{path}",
                    "hours": link_hours(),
                    "remove_on": remove_on,
                    "reminder": reminder,
                },
            ),
            from_email=None,
            recipient_list=[owner.email],
        )
    logger.info("Sent the email confirmation link of agency %s", current.slug)
    return True


# --- Following the link (the agency's subdomain) ---


def _owner_for(*, agency: Agency, raw: str) -> User:
    try:
        data = signing.loads(raw, salt=_SALT, max_age=dt.timedelta(hours=link_hours()))
    except signing.SignatureExpired as exc:
        raise VerificationError(
            "expired", f"This confirmation link has expired: links work for {link_hours()} hours."
        ) from exc
    except signing.BadSignature as exc:
        raise VerificationError("unknown", "This confirmation link is not valid.") from exc
    if not isinstance(data, dict) or data.get("a") != agency.pk:
        raise VerificationError("foreign", "This confirmation link belongs to another agency.")
    if agency.is_email_verified:
        raise VerificationError("used", "This agency's email address is confirmed already.")
    if data.get("s") != _stamp(agency.email_verification_sent_at):
        raise VerificationError(
            "replaced", "A newer confirmation link was sent after this one: use the newest email."
        )
    owner = User.objects.filter(pk=data.get("u"), is_active=True, role=Role.OWNER).first()
    if owner is None or _address_hash(owner.email) != data.get("e"):
        raise VerificationError("unknown", "This confirmation link is not valid.")
    return owner


def email_verification_owner(*, agency: Agency, raw: str) -> User:
    """Whose address the link confirms, confirming nothing (the page that asks for the click).
    Runs in `agency`'s schema; raises VerificationError."""
    fresh = Agency.objects.get(pk=agency.pk)
    return _owner_for(agency=fresh, raw=raw)


def email_verification_confirm(*, agency: Agency, raw: str, request: Any = None) -> User:
    """Confirm the agency's owner address with the link's token: from now on it may connect
    accounts and publish. Runs in `agency`'s schema; raises VerificationError (nothing changes)."""
    with transaction.atomic():
        current = Agency.objects.select_for_update().get(pk=agency.pk)
        if current.status != AgencyStatus.ACTIVE:
            raise VerificationError("unknown", "This confirmation link is not valid.")
        owner = _owner_for(agency=current, raw=raw)
        current.email_verified_at = timezone.now()
        current.save(update_fields=["email_verified_at"])
        audit_record(
            action="agency.email_verified",
            actor=owner,
            obj=current,
            request=request,
            changes={"email": owner.email},
        )
    logger.info("Agency %s confirmed its owner's email address", current.slug)
    return owner


# --- Abandoned signups (the scheduler) ---


def unverified_agencies_sweep(*, now: dt.datetime | None = None) -> tuple[list[str], list[str]]:
    """Remind and remove the unconfirmed signups; returns the slugs (reminded, removed).

    An active agency still unconfirmed UNVERIFIED_AGENCY_WARNING_DAYS before its removal gets a
    reminder with a new link (to its first owner); one whose removal is due (`removal_due`)
    is deleted through `agency_delete` (audited in its log) and purged through `agency_purge`.
    One that fails is logged and left for the next run."""
    now = now or timezone.now()
    earliest = now - dt.timedelta(
        days=settings.UNVERIFIED_AGENCY_REMOVE_DAYS - settings.UNVERIFIED_AGENCY_WARNING_DAYS
    )
    candidates = list(
        Agency.objects.filter(
            status=AgencyStatus.ACTIVE, email_verified_at__isnull=True, created_at__lt=earliest
        ).exclude(schema_name="public")
    )
    reminded, removed = [], []
    for candidate in candidates:
        if removal_due(candidate) > now:
            if _reminder_due(candidate) and _remind(candidate):
                reminded.append(candidate.slug)
            continue
        if _remove(candidate, now):
            removed.append(candidate.slug)
    return reminded, removed


def _remind(agency: Agency) -> bool:
    """Email the agency's first owner the reminder, here (the sweep runs in a worker)."""
    try:
        with schema_context(agency.schema_name):
            owner = User.objects.filter(is_active=True, role=Role.OWNER).order_by("created_at").first()
            return owner is not None and email_verification_send(user_id=owner.pk, reminder=True)
    except Exception:
        logger.exception("Could not remind the unconfirmed agency %s; the next run tries again", agency.slug)
        return False


def _remove(candidate: Agency, now: dt.datetime) -> bool:
    try:
        with transaction.atomic():
            # Confirmed, emailed again or changed by an operator meanwhile: keep it.
            agency = (
                Agency.objects.select_for_update()
                .filter(pk=candidate.pk, status=AgencyStatus.ACTIVE, email_verified_at__isnull=True)
                .first()
            )
            if agency is None or removal_due(agency) > now:
                return False
            agency_delete(agency=agency)
        agency_purge(agency=agency)
    except Exception:
        logger.exception(
            "Could not remove the unconfirmed agency %s; the next run tries again", candidate.slug
        )
        return False
    # The agency's own audit log went with its schema: this line is the lasting record.
    logger.warning(
        "Removed agency %s (signed up %s): its owner never confirmed their email address",
        agency.slug,
        agency.created_at.isoformat(),
    )
    return True
