"""The composer: TikTok's audit rules for the posting screen, the upload checks, and saving.

Through HTTP on the alpha agency, with TikTok played by the fake over a real socket."""

from __future__ import annotations

import datetime as dt
import hashlib
import zoneinfo
from collections.abc import Iterator
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.html import Element, parse_html
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import AccountStatus, TikTokAccount
from apps.accounts.permissions import ROLE_DEFAULTS, Perm, access_set
from apps.audit.models import AuditLog
from apps.fake_tiktok.server import FakeTikTok
from apps.media.storage import media_storage
from apps.posts.media import MOV, MP4, NOT_A_VIDEO, WEBM, inspect_video, sniff_video_type
from apps.posts.models import AttemptKind, AttemptOutcome, Post, PostMedia, PostStatus, PublishAttempt
from apps.posts.services import PostStateError, creator_check, post_schedule
from apps.publishing.dispatcher import dispatch_due
from apps.publishing.jobs import job_set
from apps.publishing.models import DueJob, JobKind
from apps.publishing.services import post_publish
from apps.tiktok.ratelimit import RateLimiter
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import PostFactory, TikTokAccountFactory, UserFactory, ready_post
from tests.mp4 import PNG_BYTES, mp4_bytes, webm_bytes

pytestmark = pytest.mark.django_db

PUBLIC = "fake-open-public-001"
PRIVATE = "fake-open-private-002"
NO_COMMENT = "fake-open-nocomment-003"
BANNED = "fake-open-banned-005"
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
DISCLOSURE_NEEDS_A_BRAND = "You need to indicate if your content promotes yourself, a third party, or both."
BRANDED_NOT_PRIVATE = "Branded content visibility cannot be set to private."


# --- Reading pages the way a person (or a screen reader) would ---


def html(response: Any) -> Element:
    return parse_html(response.content.decode())


def walk(node: Element | str) -> Iterator[Element]:
    if isinstance(node, str):
        return
    yield node
    for child in node.children:
        yield from walk(child)


def attr(node: Element, name: str) -> str | None:
    for key, value in node.attributes:
        if key == name:
            return value if value is not None else ""
    return None


def by_id(root: Element, element_id: str) -> Element:
    for node in walk(root):
        if attr(node, "id") == element_id:
            return node
    raise AssertionError(f"no element with id {element_id!r}")


def has_id(root: Element, element_id: str) -> bool:
    return any(attr(node, "id") == element_id for node in walk(root))


def find(root: Element, tag: str, /, **attrs: str) -> list[Element]:
    return [
        node
        for node in walk(root)
        if node.name == tag and all(attr(node, key) == value for key, value in attrs.items())
    ]


def text(node: Element | str) -> str:
    if isinstance(node, str):
        return node
    return " ".join(" ".join(text(child) for child in node.children).split())


def field_error(root: Element, wrapper_id: str, input_id: str) -> str:
    """The error shown inside a field's wrapper, checked to be tied to its input for screen readers."""
    wrapper = by_id(root, wrapper_id)
    errors = [n for n in walk(wrapper) if "field-error" in (attr(n, "class") or "").split()]
    shown = [e for e in errors if attr(e, "hidden") is None and text(e)]
    assert shown, f"no error shown in {wrapper_id}"
    described_by = (attr(by_id(root, input_id), "aria-describedby") or "").split()
    assert attr(shown[0], "id") in described_by, f"{input_id} is not described by its error"
    return text(shown[0])


def selected_options(select: Element) -> list[str]:
    return [attr(o, "value") or "" for o in find(select, "option") if attr(o, "selected") is not None]


def is_checked(root: Element, input_id: str) -> bool:
    return attr(by_id(root, input_id), "checked") is not None


# --- Fixtures ---


@pytest.fixture
def owner(alpha: Agency) -> Client:
    with schema_context(alpha.schema_name):
        User.objects.filter(email="owner@shared.example").update(time_zone="Europe/Paris")
    client = client_for(alpha)
    assert (
        client.post("/login/", {"username": "owner@shared.example", "password": OWNER_PASSWORD}).status_code
        == 302
    )
    return client


def connect(alpha: Agency, fake: FakeTikTok, open_id: str = PUBLIC) -> TikTokAccount:
    """An account connected with live tokens at the fake TikTok."""
    tokens = fake.issue_tokens(open_id)
    with schema_context(alpha.schema_name):
        return TikTokAccountFactory(
            open_id=open_id, access_token=tokens["access_token"], refresh_token=tokens["refresh_token"]
        )


