"""System checks on the TikTok settings: the consent screen must ask for what posting needs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from apps.tiktok.scopes import KNOWN_SCOPES, missing_posting_scopes


@register()
def tiktok_scopes_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    scopes = list(settings.TIKTOK_SCOPES)
    errors = []
    unknown = [scope for scope in scopes if scope not in KNOWN_SCOPES]
    if unknown:
        errors.append(
            Error(
                f"TIKTOK_SCOPES names scopes TikTok does not have: {', '.join(unknown)}.",
                hint=f"Choose among {', '.join(KNOWN_SCOPES)}.",
                id="tiktok.E001",
            )
        )
    missing = missing_posting_scopes(scopes)
    if missing:
        errors.append(
            Error(
                f"TIKTOK_SCOPES lacks scopes posting needs: {', '.join(missing)}.",
                hint="Every account needs user.info.basic, video.publish and video.upload.",
                id="tiktok.E002",
            )
        )
    return errors
