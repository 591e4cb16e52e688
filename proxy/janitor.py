"""Cache janitor: background housekeeping. Measures the cache, keeps cached upstream files under [cache] max_size
by evicting the least recently used ones, and forgets remembered upstream 404s.

Never evicted: private uploads and their metadata files, blobs pinned by `shadowpi warm --pin`, and anything
served within the last GRACE seconds. "Served" includes "being sent right now", by any replica: a send holds a
lease on its blob (serving()), which every sweep renews as a hit at least every TOUCH_EVERY seconds, so a
file a client is still receiving (from an object store, where deletion is immediate) never looks idle to any
replica's janitor. Evicting a file only drops bytes: the page still lists it, and the next request fetches it
from upstream again. Replicas sharing a PostgreSQL store evict one at a time (MetadataStore.eviction_lock).

Its reads (usage, candidates) are the metadata store's background reads: they never queue in front of a request's
query (the SQLite store runs them on a connection of its own), and its writes are short transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from proxy.backends.metadata import MetadataStore
from proxy.backends.records import BlobRecord, CacheUsage
from proxy.config import CacheConfig
from proxy.metrics import Metrics
from proxy.reaper import BlobReaper

log = logging.getLogger(__name__)

GRACE = 120.0  # seconds; covers hits recorded with TOUCH_EVERY throttling and one sweep's delay in any worker
TOUCH_EVERY = 60.0  # seconds between last_access writes for one blob
LOW_WATER = 0.9  # evict down to this fraction of max_size, so eviction does not run on every fill
BATCH = 500  # rows per short write transaction (remembered 404s); eviction candidates per sweep


class CacheJanitor:
    """Eviction, cache-size accounting and negative-page pruning. One sweep at a time; sweeps run periodically,
    and after fills when a size limit is set."""

    def __init__(
        self,
        db: MetadataStore,
        reaper: BlobReaper,
        metrics: Metrics,
        config: CacheConfig,
        *,
        negative_ttl: float,
        clock: Callable[[], float] = time.time,
        interval: float = 30.0,
        leases_now: bool = False,
    ) -> None:
        """`leases_now`: deleting a blob cuts sends in progress on other hosts (an object store), so a send whose
        blob has no recent hit written writes one at once, in the background, instead of at the next sweep."""
        self._db = db
        self._reaper = reaper  # evictions delete through it, like every other deletion of a blob
        self._metrics = metrics
        self._config = config
        self._negative_ttl = negative_ttl
        self._clock = clock
        self._interval = interval
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._touched: dict[str, float] = {}  # sha256 -> last hit written (or queued), for throttling
        self._hits: dict[str, float] = {}  # sha256 -> hit time, queued for the next sweep to write
        self._serving: dict[str, int] = {}  # sha256 -> sends in progress here (leases renewed by every sweep)
        self._leases_now = leases_now
        self._leased: dict[str, float] = {}  # sha256 -> when a lease was last written at once (leases_now)
        self._lease_writes: set[asyncio.Task[None]] = set()
        self._counted_at: int | None = None  # the store's usage_version when usage was last counted
        self._filled = True  # a fill committed bytes since the last count (or nothing was counted yet)
        self.usage = CacheUsage(0, 0, 0)  # as of the last sweep

    def now(self) -> float:
        """The janitor's clock: access times written by anyone must be on it."""
        return self._clock()

    def poke(self) -> None:
        """A fill committed new bytes: count again at the next sweep, and sweep now if a size limit is set."""
        self._filled = True
        if self._config.max_size:  # without a limit nothing is to be done now: the periodic sweep counts
            self._wake.set()

    async def run(self) -> None:
        """Sweep forever (cancelled at shutdown, when the queued hits are written one last time)."""
        try:
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
        finally:
            await self.leases_written()  # before the store closes
            try:
                await self._write_hits()
            except Exception:  # shutting down: losing LRU hints costs nothing but their order
                log.exception("could not record the last cache hits")

    async def touch(self, sha256: str) -> None:
        """Record a hit for LRU order: queued in memory (the next sweep writes it), at most once per TOUCH_EVERY
        per blob. Costs a request no database work at all."""
        now = self._clock()
        if now - self._touched.get(sha256, 0.0) < TOUCH_EVERY:
            return
        self._touched[sha256] = now
        self._hits[sha256] = now
        if len(self._touched) > 100_000:  # bound the memo; losing it only costs an extra write
            self._touched.clear()

    def serving(self, sha256: str) -> _Sending:
        """Hold a lease on a blob while it is sent (`with janitor.serving(sha256):`): no janitor of any replica evicts
        it meanwhile (see the module docstring). In memory, no await: the sweeps renew it."""
        return _Sending(self, sha256)

    def _send_started(self, sha256: str) -> None:
        self._serving[sha256] = self._serving.get(sha256, 0) + 1
        if self._leases_now:
            self._lease_at_once(sha256)

    def _send_ended(self, sha256: str) -> None:
        left = self._serving.pop(sha256) - 1
        if left:
            self._serving[sha256] = left

    def _lease_at_once(self, sha256: str) -> None:
        """Write this send's lease now (a background write, at most once per blob per TOUCH_EVERY): another
        replica's janitor must see it before its next eviction, not after this one's next sweep. An eviction that
        already claimed the row wins (the send is then cut cleanly; the next request fetches the file again)."""
        now = self._clock()
        if now - self._leased.get(sha256, 0.0) < TOUCH_EVERY:
            return
        if len(self._leased) > 100_000:  # bound the memo; losing it only costs an extra write
            self._leased.clear()
        self._leased[sha256] = self._touched[sha256] = now
        task = asyncio.get_running_loop().create_task(self._write_lease(sha256, now))
        self._lease_writes.add(task)
        task.add_done_callback(self._lease_writes.discard)

    async def leases_written(self) -> None:
        """Wait for the lease writes in flight (leases_now) to end."""
        await asyncio.gather(*self._lease_writes, return_exceptions=True)

    async def _write_lease(self, sha256: str, now: float) -> None:
        try:
            await self._db.touch_blobs({sha256: now})
        except Exception:  # the next sweep renews it anyway
            log.warning("could not record that %s is being sent; the next sweep will", sha256, exc_info=True)
            self._hits[sha256] = now

    def _renew_leases(self) -> None:
        now = self._clock()
        for sha256 in self._serving:
            if now - self._touched.get(sha256, 0.0) >= TOUCH_EVERY:
                self._touched[sha256] = self._hits[sha256] = now

    async def sweep(self) -> int:
        """Write queued hits, update the size gauges, evict when over the limit, forget expired 404s.

        Returns how many files were evicted.
        """
        async with self._lock:
            self._renew_leases()
            await self._write_hits()
            usage = await self._measure()
            evicted = 0
            if self._config.max_size and usage.bytes > self._config.max_size:
                async with self._db.eviction_lock() as mine:  # one evicting janitor per store (cluster)
                    if mine:
                        evicted, usage = await self._evict(usage)
            self.usage = usage
            self._metrics.cache_bytes.set(usage.bytes)
            self._metrics.cache_files.set(usage.files)
            await self._forget_negative_pages()
            return evicted

    async def _write_hits(self) -> None:
        hits, self._hits = self._hits, {}
        await self._db.touch_blobs(hits)

    async def _measure(self) -> CacheUsage:
        """The cache's usage, counted again only when something may have changed it since the last count."""
        version = await self._db.usage_version()  # before counting: a commit during the count shows next time
        if not self._filled and version == self._counted_at:
            return self.usage
        self._filled = False
        usage = await self._db.cache_usage()
        self._counted_at = version
        return usage

    async def _evict(self, usage: CacheUsage) -> tuple[int, CacheUsage]:
        target = int(self._config.max_size * LOW_WATER)
        excess = usage.bytes - target
        cutoff = self._clock() - GRACE
        candidates = await self._db.eviction_candidates(accessed_before=cutoff, limit=BATCH)
        freed = evicted = 0
        for blob in candidates:
            if freed >= excess:
                break
            if await self._evict_one(blob, cutoff):
                freed += blob.size
                evicted += 1
        self._metrics.evictions.inc(evicted)
        if freed < excess:
            log.warning(
                "cache is %d bytes over its limit, but nothing more may be evicted (pinned or in use)", excess - freed
            )
        log.info("evicted %d cached file(s), %d bytes", evicted, freed)
        return evicted, CacheUsage(usage.files - evicted, usage.bytes - freed, usage.pinned_bytes)

    async def _evict_one(self, blob: BlobRecord, cutoff: float) -> bool:
        """Delete one blob and forget its row; False when it may no longer go."""
        if blob.sha256 in self._hits or blob.sha256 in self._serving:  # served since the hits were written
            return False
        return await self._reaper.evict(blob.sha256, accessed_before=cutoff)

    async def _forget_negative_pages(self) -> None:
        """Forget expired remembered 404s, then the oldest beyond max_negative_pages, in short batches."""
        cutoff = self._clock() - self._negative_ttl
        expired = await _in_batches(lambda: self._db.forget_expired_negative_pages(fetched_before=cutoff, limit=BATCH))
        keep = self._config.max_negative_pages
        excess = await _in_batches(lambda: self._db.forget_oldest_negative_pages(keep=keep, limit=BATCH))
        if expired or excess:
            log.debug("forgot %d expired and %d excess remembered upstream 404(s)", expired, excess)


async def _in_batches(batch: Callable[[], Awaitable[int]]) -> int:
    """Run a bounded write until it does less than a full batch; each call is its own short transaction, so
    other writers (requests, other workers) get the database between batches. Returns the total."""
    total = 0
    while True:
        done = await batch()
        total += done
        if done < BATCH:
            return total


class _Sending:
    """Janitor.serving's lease for one send. A class rather than a @contextmanager generator: it is entered on every
    file request, and the generator's machinery cost about 2% of a warm file request's CPU (profiled)."""

    __slots__ = ("_janitor", "_sha256")

    def __init__(self, janitor: CacheJanitor, sha256: str) -> None:
        self._janitor = janitor
        self._sha256 = sha256

    def __enter__(self) -> None:
        self._janitor._send_started(self._sha256)

    def __exit__(self, *_exc: object) -> None:
        self._janitor._send_ended(self._sha256)
