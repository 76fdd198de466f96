"""Public-schema tables for TikTok traffic that arrives before we know the agency."""

from __future__ import annotations

from django.db import models

from apps.common.models import TimestampedModel


class TikTokRoute(TimestampedModel):
    """Which agencies have connected a TikTok user, so webhooks (one URL for the whole app,
    keyed by `user_openid`) reach the right schemas. A creator may work with several agencies."""

    open_id = models.CharField(max_length=128)
    agency = models.ForeignKey("tenants.Agency", on_delete=models.CASCADE, related_name="tiktok_routes")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["open_id", "agency"], name="tiktok_route_unique")]
        indexes = [models.Index(fields=["open_id"], name="tiktok_route_open_id_idx")]

    def __str__(self) -> str:
        return f"{self.open_id} → {self.agency_id}"


class WebhookDelivery(TimestampedModel):
    """Every verified webhook body we received, once: TikTok may deliver the same event twice."""

    digest = models.CharField(max_length=64, unique=True, help_text="sha256 of the raw body")
    event = models.CharField(max_length=64)
    open_id = models.CharField(max_length=128, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    agencies = models.PositiveIntegerField(default=0, help_text="How many agencies it was routed to.")

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["-created_at"], name="tiktok_webhook_time_idx")]

    def __str__(self) -> str:
        return f"{self.event} for {self.open_id}"


class AppPostingLimit(TimestampedModel):
    """A limit TikTok put on Postline's whole app (`reached_active_user_cap`): every account of every
    agency is affected, so no post calls TikTok until `recheck_at`, when the next one asks again."""

    code = models.CharField(max_length=64, unique=True)
    since = models.DateTimeField()
    recheck_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.code} since {self.since:%Y-%m-%d %H:%M}"
