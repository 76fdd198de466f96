"""TikTok's chunking rules for FILE_UPLOAD, computed without touching the file.

Chunks are at least 5 MB and at most 64 MB (decimal MB); the last chunk absorbs the
remainder (up to 128 MB); `total_chunk_count = floor(video_size / chunk_size)`, between 1
and 1,000; a video under 5 MB is one chunk of its own size.
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1_000_000
MIN_CHUNK = 5 * MB
MAX_CHUNK = 64 * MB
MAX_LAST_CHUNK = 128 * MB
MAX_CHUNKS = 1000
MAX_VIDEO_BYTES = 4_000_000_000  # TikTok: "up to 4 GB", decimal like its MB
DEFAULT_CHUNK = 10 * MB
# From this size on, chunks are as large as TikTok takes: each chunk costs a ranged read from
# storage, a PUT and its attempt record, which kept a 1 GB publish at 0.2 of a plain read in
# 10 MB chunks. Smaller videos keep 10 MB chunks (a failed chunk resends less), and stay clear of
# the 66-94 MB multi-chunk refusals TIKTOK_API.md reports.
LARGE_VIDEO = 256 * MB


@dataclass(frozen=True)
class ChunkPlan:
    video_size: int
    chunk_size: int
    total_chunk_count: int

    def ranges(self) -> list[tuple[int, int]]:
        """Inclusive (first, last) byte offsets of each chunk, in upload order."""
        out = []
        for index in range(self.total_chunk_count):
            first = index * self.chunk_size
            last = self.video_size - 1 if index == self.total_chunk_count - 1 else first + self.chunk_size - 1
            out.append((first, last))
        return out

    def source_info(self) -> dict[str, object]:
        return {
            "source": "FILE_UPLOAD",
            "video_size": self.video_size,
            "chunk_size": self.chunk_size,
            "total_chunk_count": self.total_chunk_count,
        }


def chunk_plan(video_size: int, chunk_size: int | None = None) -> ChunkPlan:
    """The plan TikTok accepts for a video of `video_size` bytes, growing the chunk if needed."""
    if chunk_size is None:
        chunk_size = MAX_CHUNK if video_size >= LARGE_VIDEO else DEFAULT_CHUNK
    if video_size <= 0:
        raise ValueError("The video is empty.")
    if video_size > MAX_VIDEO_BYTES:
        raise ValueError("TikTok accepts videos up to 4 GB.")
    if video_size < MIN_CHUNK:
        return ChunkPlan(video_size, video_size, 1)
    chunk = min(max(MIN_CHUNK, min(chunk_size, MAX_CHUNK)), video_size)
    # Grow the chunk until the count fits and the last chunk stays within its limit.
    while True:
        count = video_size // chunk
        last = video_size - (count - 1) * chunk
        if count <= MAX_CHUNKS and last <= MAX_LAST_CHUNK:
            return ChunkPlan(video_size, chunk, max(count, 1))
        if chunk >= MAX_CHUNK:
            raise ValueError("This video cannot be split into chunks TikTok accepts.")
        chunk = min(MAX_CHUNK, chunk + MB)
