"""PostgreSQL statements: the blob index (accounting, eviction, pins) and upstream files without a declared hash."""

from __future__ import annotations

import time
from collections.abc import Mapping

from proxy.backends.changes import Topic
from proxy.backends.postgres.base import Queries, Statements
from proxy.backends.records import BlobRecord, CacheUsage
from proxy.backends.shortcuts import BlobRow

# Blobs that are cached upstream files: not a private upload, nor a private upload's metadata file. Two NOT
# EXISTS, one index each (private_files_sha256, private_files_metadata_sha256), as in SQLite.
_EVICTABLE_SCOPE = (
    "NOT EXISTS (SELECT 1 FROM private_files p WHERE p.sha256 = blobs.sha256)"
    " AND NOT EXISTS (SELECT 1 FROM private_files p WHERE p.metadata_sha256 = blobs.sha256)"
)


class BlobReads(Queries):

    async def upstream_file_sha256(self, url: str) -> str | None:
        row = await self._one("SELECT sha256 FROM upstream_files WHERE url = $1", url)
        return str(row[0]) if row is not None else None


class UsageReads(Queries):
    """The janitor's reads."""

    async def cache_usage(self) -> CacheUsage:
        row = await self._one(
            "SELECT count(*), COALESCE(sum(size), 0), COALESCE(sum(size) FILTER (WHERE pinned), 0)"  # noqa: S608 constant
            f" FROM blobs WHERE {_EVICTABLE_SCOPE}"
        )
        files, size, pinned = row if row is not None else (0, 0, 0)
        return CacheUsage(int(files), int(size), int(pinned))

    async def eviction_candidates(self, *, accessed_before: float, limit: int = 500) -> list[BlobRecord]:
        query = (
            f"SELECT sha256, size, last_access FROM blobs WHERE {_EVICTABLE_SCOPE} AND NOT pinned"  # noqa: S608 constant
            " AND last_access < $1 ORDER BY last_access LIMIT $2"
        )
        rows = await self._all(query, accessed_before, limit)
        return [BlobRecord(str(r[0]), int(r[1]), float(r[2])) for r in rows]


class BlobWrites(BlobReads, Statements):

    async def record_blob(self, sha256: str, size: int, *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        await self._run(
            "INSERT INTO blobs (sha256, size, created_at, last_access) VALUES ($1, $2, $3, $3)"
            " ON CONFLICT (sha256) DO UPDATE SET last_access = excluded.last_access",
            sha256, size, now,
            usage=True,
        )

    async def record_pinned_blob(self, sha256: str, size: int) -> bool:
        # An import's first statement, in the transaction where it then decides on private files: the private-state
        # lock comes first, before any row lock, or an upload of the same blob (lock, then this row) could deadlock.
        await self._lock_private()
        return await self._run(
            "INSERT INTO blobs (sha256, size, created_at, last_access, pinned) VALUES ($1, $2, $3, $3, true)"
            " ON CONFLICT (sha256) DO UPDATE SET pinned = true WHERE NOT blobs.pinned",
            sha256, size, time.time(),
            usage=True,
        ) > 0

    async def remember_upstream_file(self, url: str, sha256: str) -> bool:
        return await self._run(
            "INSERT INTO upstream_files (url, sha256, fetched_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (url) DO UPDATE SET sha256 = excluded.sha256, fetched_at = excluded.fetched_at"
            " WHERE upstream_files.sha256 <> excluded.sha256",
            url, sha256, time.time(),
        ) > 0

    async def touch_blobs(self, hits: Mapping[str, float]) -> None:
        ordered = sorted(hits.items())  # rows locked in one order by every replica's janitor: no deadlock
        await self._run(
            "UPDATE blobs SET last_access = h.at FROM unnest($1::text[], $2::float8[]) AS h (sha256, at)"
            " WHERE blobs.sha256 = h.sha256 AND blobs.last_access < h.at",
            [sha for sha, _ in ordered], [at for _, at in ordered],
        )

    async def pin_blobs(self, sha256s: list[str], *, pinned: bool = True) -> int:
        query = "UPDATE blobs SET pinned = $1 WHERE sha256 = ANY($2::text[])"
        return await self._run(query, pinned, sorted(set(sha256s)), usage=True)

    async def forget_blob(self, sha256: str) -> None:
        await self._run("DELETE FROM blobs WHERE sha256 = $1", sha256, topic=Topic.BLOBS, usage=True)

    # --- eviction's two halves (SingleWrites.evicting puts them together) ---

    async def take_evictable(self, sha256: str, *, accessed_before: float) -> BlobRow | None:
        await self._lock_private()  # "not private" is a decision on private state
        row = await self._one(
            f"DELETE FROM blobs WHERE sha256 = $1 AND NOT pinned AND last_access < $2 AND {_EVICTABLE_SCOPE}"  # noqa: S608 constant
            " RETURNING size, created_at, last_access",
            sha256, accessed_before,
        )
        if row is None:
            return None
        self.changes_usage = True
        return int(row[0]), float(row[1]), float(row[2])

    async def restore_blob(self, sha256: str, row: BlobRow) -> None:
        query = "INSERT INTO blobs (sha256, size, created_at, last_access) VALUES ($1, $2, $3, $4)"
        await self._run(query + " ON CONFLICT DO NOTHING", sha256, *row, usage=True)
