"""What the pages list, from the services' in-memory data: search results, recent private releases, releases.

Only the rows a page shows are summarized (50 of 10,000 projects), and derived data is kept by the identity of
the tuples and pages it came from, which the services keep until something changes (as RenderCache does).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from proxy.db import PrivateFile
from proxy.pages import PageCache
from proxy.private import PrivateIndex
from proxy.simple.model import DistFile, ProjectPage
from proxy.simple.names import NormalizedName, version_of_filename
from proxy.ui.listing import Kind, Paged, Row, Summary, choose, paginate, summarize
from proxy.ui.project_view import Release, build_releases

RELEASE_MEMO = 64  # projects whose release list is kept
INLINE_FILES = 2000  # pages with more files are grouped into releases in the executor


@dataclass(frozen=True, slots=True)
class RecentRelease:
    project: NormalizedName
    version: str
    upload_time: str
    uploader: str | None


class Catalog:
    def __init__(self, private: PrivateIndex, pages: PageCache, executor: Executor | None) -> None:
        self._private = private
        self._pages = pages
        self._executor = executor
        self._grouped: tuple[tuple[PrivateFile, ...], dict[NormalizedName, list[PrivateFile]]] | None = None
        self._recent: tuple[tuple[PrivateFile, ...], list[RecentRelease]] | None = None
        self._releases: OrderedDict[NormalizedName, tuple[ProjectPage, tuple[Release, ...]]] = OrderedDict()

    async def private_files(self) -> dict[NormalizedName, list[PrivateFile]]:
        """Private files by project (rebuilt only after a private change)."""
        files = await self._private.files()
        if self._grouped is None or self._grouped[0] is not files:
            grouped: dict[NormalizedName, list[PrivateFile]] = {}
            for record in files:
                grouped.setdefault(record.project, []).append(record)
            self._grouped = (files, grouped)
        return self._grouped[1]

    async def search(self, query: str, kind: Kind, page: int) -> Paged[Row]:
        """Projects whose normalized name contains `query`, one page of them, each with its summary."""
        private = await self._private.names()
        cached = await self._pages.cached_names() if kind is not Kind.PRIVATE else []
        chosen = paginate(choose(private, cached, query, kind), page)
        grouped = await self.private_files()
        rows = []
        for name, is_private in chosen.items:
            rows.append(Row(name, is_private, await self._summary(name, is_private, grouped)))
        return Paged(tuple(rows), chosen.page, chosen.pages, chosen.total)

    async def _summary(
        self, name: NormalizedName, is_private: bool, grouped: dict[NormalizedName, list[PrivateFile]]
    ) -> Summary:
        if is_private:
            return summarize((r.version, r.yanked is not None, r.upload_time) for r in grouped.get(name, ()))
        page = await self._pages.cached(name)  # the page cache's memory, else one database read: never upstream
        if page is None:
            return Summary(None, None)
        return summarize((version_of_filename(f.filename), f.yanked is not False, f.upload_time) for f in page.files)

    async def recent(self, limit: int = 10) -> list[RecentRelease]:
        """The most recently uploaded private releases, newest first."""
        files = await self._private.files()
        if self._recent is None or self._recent[0] is not files:
            self._recent = (files, _recent_releases(files))
        return self._recent[1][:limit]

    async def releases(self, page: ProjectPage, path: Callable[[DistFile], str],
                       uploaders: dict[str, str | None]) -> tuple[Release, ...]:
        """The page's releases, newest first; kept while the page object is the same."""
        known = self._releases.get(page.name)
        if known is not None and known[0] is page:
            self._releases.move_to_end(page.name)
            return known[1]
        if len(page.files) <= INLINE_FILES:
            releases = build_releases(page, path, uploaders)
        else:
            loop = asyncio.get_running_loop()
            releases = await loop.run_in_executor(self._executor, build_releases, page, path, uploaders)
        self._releases[page.name] = (page, releases)
        while len(self._releases) > RELEASE_MEMO:
            self._releases.popitem(last=False)
        return releases


def _recent_releases(files: tuple[PrivateFile, ...]) -> list[RecentRelease]:
    newest: dict[tuple[NormalizedName, str], PrivateFile] = {}
    for record in files:
        key = (record.project, record.version)
        seen = newest.get(key)
        if seen is None or record.upload_time > seen.upload_time:
            newest[key] = record
    ordered = sorted(newest.values(), key=lambda r: r.upload_time, reverse=True)
    return [RecentRelease(r.project, r.version, r.upload_time, r.uploaded_by) for r in ordered]
