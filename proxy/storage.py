"""Blob storage edge: content-addressed files under the data dir, written through a spool and committed atomically.

Nothing outside this module knows blobs are files in a local directory; a future S3 backend implements the
same methods.

Several worker processes share the data dir. Every spool is flock()ed (LOCK_EX) by its writer from before it
appears under its name until after its name is gone (committed by rename or discarded), so an unlocked spool was
left by a dead process: start-up removes only those, and a fill of a blob has one leader per host (claim_fill).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import fcntl
import hashlib
import io
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import aiofiles.os

from proxy.errors import StorageFull

log = logging.getLogger(__name__)

class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


_SHA256 = re.compile(r"[0-9a-f]{64}")
SPOOL_SUFFIX = ".partial"
FILL_PREFIX = "fill-"  # + sha256 + SPOOL_SUFFIX: the one spool of a blob being fetched, shared by all workers
# Rounds of claim_fill before giving up; each extra round needs another process to change the spool meanwhile.
CLAIM_ATTEMPTS = 10


@contextlib.contextmanager
def _storage_full_errors() -> Iterator[None]:
    """A full disk or quota (ENOSPC, EDQUOT) is StorageFull: a clear 507 for uploads and downloads, not a 500."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull() from exc
        raise


def _check_key(sha256: str) -> str:
    # Keys become path components: only a well-formed digest may ever reach the filesystem.
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256


# The only algorithms ever instantiated, by index/upload name: fixed-length digests (shake_* need a length and would
# fail at hexdigest()). "blake2_256" is PyPI's blake2b with a 32-byte digest. Any other name is ignored.
_HASHERS: dict[str, Callable[[], Hasher]] = {
    "sha256": hashlib.sha256,
    "sha224": hashlib.sha224,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
    "sha1": hashlib.sha1,
    "sha3_256": hashlib.sha3_256,
    "sha3_384": hashlib.sha3_384,
    "sha3_512": hashlib.sha3_512,
    "blake2b": hashlib.blake2b,
    "blake2s": hashlib.blake2s,
    "blake2_256": lambda: hashlib.blake2b(digest_size=32),
    "md5": lambda: hashlib.md5(usedforsecurity=False),  # only ever compared with a declared value, never trusted
}


def _new_hasher(algorithm: str) -> Hasher | None:
    """A hasher by index/upload name, or None for a name outside _HASHERS."""
    factory = _HASHERS.get(algorithm)
    return factory() if factory is not None else None


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
        self.committed = False  # renamed to its blob path: the name is no longer ours to delete

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
        """Append several chunks in one trip off the event loop (one system call, one thread hand-off).

        Raises StorageFull when the disk is full.
        """
        with _storage_full_errors():
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
            os.close(self._fd)  # drops the lock, so only after the name is gone (commit or discard)


class FillOutcome(enum.Enum):
    """Where a fill led by another process stands."""

    WRITING = "writing"  # the leader lives and its spool is in place
    COMMITTED = "committed"  # the spool is now the blob: every byte was verified against its sha256
    FAILED = "failed"  # the leader discarded the spool
    ABANDONED = "abandoned"  # the leader died: its spool is left behind, unlocked


class ForeignSpool:
    """A read-only view of a spool another process is filling (see claim_fill), to follow it from here."""

    def __init__(self, sha256: str, path: Path, blob: Path, fd: int) -> None:
        self.sha256 = sha256  # of the blob this spool becomes
        self._path = path
        self._blob = blob
        self._fd = fd
        self.size = 0  # as of the last grown()
        self.closed = False

    @property
    def path(self) -> Path:
        return self._path

    def grown(self) -> bool:
        """Re-read the size written so far (one fstat, cheap enough for the event loop); True when it grew."""
        size = os.fstat(self._fd).st_size
        grew, self.size = size > self.size, max(size, self.size)
        return grew

    async def outcome(self) -> FillOutcome:
        """How the leader's fill stands now (a few system calls, off the event loop)."""
        return await asyncio.get_running_loop().run_in_executor(None, self._outcome_sync)

    def _outcome_sync(self) -> FillOutcome:
        # Lock first: the leader unlocks only after its spool's name is gone, so a spool still in place after we
        # could take the lock belongs to a dead leader, and one renamed meanwhile is found at the blob path.
        alive = not _try_lock(self._fd, fcntl.LOCK_SH)
        if not alive:
            fcntl.flock(self._fd, fcntl.LOCK_UN)  # holding it would make others think a leader is alive
        if _same_file(self._path, self._fd):
            return FillOutcome.WRITING if alive else FillOutcome.ABANDONED
        if _same_file(self._blob, self._fd):  # our inode, not just any blob: no mix of two fills' bytes
            return FillOutcome.COMMITTED
        return FillOutcome.FAILED

    def sendfile_source(self) -> BinaryIO:
        """A file object for loop.sendfile over the bytes written so far (close it when done)."""
        return io.FileIO(os.dup(self._fd), "rb")

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self._fd)


