"""Fill coordination between the processes sharing a data dir: flock() and hard links in the spool directory.

The fill of a blob has one spool name, `fill-<sha256>.partial`, shared by every process. A process leads by creating
it: it locks a new spool first and then hard-links it to that name, which fails when the name exists, so a live
leader's spool is never visible unlocked. Followers open the same file and watch it grow; its lock says whether the
leader lives, and where its name went says how the fill ended (renamed to the blob path: committed; gone: failed).
Every spool follows the spool directory's rule (proxy/backends/spoolfiles.py): locked until its name is gone.

HostFills coordinates the same way for a blob store elsewhere (an object store): its commit copies the spool and
then seals it (Spool.seal), so a follower learns that the fill was committed from the spool file it holds.
"""

from __future__ import annotations

import asyncio
import fcntl
import io
import os
from collections.abc import AsyncGenerator, Iterable
from pathlib import Path

from proxy.backends.fills import FillOutcome
from proxy.backends.local.blobs import LocalBlobReader, LocalBlobStore, OpenedBlob, open_blob
from proxy.backends.spool import Spool, is_sealed
from proxy.backends.spoolfiles import (
    SPOOL_SUFFIX,
    create_locked,
    open_existing,
    pread_chunks,
    remove_if_abandoned,
    same_file,
    storage_full_errors,
    try_lock,
    unlock,
)
from proxy.backends.spools import SpoolDir

__all__ = ["FILL_PREFIX", "ForeignSpool", "LocalFills", "LocalLead", "lead_sync", "open_fill"]

FILL_PREFIX = "fill-"  # + sha256 + SPOOL_SUFFIX: the one spool of a blob being fetched, shared by all workers
# Rounds of claim before giving up; each extra round needs another process to change the spool meanwhile.
CLAIM_ATTEMPTS = 10


class LocalLead:
    """This process leads the fill: its spool is the shared fill spool (a Lead, proxy/backends/fills.py)."""

    def __init__(self, spool: Spool) -> None:
        self._spool = spool

    @property
    def spool(self) -> Spool:
        return self._spool

    async def finish(self) -> None:
        await self._spool.dispose()  # the name goes (unless committed) before the lock: followers see how it ended


class ForeignSpool:
    """The fill spool another process leads, followed from here (a ForeignFill, proxy/backends/fills.py)."""

    def __init__(self, sha256: str, path: Path, blob: Path | None, fd: int) -> None:
        """`blob`: where a commit renames the spool to; None when a commit copies and seals it instead."""
        self._sha256 = sha256
        self._path = path
        self._blob = blob
        self._file = io.FileIO(fd, "rb")
        self.size = 0  # as of the last grown()

    @property
    def sha256(self) -> str:
        return self._sha256

    @property
    def path(self) -> Path:
        return self._path

    def grown(self) -> bool:
        """Re-read the size written so far (one fstat, cheap enough for the event loop); True when it grew."""
        size = os.fstat(self._file.fileno()).st_size
        grew, self.size = size > self.size, max(size, self.size)
        return grew

    async def outcome(self) -> FillOutcome:
        """How the leader's fill stands now (a few system calls, off the event loop)."""
        return await asyncio.get_running_loop().run_in_executor(None, self._outcome_sync)

    def _outcome_sync(self) -> FillOutcome:
        fd = self._file.fileno()
        # Lock first: the leader unlocks only after its spool's name is gone, so a spool still in place after we
        # could take the lock belongs to a dead leader, and one renamed meanwhile is found at the blob path.
        alive = not try_lock(fd, fcntl.LOCK_SH)
        if not alive:
            unlock(fd)  # holding it would make others think a leader is alive
        if same_file(self._path, fd):
            return FillOutcome.WRITING if alive else FillOutcome.ABANDONED
        # Our inode, not just any blob: no mix of two fills' bytes.
        committed = same_file(self._blob, fd) if self._blob is not None else is_sealed(fd)
        return FillOutcome.COMMITTED if committed else FillOutcome.FAILED

    async def wait(self, seconds: float) -> None:
        await asyncio.sleep(seconds)  # another process writes the spool: only polling sees it grow

    def sendfile_source(self) -> io.FileIO:
        return self._file

    def chunks(self, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        return pread_chunks(self._file.fileno(), offset, length)

    def close(self) -> None:
        self._file.close()


class LocalFills:
    """Claims fills of blobs in `blobs`, with spools in `spools`'s directory (a FillCoordinator)."""

    def __init__(self, blobs: LocalBlobStore, spools: SpoolDir) -> None:
        self._blobs = blobs
        self._tmp = spools.directory

    async def claim(
        self, sha256: str, algorithms: Iterable[str] = ()
    ) -> LocalBlobReader | LocalLead | ForeignSpool:
        blob = self._blobs.blob_path(sha256)  # ValueError for a malformed digest, before anything is created
        stamp = self._blobs.stamp()
        loop = asyncio.get_running_loop()
        with storage_full_errors():
            found = await loop.run_in_executor(None, self._claim_sync, sha256, blob, tuple(algorithms))
        if isinstance(found, OpenedBlob):
            return self._blobs.adopt(found, stamp)
        return found

    async def follow_local(self, sha256: str) -> ForeignSpool | None:
        blob = self._blobs.blob_path(sha256)  # ValueError for a malformed digest
        return await asyncio.get_running_loop().run_in_executor(None, open_fill, self._tmp, sha256, blob)

    def _claim_sync(
        self, sha256: str, blob: Path, algorithms: tuple[str, ...]
    ) -> OpenedBlob | LocalLead | ForeignSpool:
        path = self._tmp / f"{FILL_PREFIX}{sha256}{SPOOL_SUFFIX}"
        for _ in range(CLAIM_ATTEMPTS):
            if (opened := open_blob(blob, sha256)) is not None:
                return opened
            fd = lead_sync(self._tmp, path)
            if fd is not None:
                if (opened := open_blob(blob, sha256)) is None:
                    return LocalLead(Spool(path, fd, algorithms, writes_on_move=True))  # LocalBlobStore.commit: move_to
                path.unlink()  # committed since our first look: nothing to fetch
                os.close(fd)
                return opened
            if not remove_if_abandoned(path):  # a live leader (a dead one's spool is removed: try again)
                fd = open_existing(path)
                if fd is not None:
                    return ForeignSpool(sha256, path, blob, fd)
        raise OSError(f"the spool {path.name} kept changing; giving up on this fill")


def open_fill(tmp: Path, sha256: str, blob: Path | None) -> ForeignSpool | None:
    """The fill spool of `sha256` in `tmp` when one is there (led by a live process or not: its outcome says),
    followed; None when there is none."""
    path = tmp / f"{FILL_PREFIX}{sha256}{SPOOL_SUFFIX}"
    fd = open_existing(path)
    return None if fd is None else ForeignSpool(sha256, path, blob, fd)


def lead_sync(tmp: Path, path: Path) -> int | None:
    """Lock a new spool in `tmp`, then link it to `path`: a live leader's spool is never visible unlocked. The
    locked descriptor, or None when `path` exists (someone else leads)."""
    staging, fd = create_locked(tmp)
    try:
        os.link(staging, path)  # fails if the name exists: one leader, even between processes
    except FileExistsError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    finally:
        staging.unlink()
    return fd
