"""Write transactions on PostgreSQL: a connection of the pool, BEGIN ... COMMIT, and the change notification.

Isolation is READ COMMITTED (PostgreSQL's default) with one addition that gives private state SQLite's guarantee:
a transaction that reads or writes private state (release slots, filenames, deleted names, "is this blob
private", eviction's "not private", an import's pins) first takes one transaction-scoped advisory lock,
`pg_advisory_xact_lock`, held until it commits or rolls back. So the upload slot check and the insert that
depends on it, an import's checks, a reclaim's "nobody refers to this blob" and an eviction claim run one at a
time across every replica, exactly as all SQLite writers do, and every check-then-write written for SQLite stays
right. Why one lock and not one per project: a transaction asks about a filename before it knows the project is
all it touches, and blob checks span projects; one key cannot deadlock, and these transactions are short and rare
(uploads, deletes, imports, evictions of one blob). It is taken before any row lock another holder may wait for
(private rows, blob rows), so two holders never deadlock on a row either. Everything else (pages, blob records
and hits, tokens) runs concurrently on row locks alone: single upserts that need no check. SERIALIZABLE with
retries was not an option: `async with meta.transaction()` runs the caller's block once and cannot replay it.

The end of a transaction is one round trip: `SELECT pg_notify(...); COMMIT; SELECT nextval('usage_changes')`, the
notification inside the transaction (delivered by PostgreSQL when, and only if, it commits) and the usage counter
moved after the commit (so the janitor, reading the counter and then counting, never misses it). Then this
process's stamps move. The begin and the end run to completion even if the task is cancelled meanwhile; a
connection whose rollback fails is terminated, which makes the server roll back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from proxy.backends.changes import Topic
from proxy.backends.postgres.base import Conn
from proxy.backends.postgres.blob_index import BlobWrites
from proxy.backends.postgres.changes import PgChangeFeed
from proxy.backends.postgres.errors import DATABASE_ERRORS
from proxy.backends.postgres.pages import PageWrites
from proxy.backends.postgres.private import PrivateWrites
from proxy.backends.postgres.tokens import TokenWrites
from proxy.backends.tasks import to_end
from proxy.errors import StorageFull

__all__ = ["PgTransaction", "WritePath"]


class PgTransaction(PageWrites, PrivateWrites, BlobWrites, TokenWrites):
    """The statements of one open transaction (a Transaction), all on its connection."""

    def __init__(self, conn: Conn) -> None:
        self._db = conn
        self.changed: set[Topic] = set()  # announced with the commit
        self.changes_usage = False
        self._private_locked = False


class WritePath:
    """Transactions on connections of the pool, announced on the change feed."""

    def __init__(self, pool: asyncpg.Pool, feed: PgChangeFeed) -> None:
        self._pool = pool
        self._feed = feed

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgTransaction]:
        async with self._pool.acquire() as conn:
            try:
                await to_end(conn.execute("BEGIN"))
            except BaseException:
                await _rollback(conn)  # a cancel may have arrived after BEGIN went through
                raise
            tx = PgTransaction(conn)
            try:
                yield tx
            except BaseException as exc:
                await _rollback(conn)
                if isinstance(exc, asyncpg.DiskFullError):
                    raise StorageFull() from exc  # a 507, like a full spool
                raise
            await to_end(self._commit(conn, tx))

    async def _commit(self, conn: Conn, tx: PgTransaction) -> None:
        script = "COMMIT"
        if tx.changed:
            script = f"{self._feed.notify_sql(tx.changed)}; {script}"
        if tx.changes_usage:
            script += "; SELECT nextval('usage_changes')"
        try:
            await conn.execute(script)
        except BaseException as exc:
            # Whether it committed is unknown when the connection broke: move this process's stamps anyway (a
            # needless re-read is harmless; another process was told by the notification if it did commit).
            self._feed.changed(tx.changed)
            await _rollback(conn)
            if isinstance(exc, asyncpg.DiskFullError):
                raise StorageFull() from exc
            raise
        self._feed.changed(tx.changed)


async def _rollback(conn: Conn) -> None:
    if conn.is_closed():
        return
    try:
        await to_end(conn.execute("ROLLBACK"))  # outside a transaction: a warning, nothing else
    except DATABASE_ERRORS:  # broken, or busy with a statement a cancel interrupted
        conn.terminate()  # the server rolls back the transaction of a connection that is gone
