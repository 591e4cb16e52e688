"""A spool: one local temporary file that a blob is written through, hashed on the way and readable while it grows
(Spool, and SpoolReader over its bytes). Local to every backend: an object-store backend commits by uploading a spool.

The file alone, apart from the directory that holds spools and sweeps the dead ones (proxy/backends/spools.py) and
from the flock() rule several processes share them by (proxy/backends/spoolfiles.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from pathlib import Path
from typing import BinaryIO, TypeVar

from proxy.backends.digests import hashers
from proxy.backends.spoolfiles import pread_chunks, storage_full_errors

__all__ = ["SEALED_MODE", "Spool", "SpoolReader", "is_sealed"]

SEALED_MODE = 0o444  # a spool's file mode once its bytes are a committed blob elsewhere (Spool.seal)
T = TypeVar("T")


class Spool:
    """A local temporary file being written: positional appends, running hashes, readable while it grows.

    Use it through SpoolDir.new() (`async with`), which discards it on exit unless it was moved into the blob store.
    """

    def __init__(self, path: Path, fd: int, algorithms: Iterable[str], *, writes_on_move: bool = False) -> None:
        """`writes_on_move`: this spool's commit is move_to (the local blob store's), which writes staged bytes
        (stage()) in its own trip off the event loop."""
        self._path = path
        self._fd = fd
        self._hashers = hashers(algorithms)
        self.size = 0  # every byte taken: written, or staged (hashed, in memory, written by move_to)
        self.written = 0  # bytes on disk: what readers see
        self.writes_on_move = writes_on_move
        self._staged: list[bytes] = []
        self.closed = False
        self.moved = False  # renamed into the blob store: the name is no longer ours to delete
        self._discarded = False

    @property
    def path(self) -> Path:
        """The local file, for inspection while it is ours (archive checks of an upload)."""
        return self._path

    def _write_sync(self, chunks: Sequence[bytes], offset: int) -> None:
        _pwrite_all(self._fd, chunks, offset)
        self._hash(chunks)  # hashlib releases the GIL for large buffers

    def _hash(self, chunks: Sequence[bytes]) -> None:
        for chunk in chunks:
            for hasher in self._hashers.values():
                hasher.update(chunk)

    async def write(self, chunk: bytes) -> None:
        """Append a chunk (off the event loop) and update the running hashes. Raises StorageFull."""
        await self.write_all((chunk,))

    async def write_all(self, chunks: Sequence[bytes]) -> None:
        """Append several chunks in one trip off the event loop (one system call, one thread hand-off).

        Raises StorageFull when the disk is full.
        """
        assert not self._staged, "staged bytes come last"
        with storage_full_errors():
            await asyncio.get_running_loop().run_in_executor(None, self._write_sync, chunks, self.size)
        self.size += sum(len(chunk) for chunk in chunks)
        self.written = self.size

    def stage(self, chunks: Sequence[bytes]) -> None:
        """Take the last chunks of a small file without writing them yet: hashed here on the event loop (64 KiB
        costs ~40 µs, less than a trip to a thread), written by move_to in the trip that commits them.
        Readers do not see them until then. Only for a spool that `writes_on_move`."""
        assert self.writes_on_move, "only a spool committed by move_to may hold bytes back"
        self._hash(chunks)
        self._staged.extend(chunk for chunk in chunks if chunk)
        self.size += sum(len(chunk) for chunk in chunks)

    def _flush_sync(self) -> None:
        """Write the staged bytes (in a worker thread; the event loop touches nothing of this spool meanwhile)."""
        if self._staged:
            _pwrite_all(self._fd, self._staged, self.written)
            self._staged = []
            self.written = self.size

    def digests(self) -> dict[str, str]:
        """Hex digests of everything written so far, per algorithm (always includes sha256)."""
        return {name: hasher.hexdigest() for name, hasher in self._hashers.items()}

    def reader(self) -> SpoolReader:
        """A view of the bytes written so far (its size follows the spool) with a descriptor of its own: it stays
        readable after the spool is moved, discarded or closed. Close it when done."""
        return SpoolReader(self, os.dup(self._fd))

    async def sync(self) -> None:
        """Fsync now, so that a later commit (inside a short transaction) costs only a rename. Raises StorageFull."""
        with storage_full_errors():
            await asyncio.get_running_loop().run_in_executor(None, self._sync_sync)

    def _sync_sync(self) -> None:
        self._flush_sync()
        os.fsync(self._fd)

    async def read(self, offset: int, length: int) -> bytes:
        """Up to `length` bytes written at `offset` (fewer only at the end), read off the event loop: how a remote
        blob store uploads a spool part by part without holding all of it in memory."""
        return await asyncio.get_running_loop().run_in_executor(None, _pread_all, self._fd, length, offset)

    async def seal(self) -> None:
        """Mark the file as committed (read-only mode): for a blob store that copies spools elsewhere instead of
        renaming them into place. Whoever holds the file open can tell its bytes were committed (is_sealed) after
        its name is gone, which a fill's followers on this host rely on (local/fills.py)."""
        await asyncio.get_running_loop().run_in_executor(None, os.fchmod, self._fd, SEALED_MODE)

    async def move_to(self, target: Path, then: Callable[[], T]) -> T:
        """Fsync and atomically rename the spool to `target` (replacing it), creating its directory: the blob
        store's commit; then call `then` in the same trip off the event loop, which also writes the staged bytes
        first (see stage()). Afterwards discard() leaves the name alone. Raises StorageFull."""

        def move() -> T:
            self._flush_sync()
            _fsync_and_move(self._fd, self._path, target)
            self.moved = True
            return then()

        with storage_full_errors():
            return await asyncio.get_running_loop().run_in_executor(None, move)

    async def discard(self) -> None:
        """Delete the spool's file; a no-op once moved (the name may already be another fill's spool)."""
        if self.moved or self._discarded:
            return
        self._discarded = True  # never unlink this name again: it may be someone else's by then
        with contextlib.suppress(FileNotFoundError):
            await asyncio.get_running_loop().run_in_executor(None, os.unlink, self._path)

    def close(self) -> None:
        """Close the descriptor, which drops the lock: only once the name is gone (moved or discarded)."""
        if not self.closed:
            self.closed = True
            os.close(self._fd)

    async def dispose(self) -> None:
        """Discard unless moved, then close: what every spool's owner does last (SpoolDir.new does it on exit)."""
        try:
            await self.discard()
        finally:
            self.close()


