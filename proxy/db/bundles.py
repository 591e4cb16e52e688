"""Queries: bulk reads and staged writes for `shadowpi export` / `import`."""

from __future__ import annotations

import time

from proxy.db.changes import Topic
from proxy.db.pages import PageQueries
from proxy.db.private import _PRIVATE_COLUMNS
from proxy.db.records import DeletedFile, PrivateFile, StoredPage
from proxy.simple.names import NormalizedName


class BundleQueries(PageQueries):

    async def bundle_pages(self) -> list[tuple[NormalizedName, StoredPage]]:
        """Every cached upstream page (remembered 404s excluded), by project name."""
        query = "SELECT project FROM pages WHERE status = 200 AND body IS NOT NULL ORDER BY project"
        async with self._conn.execute(query) as cur:
            names = [NormalizedName(row[0]) async for row in cur]
        found = [(name, await self.get_page(name)) for name in names]
        return [(name, stored) for name, stored in found if stored is not None and stored.page is not None]

    async def bundle_blob_times(self) -> dict[str, float]:
        """sha256 -> created_at of every recorded blob."""
        async with self._conn.execute("SELECT sha256, created_at FROM blobs") as cur:
            return {str(row[0]): float(row[1]) async for row in cur}

    async def bundle_upstream_files(self) -> dict[str, str]:
        """URL -> sha256 of upstream files whose page declared no sha256."""
        async with self._conn.execute("SELECT url, sha256 FROM upstream_files") as cur:
            return {str(row[0]): str(row[1]) async for row in cur}

    async def bundle_private_files(self) -> list[PrivateFile]:
        """Every private file, by project and filename."""
        query = f"SELECT {_PRIVATE_COLUMNS} FROM private_files ORDER BY project, filename"  # noqa: S608 constant columns
        async with self._conn.execute(query) as cur:
            return [PrivateFile(*row) async for row in cur]

    async def bundle_deleted_files(self) -> list[DeletedFile]:
        """Every deleted private filename, by filename."""
        query = "SELECT filename, sha256, deleted_at FROM deleted_files ORDER BY filename"
        async with self._conn.execute(query) as cur:
            return [DeletedFile(str(r[0]), str(r[1]), float(r[2])) async for r in cur]

    # The bundle_stage_* methods do not commit: call them between bundle_begin() and bundle_commit().

    async def bundle_begin(self) -> None:
        """Start one write transaction (taking the write lock now, so reads inside it stay current)."""
        await self._conn.execute("BEGIN IMMEDIATE")

    async def bundle_commit(self) -> None:
        await self._conn.commit()
        self._changes.bump(Topic.PRIVATE, Topic.PAGES)

    async def bundle_rollback(self) -> None:
        await self._conn.rollback()

    async def bundle_stage_page(self, name: NormalizedName, stored: StoredPage) -> None:
        """Insert or replace a cached upstream page (as put_page, without committing)."""
        await self._write_page(name, stored)

    async def bundle_stage_private_file(self, record: PrivateFile) -> None:
        """Insert or replace a private file row."""
        await self._conn.execute(
            f"INSERT OR REPLACE INTO private_files ({_PRIVATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 constant columns
            (
                record.filename, record.project, record.version, record.sha256, record.blake2_256,
                record.size, record.requires_python, record.metadata_sha256, record.yanked,
                record.upload_time, record.uploaded_by,
            ),
        )

    async def bundle_stage_private_project(self, name: NormalizedName) -> bool:
        """Register a name as private (for good, as uploads do); True when it was new."""
        cur = await self._conn.execute(
            "INSERT OR IGNORE INTO private_projects (name, created_at) VALUES (?, ?)", (name, time.time())
        )
        return cur.rowcount > 0

    async def bundle_stage_remove_private_file(self, filename: str) -> None:
        await self._conn.execute("DELETE FROM private_files WHERE filename = ?", (filename,))

    async def bundle_stage_deleted(self, deleted: DeletedFile) -> bool:
        """Remember a deleted filename unless already known; True when it was new."""
        cur = await self._conn.execute(
            "INSERT OR IGNORE INTO deleted_files (filename, sha256, deleted_at) VALUES (?, ?, ?)",
            (deleted.filename, deleted.sha256, deleted.deleted_at),
        )
        return cur.rowcount > 0

    async def bundle_stage_upstream_file(self, url: str, sha256: str) -> bool:
        """Map an upstream URL to its blob; True when the mapping is new or changed."""
        cur = await self._conn.execute(
            "INSERT INTO upstream_files (url, sha256, fetched_at) VALUES (?, ?, ?)"
            " ON CONFLICT(url) DO UPDATE SET sha256 = excluded.sha256, fetched_at = excluded.fetched_at"
            " WHERE upstream_files.sha256 != excluded.sha256",
            (url, sha256, time.time()),
        )
        return cur.rowcount > 0

    async def bundle_stage_blob(self, sha256: str, size: int) -> bool:
        """Record an imported blob as pinned (offline, an evicted file could never come back); True when that
        changed anything."""
        now = time.time()
        cur = await self._conn.execute(
            "INSERT INTO blobs (sha256, size, created_at, last_access, pinned) VALUES (?, ?, ?, ?, 1)"
            " ON CONFLICT(sha256) DO UPDATE SET pinned = 1 WHERE blobs.pinned = 0",
            (sha256, size, now, now),
        )
        return cur.rowcount > 0
