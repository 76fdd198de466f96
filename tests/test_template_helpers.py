"""The template helpers that write what Django's own tags write, faster: a wrong link or date on
every list page would be what people notice first."""

from __future__ import annotations

import datetime as dt
import uuid
from unicodedata import normalize

import pytest
from django.template import Context, Template
from django.urls import set_urlconf
from django.utils import timezone
from django.utils.html import escape

from apps.analytics.templatetags.counts import follower_rows
from apps.audit.changes import ARROW
from apps.common.text import shortened


def render(source: str, **values: object) -> str:
    return Template("{% load links days %}" + source).render(Context(values))


def test_row_links_and_navigation_links_are_what_the_url_tag_writes() -> None:
    ids = [uuid.uuid4(), uuid.uuid4()]
    for pk in ids:
        for name in ("posts:detail", "posts:approve", "posts:media_file"):
            ours = render(f"{{% id_url '{name}' pk %}}", pk=pk)
            assert ours == render(f"{{% url '{name}' pk %}}", pk=pk) and str(pk) in ours
    # One rendering with many rows: each row gets its own id, not the first row's.
    many = render("{% for pk in ids %}{% id_url 'posts:detail' pk %} {% endfor %}", ids=ids)
    assert many.split() == [f"/posts/{pk}/" for pk in ids]
    for name in ("home", "posts:list", "team:list", "notifications:bell"):
        assert render(f"{{% named_url '{name}' %}}") == render(f"{{% url '{name}' %}}")


def test_a_link_the_site_does_not_have_is_left_empty_as_the_url_tag_leaves_it() -> None:
    set_urlconf("config.urls_public")  # the public site: no post pages, no agency navigation
    try:
        assert render("[{% id_url 'posts:detail' pk %}]", pk=uuid.uuid4()) == "[]"
        assert render("{% named_url 'posts:list' as p %}[{{ p }}]") == "[]"
        assert render("{% url 'posts:list' as p %}[{{ p }}]") == "[]"
    finally:
        set_urlconf(None)
    # Back on an agency's site, the same name is found again (nothing cached across sites).
    assert render("{% named_url 'posts:list' %}") == "/posts/"


def test_an_id_that_is_not_one_is_refused_rather_than_written_into_a_link() -> None:
    with pytest.raises(ValueError):
        render("{% id_url 'posts:detail' pk %}", pk='"><script>')


def test_days_are_written_as_the_date_filter_writes_them() -> None:
    for day in (dt.date(2026, 1, 1), dt.date(2026, 12, 6), dt.date(2024, 2, 29)):
        for fmt in ("D j M Y", "j F", "j M"):
            assert render(f'{{{{ d|day:"{fmt}" }}}}', d=day) == render(f'{{{{ d|date:"{fmt}" }}}}', d=day)
    moment = timezone.now()
    assert render('{{ d|day:"j M H:i" }}', d=moment) == render('{{ d|date:"j M H:i" }}', d=moment)


def test_the_follower_table_shows_each_day_its_count_and_its_signed_change() -> None:
    class Snapshot:
        def __init__(self, date: dt.date, followers: int, growth: int) -> None:
            self.date, self.followers, self.follower_growth = date, followers, growth

    days = [Snapshot(dt.date(2026, 12, 5), 12345, 0), Snapshot(dt.date(2026, 12, 6), 12400, 55)]
    html = follower_rows(days)
    assert '<th scope="row">Sat 5 Dec 2026</th><td data-label="Followers">12,345</td>' in html
    assert '<td data-label="Change">0</td>' in html and '<td data-label="Change">+55</td>' in html


def test_a_row_without_an_id_gets_no_link() -> None:
    assert render("{% id_url 'posts:detail' pk as link %}[{{ link }}]", pk=None) == "[]"
    assert render("{% url 'posts:detail' pk as link %}[{{ link }}]", pk=None) == "[]"


