"""The PostgreSQL change feed: LISTEN/NOTIFY, with the stamps in this process's memory.

A write transaction sends `pg_notify('shadowpi_changes', '<instance>:<topics>')` just before its COMMIT (in the
same round trip), so the notification is delivered to every listening process when, and only if, it commits; the
committing process moves its own stamps as soon as COMMIT returns. Each process's dedicated connection
(session.py) listens, and its callback moves the stamps of the topics named: reading a stamp stays a dict lookup.

The freshness contract (proxy/backends/changes.py) as this feed keeps it:
- while the listening connection is up, another process's commit shows in stamp() within the notification's
  trip: one network hop plus the listener's event loop turn. Measured with bench/pg_feed.py (a commit in one
  process, the stamp polled in another, PostgreSQL on the same 2-core machine, 1000 commits per run, 3 runs):
  from the commit returning to the stamp moving, median -0.6 to 0.1 ms (the notification often arrives before
  the committer has its own reply), 99th percentile under 1 ms, worst 3 to 5 ms, and 96 ms while the cores were
  saturated by other jobs; from the write's start (its whole transaction), median 0.6 to 3.4 ms. On a LAN, add
  the round trip: milliseconds, far inside the one second issue 13 asks for;
- while it is down, stamp() returns a fresh value on every call (readers read through), until it is back and
  listening again, when every topic gets a fresh stamp (what was committed meanwhile is read anew);
- a connection lost without a word (half-open TCP) is noticed within PING_EVERY + QUERY_TIMEOUT (3 s), the one
  window in which a stamp may lag: the price of not pinging on every request.
Stamps are a per-process counter: never repeated, never ordered.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Iterable

import asyncpg

from proxy.backends.changes import Topic
from proxy.backends.postgres.errors import DATABASE_ERRORS
from proxy.backends.postgres.session import Session

__all__ = ["CHANNEL", "PgChangeFeed"]

CHANNEL = "shadowpi_changes"
SYNC_TIMEOUT = 5.0  # caught_up() gives up after this long (a stuck listener): stamps are then merely late
_PAYLOAD = re.compile(r"[0-9a-f]+:[0-9,]*")  # what notify_sql() puts inside a literal: nothing to escape


class PgChangeFeed:
    """Per-topic change stamps over LISTEN/NOTIFY (a ChangeFeed). See the module docstring."""

    def __init__(self, pool: asyncpg.Pool, session: Session, *, instance: str) -> None:
        self._pool = pool
        self._counter = itertools.count(1)
        self._stamps = {topic: self._fresh() for topic in Topic}
        self._live = False  # the listening connection is up: stamps are current
        self._syncs: dict[int, asyncio.Future[None]] = {}
        self.instance = instance  # hex: this process's notifications, told apart from other processes'
        session.listen(CHANNEL, self._notified)
        session.watch(self._connection_changed)

    def stamp(self, topic: Topic) -> bytes:
        if self._live:
            return self._stamps[topic]
        return self._fresh()

    async def bump(self, *topics: Topic) -> None:
        self.changed(topics)
        try:
            await self._pool.execute("SELECT pg_notify($1, $2)", CHANNEL, self._payload(topics))
        except DATABASE_ERRORS as exc:
            raise OSError(f"could not announce a change on PostgreSQL: {exc}") from exc

    async def caught_up(self) -> None:
        """Notify this very process through the database, and wait for it: notifications arrive in commit order,
        so every earlier commit's has arrived by then."""
        if not self._live:
            return
        number = next(self._counter)
        arrived = self._syncs[number] = asyncio.get_running_loop().create_future()
        try:
            await self._pool.execute("SELECT pg_notify($1, $2)", CHANNEL, f"sync:{self.instance}:{number}")
            async with asyncio.timeout(SYNC_TIMEOUT):
                await arrived
        except DATABASE_ERRORS:  # TimeoutError among them
            pass  # never raises: disconnected (stamps fresh on every call), or merely late
        finally:
            del self._syncs[number]

    def notify_sql(self, topics: Iterable[Topic]) -> str:
        """The statement a transaction runs just before COMMIT (in the same round trip, so no parameters)."""
        payload = self._payload(topics)
        assert _PAYLOAD.fullmatch(payload), payload
        return f"SELECT pg_notify('{CHANNEL}', '{payload}')"

    def changed(self, topics: Iterable[Topic]) -> None:
        """Move this process's stamps of `topics` (its own commit, or another process's notification)."""
        for topic in topics:
            self._stamps[topic] = self._fresh()

    def _payload(self, topics: Iterable[Topic]) -> str:
        return f"{self.instance}:{','.join(str(int(topic)) for topic in sorted(set(topics)))}"

    def _fresh(self) -> bytes:
        return next(self._counter).to_bytes(8, "big")

    def _notified(self, payload: str) -> None:
        source, _, rest = payload.partition(":")
        if source == "sync":
            instance, _, number = rest.partition(":")
            arrived = self._syncs.get(int(number)) if instance == self.instance and number.isdigit() else None
            if arrived is not None and not arrived.done():
                arrived.set_result(None)
            return
        if source == self.instance:
            return  # this process's own commit: its stamps moved when COMMIT returned
        try:
            topics = [Topic(int(number)) for number in rest.split(",") if number]
        except ValueError:  # a payload this shadowpi does not know (a newer one?): assume the worst
            topics = list(Topic)
        self.changed(topics)

    def _connection_changed(self, up: bool) -> None:
        if up:  # listening again: whatever was committed while it was down must be read anew
            self.changed(Topic)
            self._live = True
            return
        self._live = False
        for arrived in self._syncs.values():
            if not arrived.done():
                arrived.set_result(None)
