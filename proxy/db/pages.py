"""Queries: cached upstream project pages."""

from __future__ import annotations

import asyncio

from proxy.db.base import Queries
from proxy.db.changes import Topic
from proxy.db.records import StoredPage
from proxy.simple.json import parse_project_json, render_project_json
from proxy.simple.model import ProjectPage
from proxy.simple.names import NormalizedName

# Pages bigger than this are parsed and serialized in a thread: PyPI's biggest take seconds of CPU.
INLINE_BYTES, INLINE_FILES = 64 * 1024, 500


class PageQueries(Queries):

    async def get_page(self, name: NormalizedName) -> StoredPage | None:
        """The cached upstream answer for a project, if any."""
        query = "SELECT status, body, etag, last_modified, fetched_at FROM pages WHERE project = ?"
        row = await self._one(query, (name,))
        if row is None:
            return None
        status, body, etag, last_modified, fetched_at = row
        page = await _parse(body, name) if status == 200 and body else None
        return StoredPage(page, etag, last_modified, float(fetched_at))

    async def put_page(self, name: NormalizedName, stored: StoredPage) -> None:
        """Insert or replace the cached upstream answer for a project."""
        await self._write_page(name, stored)
        await self._conn.commit()
        self._changes.bump(Topic.PAGES)

    async def _write_page(self, name: NormalizedName, stored: StoredPage) -> None:
        """The page row write, without committing (imports stage many in one transaction)."""
        body = await _serialize(stored.page) if stored.page is not None else None
        await self._conn.execute(
            "INSERT OR REPLACE INTO pages (project, status, body, etag, last_modified, fetched_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (name, 200 if stored.page else 404, body, stored.etag, stored.last_modified, stored.fetched_at),
        )

    async def touch_page(self, name: NormalizedName, fetched_at: float) -> None:
        """Record that upstream confirmed the cached page unchanged (a 304)."""
        await self._conn.execute("UPDATE pages SET fetched_at = ? WHERE project = ?", (fetched_at, name))
        await self._conn.commit()

    async def cached_projects(self) -> list[NormalizedName]:
        """Names of projects with a cached upstream page (not remembered 404s)."""
        async with self._conn.execute("SELECT project FROM pages WHERE status = 200 ORDER BY project") as cur:
            return [NormalizedName(row[0]) async for row in cur]

    async def drop_page(self, name: NormalizedName) -> StoredPage | None:
        """Remove a project's cached upstream page; returns what was cached."""
        stored = await self.get_page(name)
        await self._conn.execute("DELETE FROM pages WHERE project = ?", (name,))
        await self._conn.commit()
        self._changes.bump(Topic.PAGES)
        return stored

    # --- remembered 404s (status 404 rows): one per name ever asked that upstream does not know ---

    async def forget_expired_negative_pages(self, *, fetched_before: float, limit: int) -> int:
        """Forget up to `limit` remembered 404s older than `fetched_before` (expired: they would be asked again
        anyway); returns how many. One short transaction per call: callers repeat it in batches."""
        return await self._forget_negative(
            "SELECT project FROM pages WHERE status = 404 AND fetched_at < ? ORDER BY fetched_at LIMIT ?",
            (fetched_before, limit),
        )

    async def forget_oldest_negative_pages(self, *, keep: int, limit: int) -> int:
        """Forget up to `limit` of the oldest remembered 404s beyond the newest `keep`; returns how many."""
        row = await self._one("SELECT COUNT(*) FROM pages WHERE status = 404")
        excess = int(row[0]) - keep if row else 0
        if excess <= 0:
            return 0
        return await self._forget_negative(
            "SELECT project FROM pages WHERE status = 404 ORDER BY fetched_at LIMIT ?", (min(excess, limit),)
        )

    async def _forget_negative(self, select: str, params: tuple[float | int, ...]) -> int:
        # No change stamp: forgetting a 404 changes no answer, it only means upstream is asked again next time.
        cur = await self._conn.execute(
            f"DELETE FROM pages WHERE status = 404 AND project IN ({select})",  # noqa: S608 constant SQL
            params,
        )
        await self._conn.commit()
        return cur.rowcount


async def _parse(body: str, name: NormalizedName) -> ProjectPage:
    if len(body) <= INLINE_BYTES:
        return parse_project_json(body, "", name)
    return await asyncio.to_thread(parse_project_json, body, "", name)


async def _serialize(page: ProjectPage) -> str:
    if len(page.files) <= INLINE_FILES:
        return _stored_json(page)
    return await asyncio.to_thread(_stored_json, page)


def _stored_json(page: ProjectPage) -> str:
    return render_project_json(page, lambda f: f.url)  # absolute upstream URLs: where shadowpi fetches from