def test_a_posts_settings_say_what_goes_to_tiktok_with_it() -> None:
    from apps.posts.templatetags.post_settings import post_settings
    from tests.factories import PostFactory

    branded = PostFactory.build(
        privacy_level="FOLLOWER_OF_CREATOR",
        allow_comment=True,
        commercial_disclosure=True,
        brand_organic=True,
        brand_content=True,
        is_aigc=True,
        mode="direct",
    )
    html = post_settings(branded)
    assert "<dt>Who can see it</dt><dd>Followers</dd>" in html
    assert "<dt>Comments</dt><dd>Allowed</dd>" in html and "<dt>Duet</dt><dd>Not allowed</dd>" in html
    assert "Your brand (TikTok labels it “Promotional content”); Branded content" in html
    assert "<dd>Yes: TikTok labels it as AI-generated</dd>" in html
    unset = post_settings(PostFactory.build(privacy_level="", commercial_disclosure=True, mode="direct"))
    assert "<dd>Not chosen yet</dd>" in unset and "<dd>None disclosed</dd>" in unset
    inbox = post_settings(PostFactory.build(mode="inbox", privacy_level="SELF_ONLY"))
    assert "the inbox takes only the video" in inbox and "Who can see it" not in inbox


def test_moments_are_written_in_the_viewers_zone_as_the_date_filter_writes_them() -> None:
    moment = dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC)  # Paris moves its clocks at 01:00 UTC
    for zone in ("Europe/Paris", "America/Los_Angeles", "UTC"):
        for later in (dt.timedelta(0), dt.timedelta(hours=1), dt.timedelta(days=200)):
            values = {"d": moment + later}
            ours = (
                '{% load tz %}{% timezone z %}{{ d|day_and_time:"D j M Y" }}|{{ d|day_and_time:"c" }}'
                "{% endtimezone %}"
            )
            django = (
                '{% load tz %}{% timezone z %}{{ d|date:"D j M Y, H:i" }}|{{ d|date:"c" }}{% endtimezone %}'
            )
            assert render(ours, z=zone, **values) == render(django, z=zone, **values), (zone, later)


def test_a_members_row_escapes_what_people_typed_and_counts_their_accounts() -> None:
    from types import SimpleNamespace

    from apps.team.templatetags.team_members import member_rows

    hostile = SimpleNamespace(
        pk=1,
        name='<script>alert("x")</script>',
        email="a&b@agency.example",
        role="editor",
        account_count=1,
        get_full_name=lambda: '<script>alert("x")</script>',
    )
    admin = SimpleNamespace(pk=2, name="", email="ad@agency.example", role="admin", account_count=0)
    admin.get_full_name = lambda: admin.email
    rows = [
        SimpleNamespace(
            member=hostile, url="/team/members/1/", seen_iso="2026-12-06T10:00:00+00:00", seen="1 hour ago"
        ),
        SimpleNamespace(member=admin, url="/team/members/2/", seen_iso="", seen=""),
    ]
    html = member_rows(Context({"user": admin}), rows)
    assert "<script>" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "a&amp;b@agency.example" in html and "<td>1<span" in html and "> account</span>" in html
    assert "(you)" in html.split("</tr>")[1] and "(you)" not in html.split("</tr>")[0]
    assert "<td>All<span" in html and '<span class="muted">Never</span>' in html


def test_an_audit_row_escapes_what_was_recorded_and_shows_changes_under_it() -> None:
    from types import SimpleNamespace

    from apps.audit.templatetags.audit_rows import audit_rows

    hostile = '<img src=x onerror="alert(1)">'
    entry = SimpleNamespace(ip="203.0.113.7", action="post.edited")
    rows = [
        SimpleNamespace(
            entry=entry,
            when_iso="2026-12-06T10:00:00+01:00",
            when="6 Dec 2026, 10:00:00",
            actor="a&b@agency.example",
            action="Post edited",
            object_text=hostile,
            post_url="/posts/1/",
            account="@bakery",
            changes=[("caption", f"old{ARROW}{hostile}")],
        ),
        SimpleNamespace(
            entry=SimpleNamespace(ip=None, action="user.signed_in"),
            when_iso="2026-12-06T09:00:00+01:00",
            when="6 Dec 2026, 09:00:00",
            actor="System",
            action="Signed in",
            object_text="Someone",
            post_url="",
            account="",
            changes=[],
        ),
    ]
    html = str(audit_rows(rows))
    assert "<img" not in html and html.count("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;") == 2
    assert '<a href="/posts/1/">&lt;img' in html and "a&amp;b@agency.example" in html
    assert '<span class="address ip muted">203.0.113.7</span>' in html
    # The first entry's changes are a row of their own under it; the second has none and no IP.
    first, changes, second = html.split("</tr>")[:3]
    assert "changes-row" in changes and "<dt>caption</dt><dd>old → &lt;img" in changes
    assert "changes-row" not in second and " ip " not in second
    assert '<td class="wrap">Someone</td>' in second
    assert '<time datetime="2026-12-06T10:00:00+01:00">6 Dec 2026, 10:00:00</time>' in first


