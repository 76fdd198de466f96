"""`{% post_settings post %}`: what a post asks TikTok for besides its caption and video, as rows of
a `<dl class="facts">`: who can see it, what viewers may do, the commercial disclosure, the
AI-generated label and how it is sent. TikTok's inbox takes only the video, so for an inbox post
only how it is sent is shown.

The approvals queue and the client review page show these facts for every post they list; as a
template include, with a choice lookup per field, they were a tenth of the queue's time. Every
value is escaped."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.posts.models import PrivacyLevel, PublishMode

register = template.Library()

_PRIVACY = dict(PrivacyLevel.choices)
_MODES = dict(PublishMode.choices)
_INBOX_CAPTION = "Chosen by the creator in TikTok when they post it: the inbox takes only the video."


def _allowed(value: bool) -> str:
    return "Allowed" if value else "Not allowed"


def _commercial(post: Any) -> str:
    if not (post.commercial_disclosure and (post.brand_organic or post.brand_content)):
        return "None disclosed"
    kinds = []
    if post.brand_organic:
        kinds.append("Your brand (TikTok labels it “Promotional content”)")
    if post.brand_content:
        kinds.append("Branded content (TikTok labels it “Paid partnership”)")
    return "; ".join(kinds)


@register.simple_tag
def post_settings(post: Any) -> SafeString:
    mode = _MODES.get(post.mode, post.mode)
    if post.mode == PublishMode.INBOX:
        return format_html(
            "<dt>Sent as</dt><dd>{}</dd>\n<dt>Caption and settings</dt><dd>{}</dd>", mode, _INBOX_CAPTION
        )
    return format_html(
        "<dt>Who can see it</dt><dd>{}</dd>\n"
        "<dt>Comments</dt><dd>{}</dd>\n"
        "<dt>Duet</dt><dd>{}</dd>\n"
        "<dt>Stitch</dt><dd>{}</dd>\n"
        "<dt>Commercial content</dt>\n"
        "<dd>{}</dd>\n"
        "<dt>AI-generated</dt><dd>{}</dd>\n"
        "<dt>Sent as</dt><dd>{}</dd>",
        _PRIVACY.get(post.privacy_level, post.privacy_level) or "Not chosen yet",
        _allowed(post.allow_comment),
        _allowed(post.allow_duet),
        _allowed(post.allow_stitch),
        _commercial(post),
        "Yes: TikTok labels it as AI-generated" if post.is_aigc else "No",
        mode,
    )
