"""Rendered simple-API responses, computed once per page change and served from memory (with gzip and ETag)."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from collections import OrderedDict
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import quote

from multidict import CIMultiDict, CIMultiDictProxy

from proxy.simple import html, json
from proxy.simple.model import DistFile, ProjectList, ProjectPage
from proxy.simple.names import NormalizedName
from proxy.simple.negotiate import Format

GZIP_MIN_BYTES = 1024
NO_HASH_KEY = "_"  # file URL segment for files whose index declared no sha256
# Pages with more files than this are rendered in the executor: seconds of CPU for the biggest PyPI pages.
RENDER_INLINE_FILES = 500


@dataclass(frozen=True, slots=True, weakref_slot=True)  # weakly held by ready answers (proxy/web/ready.py)
class Rendered:
    body: bytes
    gzipped: bytes | None
    etag: str  # strong validator of `body`; the gzip variant appends "-gz"
    content_type: str
    # Response headers by (gzip, Cache-Control, cache outcome), built on first use: a warm page request then copies
    # one ready header set instead of building it (the page path is a few dozen microseconds in all).
    _headers: dict[tuple[bool, str, str | None], CIMultiDictProxy[str]] = field(default_factory=dict, compare=False)

    def headers(self, gzip: bool, cache_control: str, outcome: str | None) -> CIMultiDictProxy[str]:
        """The response headers of this rendering (Content-Length aside, which aiohttp adds); `outcome` is the
        page's X-Shadowpi-Cache (None: no such header, as for the project list)."""
        key = (gzip, cache_control, outcome)
        found = self._headers.get(key)
        if found is None:
            headers = CIMultiDict({
                "Content-Type": self.content_type,
                "Vary": "Accept, Accept-Encoding",
                "ETag": self.etag[:-1] + '-gz"' if gzip else self.etag,
                "Cache-Control": cache_control,
            })
            if outcome is not None:
                headers["X-Shadowpi-Cache"] = outcome
            if gzip:
                headers["Content-Encoding"] = "gzip"
            if outcome == "stale":
                headers["Warning"] = '110 shadowpi "Response is Stale"'
            found = self._headers[key] = CIMultiDictProxy(headers)
        return found


def file_key(dist: DistFile) -> str:
    """The content-address segment of a file URL."""
    return dist.sha256 or NO_HASH_KEY


def file_path(name: NormalizedName, dist: DistFile) -> str:
    """shadowpi's own path for a file, relative to the site root; each segment quoted whole (no `/` survives)."""
    return f"files/{name}/{file_key(dist)}/{quote(dist.filename, safe='')}"


def render(body: str, fmt: Format) -> Rendered:
    data = body.encode("utf-8")
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    packed = gzip.compress(data, compresslevel=6, mtime=0) if len(data) >= GZIP_MIN_BYTES else None
    return Rendered(data, packed, f'"{digest}"', fmt.content_type)


def render_project(page: ProjectPage, fmt: Format) -> Rendered:
    # Relative links (from /simple/<name>/) keep working behind a reverse proxy that adds a path prefix.
    def href(dist: DistFile) -> str:
        return "../../" + file_path(page.name, dist)

    if fmt is Format.JSON:
        return render(json.render_project_json(page, href), fmt)
    return render(html.render_project_html(page, href), fmt)


def render_index(projects: ProjectList, fmt: Format) -> Rendered:
    if fmt is Format.JSON:
        return render(json.render_index_json(projects), fmt)
    return render(html.render_index_html(projects, lambda name: f"{name}/"), fmt)


class RenderCache:
    """Rendered project pages keyed by (name, format), reused while the page object is the same.

    Bounded by bytes (bodies and their gzip variants) and entries; the most recent entry always stays.
    """

    def __init__(self, max_bytes: int = 128 * 2**20, entries: int = 2048, executor: Executor | None = None) -> None:
        """`executor` renders big pages off the event loop (None: the loop's default executor)."""
        self._max_bytes = max_bytes
        self._entries = entries
        self._executor = executor
        self._cache: OrderedDict[tuple[str, Format], tuple[ProjectPage, Rendered]] = OrderedDict()
        self._bytes = 0
        self._pending: dict[tuple[str, Format], tuple[ProjectPage, asyncio.Future[Rendered]]] = {}

    @property
    def usage(self) -> tuple[int, int]:
        """(entries, bytes) held now."""
        return len(self._cache), self._bytes

    def get(self, page: ProjectPage, fmt: Format) -> Rendered | None:
        """The rendering of exactly this page object, if held (the warm path: no await, no allocation)."""
        key = (page.name, fmt)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is page:
            self._cache.move_to_end(key)
            return hit[1]
        return None

    async def render(self, page: ProjectPage, fmt: Format) -> Rendered:
        """Render and keep the page; a big page in the executor, once however many requests ask at the same time."""
        key = (page.name, fmt)
        if len(page.files) <= RENDER_INLINE_FILES:
            rendered = render_project(page, fmt)
        else:
            pending = self._pending.get(key)
            if pending is None or pending[0] is not page:
                future = asyncio.get_running_loop().run_in_executor(self._executor, render_project, page, fmt)
                pending = (page, future)
                self._pending[key] = pending
                future.add_done_callback(partial(self._done, key, pending))
            rendered = await asyncio.shield(pending[1])
        if self.get(page, fmt) is None:
            self._keep(key, page, rendered)
        return rendered

    def _done(
        self,
        key: tuple[str, Format],
        pending: tuple[ProjectPage, asyncio.Future[Rendered]],
        _future: asyncio.Future[Rendered],
    ) -> None:
        if self._pending.get(key) is pending:
            del self._pending[key]

    def _keep(self, key: tuple[str, Format], page: ProjectPage, rendered: Rendered) -> None:
        old = self._cache.pop(key, None)
        if old is not None:
            self._bytes -= _size(old[1])
        self._cache[key] = (page, rendered)
        self._bytes += _size(rendered)
        while len(self._cache) > 1 and (len(self._cache) > self._entries or self._bytes > self._max_bytes):
            _, (_, evicted) = self._cache.popitem(last=False)
            self._bytes -= _size(evicted)


def _size(rendered: Rendered) -> int:
    return len(rendered.body) + (len(rendered.gzipped) if rendered.gzipped is not None else 0)