def upload(client: Client, data: bytes, name: str = "clip.mp4", account: TikTokAccount | None = None) -> Any:
    payload: dict[str, Any] = {"video": SimpleUploadedFile(name, data, content_type="video/mp4")}
    if account is not None:
        payload["account"] = str(account.pk)
    return client.post("/posts/media/", payload)


def uploaded_id(client: Client, data: bytes | None = None) -> str:
    response = upload(client, data or mp4_bytes())
    assert response.status_code == 201, response.content.decode()
    return attr(find(html(response), "input", name="media_id")[0], "value") or ""


def in_an_hour() -> dt.datetime:
    return (timezone.now() + dt.timedelta(hours=1)).astimezone(PARIS).replace(microsecond=0)


def compose_data(account: TikTokAccount, media_id: str | None, /, **changes: Any) -> dict[str, Any]:
    when = in_an_hour()
    data: dict[str, Any] = {
        "account": str(account.pk),
        "caption": "Morning bake 🍞 #sourdough",
        "privacy_level": "PUBLIC_TO_EVERYONE",
        "allow_comment": "on",
        "mode": "direct",
        "scheduled_date": when.date().isoformat(),
        "scheduled_time": when.strftime("%H:%M:%S"),
        "time_zone": "Europe/Paris",
        "action": "schedule",
        "media_id": media_id,
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


# --- The upload checks ---


def test_the_test_mp4_and_webm_are_read_for_duration_and_frame_size() -> None:
    for data, mime in (
        (mp4_bytes(duration=7.5, width=720, height=1280), MP4),
        (mp4_bytes(duration=7.5, width=720, height=1280, brand=b"qt  "), MOV),
        (webm_bytes(duration=7.5, width=720, height=1280), WEBM),
    ):
        info = inspect_video(BytesIO(data), size=len(data))
        assert (info.mime_type, info.duration_seconds, info.width, info.height) == (
            mime,
            Decimal("7.500"),
            720,
            1280,
        )
    assert sniff_video_type(PNG_BYTES) is None
    assert sniff_video_type(b"just some text, named clip.mp4") is None


def test_an_upload_is_stored_in_the_agencys_folder_with_its_facts(
    alpha: Agency, owner: Client, media_root: Path
) -> None:
    data = mp4_bytes(duration=12, width=1080, height=1920, padding=50_000)

    response = upload(owner, data, name="../../etc/Morning Bake.MP4")

    assert response.status_code == 201
    page = html(response)
    media_id = attr(find(page, "input", name="media_id")[0], "value")
    assert "is uploaded: 12 s, 1080×1920 pixels" in text(by_id(page, "media-summary"))  # noqa: RUF001
    with schema_context(alpha.schema_name):
        media = PostMedia.objects.get(pk=media_id)
        assert media.post is None and media.mime_type == "video/mp4"
        assert (media.size_bytes, media.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert (media.duration_seconds, media.width, media.height) == (Decimal("12.000"), 1080, 1920)
        # Stored under the agency's own prefix, named by us, with the extension its content has.
        assert media.file.name in media_storage().agency_names(alpha.schema_name)
        assert media.file.name.startswith("posts/video/") and media.file.name.endswith(".mp4")
        assert media_storage().read_range(media.file.name, 0, len(data) - 1) == data
        assert AuditLog.objects.filter(action="media.uploaded", object_id=str(media.pk)).exists()
    # The preview plays it through a signed-in view, to its uploader only: a redirect to a
    # short-lived presigned URL on the object store, whose bytes are the video.
    served = owner.get(attr(by_id(page, "media-summary"), "data-preview-src") or "")
    assert served.status_code == 302 and served["Cache-Control"] == "private, no-store"
    fetched = httpx.get(served["Location"])
    assert fetched.status_code == 200 and fetched.headers["Content-Type"] == "video/mp4"
    assert fetched.content == data
    # Without the signature the object store gives nothing away.
    assert httpx.get(served["Location"].split("?")[0]).status_code == 403
    with schema_context(alpha.schema_name):
        colleague = UserFactory(email="colleague@alpha.example")
    other = client_for(alpha)
    other.force_login(colleague)
    assert other.get(f"/posts/media/{media_id}/file/").status_code == 404
    assert client_for(alpha).get(f"/posts/media/{media_id}/file/").status_code == 302  # to sign-in


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (PNG_BYTES, "holiday.mp4", NOT_A_VIDEO),
        (b"This is a text file that someone renamed.\n" * 20, "notes.mp4", NOT_A_VIDEO),
        (b"", "empty.mp4", "The file is empty. Choose the video again."),
        (mp4_bytes(duration=0.5), "short.mp4", "The video lasts 0.5 s; TikTok needs at least 1 second."),
        (
            mp4_bytes(width=320, height=240),
            "small.mp4",
            "The video is 320×240 pixels; TikTok needs between 360 and 4,096 pixels on each side.",  # noqa: RUF001
        ),
    ],
    ids=["png-named-mp4", "text-named-mp4", "empty", "too-short", "too-small"],
)
def test_uploads_that_tiktok_would_refuse_are_refused_next_to_the_field(
    alpha: Agency, owner: Client, data: bytes, name: str, message: str
) -> None:
    response = upload(owner, data, name=name)

    assert response.status_code == 400
    page = html(response)
    assert text(by_id(page, "video-error")) == message
    assert not find(page, "input", name="media_id")
    with schema_context(alpha.schema_name):
        assert not PostMedia.all_objects.exists()


