"""The media library: every upload kept per agency with its name, labels, facts and where it is
used; search and filters; reuse in the composer (the same stored object is what TikTok receives)
and in the bulk import by name; deleting something in use refused with where; the plan's storage
limit. Through HTTP on real agencies, real PostgreSQL and the real object store, TikTok played by
the fake over a real socket."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.template.defaultfilters import filesizeformat
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context
from PIL import Image

from apps.accounts.models import TikTokAccount
from apps.accounts.permissions import Perm, access_set
from apps.audit.models import AuditLog
from apps.fake_tiktok.server import FakeTikTok
from apps.imports.models import ImportStatus, PostImport
from apps.imports.services import import_run
from apps.media.models import LibraryKind, MediaItem
from apps.media.storage import media_storage
from apps.posts.models import Post, PostMedia, PostStatus
from apps.publishing.dispatcher import dispatch_due
from apps.publishing.services import post_publish
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, client_for
from tests.factories import PostFactory, TikTokAccountFactory
from tests.mp4 import mp4_bytes

PUBLIC = "fake-open-public-001"


def signed_in(agency: Agency, email: str = "owner@shared.example") -> Client:
    client = client_for(agency)
    assert client.post("/login/", {"username": email, "password": OWNER_PASSWORD}).status_code == 302
    return client


def connect(agency: Agency, fake: FakeTikTok, open_id: str = PUBLIC) -> TikTokAccount:
    tokens = fake.issue_tokens(open_id)
    with schema_context(agency.schema_name):
        return TikTokAccountFactory(
            open_id=open_id,
            username="luna.bakes",
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
        )


def jpeg_bytes(width: int = 1080, height: int = 1920) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(out, "JPEG")
    return out.getvalue()


def library_upload(client: Client, data: bytes, name: str, content_type: str = "video/mp4") -> Any:
    return client.post("/media/upload/", {"file": SimpleUploadedFile(name, data, content_type=content_type)})


def item_named(agency: Agency, name: str) -> MediaItem:
    with schema_context(agency.schema_name):
        return MediaItem.objects.get(name=name)


def stored_names(agency: Agency) -> list[str]:
    return media_storage().agency_names(agency.schema_name)


def names_on_page(page: str) -> list[str]:
    return re.findall(r'<a href="/media/[0-9a-f-]{36}/">([^<]+)</a>', page)


@pytest.mark.django_db
def test_an_upload_is_kept_with_its_facts_and_a_thumbnail_and_counts_towards_storage(
    alpha: Agency, django_capture_on_commit_callbacks: Any
) -> None:
    owner = signed_in(alpha)
    video = mp4_bytes(duration=12, width=1080, height=1920, padding=40_000)
    image = jpeg_bytes(1080, 1350)
    # When a video and an image are uploaded to the library (the image's thumbnail made after commit)
    assert library_upload(owner, video, "launch teaser.mp4").status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        assert library_upload(owner, image, "loaf.jpg", "image/jpeg").status_code == 302
    # Then each is kept with its facts; the image has a downscaled thumbnail in storage
    clip, photo = item_named(alpha, "launch teaser.mp4"), item_named(alpha, "loaf.jpg")
    assert (clip.kind, clip.size_bytes, clip.width, clip.height) == (
        LibraryKind.VIDEO,
        len(video),
        1080,
        1920,
    )
    assert clip.duration_seconds == 12
    assert (photo.kind, photo.width, photo.height) == (LibraryKind.IMAGE, 1080, 1350)
    with schema_context(alpha.schema_name):
        thumb = media_storage().read_range(str(photo.thumbnail.name), 0, 10_000_000)
    with Image.open(io.BytesIO(thumb)) as small:
        assert max(small.size) <= 320 and small.format == "JPEG"
    # And the page lists both, with size, length, dimensions, and the storage used
    page = owner.get("/media/").content.decode()
    assert names_on_page(page) == ["loaf.jpg", "launch teaser.mp4"]  # newest first
    assert "12 s" in page and "1080×1920" in page and "1080×1350" in page  # noqa: RUF001
    assert f"/media/{photo.pk}/thumbnail/" in page
    assert "img/library-video.svg" in page  # a video has no frame grabbed: a placeholder
    total = len(video) + len(image)
    limit = settings.MEDIA_STORAGE_LIMITS[alpha.plan]
    assert f"Storage used: {filesizeformat(total)} of {filesizeformat(limit)} (0%)" in page


@pytest.mark.django_db
def test_search_by_name_and_filter_by_label_and_kind(alpha: Agency) -> None:
    owner = signed_in(alpha)
    for name in ("summer-bake.mp4", "winter-bake.mp4", "summer-poster.jpg"):
        data = jpeg_bytes(800, 1000) if name.endswith(".jpg") else mp4_bytes(padding=len(name))
        assert library_upload(owner, data, name, "image/jpeg").status_code == 302
    summer_bake = item_named(alpha, "summer-bake.mp4")
    # Given labels set on an item's page
    response = owner.post(
        f"/media/{summer_bake.pk}/", {"name": "summer-bake.mp4", "labels": "Client A, promo"}
    )
    assert response.status_code == 302
    assert item_named(alpha, "summer-bake.mp4").labels == ["client a", "promo"]
    with schema_context(alpha.schema_name):
        edit = AuditLog.objects.get(action="media.edited", object_id=str(summer_bake.pk))
        assert edit.changes == {"labels": [[], ["client a", "promo"]]}
    # Then the search, the label and the kind each narrow the list
    assert names_on_page(owner.get("/media/?q=SUMMER").content.decode()) == [
        "summer-poster.jpg",
        "summer-bake.mp4",
    ]
    assert names_on_page(owner.get("/media/?label=promo").content.decode()) == ["summer-bake.mp4"]
    assert names_on_page(owner.get("/media/?kind=image").content.decode()) == ["summer-poster.jpg"]
    assert names_on_page(owner.get("/media/?q=bake&kind=video").content.decode()) == [
        "winter-bake.mp4",
        "summer-bake.mp4",
    ]
    # htmx gets only the results
    fragment = owner.get("/media/?q=winter", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and names_on_page(fragment) == ["winter-bake.mp4"]


@pytest.mark.django_db
def test_the_list_is_paged(alpha: Agency) -> None:
    with schema_context(alpha.schema_name):
        owner_user = User.objects.get(email="owner@shared.example")
        for number in range(30):
            MediaItem.objects.create(
                kind=LibraryKind.VIDEO,
                name=f"clip {number:02d}",
                file=f"library/video/{number}.mp4",
                size_bytes=1000,
                mime_type="video/mp4",
                sha256="0" * 64,
                created_by=owner_user,
            )
    owner = signed_in(alpha)
    first = owner.get("/media/").content.decode()
    assert len(names_on_page(first)) == 24 and names_on_page(first)[0] == "clip 29"
    older = re.search(r'href="/media/\?(after=[^"]+)" rel="next"', first)
    assert older is not None
    second = owner.get(f"/media/?{older.group(1)}").content.decode()
    assert names_on_page(second) == [f"clip {n:02d}" for n in range(5, -1, -1)]


@pytest.mark.django_db
def test_another_agencys_media_and_people_without_drafting_get_404(
    alpha: Agency, beta: Agency, tiktok: FakeTikTok
) -> None:
    owner = signed_in(alpha)
    assert library_upload(owner, mp4_bytes(), "secret.mp4").status_code == 302
    item = item_named(alpha, "secret.mp4")
    # Another agency's owner: the item does not exist there
    other = signed_in(beta)
    for path in (f"/media/{item.pk}/", f"/media/{item.pk}/file/", f"/media/{item.pk}/thumbnail/"):
        assert other.get(path).status_code == 404
    assert other.post(f"/media/{item.pk}/delete/").status_code == 404
    assert "secret.mp4" not in other.get("/media/").content.decode()
    # A viewer of the same agency (may not write posts) has no library at all
    account = connect(alpha, tiktok)
    with schema_context(alpha.schema_name):
        viewer = User.objects.create_user("viewer@alpha.example", OWNER_PASSWORD, role=Role.VIEWER)
        access_set(user=viewer, account=account, perms={Perm.VIEW}, by=None)
    viewing = signed_in(alpha, "viewer@alpha.example")
    assert viewing.get("/media/").status_code == 404
    assert viewing.get(f"/media/{item.pk}/").status_code == 404
    assert viewing.get(f"/media/{item.pk}/file/").status_code == 404
    assert viewing.post(f"/media/{item.pk}/", {"name": "mine"}).status_code == 404
    assert library_upload(viewing, mp4_bytes(), "sneaky.mp4").status_code == 404
    assert 'href="/media/"' not in viewing.get("/posts/").content.decode()
    # nor may they pick it in the composer
    with schema_context(alpha.schema_name):
        assert MediaItem.objects.filter(name="sneaky.mp4").count() == 0
    # The owner may open it
    assert owner.get(f"/media/{item.pk}/").status_code == 200
    assert owner.get(f"/media/{item.pk}/file/").status_code == 302  # to a short-lived presigned URL


@pytest.mark.django_db
def test_deleting_a_file_in_use_is_refused_with_the_posts_and_an_unused_one_goes_from_storage(
    alpha: Agency, tiktok: FakeTikTok, django_capture_on_commit_callbacks: Any
) -> None:
    owner = signed_in(alpha)
    account = connect(alpha, tiktok)
    assert library_upload(owner, mp4_bytes(), "used.mp4").status_code == 302
    assert library_upload(owner, mp4_bytes(padding=10), "unused.mp4").status_code == 302
    used, unused = item_named(alpha, "used.mp4"), item_named(alpha, "unused.mp4")
    # Given a post whose video is the library item
    with schema_context(alpha.schema_name):
        post = PostFactory(account=account, caption="Bread day", status=PostStatus.DRAFT, scheduled_at=None)
        PostMedia.objects.create(
            post=post, library_item=used, file=used.file.name, original_name=used.name, **used.facts()
        )
    assert f"/posts/{post.pk}/" in owner.get("/media/").content.decode()
    # When it is deleted: refused, naming the post, and nothing is removed
    with django_capture_on_commit_callbacks(execute=True):
        refused = owner.post(f"/media/{used.pk}/delete/")
    page = refused.content.decode()
    assert refused.status_code == 409
    assert "Not deleted: used.mp4 is used by 1 post" in page
    assert f'href="/posts/{post.pk}/">Bread day</a>' in page
    with schema_context(alpha.schema_name):
        assert MediaItem.objects.filter(pk=used.pk).exists()
    assert str(used.file.name) in stored_names(alpha)
    # A post that used it but is deleted (and may be restored) does not stop the delete; the
    # object stays for that post
    with schema_context(alpha.schema_name):
        Post.objects.filter(pk=post.pk).delete()
    with django_capture_on_commit_callbacks(execute=True):
        assert owner.post(f"/media/{used.pk}/delete/").status_code == 302
    assert str(used.file.name) in stored_names(alpha)
    # The unused one is deleted, and its object with it
    with django_capture_on_commit_callbacks(execute=True):
        assert owner.post(f"/media/{unused.pk}/delete/").status_code == 302
    with schema_context(alpha.schema_name):
        assert not MediaItem.objects.filter(pk=unused.pk).exists()
    assert str(unused.file.name) not in stored_names(alpha)
    with schema_context(alpha.schema_name):
        assert AuditLog.objects.filter(action="media.deleted", object_id=str(unused.pk)).exists()
    assert names_on_page(owner.get("/media/").content.decode()) == []


@pytest.mark.django_db
def test_an_upload_past_the_plans_storage_is_refused_and_nothing_is_kept(
    alpha: Agency, settings: Any
) -> None:
    owner = signed_in(alpha)
    first = mp4_bytes(padding=300_000)
    assert library_upload(owner, first, "first.mp4").status_code == 302
    settings.MEDIA_STORAGE_LIMITS = {alpha.plan: len(first) + 100_000}
    before = stored_names(alpha)
    # When a second video would go past the plan's storage (from the library page and the composer)
    response = library_upload(owner, mp4_bytes(padding=200_000), "second.mp4")
    page = owner.get(response["Location"]).content.decode()
    # (the library page's upload stops as it passes what is left, the rest never read; a body
    # larger than what is left is not refused before the view can say why)
    big = library_upload(owner, mp4_bytes(padding=1_500_000), "big.mp4")
    assert big.status_code == 302
    assert "Not uploaded: this file is larger than that" in owner.get(big["Location"]).content.decode()
    assert "Not uploaded: this file is larger than that, and the agency&#x27;s media library has" in page
    assert "left of its plan" in page
    composer = owner.post(
        "/posts/media/", {"video": SimpleUploadedFile("third.mp4", mp4_bytes(padding=200_001))}
    )
    assert composer.status_code == 400 and "Not uploaded: this file is" in composer.content.decode()
    # Then no row and no object is kept of either
    with schema_context(alpha.schema_name):
        assert list(MediaItem.objects.values_list("name", flat=True)) == ["first.mp4"]
        assert PostMedia.all_objects.count() == 1
    assert stored_names(alpha) == before
    # And the page shows how full the library is
    assert "Storage used:" in page and 'id="storage-meter"' in page


@pytest.mark.django_db
def test_a_video_reused_from_the_library_is_what_tiktok_receives(alpha: Agency, tiktok: FakeTikTok) -> None:
    owner = signed_in(alpha)
    account = connect(alpha, tiktok)
    video = mp4_bytes(duration=12, width=1080, height=1920, padding=123_456)
    assert library_upload(owner, video, "launch.mp4").status_code == 302
    item = item_named(alpha, "launch.mp4")
    before = stored_names(alpha)
    # The composer offers it, chosen when opened from the library's "Use in a new post"
    compose = owner.get(f"/posts/new/?account={account.pk}&library_item={item.pk}").content.decode()
    assert re.search(rf'<option value="{item.pk}" selected>launch.mp4', compose)
    # When two posts are published with it, picked from the library instead of uploaded again
    posts = []
    for caption in ("First with the teaser", "Second with the teaser"):
        response = owner.post(
            "/posts/new/",
            {
                "account": str(account.pk),
                "caption": caption,
                "privacy_level": "PUBLIC_TO_EVERYONE",
                "mode": "direct",
                "time_zone": "Europe/Paris",
                "action": "now",
                "library_item": str(item.pk),
            },
        )
        assert response.status_code == 302, response.content.decode()[:3000]
        posts.append(response["Location"].strip("/").split("/")[-1])
    assert stored_names(alpha) == before  # nothing stored again
    with schema_context(alpha.schema_name):
        dispatch_due()
        connection.set_schema(alpha.schema_name)
        for pk in posts:
            post_publish(post_id=pk)
        published = list(Post.objects.filter(pk__in=posts))
        media = list(PostMedia.objects.filter(post__in=published))
    # Then TikTok received exactly the library's bytes for each, from the one stored object
    digest = hashlib.sha256(video).hexdigest()
    for post in published:
        assert post.publish_id, post.last_error_message
        received = tiktok.publish(post.publish_id)
        assert received["received_bytes"] == len(video) and received["sha256"] == digest
    assert {m.library_item_id for m in media} == {item.pk}
    assert {str(m.file.name) for m in media} == {str(item.file.name)}
    # And the library says where it is used
    page = owner.get(f"/media/{item.pk}/").content.decode()
    assert "First with the teaser" in page and "Second with the teaser" in page


@pytest.mark.django_db
def test_the_import_finds_videos_by_their_library_name(alpha: Agency, tiktok: FakeTikTok) -> None:
    owner = signed_in(alpha)
    connect(alpha, tiktok)
    assert library_upload(owner, mp4_bytes(), "IMG_0042.mp4").status_code == 302
    item = item_named(alpha, "IMG_0042.mp4")
    # Given the item renamed in the library
    assert owner.post(f"/media/{item.pk}/", {"name": "Spring teaser", "labels": ""}).status_code == 302
    body = (
        "Account,Caption,Privacy,Media\n"
        "luna.bakes,By its name,Everyone,Spring teaser\n"
        "luna.bakes,By its old name,Everyone,IMG_0042.mp4\n"
    )
    response = owner.post("/posts/import/", {"file": SimpleUploadedFile("plan.csv", body.encode())})
    assert response.status_code == 302
    columns = response["Location"]
    page = owner.get(columns).content.decode()
    chosen = dict(re.findall(r'name="(column-\d+)">.*?<option value="(\w+)" selected', page, re.S))
    preview = owner.post(columns, {**chosen, "mode": "draft"})["Location"]
    page = owner.get(preview).content.decode()
    # The old file name is no longer the library's name for it
    assert "No video named “IMG_0042.mp4” in the agency&#x27;s media library" in page
    # When the good line is imported
    with schema_context(alpha.schema_name):
        post_import = PostImport.objects.get()
        PostImport.objects.filter(pk=post_import.pk).update(status=ImportStatus.QUEUED)
        import_run(str(post_import.pk))
        post = Post.objects.get(caption="By its name")
        media = PostMedia.objects.get(post=post)
    # Then its post's video is the library item, on the same stored object
    assert media.library_item_id == item.pk and str(media.file.name) == str(item.file.name)
    assert "By its name" in owner.get(f"/media/{item.pk}/").content.decode()


@pytest.mark.django_db
def test_images_reused_from_the_library_join_the_carousel_without_storing_anything(
    alpha: Agency, tiktok: FakeTikTok
) -> None:
    owner = signed_in(alpha)
    account = connect(alpha, tiktok)
    for name in ("one.jpg", "two.jpg"):
        assert library_upload(owner, jpeg_bytes(1080, 1350), name, "image/jpeg").status_code == 302
    one, two = item_named(alpha, "one.jpg"), item_named(alpha, "two.jpg")
    before = stored_names(alpha)
    compose = owner.get(f"/posts/new/?account={account.pk}").content.decode()
    assert 'name="library_photos"' in compose and f'value="{one.pk}">one.jpg' in compose
    # When both are chosen from the library for a photo post (without JavaScript)
    response = owner.post(
        "/posts/new/",
        {
            "account": str(account.pk),
            "media_type": "photo",
            "caption": "Two loaves",
            "privacy_level": "PUBLIC_TO_EVERYONE",
            "mode": "direct",
            "time_zone": "Europe/Paris",
            "action": "draft",
            "library_photos": [str(two.pk), str(one.pk)],
            "add_photos": "1",
        },
    )
    page = response.content.decode()
    # Then the carousel holds them in the order chosen, and nothing new is stored
    assert response.status_code == 200
    assert page.index("Photo 1: two.jpg") < page.index("Photo 2: one.jpg")
    assert stored_names(alpha) == before
    with schema_context(alpha.schema_name):
        rows = PostMedia.objects.filter(library_item__in=[one, two], post__isnull=True)
        assert {str(m.file.name) for m in rows} == {str(one.file.name), str(two.file.name)}


@pytest.mark.django_db
def test_the_settings_show_the_storage_used_and_the_list_reads_a_fixed_number_of_queries(
    alpha: Agency, tiktok: FakeTikTok, django_assert_max_num_queries: Any
) -> None:
    owner = signed_in(alpha)
    account = connect(alpha, tiktok)
    video = mp4_bytes(padding=5_000)
    assert library_upload(owner, video, "a.mp4").status_code == 302
    settings_page = owner.get("/settings/").content.decode()
    assert f"{filesizeformat(len(video))} used of" in settings_page and 'href="/media/"' in settings_page
    # Given 20 items each used by two posts, the list's queries do not grow with them
    item = item_named(alpha, "a.mp4")
    with schema_context(alpha.schema_name):
        for number in range(20):
            extra = MediaItem.objects.create(
                kind=LibraryKind.VIDEO, name=f"v{number}", file=item.file.name, **item.facts()
            )
            for _ in range(2):
                post = PostFactory(account=account, status=PostStatus.DRAFT, scheduled_at=None)
                PostMedia.objects.create(post=post, library_item=extra, file=item.file.name, **extra.facts())
    with django_assert_max_num_queries(14):
        page = owner.get("/media/").content.decode()
    assert len(names_on_page(page)) == 21 and page.count('href="/posts/') >= 40


@pytest.mark.django_db
def test_retention_keeps_an_object_the_library_still_names(
    alpha: Agency, tiktok: FakeTikTok, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from io import StringIO

    from django.core.management import call_command

    settings.RETENTION_DAYS = {"posts.post": 30, "media.mediaitem": 30}
    owner = signed_in(alpha)
    account = connect(alpha, tiktok)
    assert library_upload(owner, mp4_bytes(), "kept.mp4").status_code == 302
    item = item_named(alpha, "kept.mp4")
    name = str(item.file.name)
    # Given a post that used the library's video, deleted 40 days ago
    with schema_context(alpha.schema_name):
        post = PostFactory(account=account, status=PostStatus.DRAFT, scheduled_at=None)
        PostMedia.objects.create(post=post, library_item=item, file=name, **item.facts())
        Post.all_objects.filter(pk=post.pk).update(deleted_at=timezone.now() - dt.timedelta(days=40))
    # When retention removes it, the library's object stays
    with django_capture_on_commit_callbacks(execute=True):
        call_command("purge_expired", "--agency", "alpha", stdout=StringIO())
    with schema_context(alpha.schema_name):
        assert not Post.all_objects.filter(pk=post.pk).exists()
    assert name in stored_names(alpha)
    # And once the item is deleted (no row names the object any more), the object goes too
    with django_capture_on_commit_callbacks(execute=True):
        assert owner.post(f"/media/{item.pk}/delete/").status_code == 302
    assert name not in stored_names(alpha)


@pytest.mark.django_db
def test_a_member_sees_their_uploads_and_what_their_accounts_posts_use_not_another_clients(
    alpha: Agency, tiktok: FakeTikTok
) -> None:
    owner = signed_in(alpha)
    theirs = connect(alpha, tiktok)
    ours = connect(alpha, tiktok, "fake-open-studio-006")
    for name in ("client-a-unreleased.mp4", "for-us.mp4", "owner-unused.mp4"):
        assert library_upload(owner, mp4_bytes(padding=len(name)), name).status_code == 302
    with schema_context(alpha.schema_name):
        for account, name in ((theirs, "client-a-unreleased.mp4"), (ours, "for-us.mp4")):
            item = MediaItem.objects.get(name=name)
            post = PostFactory(account=account, status=PostStatus.DRAFT, scheduled_at=None)
            PostMedia.objects.create(post=post, library_item=item, file=item.file.name, **item.facts())
        editor = User.objects.create_user("editor@alpha.example", OWNER_PASSWORD, role=Role.EDITOR)
        access_set(user=editor, account=ours, perms={Perm.VIEW, Perm.DRAFT}, by=None)
    member = signed_in(alpha, "editor@alpha.example")
    assert library_upload(member, mp4_bytes(padding=99), "mine.mp4").status_code == 302
    # Then the member's library holds their own upload and what their account's posts use
    assert names_on_page(member.get("/media/").content.decode()) == ["mine.mp4", "for-us.mp4"]
    for hidden in ("client-a-unreleased.mp4", "owner-unused.mp4"):
        item = item_named(alpha, hidden)
        assert member.get(f"/media/{item.pk}/").status_code == 404
        assert member.get(f"/media/{item.pk}/file/").status_code == 404
        assert member.post(f"/media/{item.pk}/delete/").status_code == 404
    # ... nor can the composer take the hidden one
    hidden = item_named(alpha, "client-a-unreleased.mp4")
    response = member.post(
        "/posts/new/", {"account": str(ours.pk), "action": "draft", "library_item": str(hidden.pk)}
    )
    assert response.status_code == 404
    # The owner sees everything
    assert len(names_on_page(owner.get("/media/").content.decode())) == 4
