"""Every video and photo uploaded before the media library becomes a library item on its own
stored object (nothing is copied), so that the library holds all of the agency's media."""

from typing import Any

from django.db import migrations

KINDS = {"video": "video", "photo": "image"}


def forwards(apps: Any, schema_editor: Any) -> None:
    PostMedia = apps.get_model("posts", "PostMedia")
    MediaItem = apps.get_model("media", "MediaItem")
    rows = PostMedia._base_manager.filter(
        library_item__isnull=True, deleted_at__isnull=True, kind__in=list(KINDS)
    ).exclude(file="")
    for media in rows.iterator(chunk_size=500):
        item = MediaItem.objects.create(
            kind=KINDS[media.kind],
            name=(media.original_name or "Untitled")[:255],
            file=media.file.name,
            size_bytes=media.size_bytes,
            mime_type=media.mime_type,
            sha256=media.sha256,
            duration_seconds=media.duration_seconds,
            width=media.width,
            height=media.height,
            frame_rate=media.frame_rate,
            video_codec=media.video_codec,
            probed_at=media.probed_at,
            created_by_id=media.created_by_id,
            updated_by_id=media.created_by_id,
        )
        PostMedia._base_manager.filter(pk=media.pk).update(library_item=item)


def backwards(apps: Any, schema_editor: Any) -> None:
    PostMedia = apps.get_model("posts", "PostMedia")
    MediaItem = apps.get_model("media", "MediaItem")
    PostMedia._base_manager.update(library_item=None)
    MediaItem._base_manager.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("posts", "0012_postmedia_library_item"),
        ("media", "0001_media_library"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
