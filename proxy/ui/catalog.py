"""What the pages list, from the services' in-memory data: search results, recent private releases, releases.

Only the rows a page shows are summarized (50 of 10,000 projects). Derived data is kept by the identity of the
tuples and pages it came from, which the services keep until something changes (as RenderCache does): private
changes show on the next request. The names of cached upstream projects (a database query) and their summaries
are reused for LIST_TTL seconds, so a new cached project may take that long to appear in lists.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from operator import attrgetter

from proxy.access import IndexDef
from proxy.backends.records import PrivateFile
from proxy.pages import PageCache
from proxy.private import PrivateIndex
from proxy.simple.model import DistFile, ProjectPage
from proxy.simple.names import NormalizedName, version_of_filename
from proxy.ui.listing import Entry, Kind, Paged, Row, Summary, choose, merge_names, paginate, summarize
from proxy.ui.project_view import Release, build_releases

RELEASE_MEMO = 64  # projects whose release list is kept
INLINE_FILES = 2000  # pages with more files are grouped into releases in the executor
LIST_TTL = 30.0  # seconds the list of cached upstream names and their summaries are reused
SUMMARY_MEMO = 50_000  # upstream summaries kept (about 200 bytes each)
Chain = tuple[IndexDef, ...]  # the index a page shows, then its bases (Access.chain)


@dataclass(frozen=True, slots=True)
class _Names:
    files: tuple[PrivateFile, ...]  # PrivateIndex.files() when built: another object means a private change
    chain: Chain  # the chain it was built for (a reload builds a new one)
    at: float
    entries: tuple[Entry, ...]
    holders: dict[NormalizedName, str]  # private project -> the chain's index whose files readers see


@dataclass(frozen=True, slots=True)
class RecentRelease:
    project: NormalizedName
    version: str
    upload_time: str
    uploader: str | None


class Catalog:
    def __init__(self, private: PrivateIndex, pages: PageCache, executor: Executor | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._private = private
        self._pages = pages
        self._executor = executor
        self._clock = clock
        self._names: dict[str, _Names] = {}  # by the index shown
        self._summaries: OrderedDict[NormalizedName, tuple[float, Summary]] = OrderedDict()
        self._grouped: tuple[tuple[PrivateFile, ...], dict[str, dict[NormalizedName, list[PrivateFile]]]] | None = None
        self._recent: dict[str, tuple[tuple[PrivateFile, ...], Chain, list[RecentRelease]]] = {}
        self._releases: OrderedDict[NormalizedName, tuple[ProjectPage, tuple[Release, ...]]] = OrderedDict()

    async def private_files(self, index: str) -> dict[NormalizedName, list[PrivateFile]]:
        """An index's own private files by project (rebuilt only after a private change)."""
        files = await self._private.files()
        if self._grouped is None or self._grouped[0] is not files:
            grouped: dict[str, dict[NormalizedName, list[PrivateFile]]] = {}
            for record in files:
                grouped.setdefault(record.index, {}).setdefault(record.project, []).append(record)
            self._grouped = (files, grouped)
        return self._grouped[1].get(index, {})

    async def _known(self, chain: Chain) -> _Names:
        files = await self._private.files()
        now = self._clock()
        known = self._names.get(chain[0].name)
        if known is None or known.files is not files or known.chain != chain or now - known.at > LIST_TTL:
            holders: dict[NormalizedName, str] = {}
            for index in chain:  # the first index holding a name is the one its readers see
                for name in await self._private.names(index.name):
                    holders.setdefault(name, index.name)
            cached = await self._pages.cached_names() if chain[0].upstream else ()
            known = self._names[chain[0].name] = _Names(files, chain, now, merge_names(holders, cached), holders)
        return known

    async def counts(self, chain: Chain) -> tuple[int, int]:
        """(private projects, cached upstream projects) its readers see."""
        entries = (await self._known(chain)).entries
        private = sum(1 for _name, is_private in entries if is_private)
        return private, len(entries) - private

    async def search(self, query: str, kind: Kind, page: int, chain: Chain) -> Paged[Row]:
        """Projects whose normalized name contains `query`, one page of them, each with its summary."""
        known = await self._known(chain)
        chosen = paginate(choose(known.entries, query, kind), page)
        rows = []
        for name, is_private in chosen.items:
            grouped = await self.private_files(known.holders[name]) if is_private else {}
            rows.append(Row(name, is_private, await self._summary(name, is_private, grouped)))
        return Paged(tuple(rows), chosen.page, chosen.pages, chosen.total)

    async def _summary(
        self, name: NormalizedName, is_private: bool, grouped: dict[NormalizedName, list[PrivateFile]]
    ) -> Summary:
        if is_private:
            return summarize((r.version, r.yanked is not None, r.upload_time) for r in grouped.get(name, ()))
        now = self._clock()
        known = self._summaries.get(name)
        if known is not None and now - known[0] <= LIST_TTL:
            return known[1]
        page = await self._pages.cached(name)  # the page cache's memory, else one database read: never upstream
        summary = Summary(None, None) if page is None else summarize(
            (version_of_filename(f.filename), f.yanked is not False, f.upload_time) for f in page.files)
        self._summaries[name] = (now, summary)
        self._summaries.move_to_end(name)
        while len(self._summaries) > SUMMARY_MEMO:
            self._summaries.popitem(last=False)
        return summary

    async def recent(self, chain: Chain, limit: int = 10) -> list[RecentRelease]:
        """The most recently uploaded private releases its readers see (files of the index holding each name for
        this chain: never another index's, nor a base's release of a name the index shadows), newest first."""
        known = await self._known(chain)
        memo = self._recent.get(chain[0].name)
        if memo is None or memo[0] is not known.files or memo[1] != chain or len(memo[2]) < limit:
            seen = [f for f in known.files if known.holders.get(f.project) == f.index]
            memo = self._recent[chain[0].name] = (known.files, chain, recent_releases(seen, limit))
        return memo[2][:limit]

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


def recent_releases(files: Sequence[PrivateFile], limit: int) -> list[RecentRelease]:
    """The `limit` releases with the newest uploads, newest first. Looks at the newest files only (a few per
    release), widening the look until it has enough: O(files) with a small heap, never a sort of them all."""
    want = limit * 8
    while True:
        newest = heapq.nlargest(want, files, key=attrgetter("upload_time"))
        found: dict[tuple[NormalizedName, str], PrivateFile] = {}
        for record in newest:  # newest first: the first file seen of a release is its latest upload
            found.setdefault((record.project, record.version), record)
        if len(found) >= limit or want >= len(files):
            return [RecentRelease(r.project, r.version, r.upload_time, r.uploaded_by)
                    for r in list(found.values())[:limit]]
        want *= 4
