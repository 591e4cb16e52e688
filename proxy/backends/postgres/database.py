"""The PostgreSQL MetadataStore: a pool of connections for reads and write transactions, explicit migrations.

Reads outside transactions borrow a pooled connection per query and see committed rows only (MVCC: they never
wait for a writer). Transactions are transaction.py's. The process's dedicated connection (session.py) is not
used here but for page refresh locks (locks.py) and the change feed (changes.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg

from proxy.backends.metadata import SchemaMismatch
from proxy.backends.postgres.blob_index import BlobReads, UsageReads
from proxy.backends.postgres.bundles import BundleReads
from proxy.backends.postgres.changes import PgChangeFeed
from proxy.backends.postgres.errors import DATABASE_ERRORS
from proxy.backends.postgres.leases import FillLeases
from proxy.backends.postgres.locks import EVICTION, PAGE_REFRESH, SessionLocks
from proxy.backends.postgres.private import PrivateReads
from proxy.backends.postgres.schema import MIGRATIONS, migrate, schema_version
from proxy.backends.postgres.tokens import TokenReads
from proxy.backends.postgres.transaction import PgTransaction, WritePath
from proxy.backends.shortcuts import SingleWrites
from proxy.simple.names import NormalizedName

__all__ = ["PgMetadata"]

log = logging.getLogger(__name__)


class PgMetadata(SingleWrites[PgTransaction], BundleReads, PrivateReads, BlobReads, UsageReads, TokenReads):
    """A MetadataStore on one PostgreSQL database (opened by proxy.backends.postgres.open_postgres)."""

    _token_use_errors = DATABASE_ERRORS  # type: ignore[assignment]  # all Exceptions; TimeoutError is OSError

    def __init__(self, pool: asyncpg.Pool, feed: PgChangeFeed, locks: SessionLocks, *, masked: str) -> None:
        self._db = self._pool = pool
        self._feed = feed
        self._locks = locks
        self._write = WritePath(pool, feed)
        self.masked = masked  # the URL without its password

    def transaction(self) -> AbstractAsyncContextManager[PgTransaction]:
        return self._write.transaction()

    @asynccontextmanager
    async def page_refresh_lock(self, name: NormalizedName, *, wait: float) -> AsyncIterator[bool]:
        async with self._locks.hold(PAGE_REFRESH, name, wait=wait) as held:
            yield held

    @asynccontextmanager
    async def eviction_lock(self) -> AsyncIterator[bool]:
        async with self._locks.hold(EVICTION, "evict", wait=0) as held:
            yield held

    def fill_leases(self) -> FillLeases:
        """Cluster-wide leads of downloads (leases.py) on this store's dedicated connection."""
        return FillLeases(self._pool, self._locks.session)

    async def usage_version(self) -> int:
        row = await self._one("SELECT last_value, is_called FROM usage_changes")
        return int(row[0]) if row is not None and row[1] else 0

    async def ping(self) -> None:
        await self._db.fetchval("SELECT 1")

    async def schema_version(self) -> int:
        return await schema_version(self._db)

    async def migrate(self) -> int:
        async with self._pool.acquire() as conn:
            before, applied = await migrate(conn)
        if applied:
            log.info("database %s: schema %d -> %d (%d migration(s))", self.masked, before, len(MIGRATIONS), applied)
        return applied

    async def check_schema(self) -> None:
        """Raises SchemaMismatch unless the database is at this shadowpi's schema."""
        version = await self.schema_version()
        if version != len(MIGRATIONS):
            state = "newer" if version > len(MIGRATIONS) else "older"
            raise SchemaMismatch(
                f"the database {self.masked} has schema version {version}, {state} than this shadowpi's"
                f" ({len(MIGRATIONS)}), and was opened without migrating (run `shadowpi db upgrade`)"
            )

    async def close(self) -> None:
        await self._pool.close()  # waits for the connections in use (a transaction still running) to come back
