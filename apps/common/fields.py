"""Model fields of our own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models

from apps.common import crypto

if TYPE_CHECKING:
    _TextField = models.TextField[Any, Any]
else:
    _TextField = models.TextField


class EncryptedTextField(_TextField):
    """Text stored as Fernet ciphertext and read back as a `crypto.Secret`.

    Empty strings stay empty (no secret stored). A value that no configured key can
    decrypt raises `crypto.DecryptionError`: ciphertext is never handed out as if it
    were the secret.
    """

    description = "Encrypted text"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> crypto.Secret | None:
        if value is None:
            return None
        if value == "":
            return crypto.Secret("")
        return crypto.Secret(crypto.decrypt(value))

    def to_python(self, value: Any) -> crypto.Secret | None:
        if value is None or isinstance(value, crypto.Secret):
            return value
        return crypto.Secret(str(value))

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        plaintext = value.reveal() if isinstance(value, crypto.Secret) else str(value)
        if plaintext == "":
            return ""
        return crypto.encrypt(plaintext)

    def value_to_string(self, obj: models.Model) -> str:
        # Serialisation (dumpdata, fixtures) never writes the plaintext.
        return "********"
