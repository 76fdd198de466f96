"""The fake TikTok's creators: fixed accounts that each exercise one behaviour of the API.

Their open_ids never change, so tests and demos can name them:

| open_id | account | trait |
|---|---|---|
| `fake-open-public-001` | @luna.bakes | public, verified, everything allowed, 10-minute videos |
| `fake-open-private-002` | @theo.workshop | private: FOLLOWER_OF_CREATOR, MUTUAL_FOLLOW_FRIENDS, SELF_ONLY |
| `fake-open-nocomment-003` | @harbor.coffee | comments, duets and stitches disabled, 3-minute videos |
| `fake-open-nearcap-004` | @daily.drills | 14 posts in the last 24 h: one more reaches the cap of 15 |
| `fake-open-banned-005` | @deal.hunter | banned from posting (`spam_risk_user_banned_from_posting`) |
| `fake-open-studio-006` | @north.studio | public, everything allowed (a second ordinary account) |

Each has a few existing videos (with lifetime like/comment/share/view counts) for the Display API.
Plain standard-library data: nothing here imports Django.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PUBLIC_OPEN_ID = "fake-open-public-001"
PRIVATE_OPEN_ID = "fake-open-private-002"
NO_COMMENT_OPEN_ID = "fake-open-nocomment-003"
NEAR_CAP_OPEN_ID = "fake-open-nearcap-004"
BANNED_OPEN_ID = "fake-open-banned-005"
STUDIO_OPEN_ID = "fake-open-studio-006"

PUBLIC_ACCOUNT_PRIVACY = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY")
PRIVATE_ACCOUNT_PRIVACY = ("FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY")


@dataclass(frozen=True)
class ExistingVideo:
    """A video the creator posted before the fake started (lifetime counts are fixed)."""

    id: str
    title: str
    create_time: int
    duration: int
    like_count: int
    comment_count: int
    share_count: int
    view_count: int
    width: int = 1080
    height: int = 1920


@dataclass(frozen=True)
class FakeCreator:
    open_id: str
    union_id: str
    username: str
    display_name: str
    note: str
    bio_description: str
    color: str
    is_verified: bool = False
    is_private: bool = False
    comment_disabled: bool = False
    duet_disabled: bool = False
    stitch_disabled: bool = False
    max_video_post_duration_sec: int = 600
    follower_count: int = 0
    following_count: int = 0
    likes_count: int = 0
    posts_today: int = 0
    banned_from_posting: bool = False
    videos: tuple[ExistingVideo, ...] = field(default_factory=tuple)

    @property
    def privacy_level_options(self) -> tuple[str, ...]:
        return PRIVATE_ACCOUNT_PRIVACY if self.is_private else PUBLIC_ACCOUNT_PRIVACY

    @property
    def avatar_path(self) -> str:
        """Where the fake serves this creator's avatar (an SVG with the initials)."""
        return f"/_fake/avatars/{self.username}.svg"

    def avatar_url(self, base_url: str) -> str:
        return base_url.rstrip("/") + self.avatar_path

    def profile_deep_link(self) -> str:
        return f"https://www.tiktok.com/@{self.username}"

    def as_dict(self, base_url: str = "") -> dict[str, object]:
        """A JSON-ready summary (for the control API and the command's banner)."""
        return {
            "open_id": self.open_id,
            "union_id": self.union_id,
            "username": self.username,
            "display_name": self.display_name,
            "note": self.note,
            "avatar_url": self.avatar_url(base_url),
            "is_private": self.is_private,
            "is_verified": self.is_verified,
            "privacy_level_options": list(self.privacy_level_options),
            "comment_disabled": self.comment_disabled,
            "duet_disabled": self.duet_disabled,
            "stitch_disabled": self.stitch_disabled,
            "max_video_post_duration_sec": self.max_video_post_duration_sec,
            "follower_count": self.follower_count,
            "following_count": self.following_count,
            "likes_count": self.likes_count,
            "posts_today": self.posts_today,
            "banned_from_posting": self.banned_from_posting,
            "video_ids": [video.id for video in self.videos],
        }


def _videos(
    prefix: str, newest: int, rows: list[tuple[str, int, int, int, int, int]]
) -> tuple[ExistingVideo, ...]:
    """Videos a day apart, newest first; ids are 19 digits like TikTok's."""
    return tuple(
        ExistingVideo(
            id=f"{prefix}{index:03d}",
            title=title,
            create_time=newest - index * 86_400,
            duration=duration,
            like_count=likes,
            comment_count=comments,
            share_count=shares,
            view_count=views,
        )
        for index, (title, duration, likes, comments, shares, views) in enumerate(rows)
    )


