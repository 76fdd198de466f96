from django.db import migrations, models
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce


def count_photos(apps, schema_editor):
    Post = apps.get_model("posts", "Post")
    PostMedia = apps.get_model("posts", "PostMedia")
    photos = (
        PostMedia.objects.filter(post=OuterRef("pk"), kind="photo", deleted_at__isnull=True)
        .order_by()
        .values("post")
        .annotate(n=Count("pk"))
        .values("n")
    )
    Post.objects.filter(media_type="photo").update(photo_count=Coalesce(Subquery(photos), 0))


class Migration(migrations.Migration):
    dependencies = [
        ("posts", "0009_post_list_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="post",
            name="photo_count",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.RunPython(count_photos, migrations.RunPython.noop),
    ]
