"""Cache janitor: keeps cached upstream files under [cache] max_size by evicting the least recently used ones.

Never evicted: private uploads and their metadata files, blobs pinned by `shadowpi warm --pin`, and anything
served within the last GRACE seconds (so a file a client is receiving stays put; on POSIX an open file is
unaffected by unlinking anyway). Evicting a file only drops bytes: the page still lists it, and the next
request fetches it from upstream again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from proxy.db import CacheUsage, Database
from proxy.metrics import Metrics
from proxy.storage import BlobStore

log = logging.getLogger(__name__)

GRACE = 120.0  # seconds; covers hits recorded with TOUCH_EVERY throttling in any worker
TOUCH_EVERY = 60.0  # seconds between last_access writes for one blob
LOW_WATER = 0.9  # evict down to this fraction of max_size, so eviction does not run on every fill


class CacheJanitor:
    """Eviction and cache-size accounting. One sweep at a time; sweeps run periodically and after fills."""

    def __init__(
        self,
        db: Database,
        store: BlobStore,
        metrics: Metrics,
        max_size: int,
        *,
        clock: Callable[[], float] = time.time,
        interval: float = 30.0,
    ) -> None:
        self._db = db
        self._store = store
        self._metrics = metrics
        self._max_size = max_size
        self._clock = clock
        self._interval = interval
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._touched: dict[str, float] = {}
        self.usage = CacheUsage(0, 0, 0)  # as of the last sweep

    def now(self) -> float:
        """The janitor's clock: access times written by anyone must be on it."""
        return self._clock()

    def poke(self) -> None:
        """Ask for a sweep soon (after a fill committed new bytes)."""
        self._wake.set()

    async def run(self) -> None:
        """Sweep forever (cancelled at shutdown)."""
        while True:
            try:
                await self.sweep()
            except Exception:  # a failed sweep must not stop future ones
                log.exception("cache sweep failed")
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that races with a poke(),
            # and shutdown would then wait forever for this task.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()

    async def touch(self, sha256: str) -> None:
        """Record a hit for LRU order, writing at most once per TOUCH_EVERY per blob."""
        now = self._clock()
        if now - self._touched.get(sha256, 0.0) < TOUCH_EVERY:
            return
        self._touched[sha256] = now
        if len(self._touched) > 100_000:  # bound the memo; losing it only costs an extra write
            self._touched.clear()
        await self._db.touch_blob(sha256, now)

    async def sweep(self) -> int:
        """Update the size gauges; evict when over the limit. Returns how many files were evicted."""
        async with self._lock:
            usage = await self._db.cache_usage()
            evicted = 0
            if self._max_size and usage.bytes > self._max_size:
                evicted, usage = await self._evict(usage)
            self.usage = usage
            self._metrics.cache_bytes.set(usage.bytes)
            self._metrics.cache_files.set(usage.files)
            return evicted

    async def _evict(self, usage: CacheUsage) -> tuple[int, CacheUsage]:
        target = int(self._max_size * LOW_WATER)
        excess = usage.bytes - target
        candidates = await self._db.eviction_candidates(accessed_before=self._clock() - GRACE)
        freed = evicted = 0
        for blob in candidates:
            if freed >= excess:
                break
            await self._store.delete(blob.sha256)
            await self._db.forget_blob(blob.sha256)
            freed += blob.size
            evicted += 1
        self._metrics.evictions.inc(evicted)
        if freed < excess:
            log.warning(
                "cache is %d bytes over its limit, but nothing more may be evicted (pinned or in use)", excess - freed
            )
        log.info("evicted %d cached file(s), %d bytes", evicted, freed)
        return evicted, CacheUsage(usage.files - evicted, usage.bytes - freed, usage.pinned_bytes)
