"""Upstream page cache: persistent (database), TTL + conditional revalidation, negative caching, single-flight,
stale serving when upstream fails, and offline mode.

Single-flight and the TTL hold for every process sharing the store as far as its refresh lock reaches (every
replica on PostgreSQL; one process on SQLite): a refresh takes the lock of the page, reads the stored row again
(another process may have refreshed it while this one waited, or since it read its copy) and only then asks
upstream, keeping the lock until its answer is stored."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

from proxy.backends.changes import ChangeFeed, Topic
from proxy.backends.metadata import PageStore
from proxy.backends.records import StoredPage
from proxy.config import UpstreamConfig
from proxy.errors import UpstreamUnavailable
from proxy.simple.model import ProjectPage
from proxy.simple.names import NormalizedName
from proxy.upstream import FetchedPage, Missing, NotModified, UpstreamClient

log = logging.getLogger(__name__)

# What a parsed page costs in memory, estimated: about 1 kB per file (measured on PyPI's pages), plus the record.
PAGE_BYTES, FILE_BYTES = 1024, 1024


class Outcome(enum.Enum):
    """How a page lookup was answered; sent to clients as X-Shadowpi-Cache."""

    HIT = "hit"  # fresh in the cache, upstream not asked
    MISS = "miss"  # fetched from upstream now
    REVALIDATED = "revalidated"  # upstream answered 304
    STALE = "stale"  # upstream failed; the last good copy was served
    OFFLINE = "offline"  # offline mode: the cache answered without asking upstream
    PRIVATE = "private"  # the page is private only; upstream not involved


@dataclass(frozen=True, slots=True)
class PageLookup:
    """An upstream page (None: upstream does not know the project) and how it was obtained."""

    page: ProjectPage | None
    outcome: Outcome
    fetched_at: float


class PageCache:
    """Project pages from upstream through the database, with an in-memory LRU in front."""

    def __init__(
        self,
        db: PageStore,
        changes: ChangeFeed,
        upstream: UpstreamClient,
        config: UpstreamConfig,
        *,
        clock: Callable[[], float] = time.time,
        memory_entries: int = 4096,
        memory_bytes: int = 128 * 2**20,
    ) -> None:
        """The in-memory copies are bounded by `memory_entries` and `memory_bytes` (estimated); the most recently
        used page always stays."""
        self._db = db
        self._changes = changes
        self._upstream = upstream
        self._config = config
        self._clock = clock
        self._memory: OrderedDict[NormalizedName, StoredPage] = OrderedDict()
        self._memory_entries = memory_entries
        self._memory_limit = memory_bytes
        self._memory_bytes = 0
        self._inflight: dict[NormalizedName, asyncio.Task[PageLookup]] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self._pages_stamp: bytes | None = None
        # Moves whenever memory lets a page go (evicted, replaced, dropped): whoever keeps pages it handed out
        # (ProjectIndex's reused answers) drops them then, so memory stays within the page cache's bounds.
        self.generation = 0

    async def lookup(self, name: NormalizedName) -> PageLookup:
        """The upstream page for `name`, fetching or revalidating it when the cached copy is too old.

        Raises UpstreamUnavailable only when upstream fails and nothing was ever cached.
        """
        if self._config.offline:
            self._forget_if_changed_elsewhere()
        # Taken before _cached() reads the database, and only when it will: a page held in memory needs no stamp.
        before_read = None if name in self._memory else self._changes.stamp(Topic.PAGES)
        stored = await self._cached(name)
        if self._config.offline:
            return PageLookup(stored.page if stored else None, Outcome.OFFLINE, stored.fetched_at if stored else 0)
        if stored is not None and self._is_fresh(stored):
            return PageLookup(stored.page, Outcome.HIT, stored.fetched_at)
        task = self._inflight.get(name)
        if task is None:
            absent_at = before_read if stored is None else None  # None, or no row when the database was read
            task = asyncio.create_task(self._refresh(name, stored, absent_at), name=f"refresh-page:{name}")
            self._inflight[name] = task
            task.add_done_callback(lambda _t: self._inflight.pop(name, None))
        # shield: one client going away must not cancel the fetch the others are waiting on.
        return await asyncio.shield(task)

    def held_fresh(self, name: NormalizedName) -> ProjectPage | None:
        """The page held in memory when lookup() would answer it as a HIT (OFFLINE when offline) without any
        await: what ProjectIndex checks to reuse its last answer. None: not held, or too old to serve."""
        offline = self._config.offline
        if offline:
            self._forget_if_changed_elsewhere()
        stored = self._memory.get(name)
        if stored is None or not (offline or self._is_fresh(stored)):
            return None
        self._memory.move_to_end(name)
        return stored.page

    @property
    def memory_usage(self) -> tuple[int, int]:
        """(pages, estimated bytes) held in memory now."""
        return len(self._memory), self._memory_bytes

    async def cached(self, name: NormalizedName) -> ProjectPage | None:
        """The cached page without any upstream traffic (None when absent or remembered missing)."""
        stored = await self._cached(name)
        return stored.page if stored else None

    async def cached_names(self) -> list[NormalizedName]:
        """Projects with a cached upstream page, including pages fetched but still being stored."""
        if self._writes:  # those pending now (not later ones): the store's readers see committed rows only
            await asyncio.wait(list(self._writes))
        return await self._db.cached_projects()

    async def flushed(self) -> None:
        """Until every page fetched so far is in the database (other processes read it from there)."""
        while self._writes:
            await asyncio.wait(list(self._writes))

    async def close(self) -> None:
        """Cancel in-flight refreshes, then let the pending database writes finish (shutdown)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.flushed()

    def _forget_if_changed_elsewhere(self) -> None:
        """Offline, pages change only by other processes (`shadowpi import`, `shadowpi warm`): drop memory when
        one commits. Online, the TTL does this job."""
        stamp = self._changes.stamp(Topic.PAGES)
        if stamp != self._pages_stamp:
            self._pages_stamp = stamp
            self._memory.clear()
            self._memory_bytes = 0
            self.generation += 1

    def _is_fresh(self, stored: StoredPage) -> bool:
        ttl = self._config.page_ttl if stored.page is not None else self._config.negative_ttl
        return self._clock() - stored.fetched_at < ttl

    async def _cached(self, name: NormalizedName) -> StoredPage | None:
        stored = self._memory.get(name)
        if stored is not None:
            self._memory.move_to_end(name)
            return stored
        from_db = await self._db.get_page(name)
        stored = self._memory.get(name)
        if stored is not None:  # a refresh finished while we read: newer than the row (stored behind)
            return stored
        if from_db is not None:
            self._remember(name, from_db)
        return from_db

    def _remember(self, name: NormalizedName, stored: StoredPage) -> None:
        old = self._memory.pop(name, None)
        if old is not None:
            self._memory_bytes -= _cost(old)
            self.generation += 1
        self._memory[name] = stored
        self._memory_bytes += _cost(stored)
        memory = self._memory
        while len(memory) > 1 and (len(memory) > self._memory_entries or self._memory_bytes > self._memory_limit):
            _, evicted = memory.popitem(last=False)
            self._memory_bytes -= _cost(evicted)
            self.generation += 1

    async def _refresh(self, name: NormalizedName, stored: StoredPage | None, absent_at: bytes | None) -> PageLookup:
        """Refresh from upstream, holding the store's refresh lock of `name` until the answer is stored: with a
        store shared by replicas, one asks upstream and the others, holding the lock in turn, find its answer.
        `absent_at`: the PAGES stamp from before a database read that found no row for `name` (None: no such read)."""
        async with contextlib.AsyncExitStack() as lock:
            await lock.enter_async_context(self._db.page_refresh_lock(name, wait=self._config.page_timeout))
            if absent_at is not None and await self._no_page_stored_since(absent_at):
                return await self._fetch(name, None, lock)  # the row is still missing: reading it again finds nothing
            latest = await self._stored_since(name, stored)
            if latest is not None and self._is_fresh(latest):  # refreshed elsewhere while this process waited
                self._remember(name, latest)
                return PageLookup(latest.page, Outcome.HIT, latest.fetched_at)
            return await self._fetch(name, latest or stored, lock)

    async def _no_page_stored_since(self, stamp: bytes) -> bool:
        """No page was stored or dropped, in any process, since the PAGES stamp was `stamp`. Free on a shared-memory
        feed (SQLite's); where the feed lags (PostgreSQL's), caught_up() costs the round trip the read would."""
        if self._changes.stamp(Topic.PAGES) != stamp:
            return False
        await self._changes.caught_up()
        return self._changes.stamp(Topic.PAGES) == stamp

    async def _stored_since(self, name: NormalizedName, stored: StoredPage | None) -> StoredPage | None:
        """The stored answer when another process stored a newer one than `stored` (None otherwise); a copy of
        `stored` with the new time when it was only revalidated (no need to read and parse the page again)."""
        freshness = await self._db.page_freshness(name)
        if freshness is None or (stored is not None and freshness.fetched_at <= stored.fetched_at):
            return None
        if stored is not None and stored.same_answer(freshness):
            return replace(stored, fetched_at=freshness.fetched_at)
        return await self._db.get_page(name)

    async def _fetch(
        self, name: NormalizedName, stored: StoredPage | None, lock: contextlib.AsyncExitStack
    ) -> PageLookup:
        """Ask upstream; the answer is stored behind (write_behind), and `lock` released once it is."""
        validators = stored if stored is not None and stored.page is not None else None
        try:
            result = await self._upstream.fetch_project(
                name,
                etag=validators.etag if validators else None,
                last_modified=validators.last_modified if validators else None,
            )
        except UpstreamUnavailable as exc:
            if stored is None:
                raise
            log.warning("upstream failed for %s, serving the cached copy: %s", name, exc)
            return PageLookup(stored.page, Outcome.STALE, stored.fetched_at)
        now = self._clock()
        if isinstance(result, NotModified) and validators is not None:
            fresh = StoredPage(validators.page, validators.etag, validators.last_modified, now)
            self._remember(name, fresh)
            self._write_behind(self._db.touch_page(name, now), name, lock.pop_all())
            return PageLookup(fresh.page, Outcome.REVALIDATED, now)
        if isinstance(result, FetchedPage):
            fresh = StoredPage(result.page, result.etag, result.last_modified, now)
        elif isinstance(result, Missing):
            fresh = StoredPage(None, None, None, now)
        else:  # a 304 we did not ask for: upstream is confused
            raise UpstreamUnavailable(f"upstream answered 304 for {name} without a cached copy")
        self._remember(name, fresh)
        self._write_behind(self._db.put_page(name, fresh), name, lock.pop_all())
        return PageLookup(fresh.page, Outcome.MISS, now)

    def _write_behind(
        self, write: Coroutine[Any, Any, None], name: NormalizedName, lock: contextlib.AsyncExitStack
    ) -> None:
        """Store a page without making the client wait for the commit: memory already answers for it, and
        write transactions of one page are ordered by its refresh lock, released (`lock`) once this one is
        committed, so another process taking the lock next finds the page stored."""
        task = asyncio.create_task(self._logged(write, name, lock), name=f"store-page:{name}")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    @staticmethod
    async def _logged(write: Coroutine[Any, Any, None], name: NormalizedName, lock: contextlib.AsyncExitStack) -> None:
        async with lock:
            try:
                await write
            except Exception:  # the page was served; only its persistence failed
                log.exception("could not store the page of %s", name)


def _cost(stored: StoredPage) -> int:
    return PAGE_BYTES + (FILE_BYTES * len(stored.page.files) if stored.page is not None else 0)
