"""A bounded local read cache in front of a remote blob store: recently read blobs are kept as files on this host's
disk (`<data dir>/readcache/`, a LocalBlobStore), so a warm hit is served with sendfile like local storage.

Blobs are immutable and content-addressed, so a local copy always holds the right bytes. What must not happen is
this host claiming a blob exists after it was deleted: like the local store's open files, the copies this process
trusts are forgotten whenever the BLOBS change stamp moves (a deletion somewhere), and each is checked with the
remote store (a HEAD) before it is served again; one found gone is deleted here too. (A copy is only ever asked for
through a file the index lists, so a stale copy could at worst serve bytes of a listed file: the right ones.)

Copies are made when this host commits a blob (the spool is renamed into the cache: no extra transfer), and in the
background after a read missed the cache (at most COPIES at a time; more misses meanwhile are just not copied).
Space: at most `budget` bytes, least recently used copies deleted first. Each process orders the copies it knows
by its own use and re-reads the directory now and then, so processes sharing a data dir see each other's copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from proxy.backends.blobs import BlobInfo, BlobReader, BlobStore
from proxy.backends.local.blobs import SMALL_BLOB, LocalBlobStore
from proxy.backends.spool import Spool
from proxy.backends.spools import SpoolDir

__all__ = ["ReadCache"]

log = logging.getLogger(__name__)

COPIES = 2  # background copies after misses, at a time
RESCAN = 60.0  # seconds before the directory is re-read for copies other processes made
WRITE_BATCH = 4 * 2**20  # bytes gathered before each write of a background copy


class ReadCache:
    """A BlobStore: `remote`, with copies of recently read blobs in `local` (at most `budget` bytes)."""

    def __init__(
        self, remote: BlobStore, local: LocalBlobStore, spools: SpoolDir, root: Path, *, budget: int,
        changed: Callable[[], bytes],
    ) -> None:
        self._remote = remote
        self._local = local
        self._spools = spools
        self._root = root / "blobs" / "sha256"
        self._budget = budget
        self._changed = changed
        self._seen: bytes | None = None
        self._trusted: set[str] = set()  # copies checked with the remote store since the stamp last moved
        self._sizes: OrderedDict[str, int] = OrderedDict()  # copies this process knows of, least recent first
        self._total = 0
        self._scanned = 0.0
        self._copying: dict[str, asyncio.Task[None]] = {}

    def _stamp(self) -> bytes:
        stamp = self._changed()
        if stamp != self._seen:
            self._seen = stamp
            self._trusted.clear()
        return stamp

    async def open(self) -> None:
        await self._local.open()
        await self._scan()

    def reader_nowait(self, sha256: str) -> BlobReader | None:
        self._stamp()
        if sha256 in self._trusted and (copy := self._local.reader_nowait(sha256)) is not None:
            self._used(sha256, copy.size)
            return copy
        return self._remote.reader_nowait(sha256)

    async def reader(self, sha256: str) -> BlobReader | None:
        if (found := self.reader_nowait(sha256)) is not None:
            return found
        stamp = self._stamp()
        copy = await self._local.reader(sha256)
        if copy is not None:
            if sha256 in self._trusted or await self._remote.stat(sha256) is not None:
                self._trust(sha256, copy.size, stamp)
                return copy
            copy.close()  # deleted from the remote store: so here too
            await self._drop(sha256)
            return None
        found = await self._remote.reader(sha256)
        if found is not None and SMALL_BLOB < found.size <= self._budget:
            self._copy_later(sha256)
        return found

    async def stat(self, sha256: str) -> BlobInfo | None:
        return await self._remote.stat(sha256)

    async def read_bytes(self, sha256: str) -> bytes:
        found = await self.reader(sha256)
        if found is None:
            raise FileNotFoundError(f"blob {sha256} is absent")
        try:
            memory = found.memory()
            if memory is not None:
                return memory
            async with contextlib.aclosing(found.chunks(0, found.size)) as chunks:
                return b"".join([chunk async for chunk in chunks])
        finally:
            found.close()

    async def prepare(self, spool: Spool) -> None:
        await self._remote.prepare(spool)

    async def commit(self, spool: Spool) -> BlobInfo:
        stamp = self._stamp()
        blob = await self._remote.commit(spool)
        if SMALL_BLOB < blob.size <= self._budget:
            await self._keep(spool, blob, stamp)  # renamed here: the next reader needs no transfer at all
        return blob

    async def put_bytes(self, data: bytes) -> BlobInfo:
        async with self._spools.new() as spool:
            await spool.write(data)
            return await self.commit(spool)

    async def delete(self, sha256: str) -> bool:
        await self._drop(sha256)
        return await self._remote.delete(sha256)

    async def probe(self) -> None:
        await self._remote.probe()

    async def redirect_url(self, sha256: str, filename: str, method: str = "GET") -> str | None:
        return await self._remote.redirect_url(sha256, filename, method)

    async def close(self) -> None:
        for task in list(self._copying.values()):
            task.cancel()
        await asyncio.gather(*self._copying.values(), return_exceptions=True)
        await self._local.close()

    # --- the copies -------------------------------------------------------------------------------------------

    def _trust(self, sha256: str, size: int, stamp: bytes) -> None:
        """A copy checked (or made) under `stamp`: trusted unless a deletion was announced since."""
        self._used(sha256, size)
        if self._stamp() == stamp:
            self._trusted.add(sha256)

    def _used(self, sha256: str, size: int) -> None:
        if sha256 not in self._sizes:
            self._total += size
        self._sizes[sha256] = size
        self._sizes.move_to_end(sha256)

    async def _drop(self, sha256: str) -> None:
        self._trusted.discard(sha256)
        self._total -= self._sizes.pop(sha256, 0)
        await self._local.delete(sha256)

    async def _keep(self, spool: Spool, blob: BlobInfo, stamp: bytes) -> None:
        try:
            await self._make_room(blob.size)
            await self._local.commit(spool)
        except Exception as exc:  # the blob is committed remotely; only the local copy is lost
            log.warning("could not keep a local copy of blob %s: %s", blob.sha256, exc)
            return
        self._trust(blob.sha256, blob.size, stamp)

    async def _make_room(self, incoming: int) -> None:
        if self._total + incoming > self._budget and time.monotonic() - self._scanned > RESCAN:
            await self._scan()
        while self._sizes and self._total + incoming > self._budget:
            oldest = next(iter(self._sizes))
            await self._drop(oldest)

    async def _scan(self) -> None:
        """Learn the copies on disk (other processes' too): ones new to this process count as least recent."""
        found = await asyncio.get_running_loop().run_in_executor(None, _list_copies, self._root)
        unknown = sorted((sha for sha in found if sha not in self._sizes), key=lambda sha: found[sha][0])
        order = OrderedDict((sha, found[sha][1]) for sha in unknown)
        order.update((sha, found[sha][1]) for sha in self._sizes if sha in found)
        self._sizes = order
        self._total = sum(self._sizes.values())
        self._scanned = time.monotonic()

    def _copy_later(self, sha256: str) -> None:
        if sha256 in self._copying or len(self._copying) >= COPIES:
            return
        task = asyncio.create_task(self._copy(sha256), name=f"readcache-copy:{sha256[:12]}")
        self._copying[sha256] = task
        task.add_done_callback(lambda _: self._copying.pop(sha256, None))

    async def _copy(self, sha256: str) -> None:
        """Fetch a blob into a spool, check its sha256, and keep it as a local copy."""
        stamp = self._stamp()
        try:
            async with self._spools.new() as spool:
                found = await self._remote.reader(sha256)
                if found is None:
                    return
                try:
                    await _fill(spool, found)
                finally:
                    found.close()
                if spool.digests()["sha256"] != sha256 or spool.size != found.size:
                    log.warning("blob %s read back with other bytes: no local copy kept", sha256)
                    return
                await self._keep(spool, BlobInfo(sha256, spool.size), stamp)
        except Exception as exc:  # a copy is an optimisation: the blob is still served from the remote store
            log.warning("could not copy blob %s to the local cache: %s", sha256, exc)


async def _fill(spool: Spool, reader: BlobReader) -> None:
    batch: list[bytes] = []
    size = 0
    async with contextlib.aclosing(reader.chunks(0, reader.size)) as chunks:
        async for chunk in chunks:
            batch.append(chunk)
            size += len(chunk)
            if size >= WRITE_BATCH:
                await spool.write_all(batch)
                batch, size = [], 0
    if batch:
        await spool.write_all(batch)


def _list_copies(root: Path) -> dict[str, tuple[float, int]]:
    """sha256 -> (mtime, size) of every copy under `root` (blocking: in a worker thread)."""
    copies: dict[str, tuple[float, int]] = {}
    with contextlib.suppress(FileNotFoundError):
        for first in os.scandir(root):
            for second in os.scandir(first.path):
                for entry in os.scandir(second.path):
                    with contextlib.suppress(FileNotFoundError):
                        st = entry.stat()
                        copies[entry.name] = (st.st_mtime, st.st_size)
    return copies
