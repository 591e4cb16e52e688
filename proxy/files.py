"""File cache: committed blobs are served as they are; a miss starts ONE upstream fill per file that writes a
spool, verifies size and hashes, and commits atomically, while every waiting client follows the spool as it grows.

A client never receives the final byte of a fill before the fill is verified, so a lying or cut-off upstream can
never produce a complete-looking response: the connection is aborted instead.

The fill is a pipeline: the event loop reads the network while a worker thread writes and hashes what arrived
before (batched, so a slow disk or hash only makes the batches bigger), and followers send the spool's bytes to
their clients with sendfile, never copying them through Python. Verified bytes are released before the commit's
fsync: the commit makes the cache durable, but clients already have correct bytes.

Worker processes sharing the data dir share fills too: for a file with a declared sha256 one process on the host
leads the download (BlobStore.claim_fill) and the others follow its spool as it grows, polling it, and release the
last byte only once the leader has committed it under that sha256. Files without one are single-flight per process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import BinaryIO

from proxy.backends.changes import ChangeFeed, Topic
from proxy.backends.metadata import BlobIndex
from proxy.config import UpstreamConfig
from proxy.errors import IntegrityError, ProxyError, UpstreamUnavailable
from proxy.janitor import CacheJanitor
from proxy.simple.model import DistFile
from proxy.spooling import Guard, Limits, WriteBehind, check_sha256, expected_length, is_sha256, verify
from proxy.storage import BlobInfo, BlobStore, FillOutcome, ForeignSpool, Spool
from proxy.upstream import UpstreamClient

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
# Bytes withheld from followers until the fill is verified (see module docstring).
HOLDBACK = 1
# Seconds between looks at another worker's spool: the shortest while it grows, backing off to the longest while
# it does not (waiting for upstream, or for the leader's commit fsync).
POLL_MIN, POLL_MAX = 0.005, 0.05
PRESENT_ENTRIES = 100_000  # blobs remembered as committed (about 10 MB); past that the memo starts over

SendFile = Callable[[BinaryIO, int, int], Awaitable[object]]  # (source, offset, count): loop.sendfile for a client


@dataclass(frozen=True, slots=True)
class Cached:
    """A committed blob to send from storage."""

    blob: BlobInfo


class Fill:
    """One upstream download in flight, led here or by another worker (then `spool` is a ForeignSpool and
    `content_length` is what the index declared). Followers read the spool up to what has been written."""

    def __init__(self, dist: DistFile) -> None:
        self.dist = dist
        self.spool: Spool | ForeignSpool | None = None
        self.content_length: int | None = None  # the declared length: no follower is ever sent a byte past it
        self.verified = False  # every byte is in the spool and matched the index: followers may send them all
        self.result: BlobInfo | None = None  # committed (None until then, and when the commit failed)
        self.error: ProxyError | None = None  # failed before verification: followers must abort
        self.done = False  # nothing more will happen; the spool is closed once no follower reads it
        self.followers = 0
        self._changed = asyncio.Event()

    def notify(self) -> None:
        """Wake every follower; they re-check the state."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_started(self) -> None:
        """Until upstream's headers arrived (another worker's fill: its first bytes). Raises the fill's error if it
        failed before that."""
        while self.spool is None and self.error is None:
            await self._changed.wait()
        if self.spool is None and self.error is not None:
            raise self.error

    async def finished(self) -> None:
        """Until nothing more will happen (verified bytes committed, or the commit failed). Raises the fill's error
        if it failed before verification."""
        while not self.done:
            await self._changed.wait()
        if self.error is not None:
            raise self.error

    async def ranges(self) -> AsyncIterator[tuple[int, int]]:
        """(offset, count) of spool bytes as they become sendable. Raises the fill's error (after partial output)."""
        await self.wait_started()
        spool = self.spool
        assert spool is not None  # wait_started returned without error
        offset = 0
        while True:
            changed = self._changed  # captured before checking, so no wake-up is missed
            if self.error is not None:
                raise self.error
            # Never past the declared length, whatever the spool holds (a leader in another process may not check).
            size = spool.size if self.content_length is None else min(spool.size, self.content_length)
            limit = size if self.verified else size - HOLDBACK
            if offset < limit:
                yield offset, limit - offset
                offset = limit
            elif self.verified:
                return
            else:
                await changed.wait()


