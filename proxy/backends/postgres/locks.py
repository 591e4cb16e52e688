"""Cluster-wide locks for work that spans network I/O (refreshing a page from upstream): session-level advisory
locks taken on the dedicated connection (session.py) with pg_try_advisory_lock, so that waiting holds no
connection of the pool and takes no server process. A waiter sleeps until the holder's release notification
(`pg_notify('shadowpi_unlocked', key)`, sent with the unlock) or, as a fallback for a holder that died without
one, a poll that backs off to POLL_MAX seconds.

A holder's session dying releases its locks on the server: another replica may then take over, which costs at most
one more upstream request, never a wrong answer. Within this process, holders of one key queue on an asyncio
lock first (advisory locks are re-entrant within a session, so they alone would let two coroutines in).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from proxy.backends.keyed import KeyedLocks
from proxy.backends.postgres.session import Session, SessionDown
from proxy.backends.tasks import to_end

__all__ = ["EVICTION", "PAGE_REFRESH", "SessionLocks"]

RELEASED = "shadowpi_unlocked"
PAGE_REFRESH = 0x73680002  # the first key of page refresh locks ("sh", 2); the second is the name's hash
EVICTION = 0x73680003  # the eviction janitor's lock ("sh", 3): one replica evicts at a time
POLL_MIN, POLL_MAX = 0.05, 1.0  # seconds between attempts of a waiter that heard no release, doubling

Key = tuple[int, int]


def name_key(space: int, name: str) -> Key:
    """The advisory lock key of `name` in `space` (two int4s; names that collide only share a lock)."""
    digest = hashlib.blake2b(name.encode(), digest_size=4).digest()
    return space, int.from_bytes(digest, "big", signed=True)


class SessionLocks:
    """Session-level advisory locks by name (see the module docstring)."""

    def __init__(self, session: Session) -> None:
        self._session = self.session = session
        self._local = KeyedLocks[Key]()
        self._waiting: dict[Key, set[asyncio.Event]] = {}
        session.listen(RELEASED, self._released)
        session.watch(self._connection_changed)

    @asynccontextmanager
    async def hold(self, space: int, name: str, *, wait: float) -> AsyncIterator[bool]:
        """Yields True while this process holds the lock of `name`; False without it when it was not had within
        `wait` seconds or the session is down."""
        key = name_key(space, name)
        deadline = asyncio.get_running_loop().time() + wait
        async with self._local.hold(key, wait=wait) as mine:
            generation = await self._acquire(key, deadline) if mine else None
            try:
                yield generation is not None
            finally:
                if generation is not None:
                    await to_end(self._release(key, generation))

    async def _acquire(self, key: Key, deadline: float) -> int | None:
        """The session generation the lock was taken in, or None."""
        loop, delay = asyncio.get_running_loop(), POLL_MIN
        while True:
            released = asyncio.Event()  # registered before trying: a release between the two is not missed
            self._waiting.setdefault(key, set()).add(released)
            try:
                generation = self._session.generation
                if await self._try(key, generation):
                    return generation
                if not self._session.up or loop.time() >= deadline:
                    return None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(delay, deadline - loop.time())):
                        await released.wait()
                delay = min(delay * 2, POLL_MAX)
            except SessionDown:
                return None
            finally:
                self._forget(key, released)

    async def _try(self, key: Key, generation: int) -> bool:
        """pg_try_advisory_lock, run to its end even if the caller is cancelled meanwhile (then a lock it took is
        given back at once: a lock nobody releases would hold off every other replica until this one stops)."""
        query = self._session.fetchval("SELECT pg_try_advisory_lock($1, $2)", *key, generation=generation)
        attempt = asyncio.ensure_future(query)
        try:
            return bool(await asyncio.shield(attempt))
        except asyncio.CancelledError:
            if not attempt.done():
                await asyncio.wait({attempt})
            if not attempt.cancelled() and attempt.exception() is None and attempt.result():
                await to_end(self._release(key, generation))
            raise

    async def _release(self, key: Key, generation: int) -> None:
        with contextlib.suppress(SessionDown):  # the session is gone, and the lock with it
            await self._session.fetchval(
                "SELECT pg_advisory_unlock($1, $2), pg_notify($3, $4)", *key, RELEASED, f"{key[0]}:{key[1]}",
                generation=generation,
            )

    def _forget(self, key: Key, released: asyncio.Event) -> None:
        events = self._waiting.get(key)
        if events is not None:
            events.discard(released)
            if not events:
                del self._waiting[key]

    def _released(self, payload: str) -> None:
        first, _, second = payload.partition(":")
        try:
            key = (int(first), int(second))
        except ValueError:
            return
        for released in self._waiting.get(key, ()):
            released.set()

    def _connection_changed(self, up: bool) -> None:
        if not up:  # no release can be heard now: let every waiter find out
            for events in self._waiting.values():
                for released in events:
                    released.set()
