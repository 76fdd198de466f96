"""`{% review_forms post next review_form %}`: approve and reject a post waiting for approval.

`next` is where the decision comes back to; `review_form` a refused rejection's state
(apps.posts.views.ReviewFormState) or None: for its post, the comment box shows what was typed
and why it was refused, and takes the focus (which scrolls the page to it). The approvals queue
writes these forms for every post of its page; as a template include they were a fifth of the
page's time. Every value is escaped.

`{% review_items posts next review_form %}`: the queue's items, each post with its media,
caption, settings and these forms, with the markup the template's loop had (twenty posts a page,
each a few dozen lookups through the template engine). Times are in the current time zone."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

from django import template
from django.template.defaultfilters import linebreaksbr
from django.template.defaulttags import CsrfTokenNode
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from apps.common.templatetags.days import day_and_time
from apps.common.templatetags.links import id_urls_for, row_links
from apps.posts.templatetags.post_settings import post_settings

register = template.Library()


@register.simple_tag(takes_context=True)
def review_forms(context: template.Context, post: Any, next_url: str, review_form: Any = None) -> SafeString:
    approve, reject = id_urls_for(context, "posts:approve"), id_urls_for(context, "posts:reject")
    if approve is None or reject is None:
        return SafeString("")
    csrf = CsrfTokenNode().render(context)
    refused = review_form is not None and review_form.post_id == post.pk
    return format_html(
        '<div class="review-forms" id="review-{pk}">\n'
        '  <form method="post" action="{approve}">{csrf}\n'
        '    <input type="hidden" name="next" value="{next}">\n'
        '    <input type="hidden" name="seen" value="{seen}">\n'
        '    <button type="submit" class="primary inline">Approve</button>\n'
        "  </form>\n"
        '  <form method="post" action="{reject}" novalidate>{csrf}\n'
        '    <input type="hidden" name="next" value="{next}">\n'
        '    <div class="field">\n'
        '      <label for="comment-{pk}">What should change?</label>\n'
        '      <textarea id="comment-{pk}" name="comment" rows="2" maxlength="1000" '
        'aria-describedby="comment-error-{pk}"{invalid}>{comment}</textarea>\n'
        '      <p class="field-error" id="comment-error-{pk}"{hidden}>{error}</p>\n'
        "    </div>\n"
        '    <button type="submit" class="secondary">Reject with this comment</button>\n'
        "  </form>\n"
        "</div>",
        pk=post.pk,
        approve=approve(post.pk),
        reject=reject(post.pk),
        csrf=csrf,
        next=next_url,
        seen=post.updated_at.isoformat(),
        invalid=SafeString(' aria-invalid="true" autofocus') if refused else "",
        comment=review_form.comment if refused else "",
        hidden="" if refused else SafeString(" hidden"),
        error=review_form.error if refused else "",
    )


@register.simple_tag(takes_context=True)
def review_items(
    context: template.Context, posts: Iterable[Any], next_url: str, review_form: Any = None
) -> SafeString:
    detail, media = row_links(context, "posts:detail"), row_links(context, "posts:media_file")
    items = []
    for post in posts:
        pk = post.pk
        author = post.created_by.get_full_name() if post.created_by else ""
        if post.media_type == "photo":
            photos = "".join(
                f'<li><img src="{media(photo.pk)}" alt="Photo {index}'
                f'{" (cover)" if index - 1 == post.photo_cover_index else ""}" width="72" height="96"></li>'
                for index, photo in enumerate(post.photo_list, 1)
            )
            shown = f'<ol class="review-photos" aria-label="The post\'s photos, in order">{photos}</ol>'
        else:
            video = post.videos[0] if post.videos else None
            shown = (
                f'\n          <video class="review-video" controls preload="metadata" playsinline '
                f'src="{media(video.pk)}" aria-label="The post\'s video"></video>\n          '
                if video
                else ""
            )
        kind = (
            f'<p><span class="kind-badge">{escape(label)}</span></p>' if (label := post.photos_label) else ""
        )
        caption = linebreaksbr(post.caption) or "(no caption)"
        description = (
            f'<p class="review-caption">{linebreaksbr(post.description)}</p>' if post.description else ""
        )
        items.append(
            f'    <li class="review-item" id="post-{pk}">\n'
            f'      <article aria-labelledby="review-title-{pk}">\n'
            f'        <h2 id="review-title-{pk}" class="review-title">\n'
            f'          <a href="{detail(pk)}">{escape(str(post.account))}</a>,\n'
            f'          <time datetime="{day_and_time(post.scheduled_at, "c")}">'
            f"{escape(day_and_time(post.scheduled_at, 'D j M Y'))}</time>\n"
            "        </h2>\n"
            f'        <p class="muted">By {escape(author or "someone")}</p>\n'
            '        <div class="review-body">\n'
            f"          {shown}\n"
            '          <div class="review-details">\n'
            f"            {kind}\n"
            f'            <p class="review-caption">{caption}</p>\n'
            f"            {description}\n"
            '            <dl class="facts review-facts" aria-label="What goes to TikTok with it">\n'
            f"              {post_settings(post)}\n"
            "            </dl>\n"
            "          </div>\n"
            "        </div>\n"
            f"        {review_forms(context, post, next_url, review_form)}\n"
            "      </article>\n"
            "    </li>\n"
        )
    return mark_safe("".join(items))  # noqa: S308 (every value escaped)
