"""Changing the agency's brand: its colour, and its logo (an image in the agency's media storage)."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from PIL import Image, UnidentifiedImageError

from apps.audit.services import audit_record
from apps.media.storage import media_storage
from tenants.models import Agency, validate_brand_colour

LOGO_MAX_BYTES = 1_000_000
LOGO_MAX_SIDE = 4000
# Raster images only: an SVG can carry script.
LOGO_TYPES = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"), "WEBP": ("image/webp", "webp")}


def logo_check(upload: Any) -> tuple[bytes, str, str]:
    """The logo's bytes, content type and file extension, read from the file's own content
    (whatever it claims to be). Raises ValidationError (key logo) for anything else."""
    if upload.size > LOGO_MAX_BYTES:
        raise ValidationError({"logo": [f"Keep the logo under {LOGO_MAX_BYTES // 1_000_000} MB."]})
    data = upload.read(LOGO_MAX_BYTES + 1)
    if len(data) > LOGO_MAX_BYTES:
        raise ValidationError({"logo": [f"Keep the logo under {LOGO_MAX_BYTES // 1_000_000} MB."]})
    refusal = ValidationError({"logo": ["The logo must be a PNG, JPEG or WebP image."]})
    try:
        with Image.open(ContentFile(data)) as image:
            kind = image.format or ""
            width, height = image.size
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise refusal from None
    if kind not in LOGO_TYPES:
        raise refusal
    if max(width, height) > LOGO_MAX_SIDE:
        raise ValidationError({"logo": [f"Keep the logo within {LOGO_MAX_SIDE} by {LOGO_MAX_SIDE} pixels."]})
    content_type, extension = LOGO_TYPES[kind]
    return data, content_type, extension


def brand_set(
    *,
    agency: Agency,
    colour: str,
    logo: Any = None,
    remove_logo: bool = False,
    by: Any = None,
    request: Any = None,
) -> Agency:
    """Set the agency's brand colour ("" for none) and, if given, a new logo (or remove it).

    Raises ValidationError with per-field messages (colour, logo) and changes nothing then.
    The new logo is stored as brand/<uuid>.<ext> in the agency's media storage; the one it
    replaces is deleted once the change is committed. Audited as "settings.changed"."""
    colour = colour.strip().lower()
    if colour and not colour.startswith("#"):
        colour = f"#{colour}"
    errors: dict[str, list[str]] = {}
    try:
        validate_brand_colour(colour)
    except ValidationError as exc:
        errors["colour"] = exc.messages
    checked: tuple[bytes, str, str] | None = None
    if logo is not None:
        try:
            checked = logo_check(logo)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    storage = media_storage()
    new_name = ""
    if checked is not None:
        data, _type, extension = checked
        new_name = storage.save(  # type: ignore[attr-defined]
            f"brand/{uuid.uuid4().hex}.{extension}", ContentFile(data)
        )
    try:
        with transaction.atomic():
            current = Agency.objects.select_for_update().get(pk=agency.pk)
            old_logo = current.brand_logo
            changes: dict[str, Any] = {}
            if current.brand_colour != colour:
                changes["brand_colour"] = {"old": current.brand_colour, "new": colour}
                current.brand_colour = colour
            if new_name:
                current.brand_logo, current.brand_logo_type = new_name, checked[1] if checked else ""
                changes["brand_logo"] = {"old": bool(old_logo), "new": True}
            elif remove_logo and old_logo:
                current.brand_logo, current.brand_logo_type = "", ""
                changes["brand_logo"] = {"old": True, "new": False}
            if not changes:
                return current
            current.save(update_fields=["brand_colour", "brand_logo", "brand_logo_type"])
            audit_record(action="settings.changed", actor=by, obj=current, request=request, changes=changes)
            if old_logo and old_logo != current.brand_logo:
                transaction.on_commit(lambda: storage.delete(old_logo))
    except BaseException:
        if new_name:
            storage.delete(new_name)
        raise
    return current
