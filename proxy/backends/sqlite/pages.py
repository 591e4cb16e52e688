"""SQLite statements: cached upstream project pages and remembered 404s."""

from __future__ import annotations

from proxy.backends.changes import Topic
from proxy.backends.pagerows import PageRow, page_row, stored_page
from proxy.backends.records import PageFreshness, StoredPage
from proxy.backends.sqlite.base import Queries, Statements
from proxy.simple.names import NormalizedName


class PageReads(Queries):

    async def get_page(self, name: NormalizedName) -> StoredPage | None:
        query = "SELECT status, body, etag, last_modified, fetched_at FROM pages WHERE project = ?"
        row = await self._one(query, (name,))
        return await stored_page(name, row) if row is not None else None

    async def page_freshness(self, name: NormalizedName) -> PageFreshness | None:
        row = await self._one("SELECT fetched_at, etag, last_modified, status FROM pages WHERE project = ?", (name,))
        return PageFreshness(float(row[0]), row[1], row[2], row[3] != 200) if row is not None else None

    async def cached_projects(self) -> list[NormalizedName]:
        rows = await self._all("SELECT project FROM pages WHERE status = 200 ORDER BY project")
        return [NormalizedName(row[0]) for row in rows]


class PageWrites(PageReads, Statements):

    async def put_page(self, name: NormalizedName, stored: StoredPage) -> None:
        await self.put_page_row(name, await page_row(stored))

    async def put_page_row(self, name: NormalizedName, row: PageRow) -> None:
        """put_page with the body already serialized (the store serializes big pages before the transaction)."""
        await self._run(
            "INSERT OR REPLACE INTO pages (project, status, body, etag, last_modified, fetched_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (name, *row),
            topic=Topic.PAGES,
        )

    async def touch_page(self, name: NormalizedName, fetched_at: float) -> None:
        await self._run("UPDATE pages SET fetched_at = ? WHERE project = ?", (fetched_at, name))

    async def drop_page(self, name: NormalizedName) -> StoredPage | None:
        stored = await self.get_page(name)
        await self._run("DELETE FROM pages WHERE project = ?", (name,), topic=Topic.PAGES)
        return stored

    async def forget_expired_negative_pages(self, *, fetched_before: float, limit: int) -> int:
        return await self._forget_negative(
            "SELECT project FROM pages WHERE status = 404 AND fetched_at < ? ORDER BY fetched_at LIMIT ?",
            (fetched_before, limit),
        )

    async def forget_oldest_negative_pages(self, *, keep: int, limit: int) -> int:
        row = await self._one("SELECT COUNT(*) FROM pages WHERE status = 404")
        excess = int(row[0]) - keep if row else 0
        if excess <= 0:
            return 0
        return await self._forget_negative(
            "SELECT project FROM pages WHERE status = 404 ORDER BY fetched_at LIMIT ?", (min(excess, limit),)
        )

    async def _forget_negative(self, select: str, params: tuple[float | int, ...]) -> int:
        # No change stamp: forgetting a 404 changes no answer, it only means upstream is asked again next time.
        return await self._run(
            f"DELETE FROM pages WHERE status = 404 AND project IN ({select})",  # noqa: S608 constant SQL
            params,
        )
