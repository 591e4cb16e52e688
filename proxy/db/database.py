"""The Database: one aiosqlite connection and every query group (the seam for another backend)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiosqlite

from proxy.db.blobs import BlobQueries
from proxy.db.bundles import BundleQueries
from proxy.db.changes import ChangeStamps, Topic
from proxy.db.private import PrivateQueries
from proxy.db.schema import migrate
from proxy.db.tokens import TokenQueries
from proxy.db.writer import Writer


class Database(BundleQueries, BlobQueries, TokenQueries, PrivateQueries):  # BundleQueries extends PageQueries
    """The shadowpi database. Use `async with Database.open(path) as db` or open()/close()."""

    def __init__(self, conn: aiosqlite.Connection, changes: ChangeStamps, writer: Writer) -> None:
        self._conn = conn
        self._changes = changes
        self._writer = writer  # the connection of write transactions, opened on first use

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open (creating if needed) and migrate the database file."""
        changes = await asyncio.to_thread(ChangeStamps.open, path.with_name(path.name + ".changes"))
        conn = await aiosqlite.connect(path)
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA busy_timeout=10000")  # other workers may hold the write lock briefly
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
            await migrate(conn)
        except BaseException:
            await conn.close()
            changes.close()
            raise
        return cls(conn, changes, Writer(path, changes))

    async def close(self) -> None:
        await self._writer.close()
        await self._conn.close()
        self._changes.close()

    def change_stamp(self, topic: Topic) -> bytes:
        """A value that differs after any process commits a change to `topic` (cheap: call per request).

        Lets callers keep reads in memory across requests and still see other workers' and commands' writes.
        """
        return self._changes.stamp(topic)

    async def trace(self, callback: Callable[[str], object] | None) -> None:
        """Call `callback` with every statement this connection runs, parameters filled in (None: stop).

        For diagnosing slow queries and for tests that check query plans.
        """
        await self._conn.set_trace_callback(callback)  # type: ignore[arg-type]  # None removes it

    async def on_progress(self, handler: Callable[[], int | None] | None, every: int = 1000) -> None:
        """Call `handler` every `every` SQLite steps of this connection's statements, in its own thread; a true
        result interrupts the statement (None: stop). For watchdogs and for tests that hold a query mid-way."""
        await self._conn.set_progress_handler(handler, every)  # type: ignore[arg-type]  # None removes it

    async def ping(self) -> None:
        """A trivial query: proves the database answers."""
        async with self._conn.execute("SELECT 1") as cur:
            await cur.fetchone()

    async def schema_version(self) -> int:
        row = await self._one("PRAGMA user_version")
        return int(row[0]) if row else 0
