"""PostgreSQL statements: cached upstream project pages and remembered 404s."""

from __future__ import annotations

from proxy.backends.changes import Topic
from proxy.backends.pagerows import PageRow, page_row, stored_page
from proxy.backends.postgres.base import Queries, Statements
from proxy.backends.records import PageFreshness, StoredPage
from proxy.simple.names import NormalizedName

_ROW = "status, body, etag, last_modified, fetched_at"


class PageReads(Queries):

    async def get_page(self, name: NormalizedName) -> StoredPage | None:
        row = await self._one(f"SELECT {_ROW} FROM pages WHERE project = $1", name)  # noqa: S608 constant columns
        return await stored_page(name, row) if row is not None else None

    async def page_freshness(self, name: NormalizedName) -> PageFreshness | None:
        row = await self._one("SELECT fetched_at, etag, last_modified, status FROM pages WHERE project = $1", name)
        return PageFreshness(row[0], row[1], row[2], row[3] != 200) if row is not None else None

    async def cached_projects(self) -> list[NormalizedName]:
        rows = await self._all("SELECT project FROM pages WHERE status = 200 ORDER BY project")
        return [NormalizedName(row[0]) for row in rows]


class PageWrites(PageReads, Statements):

    async def put_page(self, name: NormalizedName, stored: StoredPage) -> None:
        await self.put_page_row(name, await page_row(stored))

    async def put_page_row(self, name: NormalizedName, row: PageRow) -> None:
        await self._run(
            f"INSERT INTO pages (project, {_ROW}) VALUES ($1, $2, $3, $4, $5, $6)"  # noqa: S608 constant columns
            " ON CONFLICT (project) DO UPDATE SET status = excluded.status, body = excluded.body,"
            " etag = excluded.etag, last_modified = excluded.last_modified, fetched_at = excluded.fetched_at",
            name, *row,
            topic=Topic.PAGES,
        )

    async def touch_page(self, name: NormalizedName, fetched_at: float) -> None:
        await self._run("UPDATE pages SET fetched_at = $1 WHERE project = $2", fetched_at, name)

    async def drop_page(self, name: NormalizedName) -> StoredPage | None:
        row = await self._one(f"DELETE FROM pages WHERE project = $1 RETURNING {_ROW}", name)  # noqa: S608 constant
        self.changed.add(Topic.PAGES)
        return await stored_page(name, row) if row is not None else None

    async def forget_expired_negative_pages(self, *, fetched_before: float, limit: int) -> int:
        # No change stamp: forgetting a 404 changes no answer, it only means upstream is asked again next time.
        return await self._run(
            "DELETE FROM pages WHERE project IN (SELECT project FROM pages WHERE status = 404 AND fetched_at < $1"
            " ORDER BY fetched_at LIMIT $2)",
            fetched_before, limit,
        )

    async def forget_oldest_negative_pages(self, *, keep: int, limit: int) -> int:
        count = await self._db.fetchval("SELECT count(*) FROM pages WHERE status = 404")
        excess = int(count) - keep
        if excess <= 0:
            return 0
        return await self._run(
            "DELETE FROM pages WHERE project IN (SELECT project FROM pages WHERE status = 404"
            " ORDER BY fetched_at LIMIT $1)",
            min(excess, limit),
        )