# 2026-11-01 12:00 UTC: the existing videos are older than anything the fake publishes.
_NEWEST = 1_793_534_400

CREATORS: tuple[FakeCreator, ...] = (
    FakeCreator(
        open_id=PUBLIC_OPEN_ID,
        union_id="fake-union-public-001",
        username="luna.bakes",
        display_name="Luna Bakes",
        note="public account, everything allowed",
        bio_description="Sourdough, every morning.",
        color="#e4572e",
        is_verified=True,
        follower_count=128_400,
        following_count=312,
        likes_count=2_450_000,
        videos=_videos(
            "7300000000000001",
            _NEWEST,
            [
                ("Shaping a bâtard in 30 seconds #sourdough", 31, 18_200, 412, 950, 240_100),
                ("Crumb shot 🍞", 12, 9_800, 230, 310, 121_700),
                ("Starter feeding routine", 58, 4_150, 98, 120, 60_300),
            ],
        ),
    ),
    FakeCreator(
        open_id=PRIVATE_OPEN_ID,
        union_id="fake-union-private-002",
        username="theo.workshop",
        display_name="Theo's Workshop",
        note="private account",
        bio_description="Small furniture, big sawdust.",
        color="#4c6ef5",
        is_private=True,
        follower_count=2_310,
        following_count=180,
        likes_count=41_000,
        videos=_videos(
            "7300000000000002",
            _NEWEST - 3_600,
            [
                ("Dovetails by hand", 95, 1_200, 64, 22, 15_400),
                ("Walnut stool, part 2", 140, 860, 37, 9, 9_900),
            ],
        ),
    ),
    FakeCreator(
        open_id=NO_COMMENT_OPEN_ID,
        union_id="fake-union-nocomment-003",
        username="harbor.coffee",
        display_name="Harbor Coffee",
        note="comments, duets and stitches disabled",
        bio_description="Roastery on pier 9.",
        color="#2f9e44",
        comment_disabled=True,
        duet_disabled=True,
        stitch_disabled=True,
        max_video_post_duration_sec=180,
        follower_count=15_900,
        following_count=45,
        likes_count=210_300,
        videos=_videos(
            "7300000000000003",
            _NEWEST - 7_200,
            [
                ("Latte art: the tulip", 22, 3_400, 0, 210, 44_800),
                ("New Ethiopian single origin", 40, 1_900, 0, 75, 23_100),
                ("Behind the roaster", 75, 2_750, 0, 130, 35_600),
            ],
        ),
    ),
    FakeCreator(
        open_id=NEAR_CAP_OPEN_ID,
        union_id="fake-union-nearcap-004",
        username="daily.drills",
        display_name="Daily Drills",
        note="near the daily cap (14 posts today)",
        bio_description="A football drill every hour.",
        color="#f59f00",
        follower_count=48_000,
        following_count=220,
        likes_count=760_000,
        posts_today=14,
        videos=_videos(
            "7300000000000004",
            _NEWEST - 10_800,
            [
                ("Rondo, 4v2", 28, 6_100, 190, 420, 88_000),
                ("Weak-foot volleys", 33, 5_300, 160, 300, 71_500),
            ],
        ),
    ),
    FakeCreator(
        open_id=BANNED_OPEN_ID,
        union_id="fake-union-banned-005",
        username="deal.hunter",
        display_name="Deal Hunter",
        note="banned from posting",
        bio_description="Coupons. So many coupons.",
        color="#868e96",
        follower_count=530,
        following_count=4_900,
        likes_count=1_200,
        banned_from_posting=True,
        videos=_videos(
            "7300000000000005",
            _NEWEST - 14_400,
            [("Five deals you missed today", 45, 40, 12, 3, 2_100)],
        ),
    ),
    FakeCreator(
        open_id=STUDIO_OPEN_ID,
        union_id="fake-union-studio-006",
        username="north.studio",
        display_name="North Studio",
        note="public account of a brand studio",
        bio_description="Product films for small brands.",
        color="#3b5bdb",
        follower_count=41_800,
        following_count=75,
        likes_count=512_000,
        videos=_videos(
            "7300000000000006",
            _NEWEST - 21_600,
            [("Behind the lens: a lamp in 20 shots", 40, 3_900, 120, 210, 58_400)],
        ),
    ),
)

CREATORS_BY_OPEN_ID: dict[str, FakeCreator] = {creator.open_id: creator for creator in CREATORS}
CREATORS_BY_USERNAME: dict[str, FakeCreator] = {creator.username: creator for creator in CREATORS}
