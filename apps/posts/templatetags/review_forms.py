"""`{% review_forms post next review_form %}`: approve and reject a post waiting for approval.

`next` is where the decision comes back to; `review_form` a refused rejection's state
(apps.posts.views.ReviewFormState) or None: for its post, the comment box shows what was typed
and why it was refused, and takes the focus (which scrolls the page to it). The approvals queue
writes these forms for every post of its page; as a template include they were a fifth of the
page's time. Every value is escaped."""

from __future__ import annotations

from typing import Any

from django import template
from django.template.defaulttags import CsrfTokenNode
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.common.templatetags.links import id_urls_for

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