def _pread_all(fd: int, length: int, offset: int) -> bytes:
    pieces = []
    while length > 0:
        data = os.pread(fd, length, offset)
        if not data:
            break
        pieces.append(data)
        offset += len(data)
        length -= len(data)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def is_sealed(fd: int) -> bool:
    """Whether the open spool `fd` was sealed (Spool.seal): its bytes were committed as a blob. Spools are created
    writable by their owner (0o644 minus a umask, which never takes the owner's own write permission)."""
    return os.fstat(fd).st_mode & 0o222 == 0


def _pwrite_all(fd: int, chunks: Sequence[bytes], offset: int) -> None:
    # Positional writes: the descriptor's file offset is never used, so readers may share the file.
    pending = [memoryview(chunk) for chunk in chunks if chunk]
    while pending:
        written = os.pwritev(fd, pending, offset)
        offset += written
        while pending and written >= len(pending[0]):
            written -= len(pending.pop(0))
        if written:
            pending[0] = pending[0][written:]


def _fsync_and_move(fd: int, path: Path, target: Path) -> None:
    os.fsync(fd)
    target.parent.mkdir(parents=True, exist_ok=True)
    path.replace(target)


class SpoolReader:
    """A spool's bytes as a ByteSource (see proxy/backends/blobs.py), with a descriptor of its own."""

    def __init__(self, spool: Spool, fd: int) -> None:
        self._spool = spool
        self._file = io.FileIO(fd, "rb")

    @property
    def size(self) -> int:
        return self._spool.written  # staged bytes are not in the file yet

    def sendfile_source(self) -> BinaryIO:
        return self._file

    def chunks(self, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        return pread_chunks(self._file.fileno(), offset, length)

    def close(self) -> None:
        self._file.close()
