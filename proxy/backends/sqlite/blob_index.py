"""SQLite statements: the blob index (accounting, eviction, pins) and upstream files without a declared hash."""

from __future__ import annotations

import time
from collections.abc import Mapping

from proxy.backends.changes import Topic
from proxy.backends.records import BlobRecord, CacheUsage
from proxy.backends.shortcuts import BlobRow
from proxy.backends.sqlite.base import Queries, Statements

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


class BlobReads(Queries):

    async def upstream_file_sha256(self, url: str) -> str | None:
        row = await self._one("SELECT sha256 FROM upstream_files WHERE url = ?", (url,))
        return str(row[0]) if row else None


class UsageReads(Queries):
    """The janitor's reads (run on the store's background connection: see database.py)."""

    async def cache_usage(self) -> CacheUsage:
        row = await self._one(_USAGE_QUERY)
        files, size, pinned = row if row else (0, 0, 0)
        return CacheUsage(int(files), int(size), int(pinned))

    async def eviction_candidates(self, *, accessed_before: float, limit: int = 500) -> list[BlobRecord]:
        query = (
            f"SELECT sha256, size, last_access FROM blobs WHERE {_EVICTABLE_SCOPE} AND pinned = 0"  # noqa: S608 constant
            " AND last_access < ? ORDER BY last_access LIMIT ?"
        )
        rows = await self._all(query, (accessed_before, limit))
        return [BlobRecord(str(r[0]), int(r[1]), float(r[2])) for r in rows]


class BlobWrites(BlobReads, Statements):

    async def record_blob(self, sha256: str, size: int, *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        await self._run(
            "INSERT INTO blobs (sha256, size, created_at, last_access) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(sha256) DO UPDATE SET last_access = excluded.last_access",
            (sha256, size, now, now),
            usage=True,
        )

    async def record_pinned_blob(self, sha256: str, size: int) -> bool:
        now = time.time()
        return await self._run(
            "INSERT INTO blobs (sha256, size, created_at, last_access, pinned) VALUES (?, ?, ?, ?, 1)"
            " ON CONFLICT(sha256) DO UPDATE SET pinned = 1 WHERE blobs.pinned = 0",
            (sha256, size, now, now),
            usage=True,
        ) > 0

    async def remember_upstream_file(self, url: str, sha256: str) -> bool:
        return await self._run(
            "INSERT INTO upstream_files (url, sha256, fetched_at) VALUES (?, ?, ?)"
            " ON CONFLICT(url) DO UPDATE SET sha256 = excluded.sha256, fetched_at = excluded.fetched_at"
            " WHERE upstream_files.sha256 != excluded.sha256",
            (url, sha256, time.time()),
        ) > 0

    async def touch_blobs(self, hits: Mapping[str, float]) -> None:
        await self._run_many(
            "UPDATE blobs SET last_access = ? WHERE sha256 = ? AND last_access < ?",
            [(when, sha256, when) for sha256, when in hits.items()],
        )

    async def pin_blobs(self, sha256s: list[str], *, pinned: bool = True) -> int:
        query = "UPDATE blobs SET pinned = ? WHERE sha256 = ?"
        return await self._run_many(query, [(int(pinned), sha) for sha in sha256s], usage=True)

    async def forget_blob(self, sha256: str) -> None:
        await self._run("DELETE FROM blobs WHERE sha256 = ?", (sha256,), topic=Topic.BLOBS, usage=True)

    # --- eviction's two halves (SingleWrites.evicting puts them together) ---

    async def take_evictable(self, sha256: str, *, accessed_before: float) -> BlobRow | None:
        """Delete the row of a blob that may still be evicted, and return it (None: it may not go now)."""
        row = await self._one(
            f"SELECT size, created_at, last_access FROM blobs WHERE sha256 = ? AND pinned = 0"  # noqa: S608 constant
            f" AND last_access < ? AND {_EVICTABLE_SCOPE}",
            (sha256, accessed_before),
        )
        if row is not None:
            await self._run("DELETE FROM blobs WHERE sha256 = ?", (sha256,), usage=True)
        return (int(row[0]), float(row[1]), float(row[2])) if row is not None else None

    async def restore_blob(self, sha256: str, row: BlobRow) -> None:
        """Put back the row of a blob whose bytes could not be deleted after all."""
        query = "INSERT OR IGNORE INTO blobs (sha256, size, created_at, last_access) VALUES (?, ?, ?, ?)"
        await self._run(query, (sha256, *row), usage=True)
