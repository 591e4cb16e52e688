"""Write transactions: a check and the writes that depend on it, atomic across coroutines and processes.

The shared connection serves every request, and any coroutine's commit() there would commit another's half-done
transaction; so transactions run on a connection of their own, one at a time per process (an asyncio.Lock), and
`BEGIN IMMEDIATE` takes SQLite's write lock before the first read, so no other worker or command on the data dir
writes between the check and the insert. Keep them short (no network, no hashing): they hold every writer back.

Inside a transaction, use only the transaction's own queries: the shared connection may be waiting for our write
lock, and waiting on it from here would stall both until the busy timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from proxy.db.blobs import BlobQueries
from proxy.db.changes import ChangeStamps, Topic
from proxy.db.private import PrivateQueries, insert_private_file
from proxy.db.records import PrivateFile
from proxy.errors import StorageFull
from proxy.simple.names import NormalizedName

__all__ = ["WriteTransaction", "Writer"]


class _Reads(PrivateQueries, BlobQueries):
    """The usual read queries, on the transaction's connection (their write methods are never called here)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn


class WriteTransaction:
    """The queries of one open transaction: reads see the latest commits and nothing changes under them; writes
    commit nothing until the transaction ends."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._reads = _Reads(conn)
        self.changed: set[Topic] = set()  # bumped once the transaction has committed

    async def private_file(self, filename: str) -> PrivateFile | None:
        return await self._reads.private_file(filename)

    async def private_files(self, project: NormalizedName) -> list[PrivateFile]:
        return await self._reads.private_files(project)

    async def deleted_sha256(self, filename: str) -> str | None:
        return await self._reads.deleted_sha256(filename)

    async def is_private_blob(self, sha256: str) -> bool:
        return await self._reads.is_private_blob(sha256)

    async def add_private_file(self, record: PrivateFile, *, replace: bool = False) -> None:
        """Insert a private file (or replace the one of that filename)."""
        await insert_private_file(self._conn, record, replace=replace)
        self.changed.add(Topic.PRIVATE)

    async def record_blob(self, sha256: str, size: int) -> None:
        """Remember a committed blob (the statement of BlobQueries.record_blob)."""
        now = time.time()
        await self._conn.execute(
            "INSERT INTO blobs (sha256, size, created_at, last_access) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(sha256) DO UPDATE SET last_access = excluded.last_access",
            (sha256, size, now, now),
        )

    async def forget_blob(self, sha256: str) -> None:
        """Forget a deleted blob (the statement of BlobQueries.forget_blob); every process hears of it once the
        transaction commits."""
        await self._conn.execute("DELETE FROM blobs WHERE sha256 = ?", (sha256,))
        self.changed.add(Topic.BLOBS)


class Writer:
    """Opens the transaction connection on first use; one transaction at a time in this process."""

    def __init__(self, path: Path, changes: ChangeStamps) -> None:
        self._path = path
        self._changes = changes
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[WriteTransaction]:
        """Commits when the block ends, rolls back when it raises (leaving the block early commits too)."""
        async with self._lock:
            conn = await self._connect()
            await conn.execute("BEGIN IMMEDIATE")
            tx = WriteTransaction(conn)
            try:
                yield tx
                await conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):  # after a failed COMMIT there may be nothing to undo
                    await asyncio.shield(conn.execute("ROLLBACK"))
                if isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode == sqlite3.SQLITE_FULL:
                    raise StorageFull() from exc  # "database or disk is full": 507, like a full spool
                raise
        if tx.changed:
            self._changes.bump(*tx.changed)

    async def _connect(self) -> aiosqlite.Connection:
        if self._conn is None:
            # isolation_level=None: sqlite3 begins nothing by itself; BEGIN/COMMIT/ROLLBACK are ours alone.
            conn = await aiosqlite.connect(self._path, isolation_level=None)
            try:
                await conn.execute("PRAGMA busy_timeout=10000")  # as the shared connection: wait for other writers
                await conn.execute("PRAGMA foreign_keys=ON")
                await conn.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None
