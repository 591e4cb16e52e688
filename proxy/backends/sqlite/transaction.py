"""Write transactions on SQLite: the one path to the writer connection.

One transaction at a time per process (an asyncio.Lock), and `BEGIN IMMEDIATE`, which takes SQLite's write lock
before the first statement, so no other process (worker, command) writes between a transaction's reads and its
writes either. COMMIT on normal exit, ROLLBACK when the block raises; then the topics the transaction touched are
bumped on the change feed. The begin and the end always run to completion, even when the task is cancelled
meanwhile (a client disconnecting): the writer connection is never left inside a transaction nobody will end, and a
commit is never left unannounced.

Reads outside transactions use the store's other connections (WAL: they see committed rows only and never wait
for a writer), so a transaction's uncommitted rows are invisible to them. (One read runs on the writer: the
janitor's PRAGMA data_version, which counts other connections' commits, so it must be the connection that makes
all of this process's.) Inside a transaction, use only `tx`:
waiting on another connection for something this transaction holds would stall both until the busy timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import aiosqlite

from proxy.backends.changes import ChangeFeed, Topic
from proxy.backends.sqlite.access import AccessWrites
from proxy.backends.sqlite.blob_index import BlobWrites
from proxy.backends.sqlite.pages import PageWrites
from proxy.backends.sqlite.private import PrivateWrites
from proxy.backends.sqlite.tokens import TokenWrites
from proxy.backends.tasks import to_end
from proxy.errors import StorageFull

__all__ = ["SqliteTransaction", "WritePath"]

T = TypeVar("T")


class SqliteTransaction(PageWrites, PrivateWrites, BlobWrites, TokenWrites, AccessWrites):
    """The statements of one open transaction (a Transaction): they all run on the writer connection."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self.changed: set[Topic] = set()  # bumped once the transaction has committed
        self.changes_usage = False


class WritePath:
    """The writer connection and its lock."""

    def __init__(self, conn: aiosqlite.Connection, feed: ChangeFeed) -> None:
        self.conn = conn
        self._feed = feed
        self.lock = asyncio.Lock()
        self.usage_commits = 0  # committed transactions of this process that may have changed the cache usage

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTransaction]:
        async with self.lock:
            try:
                await to_end(self.conn.execute("BEGIN IMMEDIATE"))
            except BaseException:
                await self._rollback()  # a cancel may have arrived after BEGIN went through
                raise
            tx = SqliteTransaction(self.conn)
            try:
                yield tx
            except BaseException as exc:
                await self._rollback()
                if _disk_full(exc):
                    raise StorageFull() from exc  # "database or disk is full": a 507, like a full spool
                raise
            await to_end(self._commit(tx))

    async def alone(self, statement: Callable[[SqliteTransaction], Awaitable[T]]) -> T:
        """Run a write of exactly ONE statement as its own transaction, in one trip to the writer's thread instead
        of three (BEGIN, the statement, COMMIT): SQLite runs a statement outside BEGIN atomically, taking the write
        lock (waiting up to busy_timeout) before it reads, as BEGIN IMMEDIATE would. The topics it touched are
        bumped after it committed, even when the caller is cancelled meanwhile."""
        return await to_end(self._alone(statement))

    async def _alone(self, statement: Callable[[SqliteTransaction], Awaitable[T]]) -> T:
        async with self.lock:
            tx = SqliteTransaction(self.conn)
            try:
                result = await statement(tx)
            except sqlite3.OperationalError as exc:
                if _disk_full(exc):
                    raise StorageFull() from exc
                raise
            await self._committed(tx)
            return result

    async def _commit(self, tx: SqliteTransaction) -> None:
        try:
            await self.conn.execute("COMMIT")
        except BaseException as exc:
            await self._rollback()  # a failed COMMIT (disk full, busy) leaves the transaction open
            if _disk_full(exc):
                raise StorageFull() from exc
            raise
        await self._committed(tx)

    async def _committed(self, tx: SqliteTransaction) -> None:
        """Account for a committed write: the usage count, and the change feed's topics it touched."""
        self.usage_commits += tx.changes_usage
        if tx.changed:
            await self._feed.bump(*tx.changed)

    async def _rollback(self) -> None:
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                await to_end(self.conn.execute("ROLLBACK"))


def _disk_full(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode == sqlite3.SQLITE_FULL
