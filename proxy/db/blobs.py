"""Queries: blobs, cache accounting and eviction."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Mapping

from proxy.db.base import Queries
from proxy.db.changes import Topic
from proxy.db.records import BlobRecord, CacheUsage

# Blobs that are cached upstream files: not a private upload, nor a private upload's metadata file. Two NOT
# EXISTS, not one with OR: each is one lookup in its own index (migration 5), so measuring the cache costs one
# index probe per blob instead of a scan of every private file per blob. tests/test_janitor.py checks the plan.
_EVICTABLE_SCOPE = (
    "NOT EXISTS (SELECT 1 FROM private_files p WHERE p.sha256 = blobs.sha256)"
    " AND NOT EXISTS (SELECT 1 FROM private_files p WHERE p.metadata_sha256 = blobs.sha256)"
)
_USAGE_QUERY = (
    "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(size * pinned), 0)"  # noqa: S608 constant SQL
    f" FROM blobs WHERE {_EVICTABLE_SCOPE}"
)


class BlobQueries(Queries):

    async def record_blob(self, sha256: str, size: int, now: float | None = None) -> None:
        """Remember a committed blob (for usage accounting and eviction)."""
        now = time.time() if now is None else now
        await self._conn.execute(
            "INSERT INTO blobs (sha256, size, created_at, last_access) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(sha256) DO UPDATE SET last_access = excluded.last_access",
            (sha256, size, now, now),
        )
        await self._conn.commit()

    async def remember_upstream_file(self, url: str, sha256: str) -> None:
        """Map an upstream URL without a declared hash to the blob its bytes became."""
        await self._conn.execute(
            "INSERT OR REPLACE INTO upstream_files (url, sha256, fetched_at) VALUES (?, ?, ?)",
            (url, sha256, time.time()),
        )
        await self._conn.commit()

    async def upstream_file_sha256(self, url: str) -> str | None:
        row = await self._one("SELECT sha256 FROM upstream_files WHERE url = ?", (url,))
        return str(row[0]) if row else None

    # --- cache accounting and eviction ---

    async def touch_blobs(self, hits: Mapping[str, float]) -> None:
        """Record many cache hits (sha256 -> when) in one short transaction; never moves last_access back."""
        if not hits:
            return
        await self._conn.executemany(
            "UPDATE blobs SET last_access = ? WHERE sha256 = ? AND last_access < ?",
            [(when, sha256, when) for sha256, when in hits.items()],
        )
        await self._conn.commit()

    async def cache_usage(self) -> CacheUsage:
        """Files and bytes of cached upstream blobs (private uploads excluded), and how much is pinned."""
        row = await self._one(_USAGE_QUERY)
        files, size, pinned = row if row else (0, 0, 0)
        return CacheUsage(int(files), int(size), int(pinned))

    async def data_version(self) -> int:
        """A number that changes when another connection (any process) commits a change to the database.

        Lets background work skip a recount when nothing happened since the last one (SQLite's PRAGMA
        data_version; a server backend would use a change counter of its own).
        """
        row = await self._one("PRAGMA data_version")
        return int(row[0]) if row else 0

    async def eviction_candidates(self, *, accessed_before: float, limit: int = 500) -> list[BlobRecord]:
        """Least recently used upstream blobs that may go: not private, not pinned, not touched recently."""
        query = (
            f"SELECT sha256, size, last_access FROM blobs WHERE {_EVICTABLE_SCOPE} AND pinned = 0"  # noqa: S608 constant
            " AND last_access < ? ORDER BY last_access LIMIT ?"
        )
        async with self._conn.execute(query, (accessed_before, limit)) as cur:
            return [BlobRecord(str(r[0]), int(r[1]), float(r[2])) async for r in cur]

    @contextlib.asynccontextmanager
    async def evicting(self, sha256: str, *, accessed_before: float) -> AsyncIterator[bool]:
        """Claim a cached blob for eviction: yields True when it may still go, and the caller then deletes its file
        inside the block. Every process is told once the block ends; if it raises, the row is put back. So a row
        never outlives its file, and no write lock is held while the file is deleted.

        "May still go" is checked in the claiming write transaction: no private upload committed since the
        candidates were chosen refers to it, it was not pinned, and no hit was recorded since `accessed_before`.
        """
        await self._conn.execute("BEGIN IMMEDIATE")
        try:
            row = await self._one(
                f"SELECT size, created_at, last_access FROM blobs WHERE sha256 = ? AND pinned = 0"  # noqa: S608 constant
                f" AND last_access < ? AND {_EVICTABLE_SCOPE}",
                (sha256, accessed_before),
            )
            if row is not None:
                await self._conn.execute("DELETE FROM blobs WHERE sha256 = ?", (sha256,))
            await self._conn.commit()
        except BaseException:
            await self._conn.rollback()
            raise
        if row is None:
            yield False
            return
        try:
            yield True
        except BaseException:  # the file is still there: so must its row be
            await self._conn.execute(
                "INSERT OR IGNORE INTO blobs (sha256, size, created_at, last_access) VALUES (?, ?, ?, ?)",
                (sha256, *row),
            )
            await self._conn.commit()
            raise
        self._changes.bump(Topic.BLOBS)  # after the file is gone, as forget_blob: processes stop assuming it

    async def forget_blob(self, sha256: str) -> None:
        """Forget a blob whose file was deleted (tells every process to stop assuming it exists)."""
        await self._conn.execute("DELETE FROM blobs WHERE sha256 = ?", (sha256,))
        await self._conn.commit()
        self._changes.bump(Topic.BLOBS)

    async def pin_blobs(self, sha256s: list[str], *, pinned: bool = True) -> int:
        """Pin (or unpin) blobs so eviction never removes them; returns how many rows changed."""
        cur = await self._conn.executemany(
            "UPDATE blobs SET pinned = ? WHERE sha256 = ?", [(int(pinned), sha) for sha in sha256s]
        )
        await self._conn.commit()
        return cur.rowcount

    async def is_private_blob(self, sha256: str) -> bool:
        query = "SELECT 1 FROM private_files WHERE sha256 = ? OR metadata_sha256 = ? LIMIT 1"
        async with self._conn.execute(query, (sha256, sha256)) as cur:
            return await cur.fetchone() is not None
