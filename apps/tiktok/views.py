"""TikTok's webhook endpoint on the root domain."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.tiktok.webhooks import WebhookRejected, verify, webhook_apply

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    try:
        event = verify(request.body, request.headers.get("TikTok-Signature", ""))
    except WebhookRejected as exc:
        logger.warning("Webhook refused: %s", exc)
        return JsonResponse({"ok": False, "error": "invalid signature or body"}, status=400)
    try:
        applied = webhook_apply(event)
    except Exception:
        # Nothing of it was kept (apps.tiktok.webhooks): an error answer makes TikTok deliver it again.
        logger.exception("Webhook %s could not be applied; TikTok will deliver it again", event.event)
        return JsonResponse({"ok": False, "error": "not applied; deliver again"}, status=503)
    return JsonResponse({"ok": True, "duplicate": not applied})
