"""The SQLite MetadataStore: one database file (WAL), three connections, explicit migrations.

- the **writer**: every write transaction, one at a time (transaction.py);
- the **reader**: the reads of requests (pages, private files, tokens), never queued behind a write;
- the **background** connection: the janitor's counts and candidates and the export's bulk reads, which may take
  long and must never queue in front of a request's read.
WAL lets all three work side by side, and the readers see committed rows only.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Literal

import aiosqlite

from proxy.access.model import ROOT
from proxy.backends.changes import ChangeFeed
from proxy.backends.keyed import KeyedLocks
from proxy.backends.metadata import SchemaMismatch
from proxy.backends.pagerows import page_row
from proxy.backends.records import BlobRecord, CacheUsage, DeletedFile, PrivateFile, StoredPage, TokenRecord
from proxy.backends.shortcuts import SingleWrites
from proxy.backends.sqlite.access import AccessReads
from proxy.backends.sqlite.blob_index import BlobReads, UsageReads
from proxy.backends.sqlite.bundles import BundleReads
from proxy.backends.sqlite.pages import PageReads
from proxy.backends.sqlite.private import PrivateReads
from proxy.backends.sqlite.schema import MIGRATIONS, migrate, user_version
from proxy.backends.sqlite.tokens import TokenReads
from proxy.backends.sqlite.transaction import SqliteTransaction, WritePath
from proxy.simple.names import NormalizedName

__all__ = ["SqliteMetadata"]

log = logging.getLogger(__name__)

Role = Literal["reader", "writer", "background"]
BUSY_TIMEOUT_MS = 10_000  # other workers and commands may hold the write lock briefly


class _Background(UsageReads, BundleReads):
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn


class SqliteMetadata(
    SingleWrites[SqliteTransaction], PageReads, PrivateReads, BlobReads, TokenReads, AccessReads
):
    """A MetadataStore on one SQLite file. Open with SqliteMetadata.open(), close with close()."""

    _token_use_errors = (sqlite3.OperationalError,)

    def __init__(self, path: Path, connections: dict[Role, aiosqlite.Connection], feed: ChangeFeed) -> None:
        self.path = path
        self._connections = connections
        self._conn = connections["reader"]
        self._background = _Background(connections["background"])
        self._write = WritePath(connections["writer"], feed)
        self._feed = feed
        self._refresh_locks = KeyedLocks[NormalizedName]()

    @classmethod
    async def open(cls, path: Path, feed: ChangeFeed, *, migrate: bool, check_schema: bool = True) -> SqliteMetadata:
        """Connect (creating the file if needed). `migrate`: bring the schema up to date; otherwise (with
        `check_schema`) raise SchemaMismatch unless it already is."""
        connections: dict[Role, aiosqlite.Connection] = {}
        try:
            for role in ("writer", "reader", "background"):  # the writer first: it sets WAL mode on the file
                connections[role] = await _connect(path, role)
            store = cls(path, connections, feed)
            if migrate:
                await store.migrate()
            elif check_schema:
                await store._check_schema()
        except BaseException:
            for conn in connections.values():
                await conn.close()
            raise
        return store

    async def close(self) -> None:
        async with self._write.lock:  # a transaction still running ends first
            for conn in self._connections.values():
                await conn.close()

    # --- writes ---

    def transaction(self) -> AbstractAsyncContextManager[SqliteTransaction]:
        return self._write.transaction()

    # The single writes of a cold page and a cold file, each one statement: one trip to the writer's thread each
    # (WritePath.alone) instead of the three of a transaction. Other single writes keep SingleWrites' transaction.

    async def put_page(self, name: NormalizedName, stored: StoredPage) -> None:
        row = await page_row(stored)  # before taking the write lock: a big page takes seconds to serialize
        await self._write.alone(lambda tx: tx.put_page_row(name, row))

    async def touch_page(self, name: NormalizedName, fetched_at: float) -> None:
        await self._write.alone(lambda tx: tx.touch_page(name, fetched_at))

    async def record_blob(self, sha256: str, size: int, *, now: float | None = None) -> None:
        await self._write.alone(lambda tx: tx.record_blob(sha256, size, now=now))

    async def remember_upstream_file(self, url: str, sha256: str) -> bool:
        return await self._write.alone(lambda tx: tx.remember_upstream_file(url, sha256))

    @asynccontextmanager
    async def page_refresh_lock(self, name: NormalizedName, *, wait: float) -> AsyncIterator[bool]:
        # Within this process only: other workers on the data dir refresh on their own, as they always did.
        async with self._refresh_locks.hold(name, wait=wait) as held:
            yield held

    @asynccontextmanager
    async def eviction_lock(self) -> AsyncIterator[bool]:
        yield True  # see MetadataStore.eviction_lock: evictions are claimed row by row in write transactions

    # --- background reads ---

    async def cache_usage(self) -> CacheUsage:
        return await self._background.cache_usage()

    async def usage_version(self) -> int:
        # Other processes' commits move the writer connection's PRAGMA data_version (it never counts its own);
        # this process's count only those that may change the usage, so hits written by a sweep count for nothing.
        rows = list(await self._write.conn.execute_fetchall("PRAGMA data_version"))
        return (int(rows[0][0]) << 32) + self._write.usage_commits

    async def eviction_candidates(self, *, accessed_before: float, limit: int = 500) -> list[BlobRecord]:
        return await self._background.eviction_candidates(accessed_before=accessed_before, limit=limit)

    async def bundle_pages(self) -> list[tuple[NormalizedName, StoredPage]]:
        return await self._background.bundle_pages()

    async def bundle_blob_times(self) -> dict[str, float]:
        return await self._background.bundle_blob_times()

    async def bundle_upstream_files(self) -> dict[str, str]:
        return await self._background.bundle_upstream_files()

    async def bundle_private_files(self, index: str | None = ROOT) -> list[PrivateFile]:
        return await self._background.bundle_private_files(index)

    async def bundle_deleted_files(self, index: str = ROOT) -> list[DeletedFile]:
        return await self._background.bundle_deleted_files(index)

    async def bundle_tokens(self) -> list[tuple[TokenRecord, str]]:
        return await self._background.bundle_tokens()

    # --- the schema and diagnostics ---

    async def ping(self) -> None:
        await self._one("SELECT 1")

    async def schema_version(self) -> int:
        return await user_version(self._conn)

    async def migrate(self) -> int:
        async with self._write.lock:
            applied = await migrate(self._write.conn)
        if applied:
            log.info("database %s: applied %d migration(s), now at schema %d", self.path, applied, len(MIGRATIONS))
        return applied

    async def _check_schema(self) -> None:
        version = await self.schema_version()
        if version != len(MIGRATIONS):
            state = "newer" if version > len(MIGRATIONS) else "older"
            raise SchemaMismatch(
                f"the database {self.path} has schema version {version}, {state} than this shadowpi's"
                f" ({len(MIGRATIONS)}), and was opened without migrating"
            )

    def connection(self, role: Role) -> aiosqlite.Connection:
        """One of the three connections, for diagnostics and tests (query plans, held queries)."""
        return self._connections[role]

    async def trace(self, callback: Callable[[str], object] | None) -> None:
        """Call `callback` with every statement any connection runs, parameters filled in (None: stop)."""
        for conn in self._connections.values():
            await conn.set_trace_callback(callback)  # type: ignore[arg-type]  # None removes it


async def _enter_wal(conn: aiosqlite.Connection) -> None:
    """PRAGMA journal_mode=WAL, retried for up to the busy timeout while another process holds the file. Switching a
    new file's journal mode takes an exclusive lock, and SQLite answers "database is locked" at once there instead
    of calling the busy handler (seen when workers or replicas open a new database together). On a file already in
    WAL mode it is a no-op that never waits."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(0.01)  # the other process's switch or first transaction takes milliseconds


async def _connect(path: Path, role: Role) -> aiosqlite.Connection:
    # isolation_level=None: sqlite3 begins nothing by itself; BEGIN/COMMIT/ROLLBACK are the write path's alone,
    # and a read never leaves a read transaction open.
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if role == "writer":
            await _enter_wal(conn)
            await conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
        else:
            await conn.execute("PRAGMA query_only=ON")  # reads only: every write goes through the writer
        await conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        await conn.close()
        raise
    return conn
