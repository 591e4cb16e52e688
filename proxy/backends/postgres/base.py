"""The base of the PostgreSQL statement groups: what they run on, and the topics a transaction's writes touch."""

from __future__ import annotations

from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from proxy.backends.changes import Topic

# A connection, borrowed from the pool or not.
Conn = asyncpg.Connection | PoolConnectionProxy

# The transaction-scoped advisory lock of private state (see transaction.py): ("sh", 1).
PRIVATE_LOCK = (0x73680001, 0)


class Queries:
    """Shared by the statement groups. `_db` is the pool for reads outside a transaction (each query borrows a
    connection for itself) and the transaction's own connection inside one."""

    _db: asyncpg.Pool | Conn

    async def _one(self, query: str, *args: Any) -> asyncpg.Record | None:
        return await self._db.fetchrow(query, *args)

    async def _all(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await self._db.fetch(query, *args)


class Statements(Queries):
    """Write statements inside a transaction: each records the topics it touched (announced with the commit) and
    whether it may change the cache usage (blobs, and which of them are private)."""

    changed: set[Topic]
    changes_usage: bool
    _private_locked: bool

    async def _run(self, query: str, *args: Any, topic: Topic | None = None, usage: bool = False) -> int:
        """Execute one statement; returns the rows it changed (from the command tag: 'UPDATE 3')."""
        tag = await self._db.execute(query, *args)
        if topic is not None:
            self.changed.add(topic)
        self.changes_usage = self.changes_usage or usage
        last = tag.rpartition(" ")[2]
        return int(last) if last.isdigit() else 0

    async def _lock_private(self) -> None:
        """Take the private-state lock for the rest of the transaction (once). Everything that decides on private
        state (a release slot, a filename, whether a blob is private) takes it before its first statement, so
        those decisions are serialized across replicas exactly as SQLite serializes all writers: a check and the
        write that depends on it see no other transaction commit in between."""
        if not self._private_locked:
            await self._db.execute("SELECT pg_advisory_xact_lock($1, $2)", *PRIVATE_LOCK)
            self._private_locked = True
