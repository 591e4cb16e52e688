"""Queries: blobs, cache accounting and eviction."""

from __future__ import annotations

import time

from proxy.db.base import Queries
from proxy.db.changes import Topic
from proxy.db.records import BlobRecord, CacheUsage

# Blobs that are cached upstream files: not a private upload, nor a private upload's metadata file.
_EVICTABLE_SCOPE = (
    "NOT EXISTS (SELECT 1 FROM private_files p WHERE p.sha256 = blobs.sha256 OR p.metadata_sha256 = blobs.sha256)"
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

    async def touch_blob(self, sha256: str, when: float) -> None:
        """Record a cache hit (callers throttle this: it is a write)."""
        await self._conn.execute("UPDATE blobs SET last_access = ? WHERE sha256 = ?", (when, sha256))
        await self._conn.commit()

    async def cache_usage(self) -> CacheUsage:
        """Files and bytes of cached upstream blobs (private uploads excluded), and how much is pinned."""
        query = (
            "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(size * pinned), 0)"  # noqa: S608 constant SQL
            f" FROM blobs WHERE {_EVICTABLE_SCOPE}"
        )
        row = await self._one(query)
        files, size, pinned = row if row else (0, 0, 0)
        return CacheUsage(int(files), int(size), int(pinned))

    async def eviction_candidates(self, *, accessed_before: float, limit: int = 500) -> list[BlobRecord]:
        """Least recently used upstream blobs that may go: not private, not pinned, not touched recently."""
        query = (
            f"SELECT sha256, size, last_access FROM blobs WHERE {_EVICTABLE_SCOPE} AND pinned = 0"  # noqa: S608 constant
            " AND last_access < ? ORDER BY last_access LIMIT ?"
        )
        async with self._conn.execute(query, (accessed_before, limit)) as cur:
            return [BlobRecord(str(r[0]), int(r[1]), float(r[2])) async for r in cur]

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
