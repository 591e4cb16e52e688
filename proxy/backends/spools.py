"""The spool directory (`<data dir>/tmp`, a backend's `spools`): new spools, free space, and the sweep of the spools
a dead process left behind (SpoolDir).

The directory and the other processes that share it; the spool file itself is proxy/backends/spool.py, and the
flock() rule the sweep relies on, with the low-level file helpers, is proxy/backends/spoolfiles.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

from proxy.backends.spool import Spool
from proxy.backends.spoolfiles import create_locked, remove_if_abandoned, storage_full_errors

__all__ = ["SpoolDir"]

log = logging.getLogger(__name__)


class SpoolDir:
    """The spool directory (`<data dir>/tmp`): new spools, free space, and the sweep of dead processes' spools."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._sweep_waiters: list[asyncio.Future[int]] = []

    async def open(self) -> None:
        """Create the directory (sweeping it is a separate step: sweep())."""
        await asyncio.get_running_loop().run_in_executor(None, _makedirs, self.directory)

    async def create(self, algorithms: Iterable[str] = ()) -> Spool:
        """A new empty spool hashing sha256 and `algorithms`; the caller must dispose() it. Prefer new()."""
        with storage_full_errors():
            path, fd = await asyncio.get_running_loop().run_in_executor(None, create_locked, self.directory)
        return Spool(path, fd, algorithms)

    @asynccontextmanager
    async def new(self, algorithms: Iterable[str] = ()) -> AsyncIterator[Spool]:
        """A new spool for the block: discarded on exit unless it was moved into the blob store, then closed."""
        spool = await self.create(algorithms)
        try:
            yield spool
        finally:
            await asyncio.shield(spool.dispose())

    async def free_bytes(self) -> int:
        """Bytes available to this process on the spool directory's file system (statvfs, off the event loop)."""
        result = await asyncio.get_running_loop().run_in_executor(None, os.statvfs, self.directory)
        return result.f_bavail * result.f_frsize

    async def probe(self) -> None:
        """Write and delete a small spool; raises OSError (StorageFull when the disk is full) when that fails."""
        async with self.new() as spool:
            await spool.write(b"probe")

    async def sweep(self) -> int:
        """Delete the spools whose writer died (unlocked); returns how many. Safe while others write: see
        create_locked and remove_if_abandoned."""
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
                log.warning("could not sweep %s for abandoned spools: %s", self.directory, exc)
                continue
            if removed:
                log.info("removed %d spool(s) left by a process that died", removed)

    def _sweep_sync(self) -> int:
        return sum(remove_if_abandoned(entry) for entry in self.directory.iterdir())


def _makedirs(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
