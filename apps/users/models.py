"""People: each agency's users live in its own schema; operators in the public one."""

from __future__ import annotations

import unicodedata
import zoneinfo
from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower

from apps.common.models import SoftDeleteModel, SoftDeleteQuerySet


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a known time zone (use an IANA name such as Europe/Paris).")


def email_normalize(value: str | None) -> str:
    """An address as signing in compares it: Unicode NFKC (what Django's sign-in form applies),
    surrounding spaces dropped, lowercase (what the unique constraint on Lower(email) compares).
    The lockout and the throttles key on this too, so variants of one address share a count."""
    return unicodedata.normalize("NFKC", str(value or "")).strip().lower()


# The domain of API keys' service members (apps.api): reserved (RFC 2606), so no mail reaches it.
SERVICE_DOMAIN = "api-keys.invalid"


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MANAGER = "manager", "Manager"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"
    CLIENT = "client", "Client reviewer"


class UserManager(BaseUserManager.from_queryset(SoftDeleteQuerySet)):  # type: ignore[misc]
    """Hides deactivated (soft-deleted) users and logs people in by email, any case."""

    use_in_migrations = True

    def get_queryset(self) -> SoftDeleteQuerySet:
        return super().get_queryset().filter(deleted_at__isnull=True)

    def get_by_natural_key(self, username: str | None) -> User:
        return self.alias(email_lower=Lower("email")).get(email_lower=email_normalize(username))

    def _create(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=email_normalize(self.normalize_email(email)), **extra)
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        extra.setdefault("role", Role.OWNER)
        return self._create(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin, SoftDeleteModel):
    email = models.EmailField("email address", max_length=254)
    name = models.CharField(max_length=150, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(
        default=False,
        help_text="May sign in to this site's admin (agency admins; operators on the root domain).",
    )
    last_login_ip = models.GenericIPAddressField(null=True, blank=True)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="users_user_email_ci_unique"),
            models.CheckConstraint(condition=~models.Q(email=""), name="users_user_email_not_empty"),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="users_user_role_valid"),
        ]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return self.name.split(" ")[0] if self.name else self.email

    @property
    def is_service(self) -> bool:
        """An API key's member: it never signs in, is never invited and never owns the agency."""
        return self.email.endswith(f"@{SERVICE_DOMAIN}")

    @property
    def is_agency_admin(self) -> bool:
        return self.role in {Role.OWNER, Role.ADMIN}

    def delete(
        self, using: Any = None, keep_parents: bool = False, *, by: Any = None
    ) -> tuple[int, dict[str, int]]:
        """Deactivate: the row and its history stay; the person can no longer sign in."""
        self.is_active = False
        self.save(update_fields=["is_active", "updated_at"])
        return super().delete(using, keep_parents, by=by)

    def restore(self, *, by: Any = None) -> None:
        self.is_active = True
        self.save(update_fields=["is_active", "updated_at"])
        super().restore(by=by)