class FileCache:
    """Serves distribution files from storage, filling misses from upstream exactly once."""

    def __init__(
        self,
        store: BlobStore,
        db: BlobIndex,
        changes: ChangeFeed,
        upstream: UpstreamClient,
        janitor: CacheJanitor,
        limits: Limits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`limits` bound each download (default: [upstream]'s defaults); `clock` times them."""
        self._store = store
        self._db = db
        self._changes = changes
        self._upstream = upstream
        self._janitor = janitor
        self._limits = limits or Limits.from_config(UpstreamConfig())
        self._clock = clock
        self._fills: dict[str, Fill] = {}
        self._tasks: dict[asyncio.Task[None], Fill] = {}
        # Blobs seen committed, by sha256: a hit then costs no stat. Blobs are immutable and only ever deleted
        # by forget_blob's callers (eviction, purge, private deletes), which bump Topic.BLOBS in every process.
        self._present: dict[str, int] = {}
        self._present_stamp: bytes | None = None

    async def cached(self, dist: DistFile) -> Cached | None:
        """The committed blob for this file, if it is in the cache."""
        sha256 = dist.sha256 or await self._db.upstream_file_sha256(dist.url)
        if sha256 is None:
            return None
        stamp = self._blobs_stamp()
        size = self._present.get(sha256)
        if size is None:
            if not is_sha256(sha256):  # an index's malformed hash names no blob (its fill fails cleanly)
                return None
            blob = await self._store.stat(sha256)
            if blob is None:
                return None
            self._remember_present(blob, stamp)
        else:
            blob = BlobInfo(sha256, size)
        await self._janitor.touch(sha256)
        return Cached(blob)

    def _blobs_stamp(self) -> bytes:
        stamp = self._changes.stamp(Topic.BLOBS)
        if stamp != self._present_stamp:  # something was deleted somewhere: forget what we believed
            self._present_stamp = stamp
            self._present.clear()
        return stamp

    def _remember_present(self, blob: BlobInfo, stamp: bytes) -> None:
        if stamp != self._present_stamp:  # a deletion happened while we looked: the answer may be stale
            return
        if len(self._present) >= PRESENT_ENTRIES:
            self._present.clear()
        self._present[blob.sha256] = blob.size

    def fill(self, dist: DistFile) -> Fill:
        """The in-flight fill for this file, starting one if none is running."""
        key = dist.sha256 or dist.url
        fill = self._fills.get(key)
        if fill is None:
            fill = Fill(dist)
            self._fills[key] = fill
            task = asyncio.create_task(self._run(key, fill), name=f"fill:{dist.filename}")
            self._tasks[task] = fill
            task.add_done_callback(self._forget_task)
        return fill

    @property
    def in_flight(self) -> int:
        return len(self._fills)

    async def send(self, fill: Fill, sendfile: SendFile) -> AsyncIterator[int]:
        """Follow a fill, handing each sendable range of the spool to `sendfile`; yields the bytes sent.

        Raises the fill's error when it fails before verification (the client has a partial body by then).
        """
        await fill.wait_started()
        assert fill.spool is not None
        fill.followers += 1
        try:
            with fill.spool.sendfile_source() as source:
                async for offset, count in fill.ranges():
                    await sendfile(source, offset, count)
                    yield count
        finally:
            fill.followers -= 1
            self._release_if_idle(fill)

    async def settled(self) -> None:
        """Until every fill has finished, commit included (clients may have their bytes before that)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def close(self) -> None:
        """Shutdown: cancel fills still downloading (their spools are discarded); let verified ones commit."""
        tasks = list(self._tasks)
        for task, fill in list(self._tasks.items()):
            if not fill.verified:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)

    async def _run(self, key: str, fill: Fill) -> None:
        dist = fill.dist
        spool: Spool | ForeignSpool | None = None
        error: ProxyError | None = None
        try:
            check_sha256(dist)
            if dist.sha256 is None:
                spool = await self._store.new_spool(extra_algorithms=dist.hashes)
            else:
                spool = await self._store.claim_fill(dist.sha256, extra_algorithms=dist.hashes)
            if isinstance(spool, ForeignSpool):
                await self._follow(fill, spool)
            else:
                await self._download(fill, spool)
        except ProxyError as exc:
            error = exc
            log.warning("download of %s failed: %s", dist.filename, exc)
        except asyncio.CancelledError:
            error = UpstreamUnavailable("shadowpi is shutting down")
            raise
        except Exception as exc:
            log.exception("download of %s failed unexpectedly", dist.filename)
            error = UpstreamUnavailable(f"download failed: {type(exc).__name__}")
        finally:
            # Clean up before publishing the outcome: whoever sees the error also sees no spool on disk.
            if isinstance(spool, Spool) and (error is not None or fill.result is None):
                await asyncio.shield(self._store.discard(spool))
            # Registered until now, so a request arriving between verification and commit follows this fill.
            self._fills.pop(key, None)
            if not fill.verified:
                fill.error = error or UpstreamUnavailable("download stopped")
            fill.done = True
            fill.notify()
            if fill.spool is None and spool is not None:  # never published: no follower can hold it
                self._store.release(spool)
            self._release_if_idle(fill)

    async def _download(self, fill: Fill, spool: Spool) -> None:
        """Stream upstream into the spool, verify, release to followers, then commit."""
        dist = fill.dist
        async with self._upstream.open_file(dist.url) as remote:
            fill.content_length = expected_length(dist, remote.content_length, self._limits.max_size)
            guard = Guard(dist.filename, fill.content_length, self._limits, self._clock)
            fill.spool = spool
            fill.notify()
            writer = WriteBehind(spool, fill.notify)
            try:
                async for chunk in remote.chunks(CHUNK):
                    guard.take(len(chunk))  # before the spool: an oversized or late chunk is never written
                    await writer.put(chunk)
            finally:
                await writer.close()
        verify(dist, spool, fill.content_length)
        fill.verified = True
        fill.notify()
        try:
            stamp = self._blobs_stamp()
            blob = await self._store.commit(spool)
            await self._record(dist, blob)
            self._remember_present(blob, stamp)
        except OSError as exc:  # clients have their bytes; only the cache copy is lost
            log.error("could not store %s in the cache: %s", dist.filename, exc)
            return
        fill.result = blob

    async def _follow(self, fill: Fill, spool: ForeignSpool) -> None:
        """Publish another worker's spool to local followers as it grows, until its leader commits or fails."""
        dist = fill.dist
        fill.content_length = dist.size  # the leader's upstream Content-Length is not visible from here
        delay = POLL_MIN
        while True:
            if spool.grown():  # bytes are published only once some arrived: an early failure stays a clean 502
                fill.spool = spool
                fill.notify()
                delay = POLL_MIN
            else:
                outcome = await spool.outcome()
                if outcome is FillOutcome.COMMITTED:
                    break
                if outcome is FillOutcome.FAILED:
                    raise UpstreamUnavailable(f"another worker's download of {dist.filename} failed")
                if outcome is FillOutcome.ABANDONED:
                    raise UpstreamUnavailable(f"the worker downloading {dist.filename} died")
                delay = min(2 * delay, POLL_MAX)
            await asyncio.sleep(delay)
        spool.grown()  # the final size: the commit happened after the last write
        if dist.size is not None and spool.size != dist.size:
            raise IntegrityError(f"{dist.filename} is {spool.size} bytes in the cache, its index declared {dist.size}")
        fill.spool = spool
        fill.verified = True  # the leader committed this very file under the declared sha256
        fill.result = BlobInfo(spool.sha256, spool.size)
        fill.notify()

    async def _record(self, dist: DistFile, blob: BlobInfo) -> None:
        await self._db.record_blob(blob.sha256, blob.size, now=self._janitor.now())
        self._janitor.poke()
        if dist.sha256 is None:
            await self._db.remember_upstream_file(dist.url, blob.sha256)

    def _release_if_idle(self, fill: Fill) -> None:
        if fill.done and fill.followers == 0 and fill.spool is not None:
            self._store.release(fill.spool)
