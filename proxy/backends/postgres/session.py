"""The dedicated connection of a process: LISTEN for change and lock-release notifications, and the session-level
advisory locks of page refreshes. One per process, outside the pool (a pooled connection would drop its LISTEN
when returned), reconnected with back-off whenever it drops.

Who needs to know when it is up or down subscribes with watch(): the change feed (stamps are fresh on every call
while it is down) and the refresh locks (held locks died with the session). A connection that dies without a word
(a network partition leaves TCP half-open) is noticed by a ping every PING_EVERY seconds that must answer within
QUERY_TIMEOUT; one that the server closes (pg_terminate_backend, a restart) is noticed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from proxy.backends.postgres.errors import CONNECTION_ERRORS, DATABASE_ERRORS

__all__ = ["Session", "SessionDown"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0  # seconds for one connection attempt
PING_EVERY = 1.0  # seconds between health checks of the connection
QUERY_TIMEOUT = 2.0  # a ping or lock query slower than this means the connection is gone
BACKOFF_MIN, BACKOFF_MAX = 0.1, 5.0  # seconds between reconnection attempts, doubling


class SessionDown(Exception):
    """The dedicated connection is not up (or went down during the query, or since `generation`)."""


class Session:
    """The dedicated connection (see the module docstring). listen() and watch() before start()."""

    def __init__(self, dsn: str, *, masked: str, application_name: str) -> None:
        self._dsn, self._masked = dsn, masked
        self._settings = {"application_name": application_name}  # shows in pg_stat_activity
        self._channels: dict[str, Callable[[str], None]] = {}
        self._watchers: list[Callable[[bool], None]] = []
        self._conn: asyncpg.Connection | None = None  # None while down
        self._busy = asyncio.Lock()  # one query at a time on a connection
        self._task: asyncio.Task[None] | None = None
        self.generation = 0  # moves on every (re)connection: session locks of an older generation are gone

    def listen(self, channel: str, handler: Callable[[str], None]) -> None:
        """Call `handler(payload)` for every notification on `channel`."""
        self._channels[channel] = handler

    def watch(self, handler: Callable[[bool], None]) -> None:
        """Call `handler(True)` once connected and listening, `handler(False)` when the connection is lost."""
        self._watchers.append(handler)

    @property
    def up(self) -> bool:
        return self._conn is not None

    async def start(self) -> None:
        """Connect and listen; raises what connecting raises (the caller reports it). Then keeps it up."""
        conn = await self._connect()
        self._task = asyncio.create_task(self._run(conn, self._up(conn)), name="postgres-session")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def fetchval(self, query: str, *args: object, generation: int | None = None) -> Any:
        """Run one query on the connection. Raises SessionDown when it is down, breaks meanwhile, or (with
        `generation`) is not the connection of that generation any more."""
        async with self._busy:
            conn = self._conn
            if conn is None or conn.is_closed() or (generation is not None and generation != self.generation):
                raise SessionDown("the PostgreSQL session is not connected")
            try:
                async with asyncio.timeout(QUERY_TIMEOUT):
                    return await conn.fetchval(query, *args)
            except CONNECTION_ERRORS as exc:
                conn.terminate()  # wakes _serve through the termination listener
                raise SessionDown(f"the PostgreSQL session broke: {exc}") from exc

    async def _connect(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT, server_settings=self._settings)
        try:
            for channel, handler in self._channels.items():
                await conn.add_listener(channel, _deliver(handler))
        except BaseException:
            conn.terminate()
            raise
        return conn

    async def _run(self, conn: asyncpg.Connection | None, lost: asyncio.Event) -> None:
        delay = BACKOFF_MIN
        while True:
            if conn is not None:
                await self._serve(conn, lost)
                delay = BACKOFF_MIN
                log.warning("PostgreSQL %s: the notification connection was lost; reconnecting", self._masked)
            else:
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
            try:
                conn = await self._connect()
            except DATABASE_ERRORS as exc:
                log.warning("PostgreSQL %s: cannot reconnect (retrying in %.1f s): %s", self._masked, delay, exc)
                conn = None
            else:
                lost = self._up(conn)
                log.info("PostgreSQL %s: the notification connection is back", self._masked)

    def _up(self, conn: asyncpg.Connection) -> asyncio.Event:
        """Make `conn` the session's (up for everyone from now on); returns what is set when it is lost."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        self._conn = conn
        self.generation += 1
        self._tell(True)
        return lost

    async def _serve(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Ping `conn` every PING_EVERY seconds until it is lost (or the task is cancelled); then down."""
        try:
            while not lost.is_set() and not conn.is_closed():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(PING_EVERY):
                        await lost.wait()
                if not lost.is_set():
                    with contextlib.suppress(SessionDown):  # it terminated the connection: the loop ends
                        await self.fetchval("SELECT 1")
        finally:
            self._conn = None
            self._tell(False)
            await _close(conn)

    def _tell(self, up: bool) -> None:
        for watcher in self._watchers:
            watcher(up)


async def _close(conn: asyncpg.Connection) -> None:
    """Say goodbye when the connection still works (shutdown), else just drop it."""
    if conn.is_closed():
        return
    try:
        async with asyncio.timeout(QUERY_TIMEOUT):
            await conn.close()
    except Exception:  # the goodbye failed: the connection is gone anyway
        conn.terminate()
    except BaseException:
        conn.terminate()
        raise


def _deliver(handler: Callable[[str], None]) -> Callable[[Any, int, str, object], None]:
    def deliver(_conn: Any, _pid: int, _channel: str, payload: object) -> None:
        handler(str(payload))

    return deliver
