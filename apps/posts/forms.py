"""The composer's and the post page's forms: parsing what a person typed. The rules themselves
live in `apps.posts.services.post_content_errors`, shared with the services that save."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import cache
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils import timezone

from apps.accounts.models import TikTokAccount
from apps.common.widgets import QuickSelect
from apps.posts.models import MediaType, PostMedia, PostStatus, PrivacyLevel, PublishMode
from apps.posts.selectors import accounts_for_composer
from apps.posts.services import (
    CreatorCheck,
    PostContent,
    draft_blockers,
    post_content_errors,
    publish_now_refusal,
)

DRAFT, SCHEDULE, NOW, QUEUE = "draft", "schedule", "now", "queue"
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
        choices=time_zone_choices,
        error_messages={"invalid_choice": "Choose a time zone from the list."},
        widget=QuickSelect,
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
        widget=QuickSelect,
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
    media_type = forms.ChoiceField(required=False, choices=MediaType.choices, initial=MediaType.VIDEO)
    description = forms.CharField(required=False, strip=False)
    auto_add_music = forms.BooleanField(required=False)
    # The cover: one of the photos (TikTok takes no other cover for a photo post), by its id, so
    # that it follows its photo when the carousel is reordered. None: the first photo.
    photo_cover = forms.UUIDField(required=False)
    # Only where the photos' errors go; the photos themselves arrive as photo_ids.
    photos = forms.Field(required=False)
    action = forms.ChoiceField(
        required=False,
        choices=[
            (DRAFT, "Save draft"),
            (SCHEDULE, "Schedule"),
            (NOW, "Publish now"),
            (QUEUE, "Add to queue"),
        ],
    )
    # The post's version (its `updated_at`) when this form was opened: a save over a newer one is
    # refused instead of undoing someone else's work.
    version = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(
        self,
        *args: Any,
        user: Any,
        post: Any = None,
        creator: CreatorCheck | None = None,
        media: PostMedia | None = None,
        photos: list[PostMedia] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.photo_media: list[PostMedia] = photos or []
        self.fields["account"].queryset = accounts_for_composer(user, post)  # type: ignore[attr-defined]
        self.user = user
        self.creator = creator
        self.video_media = media
        self.when: dt.datetime | None = None
        self.content: PostContent | None = None
        # Save draft: the content problems it is saved with (field → message).
        self.draft_problems: dict[str, str] = {}

    @property
    def cover_index(self) -> int:
        """The cover's place in the carousel (the first photo when none or a removed one is chosen)."""
        ids = [photo.pk for photo in self.photo_media]
        chosen = self.cleaned_data.get("photo_cover") if hasattr(self, "cleaned_data") else None
        return ids.index(chosen) if chosen in ids else 0

    @property
    def seen_version(self) -> dt.datetime | None:
        """The version the editor opened (None: the form sent none; a made-up one is out of date)."""
        raw = self.cleaned_data.get("version") if hasattr(self, "cleaned_data") else ""
        if not raw:
            return None
        try:
            return dt.datetime.fromisoformat(raw)
        except ValueError:
            return dt.datetime.min.replace(tzinfo=dt.UTC)

    def carry_version(self, version: dt.datetime) -> None:
        """Show the form again at `version`: saving it once more replaces what is saved."""
        data = QueryDict(mutable=True)
        data.update(self.data)
        data["version"] = version.isoformat()
        self.data = data

    @property
    def chosen_action(self) -> str:
        return (self.cleaned_data.get("action") if hasattr(self, "cleaned_data") else None) or DRAFT

    @property
    def publishing(self) -> bool:
        return self.chosen_action in (SCHEDULE, NOW, QUEUE)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        action = data.get("action") or DRAFT
        if action in (NOW, QUEUE):
            # The date and time fields do not matter for "Publish now", nor for "Add to queue"
            # (the queue's next free slot is its time, chosen as the post is saved).
            for name in ("scheduled_date", "scheduled_time"):
                self.errors.pop(name, None)
            self.when = timezone.now() if action == NOW else None
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
            media_type=data.get("media_type") or MediaType.VIDEO,
            description=data.get("description", ""),
            auto_add_music=data.get("auto_add_music", False),
            photo_cover_index=self.cover_index,
        )
        errors = post_content_errors(
            self.content,
            media=self.video_media,
            creator=self.creator,
            publishing=action in (SCHEDULE, NOW, QUEUE),
            photos=self.photo_media,
        )
        if action == DRAFT:
            # A draft is saved with what TikTok would refuse, listed on its page; only what no
            # post may hold stops it. Scheduling checks everything.
            blockers = draft_blockers(errors, self.content)
            self.draft_problems = {field: text for field, text in errors.items() if field not in blockers}
            errors = blockers
        for field, message in errors.items():
            if field not in self.errors:
                self.add_error(field, message)
        if action == NOW and (refusal := publish_now_refusal(by=self.user, account=account)):
            self.add_error("action", refusal)
        return data

    def errors_only(self, errors: dict[str, list[str]]) -> None:
        """Parse the form but show only `errors` (field → messages): for the composer shown again
        after a carousel change, where nothing else was asked to be checked yet."""
        self.is_valid()
        self.errors.clear()
        for field, messages in errors.items():
            for message in messages:
                self.add_error(field, message)

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
        "media_type": post.media_type,
        "description": post.description,
        "auto_add_music": post.auto_add_music,
        "time_zone": post.schedule_time_zone or zone,
        "version": post.updated_at.isoformat(),
    }
    if post.scheduled_at is not None and post.status != PostStatus.FAILED:
        local = post.scheduled_at.astimezone(zoneinfo.ZoneInfo(initial["time_zone"]))
        initial["scheduled_date"] = local.date().isoformat()
        initial["scheduled_time"] = local.time().replace(microsecond=0).isoformat()
    return initial
