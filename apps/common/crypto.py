"""Encryption of secrets at rest with rotatable keys (cryptography's MultiFernet).

`FIELD_ENCRYPTION_KEYS` lists Fernet keys: the first encrypts, every one decrypts. To
rotate, put a new key first, run `manage.py rotate_encryption_keys`, then drop the old.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(RuntimeError):
    """Stored ciphertext that none of the configured keys can open."""


class Secret:
    """A decrypted secret that will not print itself.

    repr/str show a mask, so a token cannot leak through logs, tracebacks, the debug
    error page or templates; code that must send it calls `reveal()`.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._value)


@lru_cache(maxsize=8)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: no key to encrypt or decrypt secrets.")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes; make one with Fernet.generate_key())."
        ) from exc


def current_cipher() -> MultiFernet:
    return _multifernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return current_cipher().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return current_cipher().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError(
            "A stored secret cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS "
            "(was the key that encrypted it removed?)."
        ) from exc


@lru_cache(maxsize=8)
def _fernets(keys: tuple[str, ...]) -> tuple[Fernet, ...]:
    _multifernet(keys)  # the same checks, the same message
    return tuple(Fernet(key.encode()) for key in keys)


def key_index(ciphertext: str) -> int | None:
    """Which key of FIELD_ENCRYPTION_KEYS opens this value (0: the first), or None if none does."""
    for index, fernet in enumerate(_fernets(tuple(settings.FIELD_ENCRYPTION_KEYS))):
        try:
            fernet.decrypt(ciphertext.encode())
        except InvalidToken:
            continue
        return index
    return None


def rotate(ciphertext: str) -> str:
    """Re-encrypt with the first key; fails loudly when no key opens the value."""
    try:
        return current_cipher().rotate(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError(
            "A stored secret cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS."
        ) from exc