def test_the_video_charts_and_the_account_picker_escape_what_tiktok_and_people_sent() -> None:
    from types import SimpleNamespace

    from apps.analytics.templatetags.counts import account_options, bar_rows, video_rows

    hostile = '<script>alert("x")</script>'
    video = SimpleNamespace(
        title=hostile, video_id="v1", post_id=None, views=12345, likes=7, comments=0, shares=1
    )
    untitled = SimpleNamespace(
        title="", video_id="v2", post_id=uuid.uuid4(), views=1, likes=0, comments=0, shares=0
    )
    bar = SimpleNamespace(video=video, value=12345, length=180.5, label_y=14, bar_y=20)
    chart = SimpleNamespace(width=200, thickness=8, bars=[bar])
    bars = str(bar_rows(chart, "views"))
    assert (
        "<script>" not in bars and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;: 12,345 views" in bars
    )
    assert 'width="180.5"' in bars and ">12,345</text>" in bars

    rows = str(video_rows(Context({}), [video, untitled]))
    assert "<script>" not in rows and '<th scope="row">&lt;script&gt;' in rows
    assert (
        f'<a href="/posts/{untitled.post_id}/">v2</a>' in rows
        and '<td data-label="Views">12,345</td>' in rows
    )

    class Account(SimpleNamespace):
        def __str__(self) -> str:
            return "@<b>"

    accounts = [Account(pk=1, client_label="A&B <Ltd>"), Account(pk=2, client_label="")]
    options = str(account_options(accounts, accounts[1]))
    assert options.count("<option") == 2 and "<b>" not in options and "(A&amp;B &lt;Ltd&gt;)" in options
    assert '<option value="2" selected>@&lt;b&gt;</option>' in options and '<option value="1">' in options


def test_an_accounts_row_offers_what_the_person_may_do_and_escapes_what_was_typed() -> None:
    from types import SimpleNamespace

    from apps.accounts.models import TokenStatus
    from apps.accounts.templatetags.account_rows import account_rows

    hostile = '<img src=x onerror="alert(1)">'

    class Account(SimpleNamespace):
        def __str__(self) -> str:
            return f"@{self.username}"

        def get_status_display(self) -> str:
            return "Needs reconnecting" if self.status != "active" else "Active"

        def token_status(self, now: object) -> TokenStatus:
            return TokenStatus.VALID

    common = {"display_name": hostile, "follower_count": 12345, "granted_scopes": ["video.publish"]}
    mine = Account(
        pk=uuid.uuid4(), username="mine", status="reauth_required", status_reason="Token revoked",
        client_label=hostile, requires_approval=True, posts_last_24h=15, inbox_shares_last_24h=5,
        posting_limit=SimpleNamespace(sentence="TikTok stopped posting until 9:00"),
        missing_analytics=[("user.info.stats", "followers")], **common,
    )  # fmt: skip
    theirs = Account(
        pk=uuid.uuid4(), username="theirs", status="active", status_reason="", client_label="",
        requires_approval=False, posts_last_24h=0, inbox_shares_last_24h=0, posting_limit=None,
        missing_analytics=[], **common,
    )  # fmt: skip
    context = Context(
        {
            "csrf_token": "tok3n", "managed": {mine.pk}, "rules_approval": {mine.pk}, "daily_cap": 15,
            "inbox_share_cap": 5, "client_label_max": 80,
        }
    )  # fmt: skip
    first, second = str(account_rows(context, [mine, theirs])).split("</tr>")[:2]
    assert "<img" not in first + second and first.count("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;") == 2
    # The account they manage: its client, approval rule, reconnect and disconnect forms, each with the token
    assert first.count('name="csrfmiddlewaretoken" value="tok3n"') == 4
    assert f'action="/accounts/{mine.pk}/client/"' in first and 'maxlength="80"' in first
    assert "Stop requiring approval" in first and '<form method="post" action="/accounts/connect/">' in first
    assert (
        f'action="/accounts/{mine.pk}/disconnect/"' in first and "TikTok stopped posting until 9:00" in first
    )
    assert (
        '<span class="error-text">15 of about 15 posts</span>' in first
        and "No analytics without user.info.stats" in first
    )
    assert '<span class="error-text">5 of 5 inbox drafts</span>' in first and "12,345" in first
    # The other one is shown, not offered: no form, and an empty actions cell
    assert "<form" not in second and "Not required" in second and '<td class="actions"></td>' in second
    assert "Granted: video.publish" in second and '<td data-label="Client">—</td>' in second


