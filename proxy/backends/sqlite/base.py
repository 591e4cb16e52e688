"""The base of the SQLite statement groups: the connection they run on, one-trip helpers, the topics touched."""

from __future__ import annotations

from typing import Any

import aiosqlite

from proxy.backends.changes import Topic


class Queries:
    """Shared by the statement groups. `_conn` is the connection they run on: the reader for reads outside a
    transaction, the writer inside one (see transaction.py)."""

    _conn: aiosqlite.Connection

    async def _one(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        """The first row of a query, or None. One trip to the connection's thread: execute() + fetchone() +
        close() would be three."""
        rows = await self._conn.execute_fetchall(query, params)
        return next(iter(rows), None)

    async def _all(self, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Every row of a query, in one trip to the connection's thread (an `async for` fetches in batches)."""
        return list(await self._conn.execute_fetchall(query, params))


class Statements(Queries):
    """Write statements inside a transaction: each records the topics it touched (bumped after the commit) and
    whether it may change the cache usage (what the janitor counts: blobs, and which of them are private)."""

    changed: set[Topic]
    changes_usage: bool

    async def _run(
        self, query: str, params: tuple[Any, ...] = (), *, topic: Topic | None = None, usage: bool = False
    ) -> int:
        """Execute one statement; returns the rows it changed."""
        cursor = await self._conn.execute(query, params)
        self._note(topic, usage)
        return cursor.rowcount

    async def _run_many(
        self, query: str, rows: list[tuple[Any, ...]], *, topic: Topic | None = None, usage: bool = False
    ) -> int:
        cursor = await self._conn.executemany(query, rows)
        self._note(topic, usage)
        return cursor.rowcount

    def _note(self, topic: Topic | None, usage: bool) -> None:
        if topic is not None:
            self.changed.add(topic)
        self.changes_usage = self.changes_usage or usage
