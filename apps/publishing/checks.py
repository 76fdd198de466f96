"""What a post must still be right before its init: the approval it went out under.

An approval (a reviewer's, a client's) is of one version of the post: its account, every
TikTok field and its files' checksums (apps.posts.selectors.post_content_hash). The worker
asks `publish_refusal` before it calls TikTok and fails the post, sending nothing, when the
post is no longer what was approved. Apps above this floor (apps.reviews) register their own
checks at start-up.
"""

from __future__ import annotations

from collections.abc import Callable

from apps.posts.models import Post, ReviewOutcome
from apps.posts.selectors import approval_is_current

PublishCheck = Callable[[Post], str]
_checks: list[PublishCheck] = []

APPROVAL_CHANGED = (
    "This post changed after it was approved (its caption, media or settings are not what the "
    "reviewer saw), so nothing was sent to TikTok. Send it for approval again."
)


def publish_check_register(check: PublishCheck) -> None:
    """Add a check: it returns why the post must not go out, or ""."""
    if check not in _checks:
        _checks.append(check)


def publish_refusal(post: Post) -> str:
    """Why `post` must not be sent to TikTok as it is now, or "" when it may."""
    if post.review_outcome == ReviewOutcome.APPROVED and not approval_is_current(post):
        return APPROVAL_CHANGED
    for check in _checks:
        if refusal := check(post):
            return refusal
    return ""
