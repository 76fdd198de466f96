"""The links page's forms and the review page's decision form."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.posts.models import Post
from apps.posts.services import REVIEW_COMMENT_MAX
from apps.reviews.models import Decision, LinkKind
from apps.reviews.services import LINK_DAYS, REVIEWER_NAME_MAX


class PostChoice(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Post) -> str:
        when = f"{obj.scheduled_at:%d %b %Y %H:%M} UTC" if obj.scheduled_at else "no time"
        return f"{obj.account}, {when}: {obj} ({obj.get_status_display().lower()})"


class LinkForm(forms.Form):
    recipient = forms.CharField(
        label="Sent to", max_length=200, required=False, help_text="Who you send it to (for this list only)."
    )
    days = forms.IntegerField(label="Opens for (days)", min_value=1)
    posts = PostChoice(
        queryset=Post.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Posts to review",
    )

    def __init__(self, *args: Any, kind: str, posts: Any = None, **kwargs: Any) -> None:
        default, longest = LINK_DAYS[LinkKind(kind)]
        kwargs.setdefault("prefix", kind)  # both forms share the page
        kwargs["initial"] = {"days": default}
        super().__init__(*args, **kwargs)
        self.fields["days"].widget.attrs.update({"min": 1, "max": longest})
        self.fields["days"].help_text = f"At most {longest}."
        if posts is not None:
            self.fields["posts"].queryset = posts  # type: ignore[attr-defined]
        if kind == LinkKind.CALENDAR:
            del self.fields["posts"]


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=Decision.choices)
    reviewer_name = forms.CharField(max_length=REVIEWER_NAME_MAX, required=False)
    comment = forms.CharField(max_length=REVIEW_COMMENT_MAX, required=False)
    seen = forms.CharField(max_length=64)
