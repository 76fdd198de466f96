"""Recovery codes: a django-otp device whose tokens are stored hashed and work once.

django-otp's own static device (otp_static) keeps its tokens in plain text, so a database
dump would hand them out; here only a SHA-256 of each code is kept (codes are 50 random bits,
so a fast hash is enough: there is nothing to guess a dictionary of), and using one is a
conditional UPDATE, so two requests cannot both spend it.
"""

from __future__ import annotations

import hashlib
import secrets
from base64 import b32encode

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django_otp.models import Device

RECOVERY_CODE_COUNT = 10


def recovery_code_normalize(value: str) -> str:
    return "".join(ch for ch in str(value).lower() if ch.isalnum())


def recovery_code_hash(value: str) -> str:
    return hashlib.sha256(recovery_code_normalize(value).encode()).hexdigest()


def recovery_code_new() -> str:
    """Ten characters in two groups, easy to read out: `k3f9q-2mzxa`."""
    raw = b32encode(secrets.token_bytes(10)).decode().lower()[:10]
    return f"{raw[:5]}-{raw[5:]}"


class RecoveryCodeDevice(Device):
    """A person's set of single-use recovery codes (one device per person)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The user that this device belongs to.",
    )

    class Meta:
        verbose_name = "recovery codes"

    def codes_left(self) -> int:
        return self.codes.filter(used_at__isnull=True).count()

    def verify_token(self, token: str) -> bool:
        digest = recovery_code_hash(token)
        with transaction.atomic():
            spent = self.codes.filter(code_hash=digest, used_at__isnull=True).update(used_at=timezone.now())
        return bool(spent)


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["device", "code_hash"], name="mfa_recoverycode_unique_per_device"
            ),
        ]

    def __str__(self) -> str:
        return f"Recovery code {self.pk}"
