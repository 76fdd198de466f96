"""A person's own profile: their name and time zone, and changing their email address.

A new address takes effect only once its owner opens the link we email to it (a signed token,
its own salt, valid EMAIL_VERIFICATION_LINK_HOURS, naming the person, a hash of the address it
replaces and the new one): an address nobody reads never becomes anyone's sign-in, and once the
change is made (or the address changed otherwise) the link does nothing more. Asking for the
change takes the current password."""

from __future__ import annotations

import hashlib
from typing import Any

from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from apps.audit.services import audit_record
from apps.users.models import User, email_normalize
from apps.web.email_verification import link_hours
from tenants.models import current_agency

_SALT = "postline.web.email-change"


class EmailChangeError(Exception):
    """The change cannot be made; the message says why."""


def profile_update(*, user: User, name: str, time_zone: str, request: Any = None) -> bool:
    """Save the person's name and time zone (every time on the site is then shown in it).
    Returns whether anything changed; a change is audited."""
    changes = {
        field: [getattr(user, field), value]
        for field, value in (("name", name.strip()), ("time_zone", time_zone))
        if getattr(user, field) != value
    }
    if not changes:
        return False
    with transaction.atomic():
        for field, (_old, new) in changes.items():
            setattr(user, field, new)
        user.save(update_fields=[*changes, "updated_at"])
        audit_record(action="profile.changed", actor=user, obj=user, request=request, changes=changes)
    return True


def _hash(email: str) -> str:
    return hashlib.sha256(email_normalize(email).encode()).hexdigest()[:24]


def _taken(email: str, user: User) -> bool:
    return User.all_objects.filter(email__iexact=email).exclude(pk=user.pk).exists()


def email_change_request(*, user: User, new_email: str, request: Any = None) -> None:
    """Email a confirmation link to `new_email` (the caller checked the current password). The
    address stays as it is until the link is opened."""
    new_email = email_normalize(new_email)
    if new_email == email_normalize(user.email):
        raise EmailChangeError("That is your address already.")
    if _taken(new_email, user):
        raise EmailChangeError("Someone in this agency already signs in with that address.")
    token = signing.dumps(
        {"u": str(user.pk), "o": _hash(user.email), "n": new_email}, salt=_SALT, compress=True
    )
    agency = current_agency()
    link = f"{agency.url.rstrip('/')}{reverse('email_change_confirm', kwargs={'token': token})}"
    audit_record(
        action="email.change_requested", actor=user, obj=user, request=request, changes={"email": new_email}
    )
    send_mail(
        subject=f"Confirm your new email address for {agency.name} on Postline",
        message=render_to_string(
            "web/email_change_email.txt",
            {"user": user, "agency": agency, "link": link, "hours": link_hours()},
        ),
        from_email=None,
        recipient_list=[new_email],
    )


def email_change_pending(*, user: User, raw: str) -> str:
    """The new address the link confirms for `user` (changing nothing); EmailChangeError if it
    cannot."""
    try:
        data = signing.loads(raw, salt=_SALT, max_age=link_hours() * 3600)
    except signing.SignatureExpired as exc:
        raise EmailChangeError(
            f"This link has expired: links work for {link_hours()} hours. Ask for a new one on your profile."
        ) from exc
    except signing.BadSignature as exc:
        raise EmailChangeError("This link is not valid.") from exc
    if not isinstance(data, dict) or data.get("u") != str(user.pk):
        raise EmailChangeError("This link is for someone else: sign in as them to use it.")
    if data.get("o") != _hash(user.email):
        raise EmailChangeError("Your address changed after this link was sent: it does nothing any more.")
    return str(data.get("n", ""))


def email_change_confirm(*, user: User, raw: str, request: Any = None) -> str:
    """Make the link's address `user`'s email; returns it."""
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        new_email = email_change_pending(user=locked, raw=raw)
        if _taken(new_email, locked):
            raise EmailChangeError("Someone in this agency signs in with that address now.")
        old = locked.email
        locked.email = new_email
        locked.save(update_fields=["email", "updated_at"])
        audit_record(
            action="email.changed",
            actor=locked,
            obj=locked,
            request=request,
            changes={"email": [old, new_email]},
        )
    user.email = new_email
    return new_email
