"""The local blob store: content-addressed files under `<root>/blobs/sha256/ab/cd/<sha256>`, committed by renaming a
spool into place, and a cache of open blob files so a cached hit is served with no file-system call at all.

The open-file cache keeps up to `open_files` recently read blobs open (least recently used first out), shared and
reference-counted by the readers handed out. A blob's bytes never change, and an open file keeps reading them even
after the blob is deleted, so a reader is always safe to use. What the cache must never do is claim that a blob
exists after any process announced its deletion: every lookup first compares the BLOBS change stamp with the one
the cache was filled under, and empties the cache when it moved (evictions, purges and private deletes bump it).
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import secrets
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

from proxy.backends.blobs import BlobInfo
from proxy.backends.spool import Spool
from proxy.backends.spoolfiles import pread_chunks, storage_full_errors
from proxy.backends.spools import SpoolDir

__all__ = ["LocalBlobReader", "LocalBlobStore", "OpenedBlob"]

OPEN_FILES = 256  # default size of the open-file cache ([cache] open_files)
SMALL_BLOB = 64 * 1024  # blobs up to this size are also held in memory while open (at most OPEN_FILES of them)
_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_key(sha256: str) -> str:
    """Keys become path components: only a well-formed digest may ever reach the file system."""
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256


class OpenedBlob:
    """An open committed blob file; closed when its last holder (the cache, a reader) lets go."""

    __slots__ = ("data", "doomed", "file", "holders", "modified", "sha256", "size")

    def __init__(self, sha256: str, file: io.FileIO, size: int, modified: float, data: bytes | None) -> None:
        self.sha256 = sha256
        self.file = file
        self.size = size
        self.modified = modified
        self.data = data  # all of it, for a small blob
        self.holders = 0
        self.doomed = False  # dropped because it may be deleted: close it off the loop (that may free its blocks)


def open_blob(path: Path, sha256: str) -> OpenedBlob | None:
    """Open and fstat a committed blob (blocking: in a worker thread); None when absent."""
    try:
        file = io.FileIO(path, "rb")
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(file.fileno())
        data = os.pread(file.fileno(), st.st_size, 0) if st.st_size <= SMALL_BLOB else None
    except BaseException:
        file.close()
        raise
    if data is not None and len(data) != st.st_size:  # not what fstat said: send it from the file instead
        data = None
    return OpenedBlob(sha256, file, st.st_size, st.st_mtime, data)


class LocalBlobReader:
    """A BlobReader (proxy/backends/blobs.py) over an open blob file shared with the cache and other readers."""

    __slots__ = ("_blob", "_closed", "_store")

    def __init__(self, store: LocalBlobStore, blob: OpenedBlob) -> None:
        self._store = store
        self._blob = blob
        self._closed = False
        blob.holders += 1

    @property
    def sha256(self) -> str:
        return self._blob.sha256

    @property
    def size(self) -> int:
        return self._blob.size

    @property
    def modified(self) -> float:
        return self._blob.modified

    def memory(self) -> bytes | None:
        return self._blob.data

    def sendfile_source(self) -> io.FileIO:
        return self._blob.file

    def chunks(self, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        return pread_chunks(self._blob.file.fileno(), offset, length)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._store.let_go(self._blob)


class LocalBlobStore:
    """Blobs in `<root>/blobs/`, spooled through `spools`. `changed` returns the BLOBS change stamp (a memory read);
    the open-file cache is emptied whenever it moves."""

    def __init__(
        self, root: Path, spools: SpoolDir, *, changed: Callable[[], bytes], open_files: int = OPEN_FILES
    ) -> None:
        self._blobs = root / "blobs" / "sha256"
        self._spools = spools
        self._changed = changed
        self._capacity = open_files
        self._held: OrderedDict[str, OpenedBlob] = OrderedDict()
        self._seen: bytes | None = None
        self._closing: set[asyncio.Future[None]] = set()

    def blob_path(self, sha256: str) -> Path:
        """Where a blob lives (for this backend's fill coordinator only)."""
        key = check_key(sha256)
        return self._blobs / key[:2] / key[2:4] / key

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, _makedirs, self._blobs)

    def stamp(self) -> bytes:
        """The BLOBS change stamp now; empties the open-file cache when it moved since the last look."""
        stamp = self._changed()
        if stamp != self._seen:
            self._seen = stamp
            held, self._held = self._held, OrderedDict()
            for blob in held.values():
                blob.doomed = True
                self.let_go(blob)
        return stamp

    def reader_nowait(self, sha256: str) -> LocalBlobReader | None:
        self.stamp()
        blob = self._held.get(sha256)
        if blob is None:
            return None
        self._held.move_to_end(sha256)
        return LocalBlobReader(self, blob)

    async def reader(self, sha256: str) -> LocalBlobReader | None:
        path = self.blob_path(sha256)
        reader = self.reader_nowait(sha256)
        if reader is not None:
            return reader
        stamp = self._seen
        opened = await asyncio.get_running_loop().run_in_executor(None, open_blob, path, sha256)
        return None if opened is None else self.adopt(opened, stamp)

    def adopt(self, blob: OpenedBlob, stamp: bytes | None) -> LocalBlobReader:
        """A reader of a blob opened under `stamp`; the cache keeps it too unless a deletion was announced since
        (then it may be gone: this one reader still reads the bytes it opened)."""
        reader = LocalBlobReader(self, blob)
        if self.stamp() == stamp and blob.sha256 not in self._held:
            blob.holders += 1
            self._held[blob.sha256] = blob
            while len(self._held) > self._capacity:
                _, oldest = self._held.popitem(last=False)
                self.let_go(oldest)
        return reader

    def let_go(self, blob: OpenedBlob) -> None:
        """One holder is done with `blob`; the last one closes it."""
        blob.holders -= 1
        if blob.holders > 0:
            return
        if not blob.doomed:
            blob.file.close()  # the blob is in place: closing costs nothing
            return
        closing = asyncio.get_running_loop().run_in_executor(None, blob.file.close)
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def stat(self, sha256: str) -> BlobInfo | None:
        path = self.blob_path(sha256)
        self.stamp()
        held = self._held.get(sha256)
        if held is not None:
            return BlobInfo(sha256, held.size)
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, os.stat, path)
        except FileNotFoundError:
            return None
        return BlobInfo(sha256, result.st_size)

    async def read_bytes(self, sha256: str) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(None, self.blob_path(sha256).read_bytes)

    async def prepare(self, spool: Spool) -> None:
        await spool.sync()  # the commit is then only a rename

    async def commit(self, spool: Spool) -> BlobInfo:
        sha256 = spool.digests()["sha256"]
        path = self.blob_path(sha256)
        stamp = self.stamp()
        # Held open at once (in the same trip off the loop): the file just committed is usually asked for again
        # soon, by the next client or pip's second pass.
        opened = await spool.move_to(path, lambda: open_blob(path, sha256))
        if opened is not None:
            self.adopt(opened, stamp).close()
        return BlobInfo(sha256, spool.size)

    async def put_bytes(self, data: bytes) -> BlobInfo:
        async with self._spools.new() as spool:
            await spool.write(data)
            return await self.commit(spool)

    async def delete(self, sha256: str) -> bool:
        path = self.blob_path(sha256)
        held = self._held.pop(sha256, None)
        if held is not None:
            held.doomed = True
            self.let_go(held)
        try:
            await asyncio.get_running_loop().run_in_executor(None, os.unlink, path)
        except FileNotFoundError:
            return False
        return True

    async def probe(self) -> None:
        with storage_full_errors():
            await asyncio.get_running_loop().run_in_executor(None, _probe, self._blobs)

    async def redirect_url(self, sha256: str, filename: str, method: str = "GET") -> str | None:
        return None  # clients get the bytes from shadowpi itself

    async def close(self) -> None:
        held, self._held = self._held, OrderedDict()
        for blob in held.values():
            self.let_go(blob)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


def _makedirs(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def _probe(directory: Path) -> None:
    """Write, sync and delete a small file where blobs are committed."""
    path = directory / f".probe-{secrets.token_hex(8)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, b"probe")
        os.fsync(fd)
    finally:
        os.close(fd)
        path.unlink()
