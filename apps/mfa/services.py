"""Two-step sign-in (django-otp): who must use it, enrolling an authenticator app (TOTP, with a
QR code), recovery codes, and checking a code.

Who must: operators (staff users of the root domain), and in an agency whoever its owner's
policy names (owners and admins, or everyone). Anyone else may turn it on.

A person with a confirmed authenticator signs in with their password, then a code: until the
code is accepted the session can reach nothing but the code page (apps.mfa.middleware).
A code is a 6-digit TOTP from the app (each works once: django-otp remembers the last time step
used) or a recovery code (apps.mfa.models: stored hashed, works once). Wrong codes count in the
sign-in lockout like wrong passwords (apps.users.lockout): one mechanism for both.
"""

from __future__ import annotations

import io
import time
from typing import Any

import qrcode
import qrcode.image.svg
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django_otp import match_token
from django_otp.models import Device
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from apps.audit.services import audit_record
from apps.mfa.models import (
    RECOVERY_CODE_COUNT,
    RecoveryCode,
    RecoveryCodeDevice,
    recovery_code_hash,
    recovery_code_new,
)
from apps.users.models import User
from tenants.db import connection
from tenants.models import Agency, MfaPolicy

TOTP_NAME = "Authenticator app"


def mfa_required(*, user: Any, agency: Agency | None) -> bool:
    """Whether `user` must use two-step sign-in where `agency` (None or public: the root domain) is."""
    if agency is None or agency.is_public:
        return bool(user.is_staff)
    if agency.mfa_policy == MfaPolicy.EVERYONE:
        return True
    return agency.mfa_policy == MfaPolicy.ADMINS and bool(user.is_agency_admin)


def mfa_enabled(*, user: Any) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def recovery_codes_left(*, user: Any) -> int:
    return RecoveryCode.objects.filter(device__user=user, used_at__isnull=True).count()


def _audit(action: str, *, user: Any, request: HttpRequest | None, **changes: Any) -> None:
    # The root domain (operators) has no audit log; each agency has its own.
    if connection.schema_name != "public":
        audit_record(action=action, actor=user, obj=user, request=request, changes=changes or None)


def totp_key_new() -> str:
    """A new authenticator secret (hex). Kept in the session while it is being set up, so that
    opening the page writes nothing; it becomes a device only once a code confirms it."""
    return random_hex(20)


def totp_device_unsaved(*, user: User, key: str) -> TOTPDevice:
    return TOTPDevice(user=user, name=TOTP_NAME, key=key, confirmed=False)


def totp_qr_svg(*, device: TOTPDevice) -> bytes:
    """The device's otpauth:// address as an SVG QR code (paths only: no script, no style)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue()


def totp_secret_for_typing(*, device: TOTPDevice) -> str:
    """The secret in base32, in groups of four, for apps that cannot scan."""
    secret = device.config_url.split("secret=", 1)[1].split("&", 1)[0]
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def recovery_codes_issue(*, user: User, request: HttpRequest | None = None) -> list[str]:
    """New recovery codes for `user`, replacing any earlier ones; returned once, stored hashed."""
    codes = [recovery_code_new() for _ in range(RECOVERY_CODE_COUNT)]
    with transaction.atomic():
        device, _ = RecoveryCodeDevice.objects.get_or_create(user=user, defaults={"name": "Recovery codes"})
        device.codes.all().delete()
        RecoveryCode.objects.bulk_create(
            RecoveryCode(device=device, code_hash=recovery_code_hash(c)) for c in codes
        )
    _audit("mfa.recovery_codes_issued", user=user, request=request)
    return codes


def totp_confirm(*, user: User, key: str, token: str, request: HttpRequest | None = None) -> list[str]:
    """Turn on the authenticator whose secret is `key` once it gives a right code; returns new
    recovery codes. Raises ValidationError (key code) when the code is wrong, changing nothing."""
    token = "".join(str(token).split())
    device = TOTPDevice(user=user, name=TOTP_NAME, key=key, confirmed=True)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    if not (token.isdigit() and len(token) == device.digits and totp.verify(int(token), device.tolerance)):
        raise ValidationError(
            {"code": "That code is not the one your app shows now. Check the app and your phone's clock."}
        )
    device.last_t = totp.t()  # the code that confirmed it cannot sign anyone in afterwards
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        device.save()
    _audit("mfa.enabled", user=user, request=request)
    return recovery_codes_issue(user=user, request=request)


def mfa_disable(*, user: User, agency: Agency | None, request: HttpRequest | None = None) -> None:
    """Turn two-step sign-in off for `user`. Raises ValidationError when they must keep it."""
    if mfa_required(user=user, agency=agency):
        if agency is None or agency.is_public:
            raise ValidationError("Operators must keep two-step sign-in on.")
        raise ValidationError(f"{agency.name} requires two-step sign-in for you, so it stays on.")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        RecoveryCodeDevice.objects.filter(user=user).delete()
    _audit("mfa.disabled", user=user, request=request)


def code_match(*, user: User, token: str) -> Device | None:
    """The device that accepts `token` (a TOTP code or a recovery code), spending it; None if none does."""
    token = str(token).strip()
    if not token or len(token) > 32:
        return None
    return match_token(user, token)
