"""Blob storage edge: content-addressed files under the data dir, written through a spool and committed atomically.

Nothing outside this module knows blobs are files in a local directory; a future S3 backend implements the
same methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import aiofiles.os


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


_SHA256 = re.compile(r"[0-9a-f]{64}")
SPOOL_SUFFIX = ".partial"


def _check_key(sha256: str) -> str:
    # Keys become path components: only a well-formed digest may ever reach the filesystem.
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256


def _new_hasher(algorithm: str) -> Hasher | None:
    """A hasher by index/upload name: hashlib names plus PyPI's "blake2_256" (blake2b, 32-byte digest)."""
    if algorithm == "blake2_256":
        return hashlib.blake2b(digest_size=32)
    if algorithm == "md5":  # only ever compared with what a client declared, never trusted alone
        return hashlib.md5(usedforsecurity=False)
    if algorithm in hashlib.algorithms_available:
        return hashlib.new(algorithm)
    return None


@dataclass(frozen=True, slots=True)
class BlobInfo:
    sha256: str
    size: int


class Spool:
    """A blob being written: appended to, hashed on the way, readable by other tasks while it grows."""

    def __init__(self, path: Path, fd: int, extra_algorithms: Iterable[str]) -> None:
        self._path = path
        self._fd = fd
        self._hashers: dict[str, Hasher] = {"sha256": hashlib.sha256()}
        for algorithm in extra_algorithms:
            hasher = _new_hasher(algorithm)
            if hasher is not None and algorithm not in self._hashers:
                self._hashers[algorithm] = hasher
        self.size = 0
        self.closed = False

    @property
    def path(self) -> Path:
        """The spool's local temporary file (spools are local whatever the blob backend), for inspection."""
        return self._path

    def _write_sync(self, chunks: Sequence[bytes], offset: int) -> None:
        # Positional writes: the descriptor's file offset is never used, so readers may share it (sendfile).
        pending = [memoryview(chunk) for chunk in chunks if chunk]
        while pending:
            written = os.pwritev(self._fd, pending, offset)
            offset += written
            while pending and written >= len(pending[0]):
                written -= len(pending.pop(0))
            if written:
                pending[0] = pending[0][written:]
        for chunk in chunks:
            for hasher in self._hashers.values():
                hasher.update(chunk)  # hashlib releases the GIL for large buffers

    async def write(self, chunk: bytes) -> None:
        """Append a chunk (off the event loop) and update the running hashes."""
        await self.write_all((chunk,))

    async def write_all(self, chunks: Sequence[bytes]) -> None:
        """Append several chunks in one trip off the event loop (one system call, one thread hand-off)."""
        await asyncio.get_running_loop().run_in_executor(None, self._write_sync, chunks, self.size)
        self.size += sum(len(chunk) for chunk in chunks)

    def sendfile_source(self) -> BinaryIO:
        """A file object for loop.sendfile over the bytes written so far (close it when done).

        It shares the spool's open file, so it stays readable after commit() renames or discard() deletes it.
        """
        return io.FileIO(os.dup(self._fd), "rb")

    def digests(self) -> dict[str, str]:
        """Hex digests of everything written so far, per algorithm (always includes sha256)."""
        return {name: hasher.hexdigest() for name, hasher in self._hashers.items()}

    async def read(self, offset: int, length: int) -> bytes:
        """Bytes already written at `offset` (fewer near the end); safe while writing continues."""
        return await asyncio.get_running_loop().run_in_executor(None, os.pread, self._fd, length, offset)

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self._fd)


class BlobStore:
    """Content-addressed blobs keyed by sha256, in `<root>/blobs/`, spooled in `<root>/tmp/`."""

    def __init__(self, root: Path) -> None:
        self._blobs = root / "blobs" / "sha256"
        self._tmp = root / "tmp"

    async def open(self) -> int:
        """Create the directories and delete spools a crash left behind; returns how many were removed."""
        await aiofiles.os.makedirs(self._blobs, exist_ok=True)
        await aiofiles.os.makedirs(self._tmp, exist_ok=True)
        removed = 0
        for name in await aiofiles.os.listdir(self._tmp):
            with contextlib.suppress(FileNotFoundError):
                await aiofiles.os.remove(self._tmp / name)
                removed += 1
        return removed

    async def probe_writable(self) -> None:
        """Write and delete a small file in the spool directory; raises OSError when storage is not writable."""
        spool = await self.new_spool()
        try:
            await spool.write(b"probe")
        finally:
            await self.discard(spool)
            self.release(spool)

    def _path(self, sha256: str) -> Path:
        key = _check_key(sha256)
        return self._blobs / key[:2] / key[2:4] / key

    async def stat(self, sha256: str) -> BlobInfo | None:
        """Size of a committed blob, or None when absent."""
        try:
            result = await aiofiles.os.stat(self._path(sha256))
        except FileNotFoundError:
            return None
        return BlobInfo(sha256, result.st_size)

    def serve_path(self, sha256: str) -> Path:
        """Where a committed blob can be sent from (sendfile)."""
        return self._path(sha256)

    async def read_bytes(self, sha256: str) -> bytes:
        """A committed (small) blob's bytes."""
        async with aiofiles.open(self._path(sha256), "rb") as f:
            return await f.read()

    async def new_spool(self, extra_algorithms: Iterable[str] = ()) -> Spool:
        """A fresh spool in the tmp directory; commit() or discard() it."""
        path = self._tmp / f"{secrets.token_hex(16)}{SPOOL_SUFFIX}"
        loop = asyncio.get_running_loop()
        fd = await loop.run_in_executor(None, os.open, path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        return Spool(path, fd, extra_algorithms)

    async def commit(self, spool: Spool) -> BlobInfo:
        """Fsync and atomically move the spool to its content address (its computed sha256)."""
        sha256 = spool.digests()["sha256"]
        final = self._path(sha256)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, os.fsync, spool._fd)
        await aiofiles.os.makedirs(final.parent, exist_ok=True)
        await aiofiles.os.replace(spool._path, final)
        # Open readers keep their descriptor; the spool's own fd is closed once they are done (release()).
        return BlobInfo(sha256, spool.size)

    async def discard(self, spool: Spool) -> None:
        """Delete an uncommitted spool; a no-op after commit."""
        with contextlib.suppress(FileNotFoundError):
            await aiofiles.os.remove(spool._path)

    @staticmethod
    def release(spool: Spool) -> None:
        """Close the spool's descriptor once no reader needs it any more."""
        spool._close()

    async def put_bytes(self, data: bytes) -> BlobInfo:
        """Store small in-memory content (metadata files, tests)."""
        spool = await self.new_spool()
        try:
            await spool.write(data)
            return await self.commit(spool)
        finally:
            await self.discard(spool)
            self.release(spool)

    async def delete(self, sha256: str) -> bool:
        """Remove a committed blob; False when it was not there."""
        try:
            await aiofiles.os.remove(self._path(sha256))
        except FileNotFoundError:
            return False
        return True
