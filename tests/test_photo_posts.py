"""Photo posts (issue 12, item 3): content/init with media_type PHOTO, the photos pulled by TikTok
(the fake, over a real socket) from our signed, expiring URLs on TIKTOK_MEDIA_BASE_URL, checked
before scheduling, then status polling as for videos."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context
from PIL import Image

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import Perm, access_set
from apps.fake_tiktok.server import FakeTikTok
from apps.media.storage import media_storage
from apps.media.uploads import StoredUpload
from apps.posts.models import MediaKind, MediaType, Post, PostMedia, PostStatus, PublishMode
from apps.posts.photos import NO_MEDIA_DOMAIN, photo_url
from apps.posts.services import (
    PostContent,
    PostValidationError,
    creator_check,
    photo_upload,
    post_photos,
    post_save,
)
from apps.publishing.dispatcher import dispatch_due
from apps.publishing.services import post_poll_status, post_publish
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import wait_for
from tests.factories import TikTokAccountFactory

PUBLIC = "fake-open-public-001"


def photo_objects(agency: Agency) -> list[str]:
    """The agency's stored photos (the media library's thumbnails of them aside)."""
    names = media_storage().agency_names(agency.schema_name)
    return [name for name in names if not name.startswith("library/thumbs/")]


def image_bytes(width: int, height: int, fmt: str = "JPEG", colour: str = "sienna") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, fmt)
    return buffer.getvalue()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def media_site(settings: Any, fake_tiktok: FakeTikTok) -> Iterator[str]:
    """The app itself on a real socket, as TikTok reaches TIKTOK_MEDIA_BASE_URL, and that prefix
    verified at the fake TikTok."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedWSGIServer(("127.0.0.1", port), _QuietHandler, allow_reuse_address=True)
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://localhost:{port}/tiktok-media/"
    settings.TIKTOK_MEDIA_BASE_URL = base
    fake_tiktok.configure(verified_url_prefixes=[base])
    yield base
    fake_tiktok.configure(verified_url_prefixes=[])
    server.shutdown()
    server.server_close()


@pytest.fixture
def committed(make_agency: Any, django_db_blocker: Any, tiktok: FakeTikTok) -> Iterator[Agency]:
    """A committed agency (the app's own server thread reads it), the test inside its schema."""
    agency = make_agency()
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        yield agency


