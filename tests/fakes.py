"""FakeIndex: an in-process, programmable upstream simple index (PEP 503/691/658/700) for tests."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from html import escape
from typing import Any, Literal
from urllib.parse import quote

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.artifacts import Artifact

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
JSON_OFFERS = (JSON_TYPE, "application/vnd.pypi.simple.latest+json")
HTML_OFFERS = ("text/html", "application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.latest+html")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FakeFile:
    """One file on the fake index and how the index describes it."""

    artifact: Artifact
    yanked: bool | str = False
    requires_python: str | None = None
    upload_time: str | None = "2025-01-01T00:00:00.000000Z"
    declared_sha256: str | None = None  # None: the true hash; "": publish no hash at all; else a lie
    serve_metadata: bool = True  # PEP 658: advertise and serve `<file>.metadata`

    @property
    def filename(self) -> str:
        return self.artifact.filename

    @property
    def page_sha256(self) -> str:
        """The sha256 the index pages claim ("" = none)."""
        return self.artifact.sha256 if self.declared_sha256 is None else self.declared_sha256

    @property
    def metadata_available(self) -> bool:
        return self.serve_metadata and self.artifact.metadata is not None


@dataclass
class FakeIndex:
    """Programmable upstream index; flip the mode attributes at runtime, read the request log."""

    projects: dict[str, list[FakeFile]] = field(default_factory=dict)  # keyed by normalized name
    mode: Literal["json", "html", "negotiate"] = "negotiate"
    html_content_type: str = "text/html; charset=utf-8"
    down: bool = False  # every request -> down_status
    down_status: int = 503
    drop: bool = False  # every request: close the connection without answering
    gate: asyncio.Event | None = None  # every request waits for it (after being logged)
    cut_after: int | None = None  # file bodies: full Content-Length, N bytes, then the connection closes
    file_stream_gate: asyncio.Event | None = None  # awaited between file chunks, after the first chunk
    file_chunk_size: int = 64 * 1024
    etags: bool = True  # pages carry ETag/Last-Modified and honour If-None-Match/If-Modified-Since
    last_modified: str = "Wed, 01 Jan 2025 00:00:00 GMT"
    requests: list[str] = field(default_factory=list)  # path + query of every request, in order
    methods: list[str] = field(default_factory=list)  # parallel to `requests`
    headers_seen: list[CIMultiDictProxy[str]] = field(default_factory=list)  # parallel to `requests`
    hits: Counter[str] = field(default_factory=Counter)  # by path (no query)
    not_modified: int = 0  # how many 304s were answered
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition, init=False, repr=False)

    def add(self, artifact: Artifact, **kw: Any) -> FakeFile:
        """Publish an artifact under its project (replacing a same-named file); kw sets FakeFile fields.

        requires_python defaults to the artifact's own Requires-Python, as PyPI does.
        """
        kw.setdefault("requires_python", artifact.requires_python)
        new = FakeFile(artifact, **kw)
        files = self.projects.setdefault(artifact.project, [])
        files[:] = [f for f in files if f.filename != new.filename]
        files.append(new)
        return new

    def find(self, project: str, filename: str) -> FakeFile | None:
        """The published file `filename` of `project` (any spelling of the name), if any."""
        files = self.projects.get(canonicalize_name(project), [])
        return next((f for f in files if f.filename == filename), None)

    def clear_log(self) -> None:
        """Forget every recorded request (requests, methods, headers_seen, hits, not_modified)."""
        self.requests.clear()
        self.methods.clear()
        self.headers_seen.clear()
        self.hits.clear()
        self.not_modified = 0

    async def wait_for_request(self, path: str, count: int = 1) -> None:
        """Return once `path` has been requested at least `count` times (arrival, not completion)."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: self.hits[path] >= count)

    def app(self) -> web.Application:
        """The aiohttp application serving this fake's current state."""
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/simple/", self._root, name="root")
        app.router.add_get("/simple/{name}/", self._detail, name="detail")
        app.router.add_get("/simple/{name}", self._add_slash)
        app.router.add_get("/files/{name}/{filename}", self._file, name="file")
        return app

    # -- request log, faults and gate (every route) --

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        self.methods.append(request.method)
        self.headers_seen.append(CIMultiDictProxy(CIMultiDict(request.headers)))
        self.hits[request.path] += 1
        async with self._arrived:
            self._arrived.notify_all()
        if self.gate is not None:
            await self.gate.wait()
        if self.drop:
            _close(request)
            return web.Response()  # never reaches the wire: aiohttp swallows the write error
        if self.down:
            return web.Response(status=self.down_status, text="upstream is down (FakeIndex.down)\n")
        return await handler(request)

    # -- pages --

    async def _root(self, request: web.Request) -> web.Response:
        names = sorted(self.projects)
        if self._wants_json(request):
            doc = {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]}
            return self._page(request, json.dumps(doc, indent=1), JSON_TYPE)
        links = "".join(f'<a href="{escape(quote(n), quote=True)}/">{escape(n)}</a><br>\n' for n in names)
        return self._page(request, _html_document("Simple index", links), self.html_content_type)

    async def _add_slash(self, request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(self._detail_url(request, request.match_info["name"]))

    async def _detail(self, request: web.Request) -> web.Response:
        raw = request.match_info["name"]
        name = canonicalize_name(raw)
        if name != raw:  # like PyPI: non-normalized names redirect to the normalized URL
            raise web.HTTPMovedPermanently(self._detail_url(request, raw))
        if name not in self.projects:
            raise web.HTTPNotFound(text=f"no such project: {name}\n")
        files = self.projects[name]
        if self._wants_json(request):
            return self._page(request, json.dumps(_json_detail(request, name, files), indent=1), JSON_TYPE)
        links = "".join(_html_anchor(name, f) for f in files)
        return self._page(request, _html_document(f"Links for {name}", links), self.html_content_type)

    def _detail_url(self, request: web.Request, raw: str) -> str:
        url = request.app.router["detail"].url_for(name=canonicalize_name(raw))
        return str(url.with_query(request.query)) if request.query_string else str(url)

    def _wants_json(self, request: web.Request) -> bool:
        if self.mode != "negotiate":
            return self.mode == "json"
        fmt = request.query.get("format")
        if fmt in JSON_OFFERS or fmt in HTML_OFFERS:
            return fmt in JSON_OFFERS
        return prefers_json(request.headers.get("Accept"))

    def _page(self, request: web.Request, body: str, content_type: str) -> web.Response:
        data = body.encode()
        headers = {"Content-Type": content_type, "Vary": "Accept"}
        if self.etags:
            headers["ETag"] = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
            headers["Last-Modified"] = self.last_modified
            if self._not_modified(request, headers["ETag"]):
                self.not_modified += 1
                return web.Response(status=304, headers={k: headers[k] for k in ("ETag", "Vary")})
        return web.Response(body=data, headers=headers)

    def _not_modified(self, request: web.Request, etag: str) -> bool:
        if (inm := request.headers.get("If-None-Match")) is not None:  # RFC 9110: INM wins over IMS
            tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
            return "*" in tags or etag in tags
        if (ims := request.headers.get("If-Modified-Since")) is not None:
            try:
                return parsedate_to_datetime(ims) >= parsedate_to_datetime(self.last_modified)
            except (TypeError, ValueError):
                return False
        return False

    # -- files --

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name, filename = request.match_info["name"], request.match_info["filename"]
        if filename.endswith(".metadata"):
            meta = self.find(name, filename.removesuffix(".metadata"))
            if meta is None or not meta.metadata_available or meta.artifact.metadata is None:
                raise web.HTTPNotFound(text="no metadata\n")
            return web.Response(body=meta.artifact.metadata, content_type="application/octet-stream")
        found = self.find(name, filename)
        if found is None:
            raise web.HTTPNotFound(text="no such file\n")
        data = found.artifact.data
        if request.method == "HEAD":
            return web.Response(body=data, content_type="application/octet-stream")
        return await self._stream(request, data)

    async def _stream(self, request: web.Request, data: bytes) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.content_length = len(data)  # always the full, honest length, even when cutting
        await resp.prepare(request)
        end = len(data) if self.cut_after is None else min(self.cut_after, len(data))
        step = max(1, self.file_chunk_size)
        for offset in range(0, end, step):
            if offset > 0 and self.file_stream_gate is not None:
                await self.file_stream_gate.wait()
            await resp.write(data[offset : min(offset + step, end)])
        if end < len(data):
            _close(request)  # close() flushes what was written, then FINs: a short body on the wire
            return resp
        await resp.write_eof()
        return resp


def _close(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()


def prefers_json(accept: str | None) -> bool:
    """True when Accept strictly prefers PEP 691 JSON over every HTML type (ties go to HTML, like PyPI)."""
    if not accept:
        return False
    ranges: list[tuple[str, float]] = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges.append((media.lower(), q))
    q_json = max(_quality(o, ranges) for o in JSON_OFFERS)
    q_html = max(_quality(o, ranges) for o in HTML_OFFERS)
    return q_json > 0 and q_json > q_html


def _quality(offer: str, ranges: list[tuple[str, float]]) -> float:
    """q of the most specific media range matching `offer` (exact > type/* > */*), 0 if none."""
    kind = offer.split("/")[0]
    best_rank, best_q = -1, 0.0
    for media, q in ranges:
        rank = 2 if media == offer else 1 if media == f"{kind}/*" else 0 if media == "*/*" else -1
        if rank > best_rank:
            best_rank, best_q = rank, q
    return best_q


def _html_document(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta name="pypi:repository-version" content="1.0">\n'
        f"<title>{escape(title)}</title>\n</head>\n<body>\n<h1>{escape(title)}</h1>\n{body}</body>\n</html>\n"
    )


def _html_anchor(name: str, f: FakeFile) -> str:
    href = f"../../files/{quote(name, safe='')}/{quote(f.filename, safe='')}"
    if f.page_sha256:
        href += f"#sha256={f.page_sha256}"
    attrs = {"href": href}
    if f.requires_python is not None:
        attrs["data-requires-python"] = f.requires_python
    if f.yanked is not False:
        attrs["data-yanked"] = f.yanked if isinstance(f.yanked, str) else ""
    if f.metadata_available:
        # PEP 714: emit the new attribute and the legacy one with the same value.
        attrs["data-core-metadata"] = attrs["data-dist-info-metadata"] = f"sha256={f.artifact.metadata_sha256}"
    rendered = " ".join(f'{k}="{escape(v, quote=True)}"' for k, v in attrs.items())
    return f"<a {rendered}>{escape(f.filename)}</a><br>\n"


def _json_detail(request: web.Request, name: str, files: list[FakeFile]) -> dict[str, Any]:
    entries = []
    for f in files:
        url = request.url.join(request.app.router["file"].url_for(name=name, filename=f.filename))
        entry: dict[str, Any] = {
            "filename": f.filename,
            "url": str(url),
            "hashes": {"sha256": f.page_sha256} if f.page_sha256 else {},
            "requires-python": f.requires_python,
            "size": f.artifact.size,
            "yanked": f.yanked if f.yanked != "" else True,
            "core-metadata": {"sha256": f.artifact.metadata_sha256} if f.metadata_available else False,
        }
        if f.upload_time is not None:
            entry["upload-time"] = f.upload_time
        entries.append(entry)
    return {"meta": {"api-version": "1.1"}, "name": name, "versions": _versions(files), "files": entries}


def _versions(files: list[FakeFile]) -> list[str]:
    return sorted({f.artifact.version for f in files}, key=Version)
