"""Rendered simple-API responses, computed once per page change and served from memory (with gzip and ETag)."""

from __future__ import annotations

import gzip
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import quote

from proxy.simple import html, json
from proxy.simple.model import DistFile, ProjectList, ProjectPage
from proxy.simple.names import NormalizedName
from proxy.simple.negotiate import Format

GZIP_MIN_BYTES = 1024
NO_HASH_KEY = "_"  # file URL segment for files whose index declared no sha256


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    gzipped: bytes | None
    etag: str  # strong validator of `body`; the gzip variant appends "-gz"
    content_type: str


def file_key(dist: DistFile) -> str:
    """The content-address segment of a file URL."""
    return dist.sha256 or NO_HASH_KEY


def file_path(name: NormalizedName, dist: DistFile) -> str:
    """shadowpi's own path for a file, relative to the site root."""
    return f"files/{name}/{file_key(dist)}/{quote(dist.filename)}"


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
    """Rendered project pages keyed by (name, format), reused while the page object is the same."""

    def __init__(self, entries: int = 2048) -> None:
        self._entries = entries
        self._cache: OrderedDict[tuple[str, Format], tuple[ProjectPage, Rendered]] = OrderedDict()

    def project(self, page: ProjectPage, fmt: Format) -> Rendered:
        key = (page.name, fmt)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is page:
            self._cache.move_to_end(key)
            return hit[1]
        rendered = render_project(page, fmt)
        self._cache[key] = (page, rendered)
        self._cache.move_to_end(key)
        while len(self._cache) > self._entries:
            self._cache.popitem(last=False)
        return rendered