def test_a_video_longer_than_the_creator_allows_is_refused(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    account = connect(alpha, tiktok, NO_COMMENT)  # at most 3 minutes

    response = upload(owner, mp4_bytes(duration=200), account=account)

    assert response.status_code == 400
    assert (
        text(by_id(html(response), "video-error"))
        == "The video lasts 3 min 20 s; this account can post videos of at most 3 min."
    )


# --- Creator info ---


@pytest.mark.parametrize(
    ("open_id", "nickname", "options"),
    [
        (PUBLIC, "Luna Bakes", ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]),
        (PRIVATE, "Theo's Workshop", ["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]),
    ],
)
def test_creator_info_offers_exactly_the_creators_privacy_options_and_chooses_none(
    alpha: Agency, owner: Client, tiktok: FakeTikTok, open_id: str, nickname: str, options: list[str]
) -> None:
    account = connect(alpha, tiktok, open_id)

    response = owner.get(f"/posts/creator-info/?account={account.pk}", HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    page = html(response)
    assert text(by_id(page, "creator-nickname")) == nickname
    select = by_id(page, "id_privacy_level")
    values = [attr(o, "value") for o in find(select, "option")]
    assert values == ["", *options]
    first = find(select, "option")[0]
    assert text(first) == "Choose who can see this post" and attr(first, "disabled") is not None
    assert selected_options(select) == [""]  # nothing chosen for the person
    for switch in ("id_allow_comment", "id_allow_duet", "id_allow_stitch"):
        assert not is_checked(page, switch) and attr(by_id(page, switch), "disabled") is None
    assert attr(by_id(page, "creator-info"), "data-can-post") == "true"
    assert [c["endpoint"] for c in tiktok.calls].count("creator_info") == 1


def test_switches_the_creator_turned_off_are_greyed_out_and_unchecked(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    account = connect(alpha, tiktok, NO_COMMENT)

    page = html(owner.get(f"/posts/creator-info/?account={account.pk}", HTTP_HX_REQUEST="true"))

    for switch in ("id_allow_comment", "id_allow_duet", "id_allow_stitch"):
        assert attr(by_id(page, switch), "disabled") is not None and not is_checked(page, switch)
    assert "Turned off for this account on TikTok." in text(by_id(page, "field-allow_comment"))
    assert text(by_id(page, "max-duration")) == "This account can post videos of up to 3 min."


def test_a_banned_creator_is_shown_as_unable_to_post_and_publishing_is_off(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    account = connect(alpha, tiktok, BANNED)

    page = html(owner.get(f"/posts/new/?account={account.pk}"))

    blocked = text(by_id(page, "creator-blocked"))
    assert "This account cannot publish right now." in blocked
    assert "TikTok has banned this account from posting." in blocked
    assert not has_id(page, "id_privacy_level")
    assert attr(by_id(page, "btn-schedule"), "disabled") is not None
    assert attr(by_id(page, "btn-now"), "disabled") is not None
    assert attr(by_id(page, "btn-draft"), "disabled") is None


def test_an_account_that_needs_reconnecting_cannot_publish(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    account = connect(alpha, tiktok)
    with schema_context(alpha.schema_name):
        TikTokAccount.objects.filter(pk=account.pk).update(
            status="needs_reauth", status_reason="TikTok refused to renew this account's authorisation."
        )

    page = html(owner.get(f"/posts/creator-info/?account={account.pk}", HTTP_HX_REQUEST="true"))

    assert "must be reconnected before it can post" in text(by_id(page, "creator-blocked"))
    assert not [c for c in tiktok.calls if c["endpoint"] == "creator_info"]


def test_the_daily_cap_warning_appears_from_twelve_posts_a_day(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    account = connect(alpha, tiktok)
    with schema_context(alpha.schema_name):
        for _ in range(12):
            post = PostFactory(
                account=account, status=PostStatus.PUBLISHED, published_at=timezone.now(), publish_id="p"
            )
            PublishAttempt.objects.create(
                post=post,
                attempt_number=1,
                kind=AttemptKind.INIT,
                outcome=AttemptOutcome.OK,
                started_at=timezone.now() - dt.timedelta(hours=2),
            )

    page = html(owner.get(f"/posts/creator-info/?account={account.pk}", HTTP_HX_REQUEST="true"))

    assert (
        text(by_id(page, "daily-cap"))
        == "This account has posted 12 times in 24 hours; TikTok usually allows about 15."
    )


def test_the_composer_starts_with_nothing_chosen_for_the_person(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    account = connect(alpha, tiktok)

    page = html(owner.get(f"/posts/new/?account={account.pk}"))

    assert selected_options(by_id(page, "id_privacy_level")) == [""]
    for switch in (
        "id_allow_comment",
        "id_allow_duet",
        "id_allow_stitch",
        "id_commercial_disclosure",
        "id_brand_organic",
        "id_brand_content",
        "id_is_aigc",
    ):
        assert not is_checked(page, switch), switch
    assert selected_options(by_id(page, "id_time_zone")) == ["Europe/Paris"]  # the person's own
    assert text(by_id(page, "consent")) == "By posting, you agree to TikTok's Music Usage Confirmation."
    assert "this can take a few minutes" in text(by_id(page, "processing-note"))
    assert text(by_id(page, "preview-account")) == "Luna Bakes"


def signed_in_member(alpha: Agency, role: str, *grants: tuple[TikTokAccount, frozenset[Perm]]) -> Client:
    """Someone of `role` holding exactly the permissions given on each account, signed in."""
    email = f"{role}@alpha.example"
    with schema_context(alpha.schema_name):
        user = User.objects.create_user(email, OWNER_PASSWORD, role=role, name=role.title())
        for account, perms in grants:
            access_set(user=user, account=account, perms=perms, by=None)
    client = client_for(alpha)
    assert client.post("/login/", {"username": email, "password": OWNER_PASSWORD}).status_code == 302
    return client


@pytest.mark.parametrize(
    ("role", "perms", "status", "message"),
    [
        (
            Role.CLIENT,
            ROLE_DEFAULTS[Role.CLIENT],
            AccountStatus.ACTIVE,
            "Your role (Client reviewer) lets you view and approve posts, but not write them. "
            "An owner or admin of Alpha Agency can change that on the Team page "
            "(your role, or your access to accounts).",
        ),
        (
            Role.EDITOR,
            frozenset({Perm.VIEW}),
            AccountStatus.ACTIVE,
            "Your access lets you view posts, but not write them. "
            "An owner or admin of Alpha Agency can change that on the Team page.",
        ),
        (
            Role.EDITOR,
            ROLE_DEFAULTS[Role.EDITOR],
            AccountStatus.NEEDS_REAUTH,
            "You may post for @sleepy.bakery, but it is not active: it has to be reconnected first. "
            "Ask whoever manages its connection, or an owner or admin of Alpha Agency, "
            "to reconnect it on the Accounts page.",
        ),
        (
            Role.EDITOR,
            None,
            AccountStatus.ACTIVE,
            "You may not post for any TikTok account yet. Ask an owner or admin of Alpha Agency "
            "to give you access to the accounts you work on (on the Team page).",
        ),
    ],
    ids=["reviewer", "view-only", "inactive-account", "no-access"],
)
def test_without_an_account_to_post_to_the_composer_says_why_and_who_can_change_it(
    alpha: Agency, role: str, perms: frozenset[Perm] | None, status: str, message: str
) -> None:
    with schema_context(alpha.schema_name):
        account = TikTokAccountFactory(username="sleepy.bakery", status=status)
    client = signed_in_member(alpha, role, *([(account, perms)] if perms else []))

    page = html(client.get("/posts/new/"))

    assert text(by_id(page, "no-account")) == message
    assert not has_id(page, "composer")


# --- Refusals: the message next to the field, everything the person entered kept ---

EMOJI_CAPTION = "🎉" * 1100 + "!"  # 1,101 characters, 2,201 UTF-16 units


@pytest.mark.parametrize(
    ("changes", "wrapper", "input_id", "message"),
    [
        ({"privacy_level": None}, "field-privacy_level", "id_privacy_level", "Choose who can see this post."),
        (
            {"privacy_level": "SELF_ONLY", "commercial_disclosure": "on", "brand_content": "on"},
            "field-privacy_level",
            "id_privacy_level",
            BRANDED_NOT_PRIVATE,
        ),
        (
            {"commercial_disclosure": "on"},
            "field-commercial_disclosure",
            "id_commercial_disclosure",
            DISCLOSURE_NEEDS_A_BRAND,
        ),
        (
            {"caption": EMOJI_CAPTION},
            "field-caption",
            "id_caption",
            "The caption is 2,201 characters long as TikTok counts them (emoji count as two); "
            "TikTok allows at most 2,200.",
        ),
        (
            {"scheduled_date": "2020-01-01", "scheduled_time": "09:00:00"},
            "field-scheduled_date",
            "id_scheduled_date",
            "That time has already passed. Choose a time in the future.",
        ),
        ({"media_id": None}, "field-video", "id_video", "Upload the video to post."),
    ],
    ids=[
        "no-privacy",
        "branded-private",
        "disclosure-without-brand",
        "caption-2201-units",
        "past",
        "no-video",
    ],
)
def test_the_composer_refuses_with_the_reason_next_to_the_field_and_keeps_everything(
    alpha: Agency,
    owner: Client,
    tiktok: FakeTikTok,
    changes: dict[str, Any],
    wrapper: str,
    input_id: str,
    message: str,
) -> None:
    account = connect(alpha, tiktok)
    media_id = uploaded_id(owner)
    data = compose_data(account, media_id, is_aigc="on", **changes)

    response = owner.post("/posts/new/", data)

    assert response.status_code == 200
    page = html(response)
    assert field_error(page, wrapper, input_id) == message
    assert text(by_id(page, "form-errors")) == "Nothing was saved: please fix what is marked below."
    # Everything entered is still there, the uploaded video included.
    assert selected_options(by_id(page, "id_account")) == [str(account.pk)]
    assert text(by_id(page, "id_caption")) == " ".join(data["caption"].split())
    if "privacy_level" in data:
        assert selected_options(by_id(page, "id_privacy_level")) == [data["privacy_level"]]
    assert is_checked(page, "id_allow_comment") and is_checked(page, "id_is_aigc")
    assert not is_checked(page, "id_allow_duet")
    assert is_checked(page, "id_commercial_disclosure") == ("commercial_disclosure" in data)
    assert is_checked(page, "id_brand_content") == ("brand_content" in data)
    assert attr(by_id(page, "id_scheduled_date"), "value") == data["scheduled_date"]
    assert attr(by_id(page, "id_scheduled_time"), "value") == data["scheduled_time"]
    assert selected_options(by_id(page, "id_time_zone")) == ["Europe/Paris"]
    if media_id in data.values():
        assert [attr(i, "value") for i in find(page, "input", name="media_id")] == [media_id]
        assert attr(by_id(page, "preview-video"), "src") == f"/posts/media/{media_id}/file/"
    with schema_context(alpha.schema_name):
        assert not Post.all_objects.exists()
        assert not DueJob.objects.exists()


def test_branded_content_switches_the_consent_sentence(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    account = connect(alpha, tiktok)
    data = compose_data(
        account, uploaded_id(owner), commercial_disclosure="on", brand_content="on", caption="x" * 2201
    )

    page = html(owner.post("/posts/new/", data))

    assert (
        text(by_id(page, "consent"))
        == "By posting, you agree to TikTok's Branded Content Policy and Music Usage Confirmation."
    )


def test_a_non_video_sent_with_the_form_is_refused_and_the_earlier_upload_kept(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    # Given a video uploaded earlier, then (without JavaScript) a PNG renamed .mp4 sent with the form
    account = connect(alpha, tiktok)
    media_id = uploaded_id(owner)
    data = compose_data(
        account, media_id, video=SimpleUploadedFile("cat.mp4", PNG_BYTES, content_type="video/mp4")
    )

    response = owner.post("/posts/new/", data)

    assert response.status_code == 200
    page = html(response)
    assert field_error(page, "field-video", "id_video") == NOT_A_VIDEO
    assert [attr(i, "value") for i in find(page, "input", name="media_id")] == [media_id]
    with schema_context(alpha.schema_name):
        assert not Post.all_objects.exists()


def test_a_comment_switch_the_creator_turned_off_is_refused(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    account = connect(alpha, tiktok, NO_COMMENT)

    response = owner.post("/posts/new/", compose_data(account, uploaded_id(owner)))  # allow_comment=on

    page = html(response)
    assert field_error(page, "field-allow_comment", "id_allow_comment") == (
        "Comments are turned off for this account on TikTok."
    )


def test_a_banned_creator_cannot_schedule(alpha: Agency, owner: Client, tiktok: FakeTikTok) -> None:
    account = connect(alpha, tiktok, BANNED)

    page = html(owner.post("/posts/new/", compose_data(account, uploaded_id(owner))))

    assert "TikTok has banned this account from posting." in field_error(page, "field-account", "id_account")
    with schema_context(alpha.schema_name):
        assert not Post.all_objects.exists()


# --- Saving ---


def test_schedule_creates_a_scheduled_post_with_its_publish_job(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    account = connect(alpha, tiktok)
    media_id = uploaded_id(owner)
    when = in_an_hour()
    data = compose_data(account, media_id, caption="Line one\r\nline two 🍞", is_aigc="on")

    response = owner.post("/posts/new/", data)

    assert response.status_code == 302
    with schema_context(alpha.schema_name):
        post = Post.objects.get()
        assert response["Location"] == f"/posts/{post.pk}/"
        assert post.status == PostStatus.SCHEDULED
        assert post.scheduled_at == when and post.schedule_time_zone == "Europe/Paris"
        assert post.caption == "Line one\nline two 🍞"
        assert (post.privacy_level, post.allow_comment, post.allow_duet, post.is_aigc) == (
            "PUBLIC_TO_EVERYONE",
            True,
            False,
            True,
        )
        assert str(post.media.get().pk) == media_id
        job = DueJob.objects.get(post_id=post.pk)
        assert job.kind == JobKind.PUBLISH and job.due_at == when and job.schema_name == alpha.schema_name
        entries = AuditLog.objects.filter(object_id=str(post.pk)).order_by("created_at")
        actions = list(entries.values_list("action", flat=True))
        assert actions == ["post.created", "post.scheduled"]
        assert AuditLog.objects.get(action="post.created").actor.email == "owner@shared.example"
    page = owner.get(response["Location"])
    assert "Scheduled. It will be published at the time shown below." in page.content.decode()


def test_save_draft_creates_a_draft_without_a_job_even_without_privacy(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    account = connect(alpha, tiktok)

    response = owner.post(
        "/posts/new/", compose_data(account, uploaded_id(owner), action="draft", privacy_level=None)
    )

    assert response.status_code == 302
    with schema_context(alpha.schema_name):
        post = Post.objects.get()
        assert post.status == PostStatus.DRAFT and post.privacy_level == ""
        assert not DueJob.objects.filter(post_id=post.pk).exists()
        assert AuditLog.objects.filter(action="post.created", object_id=str(post.pk)).count() == 1


def test_an_incomplete_draft_is_saved_with_its_problems_listed_and_only_scheduling_is_refused(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    # Given a half-filled disclosure (no brand ticked) and a caption one unit over TikTok's limit
    account = connect(alpha, tiktok)
    media_id = uploaded_id(owner)
    data = compose_data(account, media_id, commercial_disclosure="on", caption=EMOJI_CAPTION, action="draft")
    caption_problem = (
        "The caption is 2,201 characters long as TikTok counts them (emoji count as two); "
        "TikTok allows at most 2,200."
    )

    # When it is saved as a draft
    response = owner.post("/posts/new/", data)

    # Then it is a draft, kept whole, and its page lists what stops it from being scheduled
    assert response.status_code == 302
    with schema_context(alpha.schema_name):
        post = Post.objects.get()
        assert post.status == PostStatus.DRAFT
        assert post.caption == EMOJI_CAPTION and post.commercial_disclosure
        assert not DueJob.objects.exists()
    page = html(owner.get(response["Location"]))
    listed = [text(item) for item in find(by_id(page, "draft-problems"), "li")]
    assert listed == [caption_problem, DISCLOSURE_NEEDS_A_BRAND]
    assert "Draft saved, but it cannot be scheduled yet" in text(by_id(page, "messages"))
    editor = html(owner.get(f"/posts/{post.pk}/edit/"))
    assert [text(item) for item in find(by_id(editor, "draft-problems"), "li")] == listed

    # When it is scheduled from the composer, as it is: refused next to the fields, still a draft
    with schema_context(alpha.schema_name):
        version = Post.objects.get().updated_at.isoformat()
    refused = owner.post(f"/posts/{post.pk}/edit/", {**data, "action": "schedule", "version": version})
    assert refused.status_code == 200
    page = html(refused)
    assert field_error(page, "field-caption", "id_caption") == caption_problem
    assert (
        field_error(page, "field-commercial_disclosure", "id_commercial_disclosure")
        == DISCLOSURE_NEEDS_A_BRAND
    )
    with schema_context(alpha.schema_name):
        assert Post.objects.get().status == PostStatus.DRAFT
        # Scheduling it any other way (the calendar, the API's service) is refused too, and a
        # publish job made for it by hand sends nothing: the dispatcher only takes scheduled posts.
        with pytest.raises(PostStateError, match="Fix this before scheduling the post"):
            post_schedule(post=post, scheduled_at=in_an_hour(), time_zone="Europe/Paris", by=None)
        job_set(post_id=post.pk, kind=JobKind.PUBLISH, due_at=timezone.now())
    dispatch_due()
    with schema_context(alpha.schema_name):
        assert Post.objects.get().status == PostStatus.DRAFT
        assert tiktok.create_post_calls(account.open_id) == []

    # When the problems are fixed, it schedules
    fixed = {**data, "action": "schedule", "version": version, "caption": "Short", "brand_organic": "on"}
    assert owner.post(f"/posts/{post.pk}/edit/", fixed).status_code == 302
    with schema_context(alpha.schema_name):
        assert Post.objects.get().status == PostStatus.SCHEDULED


def test_a_draft_still_refuses_what_no_post_may_hold(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    account = connect(alpha, tiktok)

    response = owner.post(
        "/posts/new/", compose_data(account, None, action="draft", privacy_level="EVERYONE_AND_THEIR_DOG")
    )

    assert response.status_code == 200
    assert field_error(html(response), "field-privacy_level", "id_privacy_level")
    with schema_context(alpha.schema_name):
        assert not Post.all_objects.exists()


def test_publish_now_schedules_at_once_and_a_file_sent_with_the_form_works_without_javascript(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    account = connect(alpha, tiktok)
    data = compose_data(
        account,
        None,
        action="now",
        scheduled_date="",
        scheduled_time="",
        video=SimpleUploadedFile(
            "clip.mov", mp4_bytes(brand=b"qt  "), content_type="application/octet-stream"
        ),
    )

    response = owner.post("/posts/new/", data)

    assert response.status_code == 302, response.content.decode()[:3000]
    with schema_context(alpha.schema_name):
        post = Post.objects.get()
        assert post.status == PostStatus.SCHEDULED and post.scheduled_at <= timezone.now()
        assert post.media.get().mime_type == "video/quicktime"
        assert DueJob.objects.get(post_id=post.pk).due_at <= timezone.now()


def test_editing_a_scheduled_post_records_what_changed(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    account = connect(alpha, tiktok)
    owner.post("/posts/new/", compose_data(account, uploaded_id(owner)))
    with schema_context(alpha.schema_name):
        post = Post.objects.get()

    page = html(owner.get(f"/posts/{post.pk}/edit/"))
    assert selected_options(by_id(page, "id_privacy_level")) == ["PUBLIC_TO_EVERYONE"]
    assert is_checked(page, "id_allow_comment")
    media_id = attr(find(page, "input", name="media_id")[0], "value")
    response = owner.post(
        f"/posts/{post.pk}/edit/", compose_data(account, media_id, caption="New words", action="draft")
    )

    assert response.status_code == 302
    with schema_context(alpha.schema_name):
        post.refresh_from_db()
        assert post.status == PostStatus.DRAFT and post.caption == "New words"
        assert not DueJob.objects.filter(post_id=post.pk).exists()
        edited = AuditLog.objects.get(action="post.edited", object_id=str(post.pk))
        assert edited.changes["caption"] == ["Morning bake 🍞 #sourdough", "New words"]
        assert edited.changes["status"] == ["scheduled", "draft"]


def test_a_post_being_published_cannot_be_edited(alpha: Agency, owner: Client, tiktok: FakeTikTok) -> None:
    account = connect(alpha, tiktok)
    with schema_context(alpha.schema_name):
        post = PostFactory(account=account, status=PostStatus.PUBLISHING)

    response = owner.get(f"/posts/{post.pk}/edit/", follow=True)

    assert "This post is publishing and can no longer be edited." in response.content.decode()


def test_when_tiktok_does_not_answer_the_composer_says_so_and_offers_to_ask_again(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    account = connect(alpha, tiktok)
    tiktok.add_fault("creator_info", "http_5xx", count=1, status=503)

    page = html(owner.get(f"/posts/creator-info/?account={account.pk}", HTTP_HX_REQUEST="true"))

    assert "TikTok did not answer our question about this account" in text(by_id(page, "creator-blocked"))
    assert [text(b) for b in find(page, "button")] == ["Ask TikTok again"]
    again = html(owner.get(f"/posts/creator-info/?account={account.pk}", HTTP_HX_REQUEST="true"))
    assert attr(by_id(again, "creator-info"), "data-can-post") == "true"


def test_an_expired_access_token_is_refreshed_to_ask_tiktok(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    account = connect(alpha, tiktok)
    with schema_context(alpha.schema_name):
        account.refresh_from_db()
    tiktok.expire_access_token(account.access_token.reveal())

    page = html(owner.get(f"/posts/creator-info/?account={account.pk}", HTTP_HX_REQUEST="true"))

    assert text(by_id(page, "creator-nickname")) == "Luna Bakes"
    assert [c["endpoint"] for c in tiktok.calls].count("token") == 1


def test_the_composer_and_its_uploads_share_one_creator_info_per_account(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    # Given an account whose composer is opened, switched to and uploaded to several times
    account = connect(alpha, tiktok)
    for _ in range(3):
        page = html(owner.get(f"/posts/creator-info/?account={account.pk}", HTTP_HX_REQUEST="true"))
        assert text(by_id(page, "creator-nickname")) == "Luna Bakes"
    upload(owner, mp4_bytes(), account=account)

    # Then TikTok was asked once: drafting leaves the publisher its 20 calls a minute
    assert [c["endpoint"] for c in tiktok.calls].count("creator_info") == 1


def test_a_creator_check_over_tiktoks_limit_says_what_happens_and_when(
    alpha: Agency, owner: Client, tiktok: FakeTikTok
) -> None:
    # Given an account whose token already used its 20 creator_info calls this minute
    account = connect(alpha, tiktok)
    with schema_context(alpha.schema_name):
        account.refresh_from_db()
    limiter = RateLimiter()
    while limiter.try_acquire("creator_info", account.access_token) == 0:
        pass

    # When the composer asks about it
    page = html(owner.get(f"/posts/creator-info/?account={account.pk}", HTTP_HX_REQUEST="true"))

    # Then it says in plain words that nothing was sent and when it can ask again
    blocked = text(by_id(page, "creator-blocked"))
    assert "TikTok allows 20 checks a minute of what an account may post for each account" in blocked
    assert "Nothing was sent to TikTok; Postline can ask again in about" in blocked
    assert "rate_limited_locally" not in blocked and "retry in" not in blocked
    assert not [c for c in tiktok.calls if c["endpoint"] == "creator_info"]


def test_the_publisher_uses_the_creator_info_the_composer_just_fetched(
    in_alpha: Agency, tiktok: FakeTikTok, media_root: Path
) -> None:
    # Given a post whose account the composer just asked TikTok about
    draft = ready_post(tiktok, status=PostStatus.DRAFT, scheduled_at=None, schedule_time_zone="")
    assert creator_check(account=draft.account).can_post
    post = post_schedule(post=draft, scheduled_at=timezone.now(), time_zone="UTC", by=None)

    # When the publisher takes it and publishes it
    dispatch_due()
    connection.set_schema(in_alpha.schema_name)
    post_publish(post_id=str(post.pk))

    # Then it went out on the same creator_info answer: TikTok was asked once in all
    assert Post.objects.get(pk=post.pk).publish_id
    assert [c["endpoint"] for c in tiktok.calls].count("creator_info") == 1
