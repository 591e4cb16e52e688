"""The base of the query groups: the connection and the one-row helper."""

from __future__ import annotations

from typing import Any

import aiosqlite

from proxy.db.changes import ChangeStamps


class Queries:
    """Shared by the query groups: the one connection (set by Database)."""

    _conn: aiosqlite.Connection
    _changes: ChangeStamps  # writers bump a topic after committing (see changes.py)

    async def _one(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        """The first row of a query, or None (for queries that return at most a few rows).

        One trip to the connection's thread: execute() + fetchone() + close() would be three.
        """
        rows = await self._conn.execute_fetchall(query, params)
        return next(iter(rows), None)
