"""The flock() rule that lets several processes share the spool directory, and the low-level file helpers that
spools, the spool directory, the fill coordinators and the local blob store use.

Every spool is flock()ed (LOCK_EX) by its writer from before it appears under its name until after its name is gone
(moved into the blob store, or discarded), so an unlocked spool was left by a dead process: the sweep removes only
those. The fill coordinators (local/fills.py, local/hostfills.py) build on the same rule for files that are no Spool
of theirs (another process's spool), which is why these helpers stand apart from the Spool class (spool.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import secrets
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path

from proxy.errors import StorageFull

__all__ = [
    "SPOOL_SUFFIX",
    "create_locked",
    "open_existing",
    "pread_chunks",
    "remove_if_abandoned",
    "same_file",
    "storage_full_errors",
    "try_lock",
    "unlock",
]

SPOOL_SUFFIX = ".partial"
READ_CHUNK = 256 * 1024


@contextlib.contextmanager
def storage_full_errors() -> Iterator[None]:
    """A full disk or quota (ENOSPC, EDQUOT) is StorageFull: a clear 507 for uploads and downloads, not a 500."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull() from exc
        raise


async def pread_chunks(fd: int, offset: int, length: int) -> AsyncGenerator[bytes, None]:
    """The bytes of `fd` at [offset, offset + length) in pieces, read off the event loop; stops early at the end."""
    loop = asyncio.get_running_loop()
    end = offset + length
    while offset < end:
        data = await loop.run_in_executor(None, os.pread, fd, min(READ_CHUNK, end - offset), offset)
        if not data:
            return
        yield data
        offset += len(data)


# --- flock()-guarded files ---


def try_lock(fd: int, kind: int) -> bool:
    """flock without waiting; False when someone else holds a conflicting lock."""
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)


def same_file(path: Path, fd: int) -> bool:
    """Whether `path` names the file open as `fd` right now."""
    try:
        named = path.stat()
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (own.st_dev, own.st_ino)


def open_existing(path: Path) -> int | None:
    """A read-only descriptor of `path`, or None when it does not exist."""
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None


def create_locked(directory: Path) -> tuple[Path, int]:
    """A new, empty, exclusively locked spool under a random name in `directory`."""
    while True:
        path = directory / f"{secrets.token_hex(16)}{SPOOL_SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        # Between open and flock a starting worker's sweep may take the file for a dead one's and delete it.
        if try_lock(fd, fcntl.LOCK_EX) and same_file(path, fd):
            return path, fd
        os.close(fd)


def remove_if_abandoned(path: Path) -> bool:
    """Delete a spool whose writer is gone (nobody holds its lock); False when it is live or already gone."""
    fd = open_existing(path)
    if fd is None:
        return False
    try:
        # While we hold the lock nobody else may delete or replace this name (the same rule binds them), so
        # the name checked here is the name unlinked.
        if not try_lock(fd, fcntl.LOCK_EX) or not same_file(path, fd):
            return False
        path.unlink()
        return True
    finally:
        os.close(fd)
