"""Ready answers for warm project pages: what a page request was answered, by the shape of the request (its raw
path and query, Accept and Accept-Encoding), reused while everything it rests on still holds.

It rests on the index graph (the same object: no reload since), the index being open to every reader it lets in
(root, whose read check is the edge's, or a world-readable index), the index's steady answer for the name
(ProjectIndex.reused: the same object, so the private version and the page's freshness still hold) and the
render cache's rendering of it (the same object). A warm request then skips the index lookup, name parsing,
content negotiation, the render lookup and the header choice, and awaits nothing. Every request still gets its
read check (at the edge), the freshness check, If-None-Match and the metrics.

An entry holds its answer and its rendering weakly, so it never keeps a page or its bytes alive after the page
cache, the index or the render cache has let them go: the memory bounds stay theirs.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDictProxy

from proxy.access import Access
from proxy.access.model import AccessRef
from proxy.index import ProjectIndex, Resolved
from proxy.rendered import Rendered
from proxy.simple.names import NormalizedName

# Request shapes kept at most; forgotten all at once when full (made-up Accept headers cannot grow it).
READY_ENTRIES = 4096
# A shape longer than this (path, Accept and Accept-Encoding together) is never kept: pip's and uv's are about 150
# bytes, and 4,096 shapes of headers near aiohttp's 8 KiB limit would hold 100 MB for whoever sends them.
SHAPE_BYTES = 512
Shape = tuple[str, str | None, str | None]


def shape_of(request: web.Request) -> Shape:
    """What a page's answer depends on besides the index: the raw path with its query (the index, the name as
    written, ?format=), the Accept header (the format) and Accept-Encoding (gzip)."""
    headers = request.headers
    return request.raw_path, headers.get("Accept"), headers.get("Accept-Encoding")


def _size(shape: Shape) -> int:
    return sum(len(part) for part in shape if part is not None)


@dataclass(frozen=True, slots=True)
class Ready:
    """One answered page: for the index named `index` in the graph `access`, the canonical `name`, sent `gzipped`
    or not with `headers`."""

    access: Access
    index: str
    name: NormalizedName
    resolved: weakref.ref[Resolved]
    rendered: weakref.ref[Rendered]
    gzipped: bool
    headers: CIMultiDictProxy[str]
    outcome: str  # X-Shadowpi-Cache, counted per request

    def body_for(self, access: Access, resolved: Resolved | None) -> bytes | None:
        """The body to send again, or None when the graph has changed, the index's answer is not the one this
        entry rendered, or the render cache has let the rendering go."""
        rendered = self.rendered()
        if access is not self.access or rendered is None or resolved is None or self.resolved() is not resolved:
            return None
        return rendered.gzipped if self.gzipped else rendered.body


class ReadyAnswers:
    """Ready answers by request shape; the page handler's only memory of its own answers."""

    def __init__(
        self, access: AccessRef, index: ProjectIndex, count: Callable[[str], None], entries: int = READY_ENTRIES
    ) -> None:
        """`count`: counts one page lookup by outcome (Metrics.page_lookup)."""
        self._access = access
        self._index = index
        self._count = count
        self._entries = entries
        self._ready: dict[Shape, Ready] = {}

    def __len__(self) -> int:
        return len(self._ready)

    def answer(self, shape: Shape) -> tuple[bytes, CIMultiDictProxy[str]] | None:
        """The body and headers to answer this shape with again, counted; None: take the full path."""
        ready = self._ready.get(shape)
        if ready is None:
            return None
        body = ready.body_for(self._access.current, self._index.reused(ready.name, ready.index))
        if body is None:
            return None
        self._count(ready.outcome)
        return body, ready.headers

    def keep(self, shape: Shape, ready: Ready) -> None:
        if _size(shape) > SHAPE_BYTES:
            return
        if len(self._ready) >= self._entries and shape not in self._ready:
            self._ready.clear()
        self._ready[shape] = ready
