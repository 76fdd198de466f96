"""A worker keeps the leases of the jobs it works on for as long as it works on them.

A job's lease (models.DueJob.leased_until, on the database's clock) is what keeps the dispatcher
from handing the job to another worker. A run renews it after each step (a TikTok call, an
uploaded chunk), but a single step can outlast any lease: a 64 MB chunk to a slow TikTok, a 4 GB
upload on a poor link. So while a run holds a lease, the worker process's keeper thread renews it
every quarter of the lease, on a database connection of its own (one statement for all the
leases the process holds): only a worker that has really
stopped (killed, frozen, cut off from the database for a whole lease) loses its job.

The keeper renews only the lease its run holds (jobs.job_renew: the run's token, and only before
the lease ran out). When a renewal finds the lease gone, the lease is marked lost: the run stops
at its next step, and a chunk being streamed stops at its next piece (`Held.pieces`), so that only
the lease holder sends bytes to TikTok. The keeper stops renewing as soon as the run ends, however
it ends, and closes its connection while it holds nothing.

A run inside a transaction (a test's) cannot be kept from another connection: the job row it took
is not committed, and a renewal from elsewhere would wait for it. Such a run renews after its
steps only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager

from apps.publishing.jobs import Lease, job_renew, job_renew_all
from tenants.db import connection

logger = logging.getLogger(__name__)

# Renewals per lease: a lease is renewed when a quarter of it has passed, so that three quarters of
# it may go by (a busy database, a starved process) before a renewal gets through.
RENEWALS_PER_LEASE = 4
# After a renewal that failed with an error (the database restarting), the next try comes this soon.
RETRY_SECONDS = 0.5
# A lease whose job row was busy (locked by another transaction) is tried again this soon.
BUSY_RETRY_SECONDS = 0.1
# A renewal that lands more than this share of the lease after the one before says so in the
# log: the process or the database was stalled for that long, and a stall of the whole lease
# hands the job to another worker. What a lost lease's log line cannot tell afterwards.
LATE_SHARE = 0.5


class LeaseLost(Exception):
    """The run's lease is not its own any more: the job may be another worker's by now."""


class Held:
    """A lease held by a run, renewed by the keeper while the run goes on."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.interval = max(0.05, lease.seconds / RENEWALS_PER_LEASE)
        self.next_at = time.monotonic() + self.interval
        self.lost = threading.Event()
        self.renewals = 0
        # When the lease was last known renewed (taken, or a renewal's statement began).
        self.renewed_at = time.monotonic()

    def since_renewed(self) -> float:
        return time.monotonic() - self.renewed_at

    def mark_renewed(self, began: float) -> None:
        gap = began - self.renewed_at
        if gap > self.lease.seconds * LATE_SHARE:
            logger.warning(
                "The lease of the %s job of post %s was renewed %.1fs after the last renewal (the lease is "
                "%ss): this worker or the database was slow",
                self.lease.kind,
                self.lease.post_id,
                gap,
                self.lease.seconds,
            )
        self.renewed_at = max(self.renewed_at, began)
        self.next_at = began + self.interval

    def check(self) -> None:
        if self.lost.is_set():
            raise LeaseLost(f"The lease of the {self.lease.kind} job of post {self.lease.post_id} ran out.")

    def renew_now(self) -> None:
        """Renew in the run's own thread (after a step); raises LeaseLost if the lease is gone."""
        self.check()
        began = time.monotonic()
        if not job_renew(self.lease):
            self.lost.set()
            logger.info(
                "The lease of the %s job of post %s ran out %.1fs after its last renewal",
                self.lease.kind,
                self.lease.post_id,
                self.since_renewed(),
            )
            self.check()
        self.mark_renewed(began)

    def pieces(self, pieces: Iterator[bytes]) -> Generator[bytes]:
        """`pieces`, as long as the lease is held: a chunk stops being sent once it is lost."""
        try:
            for piece in pieces:
                self.check()
                yield piece
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()


class LeaseKeeper:
    """One thread per worker process renewing every lease its runs hold, all in one statement,
    whenever one of them is due; it runs only while there is something to renew."""

    def __init__(self) -> None:
        self._held: dict[object, Held] = {}
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def hold(self, held: Held) -> None:
        with self._changed:
            self._held[held.lease.token] = held
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
                self._thread.start()
            self._changed.notify()

    def release(self, held: Held) -> None:
        with self._changed:
            self._held.pop(held.lease.token, None)
            self._changed.notify()

    def holding(self) -> int:
        with self._changed:
            return len(self._held)

    def _run(self) -> None:
        try:
            while True:
                with self._changed:
                    if not self._held:
                        self._thread = None
                        return
                    now = time.monotonic()
                    first = min(held.next_at for held in self._held.values())
                    if first > now:
                        self._changed.wait(first - now)
                        continue
                    due = list(self._held.values())
                self._renew(due)
        finally:
            connection.close()

    def _renew(self, due: list[Held]) -> None:
        began = time.monotonic()
        try:
            connection.close_if_unusable_or_obsolete()
            renewed, busy = job_renew_all([held.lease for held in due])
            took = time.monotonic() - began
            if took > min(held.interval for held in due):
                logger.warning("Renewing %d lease(s) took %.1fs: the database is slow", len(due), took)
        except Exception:
            # The database is unreachable or restarting: try again soon. A lease runs out only if
            # this lasts for what is left of it; the next renewal that gets through tells.
            logger.warning("Could not renew %d lease(s); trying again", len(due), exc_info=True)
            connection.close()
            for held in due:
                held.next_at = time.monotonic() + min(RETRY_SECONDS, held.interval)
            return
        lost = []
        with self._changed:
            for held in due:
                if self._held.get(held.lease.token) is not held:
                    continue  # its run ended meanwhile: whatever the renewal found is no news
                if held.lease.token in renewed:
                    # Each lease now runs from no earlier than `began`: the next renewal is counted
                    # from then, so a slow statement does not eat into the margin unseen.
                    held.mark_renewed(began)
                    held.renewals += 1
                elif held.lease.token in busy:
                    held.next_at = time.monotonic() + min(BUSY_RETRY_SECONDS, held.interval)
                else:
                    self._held.pop(held.lease.token, None)
                    lost.append(held)
        for held in lost:
            held.lost.set()
            # (its run may also have just moved or removed the job itself: the run says when it stops)
            logger.info(
                "The lease of the %s job of post %s in %s is not this worker's any more (%.1fs after its "
                "last renewal; the lease is %ss)",
                held.lease.kind,
                held.lease.post_id,
                held.lease.schema_name,
                held.since_renewed(),
                held.lease.seconds,
            )


KEEPER = LeaseKeeper()


@contextmanager
def lease_kept(lease: Lease) -> Iterator[Held]:
    """Keep `lease` renewed while the block runs (from the keeper thread unless the caller is in a
    transaction); renewing stops when it ends, however it ends."""
    held = Held(lease)
    kept = not connection.in_atomic_block
    if kept:
        KEEPER.hold(held)
    try:
        yield held
    finally:
        if kept:
            KEEPER.release(held)
