"""API keys, and the answers kept for safe retries (Idempotency-Key)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.common.models import TimestampedModel


class ApiKey(TimestampedModel):
    """A key a program signs its API requests with.

    The key acts as its `member`, a service member of the team made for it alone: what it may
    do on each TikTok account is that member's per-account permissions, through the same gates
    as the pages. Only a SHA-256 of the key is stored; `prefix` is the part shown to people."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    member = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_key", editable=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: the key does not expire.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class IdempotentAnswer(models.Model):
    """The first answer to a POST sent with an Idempotency-Key, replayed for 24 hours to the same
    key and body; `request_hash` tells a replay from a different request under the same key."""

    id = models.BigAutoField(primary_key=True)
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True, help_text="Empty while the first request runs.")
    body = models.BinaryField(default=b"")
    content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="api_idempotent_answer_unique")
        ]
        indexes = [models.Index(fields=["created_at"], name="api_idempotent_answer_age_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status or 'running'})"


class UploadState(models.TextChoices):
    RECEIVING = "receiving", "Receiving"
    COMPLETE = "complete", "Complete"
    FAILED = "failed", "Failed"


class MediaUpload(TimestampedModel):
    """A video sent through the API in chunks (apps.api.uploads): a multipart upload in storage
    that grows part by part, across as many requests as the client needs, until its last byte
    arrives; the video is then checked like the composer's and becomes a PostMedia.

    Only its `created_by` (a key's member) sees it; `account`, when given, must stay one the key
    may draft for. Every part but the last is `part_bytes` long, so part N starts at
    (N - 1) * part_bytes and `etags[N - 1]` is its ETag."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", editable=False
    )
    account = models.ForeignKey(
        "accounts.TikTokAccount", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    filename = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    offset = models.PositiveBigIntegerField(default=0)
    part_bytes = models.PositiveIntegerField()
    state = models.CharField(max_length=12, choices=UploadState.choices, default=UploadState.RECEIVING)
    error = models.TextField(blank=True)
    # Set by the first part: the object's name (from the file's first bytes) and the storage's id
    # of its multipart upload.
    storage_name = models.CharField(max_length=255, blank=True)
    storage_upload_id = models.CharField(max_length=1024, blank=True)
    etags = models.JSONField(default=list, blank=True)
    # A request sending a chunk holds this until it is done (renewed at each part): another one
    # meanwhile is refused rather than interleaved; a crashed one's claim runs out.
    receiving_until = models.DateTimeField(null=True, blank=True)
    media = models.ForeignKey(
        "posts.PostMedia", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(offset__lte=models.F("size")), name="api_media_upload_offset_in_file"
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=UploadState.values), name="api_media_upload_state_valid"
            ),
        ]
        indexes = [models.Index(fields=["state", "created_at"], name="api_media_upload_age_idx")]

    def __str__(self) -> str:
        return f"{self.filename or self.pk} ({self.offset}/{self.size})"