def test_a_queued_post_shows_its_media_caption_and_author_escaped() -> None:
    from types import SimpleNamespace

    from apps.posts.templatetags.review_forms import review_items
    from apps.users.models import User
    from tests.factories import PostFactory

    def post(**values: object) -> object:
        moment = dt.datetime(2026, 12, 24, 17, 30, tzinfo=dt.UTC)
        built = PostFactory.build(pk=uuid.uuid4(), scheduled_at=moment)
        built.updated_at = moment  # as saved
        for name, value in values.items():
            setattr(built, name, value)
        return built

    video = SimpleNamespace(pk=uuid.uuid4())
    photos = [SimpleNamespace(pk=uuid.uuid4()), SimpleNamespace(pk=uuid.uuid4())]
    hostile = '<script>alert("x")</script>'
    with_video = post(caption=f"{hostile}\nsecond line", media_type="video", videos=[video], created_by=None)
    with_photos = post(
        caption="", media_type="photo", photo_list=photos, photo_count=2, photo_cover_index=1,
        description="Two\nlines", created_by=User(name="Ann <Editor>", email="ann@agency.example"),
    )  # fmt: skip
    with timezone.override("Europe/Paris"):
        html = str(
            review_items(Context({"csrf_token": "tok3n"}), [with_video, with_photos], "/posts/approvals/")
        )
    first, second = html.split("</li>\n    <li")
    assert (
        "<script>" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;<br>second line" in first
    )
    playable = (
        f'<video class="review-video" controls preload="metadata" playsinline src="/posts/media/{video.pk}/'
    )
    assert playable in first
    assert (
        "By someone" in first
        and '<time datetime="2026-12-24T18:30:00+01:00">Thu 24 Dec 2026, 18:30</time>' in first
    )
    assert (
        f'src="/posts/media/{photos[1].pk}/file/" alt="Photo 2 (cover)"' in second
        and 'alt="Photo 1"' in second
    )
    assert "(no caption)" in second and "Two<br>lines" in second and "By Ann &lt;Editor&gt;" in second
    assert '<span class="kind-badge">2 photos</span>' in second and "<video" not in second
    assert first.count('value="tok3n"') == 2 and f"/posts/{with_video.pk}/approve/" in first
    assert f'<a href="/posts/{with_video.pk}/">{with_video.account}</a>' in first