def _try_lock(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _same_file(path: Path, fd: int) -> bool:
    """Whether `path` names the file open as `fd` right now."""
    try:
        named = path.stat()
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (own.st_dev, own.st_ino)


def _open_existing(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None


def _create_locked(directory: Path) -> tuple[Path, int]:
    """A new, empty, exclusively locked spool under a random name in `directory`."""
    while True:
        path = directory / f"{secrets.token_hex(16)}{SPOOL_SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        # Between open and flock a starting worker's sweep may take the file for a dead one's and delete it.
        if _try_lock(fd, fcntl.LOCK_EX) and _same_file(path, fd):
            return path, fd
        os.close(fd)


def _remove_if_abandoned(path: Path) -> bool:
    """Delete a spool whose writer is gone (nobody holds its lock); False when it is live or already gone."""
    fd = _open_existing(path)
    if fd is None:
        return False
    try:
        # While we hold the lock nobody else may delete or replace this name (the same rule binds them), so
        # the name checked here is the name unlinked.
        if not _try_lock(fd, fcntl.LOCK_EX) or not _same_file(path, fd):
            return False
        path.unlink()
        return True
    finally:
        os.close(fd)


class BlobStore:
    """Content-addressed blobs keyed by sha256, in `<root>/blobs/`, spooled in `<root>/tmp/`."""

    def __init__(self, root: Path) -> None:
        self._blobs = root / "blobs" / "sha256"
        self._tmp = root / "tmp"
        self._sweep_waiters: list[asyncio.Future[int]] = []

    async def open(self) -> int:
        """Create the directories and delete spools a crash left behind; returns how many were removed.

        Spools of live processes (other workers on this data dir) are locked and left alone.
        """
        await aiofiles.os.makedirs(self._blobs, exist_ok=True)
        await aiofiles.os.makedirs(self._tmp, exist_ok=True)
        return await self.sweep()

    async def sweep(self) -> int:
        """Delete the spools whose writer died (unlocked); returns how many. Safe while others write: see
        _create_locked and _remove_if_abandoned."""
        waiters, self._sweep_waiters = self._sweep_waiters, []
        try:
            removed: int = await asyncio.get_running_loop().run_in_executor(None, self._sweep_sync)
        except BaseException as exc:
            for waiter in (w for w in waiters if not w.done()):
                if isinstance(exc, Exception):
                    waiter.set_exception(exc)
                else:
                    waiter.cancel()
            raise
        for waiter in (w for w in waiters if not w.done()):
            waiter.set_result(removed)
        return removed

    async def next_sweep(self) -> int:
        """Wait for the next sweep that starts after this call; returns how many spools it removed."""
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._sweep_waiters.append(waiter)
        return await waiter

    async def sweep_periodically(self, interval: float) -> None:
        """Sweep every `interval` seconds until cancelled: a worker that dies mid-upload (SIGKILL, OOM) leaves its
        spool behind, and the other workers may run for months without a restart."""
        while True:
            await asyncio.sleep(interval)
            try:
                removed = await self.sweep()
            except OSError as exc:  # a failed sweep must not stop the next ones
                log.warning("could not sweep %s for abandoned spools: %s", self._tmp, exc)
                continue
            if removed:
                log.info("removed %d spool(s) left by a process that died", removed)

    def _sweep_sync(self) -> int:
        return sum(_remove_if_abandoned(entry) for entry in self._tmp.iterdir())

    async def free_bytes(self) -> int:
        """Bytes available to this process on the data dir's file system (statvfs, off the event loop)."""
        result = await asyncio.get_running_loop().run_in_executor(None, os.statvfs, self._tmp)
        return result.f_bavail * result.f_frsize

    async def probe_writable(self) -> None:
        """Write and delete a small file in the spool directory; raises OSError (StorageFull when the disk is
        full) when storage is not writable."""
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
        """A fresh spool in the tmp directory; commit() or discard() it, then release() it."""
        with _storage_full_errors():
            path, fd = await asyncio.get_running_loop().run_in_executor(None, _create_locked, self._tmp)
        return Spool(path, fd, extra_algorithms)

    async def claim_fill(self, sha256: str, extra_algorithms: Iterable[str] = ()) -> Spool | ForeignSpool:
        """The spool to fetch this blob into, or, when another process on this host is already fetching it (or
        has just committed it), a ForeignSpool to follow. At most one process leads a blob's fill at a time.

        Raises OSError when the spool cannot be created, or keeps changing under us.
        """
        algorithms = tuple(extra_algorithms)
        with _storage_full_errors():
            return await asyncio.get_running_loop().run_in_executor(None, self._claim_sync, sha256, algorithms)

    def _claim_sync(self, sha256: str, algorithms: tuple[str, ...]) -> Spool | ForeignSpool:
        path, blob = self._tmp / f"{FILL_PREFIX}{_check_key(sha256)}{SPOOL_SUFFIX}", self._path(sha256)
        for _ in range(CLAIM_ATTEMPTS):
            fd = self._lead_sync(path)
            if fd is not None and not blob.exists():
                return Spool(path, fd, algorithms)
            if fd is not None:  # committed since the caller's cache lookup: follow the blob, do not fetch again
                path.unlink()
                os.close(fd)
                fd = _open_existing(blob)
            elif not _remove_if_abandoned(path):  # a live leader (a dead one's spool is removed: try again)
                fd = _open_existing(path)
            if fd is not None:
                return ForeignSpool(sha256, path, blob, fd)
        raise OSError(f"the spool {path.name} kept changing; giving up on this fill")

    def _lead_sync(self, path: Path) -> int | None:
        """Lock a new spool, then link it to `path`: a live leader's spool is never visible unlocked."""
        staging, fd = _create_locked(self._tmp)
        try:
            path.hardlink_to(staging)  # fails if the name exists: one leader, even between processes
        except FileExistsError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        finally:
            staging.unlink()
        return fd

    async def sync(self, spool: Spool) -> None:
        """Fsync the spool now, so that a later commit() (inside a short transaction) costs only a rename."""
        with _storage_full_errors():
            await asyncio.get_running_loop().run_in_executor(None, os.fsync, spool._fd)

    async def spool_bytes(self, data: bytes) -> Spool:
        """A new, synced spool holding `data`, to commit() later; discard() and release() it either way."""
        spool = await self.new_spool()
        try:
            await spool.write(data)
            await self.sync(spool)
        except BaseException:
            await self.discard(spool)
            self.release(spool)
            raise
        return spool

    async def commit(self, spool: Spool) -> BlobInfo:
        """Fsync and atomically move the spool to its content address (its computed sha256)."""
        sha256 = spool.digests()["sha256"]
        final = self._path(sha256)
        loop = asyncio.get_running_loop()
        with _storage_full_errors():
            await loop.run_in_executor(None, os.fsync, spool._fd)
            await aiofiles.os.makedirs(final.parent, exist_ok=True)
            await aiofiles.os.replace(spool._path, final)
        spool.committed = True
        # Open readers keep their descriptor; the spool's own fd is closed once they are done (release()).
        return BlobInfo(sha256, spool.size)

    async def discard(self, spool: Spool) -> None:
        """Delete an uncommitted spool; a no-op after commit."""
        if spool.committed:  # the name may already be another fill's spool (claim_fill)
            return
        with contextlib.suppress(FileNotFoundError):
            await aiofiles.os.remove(spool._path)

    @staticmethod
    def release(spool: Spool | ForeignSpool) -> None:
        """Close the spool's descriptor once no reader needs it any more (after commit or discard)."""
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
