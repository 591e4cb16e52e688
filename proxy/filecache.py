"""The file cache: a committed blob is served as it is; a miss starts ONE fill per file, which every client asking
for it meanwhile follows (proxy/fill.py), while it downloads, verifies and commits (proxy/download.py).

A hit costs no I/O at all when the blob store holds the blob open (BlobStore.reader_nowait), and one trip to storage
otherwise: the fill coordinator's claim looks for the blob and claims its fill in the same call. Hits are recorded
for LRU eviction in memory (the janitor writes them in batches), never on the request's path.

Worker processes sharing storage share fills too: for a file with a declared sha256 one process leads the download
(FillCoordinator.claim) and the others follow it, releasing the last byte only once the leader has committed it
under that sha256. Files without one are single-flight per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import cast

from proxy.backends.blobs import BlobReader, BlobStore, ByteSource
from proxy.backends.fills import FillCoordinator, ForeignFill, Lead, is_foreign, is_lead
from proxy.backends.metadata import BlobIndex
from proxy.backends.spools import SpoolDir
from proxy.config import UpstreamConfig
from proxy.download import download, follow, resume
from proxy.download_checks import Limits, is_sha256
from proxy.errors import ProxyError, StorageFull, UpstreamUnavailable
from proxy.fill import Fill, FillState, Following
from proxy.janitor import CacheJanitor
from proxy.simple.model import DistFile
from proxy.upstream import UpstreamClient

__all__ = ["Cached", "FileCache", "SendRange"]

log = logging.getLogger(__name__)

SendRange = Callable[[ByteSource, int, int], Awaitable[object]]  # (source, offset, count): to one client


@dataclass(frozen=True, slots=True)
class Cached:
    """A committed blob to send from storage; close it when done (or use `with`)."""

    reader: BlobReader

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> Cached:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class FileCache:
    """Serves distribution files from storage, filling misses from upstream exactly once."""

    def __init__(
        self,
        blobs: BlobStore,
        fills: FillCoordinator,
        spools: SpoolDir,
        db: BlobIndex,
        upstream: UpstreamClient,
        janitor: CacheJanitor,
        limits: Limits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`limits` bound each download (default: [upstream]'s defaults); `clock` times them."""
        self._blobs = blobs
        self._coordinator = fills
        self._spools = spools
        self._db = db
        self._upstream = upstream
        self._janitor = janitor
        self._limits = limits or Limits.from_config(UpstreamConfig())
        self._clock = clock
        self._fills: dict[str, Fill] = {}
        self._claims: dict[str, asyncio.Future[Cached | Following]] = {}
        self._tasks: dict[asyncio.Task[None], Fill] = {}

    async def cached(self, dist: DistFile) -> Cached | None:
        """The committed blob for this file, if it is in the cache; never starts a download."""
        sha256 = dist.sha256 or await self._db.upstream_file_sha256(dist.url)
        if sha256 is None or not is_sha256(sha256):  # an index's malformed hash names no blob
            return None
        reader = await self._blobs.reader(sha256)
        return None if reader is None else await self._hit(reader)

    async def redirect_url(self, dist: DistFile, method: str) -> str | None:
        """A short-lived URL of the committed blob in the object store for `method` (GET, HEAD), when the store
        hands them out ([storage] redirect); None: send the file from here (absent, small, or no such URLs)."""
        sha256 = dist.sha256 or await self._db.upstream_file_sha256(dist.url)
        if sha256 is None or not is_sha256(sha256):
            return None
        url = await self._blobs.redirect_url(sha256, dist.filename, method)
        if url is not None:
            await self._janitor.touch(sha256)  # a hit like any other: eviction keeps it
        return url

    async def open(self, dist: DistFile) -> Cached | Following:
        """The committed blob, or a hold on the fill that brings it (started now when none is running).

        Raises ProxyError when no fill can be started (StorageFull, UpstreamUnavailable).
        """
        key = dist.sha256 or dist.url
        while True:
            fill = self._fills.get(key)
            if fill is not None and not fill.ended:  # an ended one is still registered while its task winds up
                return fill.follow()
            if dist.sha256 is None or not is_sha256(dist.sha256):  # no blob to claim: this process alone
                return await self._open_unclaimed(key, dist)
            reader = self._blobs.reader_nowait(dist.sha256)
            if reader is not None:
                return await self._hit(reader)
            pending = self._claims.get(key)
            if pending is None:
                return await self._claim(key, dist, dist.sha256)
            with contextlib.suppress(Exception):  # another request is claiming it: look again once it is done
                await asyncio.shield(pending)

    async def _hit(self, reader: BlobReader) -> Cached:
        await self._janitor.touch(reader.sha256)  # in memory: the janitor writes hits in batches
        return Cached(reader)

    async def _open_unclaimed(self, key: str, dist: DistFile) -> Cached | Following:
        cached = await self.cached(dist) if dist.sha256 is None else None
        if cached is not None:
            return cached
        fill = self._fills.get(key)  # one may have started meanwhile
        if fill is None or fill.ended:
            fill = self._start(key, Fill(dist), None)
        return fill.follow()

    async def _claim(self, key: str, dist: DistFile, sha256: str) -> Cached | Following:
        """Claim the blob's fill (or find it committed), once per process however many ask meanwhile."""
        claiming = asyncio.ensure_future(self._claimed(key, dist, sha256))
        self._claims[key] = claiming
        try:
            return await asyncio.shield(claiming)
        except asyncio.CancelledError:  # nobody takes what the claim brings: a fill runs on without this follower
            claiming.add_done_callback(_close_unused)
            raise

    async def _claimed(self, key: str, dist: DistFile, sha256: str) -> Cached | Following:
        try:
            found = await self._coordinator.claim(sha256, dist.hashes)
        except ProxyError:
            raise
        except Exception as exc:
            log.exception("could not start the download of %s", dist.filename)
            raise UpstreamUnavailable(f"download failed: {type(exc).__name__}") from exc
        finally:
            # Gone before the claim's outcome is: a request looking again finds the fill, the held blob, or nothing
            # (then it claims), never a finished claim to wait for (awaiting that would not yield to the loop).
            del self._claims[key]
        if is_lead(found) or is_foreign(found):
            return self._start(key, Fill(dist), found).follow()
        return await self._hit(cast("BlobReader", found))  # claim() returns one of the three

    def _start(self, key: str, fill: Fill, claimed: Lead | ForeignFill | None) -> Fill:
        self._fills[key] = fill
        task = asyncio.create_task(self._run(key, fill, claimed), name=f"fill:{fill.dist.filename}")
        self._tasks[task] = fill
        task.add_done_callback(self._forget_task)
        return fill

    @property
    def in_flight(self) -> int:
        return len(self._fills)

    async def send(self, following: Following, send: SendRange) -> AsyncIterator[int]:
        """Follow a fill, handing each sendable range of its bytes to `send`; yields the bytes sent.

        Raises the fill's error when it fails before verification (the client has a partial body by then).
        """
        fill = following.fill
        await fill.wait_started()
        async for source, offset, count in fill.ranges():
            await send(source, offset, count)
            yield count

    async def settled(self) -> None:
        """Until every fill has finished, commit included (clients may have their bytes before that)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def close(self) -> None:
        """Shutdown: cancel fills still downloading (their spools are discarded); let verified ones commit."""
        tasks = list(self._tasks)
        for task, fill in list(self._tasks.items()):
            if fill.state in (FillState.PENDING, FillState.STREAMING):
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)

    async def _run(self, key: str, fill: Fill, claimed: Lead | ForeignFill | None) -> None:
        error: ProxyError | None = None
        try:
            if is_foreign(claimed):
                lead = await follow(fill, claimed)
                if lead is not None:  # its leader died; this process leads now, from the bytes it has
                    await self._lead(fill, lead, resuming=True)
            else:
                await self._lead(fill, cast("Lead | None", claimed))
        except ProxyError as exc:
            error = exc
            log.warning("download of %s failed: %s", fill.dist.filename, exc)
        except asyncio.CancelledError:
            error = UpstreamUnavailable("shadowpi is shutting down")
            raise
        except Exception as exc:
            log.exception("download of %s failed unexpectedly", fill.dist.filename)
            error = UpstreamUnavailable(f"download failed: {type(exc).__name__}")
        finally:
            # Registered until now, so a request arriving between verification and commit follows this fill.
            if self._fills.get(key) is fill:  # not a newer fill of the same file, started once this one ended
                del self._fills[key]
            if fill.state in (FillState.PENDING, FillState.STREAMING):
                fill.failed(error or UpstreamUnavailable("download stopped"))
            elif fill.state is FillState.VERIFIED:  # cancelled during the commit: clients have their bytes
                fill.not_stored()

    async def _lead(self, fill: Fill, lead: Lead | None, *, resuming: bool = False) -> None:
        """Download into the lead's spool (a private spool for a file without a sha256), then commit it; `resuming`:
        the spool holds the first bytes already (a dead leader's). The spool is gone before the fill ends: whoever
        sees a failure also sees no spool on disk."""
        spool = lead.spool if lead is not None else await self._spools.create(fill.dist.hashes)
        fetch = resume if resuming else download
        try:
            await fetch(fill, spool, self._upstream, self._limits, self._clock)
            # Verified by now (a small file's bytes in memory, staged in the spool for the commit to write): the
            # clients have or get every byte, whatever the commit does; only the cache copy can be lost.
            try:
                blob = await self._blobs.commit(spool)
                await self._record(fill.dist, blob.sha256, blob.size)
            except (OSError, StorageFull) as exc:
                level = logging.WARNING if isinstance(exc, StorageFull) else logging.ERROR  # /ready reports a full disk
                log.log(level, "could not store %s in the cache: %s", fill.dist.filename, exc)
                fill.not_stored()
                return
            fill.committed(blob)
        finally:
            await asyncio.shield(lead.finish() if lead is not None else spool.dispose())

    async def _record(self, dist: DistFile, sha256: str, size: int) -> None:
        await self._db.record_blob(sha256, size, now=self._janitor.now())
        self._janitor.poke()
        if dist.sha256 is None:
            await self._db.remember_upstream_file(dist.url, sha256)


def _close_unused(claimed: asyncio.Future[Cached | Following]) -> None:
    if not claimed.cancelled() and claimed.exception() is None:
        claimed.result().close()
