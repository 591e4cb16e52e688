"""File cache: committed blobs are served as they are; a miss starts ONE upstream fill per file that writes a
spool, verifies size and hashes, and commits atomically, while every waiting client follows the spool as it grows.

A client never receives the final byte of a fill before the fill is verified, so a lying or cut-off upstream can
never produce a complete-looking response: the connection is aborted instead.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from proxy.db import Database
from proxy.errors import IntegrityError, ProxyError, UpstreamUnavailable
from proxy.janitor import CacheJanitor
from proxy.simple.model import DistFile
from proxy.storage import BlobInfo, BlobStore, Spool
from proxy.upstream import UpstreamClient

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
# Bytes withheld from followers until the fill is verified (see module docstring).
HOLDBACK = 1


@dataclass(frozen=True, slots=True)
class Cached:
    """A committed blob to send from storage."""

    blob: BlobInfo


class Fill:
    """One upstream download in flight. Followers read the spool up to what has been written."""

    def __init__(self, dist: DistFile) -> None:
        self.dist = dist
        self.spool: Spool | None = None
        self.content_length: int | None = None
        self.result: BlobInfo | None = None
        self.error: ProxyError | None = None
        self.followers = 0
        self._changed = asyncio.Event()

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None

    def notify(self) -> None:
        """Wake every follower; they re-check the state."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_started(self) -> None:
        """Until upstream's headers arrived. Raises the fill's error if it failed before that."""
        while self.spool is None and self.error is None:
            await self._changed.wait()
        if self.spool is None and self.error is not None:
            raise self.error

    async def follow(self) -> AsyncIterator[bytes]:
        """The file's bytes as they arrive. Raises the fill's error (after partial output) on failure."""
        await self.wait_started()
        spool = self.spool
        assert spool is not None  # wait_started returned without error
        offset = 0
        while True:
            changed = self._changed  # captured before checking, so no wake-up is missed
            if self.error is not None:
                raise self.error
            limit = spool.size if self.result is not None else spool.size - HOLDBACK
            if offset < limit:
                chunk = await spool.read(offset, min(CHUNK, limit - offset))
                offset += len(chunk)
                yield chunk
            elif self.result is not None:
                return
            else:
                await changed.wait()


class FileCache:
    """Serves distribution files from storage, filling misses from upstream exactly once."""

    def __init__(self, store: BlobStore, db: Database, upstream: UpstreamClient, janitor: CacheJanitor) -> None:
        self._store = store
        self._db = db
        self._upstream = upstream
        self._janitor = janitor
        self._fills: dict[str, Fill] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def cached(self, dist: DistFile) -> Cached | None:
        """The committed blob for this file, if it is in the cache."""
        sha256 = dist.sha256 or await self._db.upstream_file_sha256(dist.url)
        if sha256 is None:
            return None
        blob = await self._store.stat(sha256)
        if blob is None:
            return None
        await self._janitor.touch(sha256)
        return Cached(blob)

    def fill(self, dist: DistFile) -> Fill:
        """The in-flight fill for this file, starting one if none is running."""
        key = dist.sha256 or dist.url
        fill = self._fills.get(key)
        if fill is None:
            fill = Fill(dist)
            self._fills[key] = fill
            task = asyncio.create_task(self._run(key, fill), name=f"fill:{dist.filename}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return fill

    @property
    def in_flight(self) -> int:
        return len(self._fills)

    async def stream(self, fill: Fill) -> AsyncIterator[bytes]:
        """Follow a fill, keeping its spool open while this follower reads."""
        fill.followers += 1
        try:
            async for chunk in fill.follow():
                yield chunk
        finally:
            fill.followers -= 1
            self._release_if_idle(fill)

    async def close(self) -> None:
        """Cancel running fills (shutdown); their spools are discarded."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, key: str, fill: Fill) -> None:
        dist = fill.dist
        spool = await self._store.new_spool(extra_algorithms=dist.hashes)
        error: ProxyError | None = None
        try:
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
            if error is not None:
                await asyncio.shield(self._store.discard(spool))
            self._fills.pop(key, None)
            fill.error = error
            fill.notify()
            if fill.spool is None:  # never published: no follower can hold it
                self._store.release(spool)
            self._release_if_idle(fill)

    async def _download(self, fill: Fill, spool: Spool) -> None:
        """Stream upstream into the spool, verify, commit; followers are woken after every chunk."""
        dist = fill.dist
        async with self._upstream.open_file(dist.url) as remote:
            _check_size(dist, remote.content_length)
            fill.content_length = dist.size if dist.size is not None else remote.content_length
            fill.spool = spool
            fill.notify()
            async for chunk in remote.chunks(CHUNK):
                await spool.write(chunk)
                fill.notify()
        _verify(dist, spool, fill.content_length)
        blob = await self._store.commit(spool)
        await self._record(dist, blob)
        fill.result = blob

    async def _record(self, dist: DistFile, blob: BlobInfo) -> None:
        await self._db.record_blob(blob.sha256, blob.size, now=self._janitor.now())
        self._janitor.poke()
        if dist.sha256 is None:
            await self._db.remember_upstream_file(dist.url, blob.sha256)

    def _release_if_idle(self, fill: Fill) -> None:
        if fill.finished and fill.followers == 0 and fill.spool is not None:
            self._store.release(fill.spool)


def _check_size(dist: DistFile, content_length: int | None) -> None:
    if dist.size is not None and content_length is not None and content_length != dist.size:
        raise IntegrityError(
            f"upstream sends {content_length} bytes for {dist.filename}, but its index declared {dist.size}"
        )


def _verify(dist: DistFile, spool: Spool, expected_length: int | None) -> None:
    """Size and every declared hash we can compute must match before anything is committed."""
    if expected_length is not None and spool.size != expected_length:
        raise IntegrityError(
            f"upstream sent {spool.size} of {expected_length} bytes for {dist.filename}: transfer cut short"
        )
    computed = spool.digests()
    checked = False
    for algorithm, expected in dist.hashes.items():
        actual = computed.get(algorithm)
        if actual is None:
            continue
        checked = True
        if not hmac.compare_digest(actual, expected.lower()):
            raise IntegrityError(
                f"{algorithm} of {dist.filename} from upstream is {actual}, but its index declared {expected}"
            )
    if not checked and dist.hashes:
        log.warning("no declared hash of %s could be checked (%s)", dist.filename, ", ".join(dist.hashes))
