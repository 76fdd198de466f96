"""The composer's and the post page's forms: parsing what a person typed. The rules themselves
live in `apps.posts.services.post_content_errors`, shared with the services that save."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import cache
from typing import Any

from django import forms
from django.utils import timezone

from apps.accounts.models import TikTokAccount
from apps.posts.models import PostMedia, PostStatus, PrivacyLevel, PublishMode
from apps.posts.selectors import accounts_for_composer
from apps.posts.services import CreatorCheck, PostContent, post_content_errors, publish_now_refusal

DRAFT, SCHEDULE, NOW = "draft", "schedule", "now"
PAST = "That time has already passed. Choose a time in the future."


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


def scheduled_time_errors_and_value(
    date: dt.date | None, time: dt.time | None, zone_name: str, *, required: bool
) -> tuple[dt.datetime | None, str]:
    """The aware datetime a person meant by a local date, time and IANA zone, or why not."""
    if date is None or time is None:
        return None, "Choose the date and time to publish." if required else ""
    zone = zoneinfo.ZoneInfo(zone_name)
    local = dt.datetime.combine(date, time.replace(microsecond=0))
    when = local.replace(tzinfo=zone)
    if when.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != local:
        return None, f"{local:%H:%M} does not exist on {local:%d %B %Y} in {zone_name} (the clocks change)."
    return when, ""


class ScheduleFields(forms.Form):
    """Date, time and time zone, as a person reads them on a clock."""

    scheduled_date = forms.DateField(
        required=False, error_messages={"invalid": "Enter the date as YYYY-MM-DD, e.g. 2026-03-14."}
    )
    scheduled_time = forms.TimeField(
        required=False, error_messages={"invalid": "Enter the time as HH:MM, e.g. 18:30."}
    )
    time_zone = forms.ChoiceField(
        choices=time_zone_choices, error_messages={"invalid_choice": "Choose a time zone from the list."}
    )

    def scheduled_at(self, *, required: bool) -> dt.datetime | None:
        """Call from clean(): the aware datetime, adding the errors next to the date."""
        data = self.cleaned_data
        if "scheduled_date" in self.errors or "scheduled_time" in self.errors or "time_zone" in self.errors:
            return None
        when, error = scheduled_time_errors_and_value(
            data.get("scheduled_date"), data.get("scheduled_time"), data["time_zone"], required=required
        )
        if error:
            self.add_error("scheduled_date", error)
        elif when is not None and required and when <= timezone.now():
            self.add_error("scheduled_date", PAST)
            return None
        return when


class ComposeForm(ScheduleFields):
    account = forms.ModelChoiceField(
        queryset=TikTokAccount.objects.none(),
        empty_label="Choose an account",
        error_messages={
            "required": "Choose the account to post to.",
            "invalid_choice": "Choose one of the agency's connected accounts.",
        },
    )
    caption = forms.CharField(required=False, strip=False)
    privacy_level = forms.ChoiceField(
        required=False,
        choices=[("", ""), *PrivacyLevel.choices],
        error_messages={"invalid_choice": "Choose one of the account's privacy options."},
    )
    allow_comment = forms.BooleanField(required=False)
    allow_duet = forms.BooleanField(required=False)
    allow_stitch = forms.BooleanField(required=False)
    commercial_disclosure = forms.BooleanField(required=False)
    brand_organic = forms.BooleanField(required=False)
    brand_content = forms.BooleanField(required=False)
    is_aigc = forms.BooleanField(required=False)
    mode = forms.ChoiceField(choices=PublishMode.choices, initial=PublishMode.DIRECT)
    media_id = forms.UUIDField(required=False)
    video = forms.FileField(required=False)
    action = forms.ChoiceField(
        required=False, choices=[(DRAFT, "Save draft"), (SCHEDULE, "Schedule"), (NOW, "Publish now")]
    )

    def __init__(
        self,
        *args: Any,
        user: Any,
        post: Any = None,
        creator: CreatorCheck | None = None,
        media: PostMedia | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["account"].queryset = accounts_for_composer(user, post)  # type: ignore[attr-defined]
        self.user = user
        self.creator = creator
        self.video_media = media
        self.when: dt.datetime | None = None
        self.content: PostContent | None = None

    @property
    def chosen_action(self) -> str:
        return (self.cleaned_data.get("action") if hasattr(self, "cleaned_data") else None) or DRAFT

    @property
    def publishing(self) -> bool:
        return self.chosen_action in (SCHEDULE, NOW)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        action = data.get("action") or DRAFT
        if action == NOW:
            # The date and time fields do not matter for "Publish now".
            for name in ("scheduled_date", "scheduled_time"):
                self.errors.pop(name, None)
            self.when = timezone.now()
        else:
            self.when = self.scheduled_at(required=action == SCHEDULE)
        account = data.get("account")
        if account is None:
            return data
        self.content = PostContent(
            account=account,
            caption=data.get("caption", ""),
            privacy_level=data.get("privacy_level", ""),
            allow_comment=data.get("allow_comment", False),
            allow_duet=data.get("allow_duet", False),
            allow_stitch=data.get("allow_stitch", False),
            commercial_disclosure=data.get("commercial_disclosure", False),
            brand_organic=data.get("brand_organic", False),
            brand_content=data.get("brand_content", False),
            is_aigc=data.get("is_aigc", False),
            mode=data.get("mode") or PublishMode.DIRECT,
        )
        errors = post_content_errors(
            self.content, media=self.video_media, creator=self.creator, publishing=action in (SCHEDULE, NOW)
        )
        for field, message in errors.items():
            if field not in self.errors:
                self.add_error(field, message)
        if action == NOW and (refusal := publish_now_refusal(by=self.user, account=account)):
            self.add_error("action", refusal)
        return data

    def add_service_errors(self, errors: dict[str, str]) -> None:
        for field, message in errors.items():
            self.add_error("scheduled_date" if field == "scheduled_at" else field, message)


class RescheduleForm(ScheduleFields):
    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self.when = self.scheduled_at(required=True)
        return data


class MarkPublishedForm(forms.Form):
    published_post_id = forms.CharField(required=False, max_length=40, strip=True)


def compose_initial(*, user: Any, post: Any = None, account: TikTokAccount | None = None) -> dict[str, Any]:
    """The composer's starting values: a new post's (no privacy, every switch off) or a post's own."""
    zone = user.time_zone or "UTC"
    if post is None:
        return {"account": account, "time_zone": zone, "mode": PublishMode.DIRECT, "action": DRAFT}
    initial: dict[str, Any] = {
        "account": account or post.account,
        "caption": post.caption,
        "privacy_level": post.privacy_level,
        "allow_comment": post.allow_comment,
        "allow_duet": post.allow_duet,
        "allow_stitch": post.allow_stitch,
        "commercial_disclosure": post.commercial_disclosure,
        "brand_organic": post.brand_organic,
        "brand_content": post.brand_content,
        "is_aigc": post.is_aigc,
        "mode": post.mode,
        "time_zone": post.schedule_time_zone or zone,
    }
    if post.scheduled_at is not None and post.status != PostStatus.FAILED:
        local = post.scheduled_at.astimezone(zoneinfo.ZoneInfo(initial["time_zone"]))
        initial["scheduled_date"] = local.date().isoformat()
        initial["scheduled_time"] = local.time().replace(microsecond=0).isoformat()
    return initial