def test_a_posts_row_says_when_what_and_why_it_failed_escaped() -> None:
    from apps.posts.templatetags.post_rows import post_rows
    from tests.factories import PostFactory

    hostile = "<b>" + "x" * 100
    failed = PostFactory.build(
        pk=uuid.uuid4(), caption=hostile, status="failed", last_error_message="TikTok said <no> " + "y" * 90,
        scheduled_at=dt.datetime(2026, 12, 24, 17, 30, tzinfo=dt.UTC),
    )  # fmt: skip
    stuck = PostFactory.build(pk=uuid.uuid4(), caption="", status="needs_attention", last_error_message="")
    draft = PostFactory.build(pk=uuid.uuid4(), caption="Hello", status="draft", scheduled_at=None)
    with timezone.override("Europe/Paris"):
        html = str(post_rows(Context({}), [failed, stuck, draft]))
    first, second, third = html.split("</tr>")[:3]
    assert "<b>" not in html and "&lt;b&gt;" + "x" * 86 + "…</a>" in first
    assert '<time datetime="2026-12-24T18:30:00+01:00">Thu 24 Dec 2026, 18:30</time>' in first
    assert (
        '<br><span class="muted">TikTok said &lt;no&gt; ' in first and f'href="/posts/{failed.pk}/"' in first
    )
    # Needing attention shows its (empty) reason line; a draft none, and says it is not scheduled
    assert "(no caption)" in second and '<br><span class="muted"></span>' in second
    assert '<span class="muted">Not scheduled</span>' in third and "<br>" not in third


def test_the_dashboards_posts_say_when_which_account_and_why_escaped() -> None:
    from apps.schedule.templatetags.dashboard_rows import attention_items, upcoming_rows
    from tests.factories import PostFactory, TikTokAccountFactory

    account = TikTokAccountFactory.build(username="<i>client</i>", display_name="")
    failed = PostFactory.build(
        pk=uuid.uuid4(), account=account, caption="<b>" + "x" * 80, status="failed",
        last_error_message="TikTok said <no>", updated_at=dt.datetime(2026, 12, 24, 17, 30, tzinfo=dt.UTC),
    )  # fmt: skip
    stuck = PostFactory.build(
        pk=uuid.uuid4(), account=account, caption="Launch", status="needs_attention", last_error_message="",
        updated_at=dt.datetime(2026, 12, 25, 8, 5, tzinfo=dt.UTC),
        scheduled_at=dt.datetime(2026, 12, 31, 23, 15, tzinfo=dt.UTC),
    )  # fmt: skip
    with timezone.override("Europe/Paris"):
        attention = str(attention_items(Context({}), [failed, stuck]))
        upcoming = str(upcoming_rows(Context({}), [stuck]))
    first, second = attention.split("</li>")[:2]
    assert "<b>" not in attention and "<i>" not in attention
    assert f'<a href="/posts/{failed.pk}/">&lt;b&gt;' + "x" * 56 + "…</a>" in first
    assert "&lt;i&gt;client&lt;/i&gt; · failed Thu 24 Dec, 18:30</p>" in first
    assert '<p class="error-message">TikTok said &lt;no&gt;</p>' in first
    # A post needing attention says since when; without a reason it has no reason line
    assert "· since Fri 25 Dec, 09:05</p>" in second and "error-message" not in second
    # The next posts: local time, account, linked title and status (a new year in Paris)
    assert '<time datetime="2027-01-01T00:15:00+01:00">Fri 1 Jan, 00:15</time>' in upcoming
    assert f'<td><a href="/posts/{stuck.pk}/">Launch</a></td>' in upcoming
    assert '<span class="status status-needs_attention">' in upcoming


def test_shortened_text_is_what_truncatechars_writes() -> None:
    texts = [
        "",
        "Short",
        "x" * 48,
        "x" * 49,
        "A caption that goes on for rather longer than any calendar cell can hold, really",
        "Café crème brûlée, ein schönes Frühstück am Morgen vor der Arbeit im Büro",
        "e\u0301" * 30,  # combining accents do not count
        "Emoji 🎉🎉🎉 and more words after them to pass the limit of the cell",
    ]
    for text in texts:
        for chars in (1, 10, 48, 80):
            expected = render("{{ text|truncatechars:chars }}", text=text, chars=chars)
            # (the same characters: Truncator also writes a text it keeps whole composed)
            assert normalize("NFC", escape(shortened(text, chars))) == expected, (text, chars)
