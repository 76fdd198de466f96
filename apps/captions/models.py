"""Caption templates and hashtag groups, for the whole agency or for one of its clients (a
client is what accounts carry as `client_label`). The composer inserts them at the cursor."""

from __future__ import annotations

from django.db import models

from apps.common.models import AuthoredModel


class SnippetKind(models.TextChoices):
    TEMPLATE = "template", "Caption template"
    HASHTAGS = "hashtags", "Hashtag group"


class CaptionSnippet(AuthoredModel):
    kind = models.CharField(max_length=16, choices=SnippetKind.choices)
    name = models.CharField(max_length=100)
    text = models.TextField()
    # "": the whole agency; otherwise the client whose accounts offer it.
    client_label = models.CharField("client", max_length=128, blank=True)

    class Meta:
        ordering = ["kind", "client_label", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "client_label", "name"], name="captions_snippet_name_unique_per_client"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=SnippetKind.values), name="captions_snippet_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def scope(self) -> str:
        return self.client_label or "Whole agency"
