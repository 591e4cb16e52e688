"""The Database: one aiosqlite connection and every query group (the seam for another backend)."""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from proxy.db.blobs import BlobQueries
from proxy.db.bundles import BundleQueries
from proxy.db.private import PrivateQueries
from proxy.db.schema import migrate
from proxy.db.tokens import TokenQueries


class Database(BundleQueries, BlobQueries, TokenQueries, PrivateQueries):  # BundleQueries extends PageQueries
    """The shadowpi database. Use `async with Database.open(path) as db` or open()/close()."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open (creating if needed) and migrate the database file."""
        conn = await aiosqlite.connect(path)
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA busy_timeout=10000")  # other workers may hold the write lock briefly
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
            await migrate(conn)
        except BaseException:
            await conn.close()
            raise
        return cls(conn)

    async def close(self) -> None:
        await self._conn.close()

    async def ping(self) -> None:
        """A trivial query: proves the database answers."""
        async with self._conn.execute("SELECT 1") as cur:
            await cur.fetchone()

    async def schema_version(self) -> int:
        row = await self._one("PRAGMA user_version")
        return int(row[0]) if row else 0
