"""Comments on posts: the team's internal thread and the thread the client sees on the review page.

A comment is written by a person of the agency (`created_by`) or by a client through a review
link (`link`, with the name they typed and the link's client). Client-visible comments are the
only ones a client ever reads; internal ones never leave the agency's pages.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from django.conf import settings
from django.db import models
from django.db.models import Prefetch, Q
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual

from apps.comments.mentions import split_mentions
from apps.common.models import SoftDeleteManager, SoftDeleteModel, SoftDeleteQuerySet
from apps.users.models import Role

BODY_MAX = 2000


class Visibility(models.TextChoices):
    INTERNAL = "internal", "Internal (the team only)"
    CLIENT = "client", "Shared with the client"


class CommentQuerySet(SoftDeleteQuerySet):
    def thread(self, post: Any, visibility: str) -> Self:
        """One thread of `post` (or of each of a list of post ids), oldest first, with its
        authors and mentions in one more query."""
        posts = {"post_id__in": post} if isinstance(post, list) else {"post": post}
        return (
            self.filter(visibility=visibility, **posts)
            .select_related("created_by")
            .prefetch_related(Prefetch("mentions", queryset=CommentMention.objects.select_related("user")))
            .order_by("created_at", "id")
        )


class CommentManager(SoftDeleteManager.from_queryset(CommentQuerySet)):  # type: ignore[misc]
    pass


class Comment(SoftDeleteModel):
    """One comment on one post. Deleting it (its author, or an owner or admin) hides it."""

    post = models.ForeignKey("posts.Post", on_delete=models.CASCADE, related_name="+")
    visibility = models.CharField(max_length=8, choices=Visibility.choices)
    body = models.TextField(max_length=BODY_MAX)
    # A client writing through a review link: which link, the name they gave, the link's client.
    link = models.ForeignKey(
        "reviews.ClientLink", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    author_name = models.CharField(max_length=200, blank=True)
    client_label = models.CharField(max_length=128, blank=True)

    objects: ClassVar[Any] = CommentManager()
    all_objects: ClassVar[Any] = models.Manager.from_queryset(CommentQuerySet)()

    class Meta:
        ordering = ["created_at", "id"]
        base_manager_name = "all_objects"
        constraints = [
            models.CheckConstraint(
                condition=Q(visibility__in=Visibility.values), name="comments_visibility_valid"
            ),
            models.CheckConstraint(condition=~Q(body__regex=r"^\s*$"), name="comments_body_not_blank"),
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("body"), BODY_MAX), name="comments_body_not_too_long"
            ),
            models.CheckConstraint(
                condition=Q(link__isnull=True) | Q(created_by__isnull=True), name="comments_one_author"
            ),
            models.CheckConstraint(
                condition=Q(link__isnull=True) | (Q(visibility="client") & ~Q(author_name="")),
                name="comments_link_comment_is_client_and_named",
            ),
        ]
        indexes = [
            models.Index(
                fields=["post", "visibility", "created_at"],
                name="comments_thread_idx",
                condition=Q(deleted_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.author_label}: {self.body[:40]}"

    @property
    def by_client(self) -> bool:
        return self.link_id is not None or (
            self.created_by is not None and self.created_by.role == Role.CLIENT
        )

    @property
    def author_label(self) -> str:
        """Who wrote it, as threads show it."""
        if self.link_id is not None:
            return f"{self.author_name} ({self.client_label})" if self.client_label else self.author_name
        if self.created_by is None:
            return "Someone who left"
        return self.created_by.get_full_name()

    def segments(self) -> list[tuple[str, bool]]:
        """The body cut into (text, is_mention) pieces, for the template to escape and highlight."""
        handles = {m.handle.lower() for m in self.mentions.all()}
        if not handles:
            return [(self.body, False)]
        return split_mentions(self.body, handles)


class CommentMention(models.Model):
    """A person of the agency named in a comment (`@handle`) who may see its post."""

    id = models.BigAutoField(primary_key=True)
    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="mentions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    handle = models.CharField(max_length=254)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["comment", "user"], name="comments_mention_once"),
        ]

    def __str__(self) -> str:
        return f"@{self.handle}"