def upload_photo(data: bytes, name: str, by: Any) -> PostMedia:
    stored = media_storage().save(
        f"posts/photo/{hashlib.sha256(data).hexdigest()[:16]}.img", ContentFile(data)
    )
    upload = StoredUpload(
        storage=media_storage(),
        storage_name=stored,
        original_name=name,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    return photo_upload(file=upload, by=by)


def connected(fake: FakeTikTok, open_id: str = PUBLIC) -> Any:
    tokens = fake.issue_tokens(open_id)
    return TikTokAccountFactory(
        open_id=open_id, access_token=tokens["access_token"], refresh_token=tokens["refresh_token"]
    )


def schedule_photos(account: Any, photos: list[PostMedia], by: Any, **content: Any) -> Post:
    values: dict[str, Any] = {
        "account": account,
        "caption": "Three loaves 🍞",
        "description": "Sourdough, rye and spelt, out of the oven at six. #bakery",
        "privacy_level": "PUBLIC_TO_EVERYONE",
        "allow_comment": True,
        "auto_add_music": True,
        "media_type": MediaType.PHOTO,
        "photo_cover_index": 1,
        **content,
    }
    return post_save(
        post=None,
        content=PostContent(**values),
        media=None,
        photos=photos,
        by=by,
        scheduled_at=timezone.now(),
        time_zone="UTC",
        schedule=True,
        creator=creator_check(account=account),
    )


def publish_and_poll(agency: Agency, fake: FakeTikTok, post: Post) -> Post:
    dispatch_due()
    connection.set_schema(agency.schema_name)
    post_publish(post_id=str(post.pk))
    publish_id = Post.objects.get(pk=post.pk).publish_id
    # TikTok downloads the photos in the background, then processes them
    wait_for(lambda: fake.publish(publish_id)["status"] not in ("PROCESSING_DOWNLOAD", "PROCESSING_UPLOAD"))
    post_poll_status(post_id=str(post.pk))
    return Post.objects.get(pk=post.pk)


@pytest.mark.parametrize("mode", [PublishMode.DIRECT, PublishMode.INBOX])
def test_a_photo_post_of_three_images_is_pulled_by_tiktok_and_published(
    committed: Agency, tiktok: FakeTikTok, media_site: str, mode: str
) -> None:
    # Given three photos (JPEG, WebP, JPEG) for a connected account
    owner = User.objects.get(email="owner@committed.example")
    account = connected(tiktok)
    datas = [
        image_bytes(1080, 1350),
        image_bytes(1080, 1920, "WEBP", "olive"),
        image_bytes(1920, 1080, colour="tan"),
    ]
    photos = [upload_photo(data, f"loaf-{n}.jpg", owner) for n, data in enumerate(datas, start=1)]

    # When they are scheduled as one post and the worker publishes it
    post = schedule_photos(account, photos, owner, mode=mode)
    assert post.status == PostStatus.SCHEDULED
    assert [p.pk for p in post_photos(post)] == [p.pk for p in photos]
    done = publish_and_poll(committed, tiktok, post)

    # Then TikTok got one photo post and downloaded exactly our bytes, in carousel order
    [call] = tiktok.create_post_calls(account.open_id)
    assert call["endpoint"] == "content_init"
    publish = tiktok.publish(done.publish_id)
    assert publish["media_type"] == "PHOTO" and publish["photo_cover_index"] == 1
    assert [d["sha256"] for d in publish["photo_downloads"]] == [hashlib.sha256(d).hexdigest() for d in datas]
    assert [d["status"] for d in publish["photo_downloads"]] == [200, 200, 200]
    assert [d["content_type"] for d in publish["photo_downloads"]] == [
        "image/jpeg",
        "image/webp",
        "image/jpeg",
    ]
    assert all(url.startswith(media_site) for url in publish["photo_urls"])
    if mode == PublishMode.DIRECT:
        assert publish["post_info"]["title"] == "Three loaves 🍞"
        assert publish["post_info"]["auto_add_music"] is True
        assert "disable_duet" not in publish["post_info"]
        assert publish["status"] == "PUBLISH_COMPLETE"
        assert done.status == PostStatus.PUBLISHED and done.status_label == "Published"
    else:
        assert publish["inbox"] is True and publish["status"] == "SEND_TO_USER_INBOX"
        assert done.status == PostStatus.PUBLISHED and done.status_label == "In the creator's inbox"


def test_a_photo_too_large_is_refused_at_scheduling_with_its_place_and_by_how_much(
    committed: Agency, tiktok: FakeTikTok, media_site: str
) -> None:
    owner = User.objects.get(email="owner@committed.example")
    account = connected(tiktok)
    photos = [upload_photo(image_bytes(1080, 1350, colour=c), f"{c}.jpg", owner) for c in ("red", "blue")]
    # (a third one stored before the photo checks, 1440 px on its short side)
    wide = PostMedia.objects.create(
        kind=MediaKind.PHOTO,
        file=photos[0].file.name,
        size_bytes=photos[0].size_bytes,
        mime_type="image/jpeg",
        sha256="a" * 64,
        width=1440,
        height=1920,
        created_by=owner,
    )

    with pytest.raises(PostValidationError) as refused:
        schedule_photos(account, [*photos, wide], owner)

    assert refused.value.errors["photos"] == (
        "Photo 3 is 1440×1920 pixels: its short side is 360 pixels over TikTok's 1,080. Resize it to "  # noqa: RUF001
        "at most 1,080 pixels on its short side and upload it again."
    )
    assert not Post.all_objects.exists()
    assert tiktok.create_post_calls(account.open_id) == []


def test_an_oversized_photo_upload_is_refused_and_deleted(committed: Agency, tiktok: FakeTikTok) -> None:
    owner = User.objects.get(email="owner@committed.example")
    with pytest.raises(Exception, match="short side is 360 pixels over"):
        upload_photo(image_bytes(1440, 2560), "big.jpg", owner)
    with pytest.raises(Exception, match="not a JPEG or WebP image"):
        upload_photo(image_bytes(800, 800, "PNG"), "screenshot.png", owner)
    assert not PostMedia.all_objects.exists()
    assert media_storage().agency_names(committed.schema_name) == []


def test_photo_posts_are_refused_when_no_media_address_is_set(
    committed: Agency, tiktok: FakeTikTok, settings: Any
) -> None:
    settings.TIKTOK_MEDIA_BASE_URL = ""
    owner = User.objects.get(email="owner@committed.example")
    photo = upload_photo(image_bytes(1080, 1080), "square.jpg", owner)

    with pytest.raises(PostValidationError) as refused:
        schedule_photos(connected(tiktok), [photo], owner, photo_cover_index=0)

    assert refused.value.errors["photos"] == NO_MEDIA_DOMAIN


def test_the_photo_address_serves_only_photos_being_published_and_only_while_signed(
    committed: Agency, tiktok: FakeTikTok, media_site: str, settings: Any
) -> None:
    owner = User.objects.get(email="owner@committed.example")
    data = image_bytes(1080, 1080)
    photo = upload_photo(data, "square.jpg", owner)
    post = schedule_photos(connected(tiktok), [photo], owner, photo_cover_index=0)
    url = photo_url(schema_name=committed.schema_name, media=photo)

    # A scheduled post's photo is not served yet; one being published is, byte for byte
    assert httpx.get(url).status_code == 404
    Post.objects.filter(pk=post.pk).update(status=PostStatus.PUBLISHING)
    served = httpx.get(url)
    assert served.status_code == 200 and served.content == data
    assert served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["Cache-Control"] == "private, no-store"
    # A forged or altered token, or one past its lifetime, finds nothing
    assert httpx.get(url[:-8] + "AAAA.jpg").status_code == 404
    assert httpx.get(media_site + "not-a-token").status_code == 404
    settings.TIKTOK_MEDIA_URL_SECONDS = -1
    assert httpx.get(url).status_code == 404


def test_the_carousel_reorders_and_removes_only_the_persons_own_photos(
    committed: Agency, tiktok: FakeTikTok
) -> None:
    owner = User.objects.get(email="owner@committed.example")
    photos = [
        upload_photo(image_bytes(1080, 1080, colour=c), f"{c}.jpg", owner) for c in ("red", "blue", "tan")
    ]
    client = Client(HTTP_HOST=f"{committed.slug}.localhost")
    client.force_login(owner)
    ids = [str(p.pk) for p in photos]

    moved = client.post("/posts/photos/carousel/", {"photo_ids": ids, "move": f"{ids[2]}:left"})
    assert moved.status_code == 200
    shown = re.findall(r'name="photo_ids" value="([^"]+)"', moved.content.decode())
    assert shown == [ids[0], ids[2], ids[1]]
    removed = client.post("/posts/photos/carousel/", {"photo_ids": ids, "remove": ids[0]})
    assert re.findall(r'name="photo_ids" value="([^"]+)"', removed.content.decode()) == ids[1:]

    # Someone else's upload is not theirs to put in a post
    colleague = User.objects.create_user(email="colleague@committed.example", password="x" * 20)
    other = Client(HTTP_HOST=f"{committed.slug}.localhost")
    other.force_login(colleague)
    assert other.post("/posts/photos/carousel/", {"photo_ids": ids}).status_code == 404


def test_the_post_page_shows_a_photo_posts_photos_in_order_with_its_cover(
    committed: Agency, tiktok: FakeTikTok, media_site: str
) -> None:
    owner = User.objects.get(email="owner@committed.example")
    photos = [upload_photo(image_bytes(1080, 1080, colour=c), f"{c}.jpg", owner) for c in ("red", "blue")]
    post = schedule_photos(connected(tiktok), photos, owner)
    client = Client(HTTP_HOST=f"{committed.slug}.localhost")
    client.force_login(owner)

    page = client.get(f"/posts/{post.pk}/").content.decode()

    assert re.findall(
        r'<img class="carousel-thumb" src="/posts/media/([^/]+)/file/" alt="([^"]+)"', page
    ) == [
        (str(photos[0].pk), "Photo 1"),
        (str(photos[1].pk), "Photo 2 (cover)"),
    ]
    assert "Sourdough, rye and spelt, out of the oven at six." in page
    assert '<dd id="post-kind">A photo post: 2 photos, photo 2 as the cover</dd>' in page


# --- The composer's carousel, with and without JavaScript ---


def owner_client(agency: Agency) -> Client:
    client = Client(HTTP_HOST=f"{agency.slug}.localhost")
    client.force_login(User.objects.get(email="owner@committed.example"))
    return client


def photo_file(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def carousel(response: Any) -> list[str]:
    return re.findall(r'name="photo_ids" value="([^"]+)"', response.content.decode())


def cover(response: Any) -> str:
    [chosen] = re.findall(r'name="photo_cover" value="([^"]+)" checked', response.content.decode())
    return chosen


def photos_error(response: Any) -> list[str]:
    block = re.search(r'<p class="field-error" id="photos-error"[^>]*>(.*?)</p>', response.content.decode())
    assert block is not None
    return [html.unescape(line) for line in re.findall(r'<span class="error-line">(.*?)</span>', block[1])]


def compose_photos(account: Any, **changes: Any) -> dict[str, Any]:
    when = timezone.now() + dt.timedelta(hours=2)
    return {
        "account": str(account.pk),
        "media_type": "photo",
        "caption": "Two loaves",
        "description": "Rye and spelt, out at six.",
        "privacy_level": "PUBLIC_TO_EVERYONE",
        "mode": "direct",
        "scheduled_date": when.date().isoformat(),
        "scheduled_time": when.strftime("%H:%M:%S"),
        "time_zone": "UTC",
        "action": "schedule",
        **changes,
    }


def test_without_javascript_photos_go_with_the_form_are_reordered_and_scheduled_cover_and_all(
    committed: Agency, tiktok: FakeTikTok, settings: Any
) -> None:
    settings.TIKTOK_MEDIA_BASE_URL = "https://media.postline.example/tiktok-media/"
    client = owner_client(committed)
    account = connected(tiktok)
    rye, spelt = image_bytes(1080, 1350), image_bytes(1080, 1080, "WEBP", "olive")

    # Photos chosen with the form and "Add the chosen photos": the PNG is refused by name and
    # place, the others are added, and nothing else is checked or saved yet
    added = client.post(
        "/posts/new/",
        compose_photos(
            account,
            add_photos="1",
            photo=[
                photo_file("rye.jpg", rye),
                photo_file("notes.png", image_bytes(800, 800, "PNG")),
                photo_file("spelt.webp", spelt),
            ],
        ),
    )
    assert added.status_code == 200
    first, second = carousel(added)
    assert [PostMedia.objects.get(pk=pk).original_name for pk in (first, second)] == ["rye.jpg", "spelt.webp"]
    assert photos_error(added) == [
        "Photo 2 (notes.png) is not a JPEG or WebP image (we check what the file contains, not its "
        "name). Save it as JPEG and upload it again."
    ]
    page = added.content.decode()
    assert "Rye and spelt, out at six." in page and 'id="privacy_level-error" hidden' in page
    assert cover(added) == first and not Post.objects.exists()
    assert len(photo_objects(committed)) == 2  # the PNG left nothing

    # Spelt is made the cover, then moved first: the cover follows its photo
    moved = client.post(
        "/posts/new/",
        compose_photos(account, photo_ids=[first, second], photo_cover=second, move=f"{second}:left"),
    )
    assert carousel(moved) == [second, first] and cover(moved) == second
    assert re.findall(r'<li data-photo="([^"]+)"( class="is-cover")?>', moved.content.decode()) == [
        (second, ' class="is-cover"'),
        (first, ""),
    ]  # the preview: the photos in order, the cover marked

    # A third photo too large on its short side, sent with Schedule: refused by name, place and
    # by how much, nothing saved, the carousel as it was
    refused = client.post(
        "/posts/new/",
        compose_photos(
            account,
            photo_ids=[second, first],
            photo_cover=second,
            photo=photo_file("big.jpg", image_bytes(1440, 1920)),
        ),
    )
    assert refused.status_code == 200 and not Post.objects.exists()
    assert carousel(refused) == [second, first] and cover(refused) == second
    assert photos_error(refused) == [
        "Photo 3 (big.jpg) is 1440×1920 pixels: its short side is 360 pixels over TikTok's 1,080. "  # noqa: RUF001
        "Resize it to at most 1,080 pixels on its short side and upload it again."
    ]

    scheduled = client.post(
        "/posts/new/", compose_photos(account, photo_ids=[second, first], photo_cover=second)
    )
    assert scheduled.status_code == 302, scheduled.content.decode()[:2000]
    post = Post.objects.get()
    assert post.status == PostStatus.SCHEDULED and post.photo_count == 2 and post.photo_cover_index == 0
    assert [p.original_name for p in post_photos(post)] == ["spelt.webp", "rye.jpg"]

    # Editing it starts from its carousel, cover included
    editing = client.get(f"/posts/{post.pk}/edit/")
    assert carousel(editing) == [second, first] and cover(editing) == second


def test_the_carousel_upload_takes_several_photos_names_a_refused_one_and_keeps_the_order(
    committed: Agency, tiktok: FakeTikTok
) -> None:
    client = owner_client(committed)
    owner = User.objects.get(email="owner@committed.example")
    earlier = [upload_photo(image_bytes(1080, 1080, colour=c), f"{c}.jpg", owner) for c in ("red", "blue")]
    ids = [str(earlier[1].pk), str(earlier[0].pk)]  # reordered on the page

    answer = client.post(
        "/posts/photos/",
        {
            "photo_ids": ids,
            "photo_cover": ids[1],
            "photo": [
                photo_file("huge.jpg", image_bytes(1440, 2560)),
                photo_file("tan.jpg", image_bytes(1080, 1350, colour="tan")),
            ],
        },
        HTTP_HX_REQUEST="true",
    )

    assert answer.status_code == 200
    shown = carousel(answer)
    assert shown[:2] == ids and len(shown) == 3 and cover(answer) == ids[1]
    assert PostMedia.objects.get(pk=shown[2]).original_name == "tan.jpg"
    assert photos_error(answer) == [
        "Photo 3 (huge.jpg) is 1440×2560 pixels: its short side is 360 pixels over TikTok's 1,080. "  # noqa: RUF001
        "Resize it to at most 1,080 pixels on its short side and upload it again."
    ]
    # The preview's photos come along, out of band, in the same order
    preview = re.search(
        r'<ol id="preview-photos"[^>]*hx-swap-oob="true"[^>]*>(.*?)</ol>', answer.content.decode(), re.S
    )
    assert preview is not None and re.findall(r'data-photo="([^"]+)"', preview[1]) == shown
    assert len(photo_objects(committed)) == 3  # the refused one is gone
    # Nothing chosen: said so
    assert photos_error(client.post("/posts/photos/", {"photo_ids": ids})) == [
        "Choose one or more JPEG or WebP photos to add."
    ]


def test_another_persons_photos_and_people_who_may_not_draft_get_404(
    committed: Agency, tiktok: FakeTikTok
) -> None:
    owner = User.objects.get(email="owner@committed.example")
    photo = upload_photo(image_bytes(1080, 1080), "mine.jpg", owner)
    account = connected(tiktok)
    colleague = User.objects.create_user(
        email="colleague@committed.example", password="x" * 20, role=Role.EDITOR
    )
    access_set(user=colleague, account=account, perms=[Perm.VIEW, Perm.DRAFT], by=None)
    viewer = User.objects.create_user(email="viewer@committed.example", password="x" * 20, role=Role.VIEWER)
    access_set(user=viewer, account=account, perms=[Perm.VIEW], by=None)
    as_colleague, as_viewer = (
        Client(HTTP_HOST=f"{committed.slug}.localhost"),
        Client(HTTP_HOST=f"{committed.slug}.localhost"),
    )
    as_colleague.force_login(colleague)
    as_viewer.force_login(viewer)
    data = compose_photos(account, photo_ids=[str(photo.pk)], action="draft")

    # The colleague may draft, but the photo is not theirs: in the form, moved, or added to
    assert as_colleague.post("/posts/new/", data).status_code == 404
    assert as_colleague.post("/posts/new/", {**data, "move": f"{photo.pk}:left"}).status_code == 404
    sent = {"photo": photo_file("loaf.jpg", image_bytes(1080, 1080))}
    assert as_colleague.post("/posts/photos/", {"photo_ids": [str(photo.pk)], **sent}).status_code == 404
    # Someone who may only look sends no photo at all
    assert as_viewer.post("/posts/photos/", sent).status_code == 404
    assert (
        as_viewer.post("/posts/new/", {**compose_photos(account, add_photos="1"), **sent}).status_code == 404
    )
    assert not Post.objects.exists()
    assert len(photo_objects(committed)) == 1  # nothing of theirs was kept


def test_photo_posts_say_how_many_photos_in_the_list_and_the_calendar(
    committed: Agency, tiktok: FakeTikTok, media_site: str
) -> None:
    owner = User.objects.get(email="owner@committed.example")
    account = connected(tiktok)
    photos = [
        upload_photo(image_bytes(1080, 1080, colour=c), f"{c}.jpg", owner) for c in ("red", "blue", "tan")
    ]
    post = schedule_photos(account, photos, owner)
    client = owner_client(committed)

    listed = client.get("/posts/").content.decode()
    on_calendar = client.get("/calendar/", {"view": "week"}).content.decode()

    assert post.photo_count == 3
    assert '<span class="kind-badge">3 photos</span>' in listed
    assert '<span class="cal-kind">3 photos</span>' in on_calendar


def test_reviewers_see_a_photo_posts_photos_and_description_in_the_approvals_queue(
    committed: Agency, tiktok: FakeTikTok, media_site: str
) -> None:
    account = connected(tiktok)
    TikTokAccount.objects.filter(pk=account.pk).update(requires_approval=True)
    account.refresh_from_db()
    editor = User.objects.create_user(email="editor@committed.example", password="x" * 20, role=Role.EDITOR)
    access_set(user=editor, account=account, perms=[Perm.VIEW, Perm.DRAFT], by=None)
    photos = [upload_photo(image_bytes(1080, 1080, colour=c), f"{c}.jpg", editor) for c in ("red", "blue")]
    post = post_save(
        post=None,
        content=PostContent(
            account=account,
            caption="Two loaves",
            description="Rye and spelt, out at six.",
            privacy_level="PUBLIC_TO_EVERYONE",
            media_type=MediaType.PHOTO,
            photo_cover_index=1,
        ),
        media=None,
        photos=photos,
        by=editor,
        scheduled_at=timezone.now() + dt.timedelta(hours=2),
        time_zone="UTC",
        schedule=True,
        creator=creator_check(account=account),
    )
    assert post.status == PostStatus.PENDING_APPROVAL

    queue = owner_client(committed).get("/posts/approvals/").content.decode()

    assert re.findall(r'<img src="/posts/media/([^/]+)/file/" alt="([^"]+)"', queue) == [
        (str(photos[0].pk), "Photo 1"),
        (str(photos[1].pk), "Photo 2 (cover)"),
    ]
    assert '<span class="kind-badge">2 photos</span>' in queue
    assert "Rye and spelt, out at six." in queue
