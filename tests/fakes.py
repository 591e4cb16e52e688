"""FakeIndex: an in-process, programmable upstream simple index (PEP 503/691/658/700) for tests.

It can also be hostile on purpose: send more bytes than it declares (without a Content-Length), trickle file
bodies at a pace the test drives, redirect anywhere, link files on other hosts, publish huge pages, odd hash names
and unsafe filenames.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
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
# How file bodies are delimited: an honest Content-Length, chunked, or no length at all (the end of the body is
# the end of the connection).
Framing = Literal["length", "chunked", "close"]
# An HTTP response hidden in a file body: a client that reads past the file's length takes it for its next answer.
SMUGGLED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 31\r\n\r\n"
    b"<a href='evil.whl'>SMUGGLED</a>"
)


@dataclass
class FakeFile:
    """One file on the fake index and how the index describes it."""

    artifact: Artifact
    yanked: bool | str = False
    requires_python: str | None = None
    upload_time: str | None = "2025-01-01T00:00:00.000000Z"
    declared_sha256: str | None = None  # None: the true hash; "": publish no hash at all; else a lie
    serve_metadata: bool = True  # PEP 658: advertise and serve `<file>.metadata`
    # Published beside the sha256 (JSON `hashes`, HTML fragment after `&`), e.g. {"shake_128": ...}; a "sha256" key
    # here replaces the published sha256 (malformed values).
    extra_hashes: dict[str, str] = field(default_factory=dict)
    listed_filename: str | None = None  # the filename pages claim (e.g. "../evil.whl"); None: the artifact's

    @property
    def filename(self) -> str:
        return self.listed_filename if self.listed_filename is not None else self.artifact.filename

    @property
    def page_hashes(self) -> dict[str, str]:
        """Every hash the pages publish for this file, sha256 first."""
        return ({"sha256": self.page_sha256} if self.page_sha256 else {}) | self.extra_hashes

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
    ranges: bool = True  # file GETs with `Range: bytes=N-` get a 206 with the bytes from N (else the whole file)
    ranged_data: bytes | None = None  # requests with a Range get these bytes instead of the file's (it changed)
    range_skew: int = 0  # 206s start this many bytes past the asked offset (and say so in Content-Range)
    # -- hostile upstream --
    file_framing: Framing = "length"
    oversend: bytes = b""  # appended to every file body: more bytes than the page declares (see SMUGGLED)
    # A trickle the test drives: every file chunk (the first too) waits for one release() of this semaphore.
    file_pace: asyncio.Semaphore | None = None
    redirects: dict[str, str] = field(default_factory=dict)  # request path + query -> Location, answered first
    redirect_status: int = 302
    file_base_url: str | None = None  # pages link files at <this>/files/<name>/<filename> (another host)
    extra_files: int = 0  # every page also lists this many synthetic sdists (never downloadable)
    page_padding: int = 0  # bytes of filler added to every page body
    chunked_pages: bool = False  # pages without a Content-Length (its size is known only once it is all read)
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
        if (location := self.redirects.get(request.path_qs)) is not None:
            return web.Response(status=self.redirect_status, headers={"Location": location})
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
        base = self.file_base_url or str(request.url.origin())
        if self._wants_json(request):
            doc = _json_detail(base, name, files)
            doc["files"].extend(_synthetic_entry(base, name, i) for i in range(self.extra_files))
            if self.page_padding:
                doc["_padding"] = "x" * self.page_padding  # PEP 691: clients ignore `_`-prefixed keys
            return self._page(request, json.dumps(doc, indent=1), JSON_TYPE)
        prefix = f"{self.file_base_url}/" if self.file_base_url else "../../"
        links = "".join(_html_anchor(prefix, name, f) for f in files)
        links += "".join(_synthetic_anchor(prefix, name, i) for i in range(self.extra_files))
        if self.page_padding:
            links += f"<!-- {'x' * self.page_padding} -->\n"
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
        resp = web.Response(body=data, headers=headers)
        if self.chunked_pages:
            resp.enable_chunked_encoding()
        return resp

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
        start = _range_start(request.headers.get("Range"))
        if start is not None and self.ranged_data is not None:
            data = self.ranged_data
        if self.ranges and start is not None and start < len(data):
            start += self.range_skew
            data = data[start:]
            ranged = {"Content-Range": f"bytes {start}-{start + len(data) - 1}/{start + len(data)}"}
            return await self._stream(request, data, ranged)
        return await self._stream(request, data)

    async def _stream(
        self, request: web.Request, data: bytes, ranged: dict[str, str] | None = None
    ) -> web.StreamResponse:
        body = data + self.oversend
        resp = await _start_body(request, self.file_framing, len(body), ranged)
        end = len(body) if self.cut_after is None else min(self.cut_after, len(body))
        step = max(1, self.file_chunk_size)
        for offset in range(0, end, step):
            if offset > 0 and self.file_stream_gate is not None:
                await self.file_stream_gate.wait()
            if self.file_pace is not None:
                await self.file_pace.acquire()
            await _write(request, resp, body[offset : min(offset + step, end)])
        if end < len(body) or resp is None:
            _close(request)  # close() flushes what was written, then FINs: the body ends with the connection
            return resp or web.Response()  # never reaches the wire: aiohttp swallows the write error
        await resp.write_eof()
        return resp


def _range_start(header: str | None) -> int | None:
    """N of `Range: bytes=N-` (the only form shadowpi sends), else None."""
    match = re.fullmatch(r"bytes=(\d+)-", header or "")
    return int(match[1]) if match else None


async def _start_body(
    request: web.Request, framing: Framing, length: int, ranged: dict[str, str] | None = None
) -> web.StreamResponse | None:
    """Send the headers of a file response; None for "close" framing, whose bytes go straight to the transport
    (aiohttp itself never sends a body without a length on HTTP/1.1: it chunks it)."""
    if framing == "close":
        assert request.transport is not None
        request.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
        )
        return None
    resp = web.StreamResponse(status=206 if ranged else 200,
                              headers={"Content-Type": "application/octet-stream", **(ranged or {})})
    if framing == "length":
        resp.content_length = length  # always the full, honest length of what is sent, even when cutting
    else:
        resp.enable_chunked_encoding()
    await resp.prepare(request)
    return resp


async def _write(request: web.Request, resp: web.StreamResponse | None, chunk: bytes) -> None:
    if resp is not None:
        await resp.write(chunk)
    elif request.transport is not None and not request.transport.is_closing():
        request.transport.write(chunk)


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


def _html_anchor(prefix: str, name: str, f: FakeFile) -> str:
    href = f"{prefix}files/{quote(name, safe='')}/{quote(f.filename, safe='')}"
    if hashes := f.page_hashes:
        href += "#" + "&".join(f"{alg}={value}" for alg, value in hashes.items())
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


def _file_url(base: str, name: str, filename: str) -> str:
    return f"{base.rstrip('/')}/files/{quote(name, safe='')}/{quote(filename, safe='')}"


def _json_detail(base: str, name: str, files: list[FakeFile]) -> dict[str, Any]:
    entries = []
    for f in files:
        entry: dict[str, Any] = {
            "filename": f.filename,
            "url": _file_url(base, name, f.filename),
            "hashes": f.page_hashes,
            "requires-python": f.requires_python,
            "size": f.artifact.size,
            "yanked": f.yanked if f.yanked != "" else True,
            "core-metadata": {"sha256": f.artifact.metadata_sha256} if f.metadata_available else False,
        }
        if f.upload_time is not None:
            entry["upload-time"] = f.upload_time
        entries.append(entry)
    return {"meta": {"api-version": "1.1"}, "name": name, "versions": _versions(files), "files": entries}


def synthetic_filename(name: str, i: int) -> str:
    """The filename of the i-th synthetic file a page lists (FakeIndex.extra_files)."""
    return f"{name.replace('-', '_')}-0.0.{i}.tar.gz"


def _synthetic_entry(base: str, name: str, i: int) -> dict[str, Any]:
    filename = synthetic_filename(name, i)
    return {
        "filename": filename,
        "url": _file_url(base, name, filename),
        "hashes": {"sha256": hashlib.sha256(filename.encode()).hexdigest()},
        "size": 1,
    }


def _synthetic_anchor(prefix: str, name: str, i: int) -> str:
    filename = synthetic_filename(name, i)
    sha256 = hashlib.sha256(filename.encode()).hexdigest()
    return f'<a href="{prefix}files/{quote(name, safe="")}/{filename}#sha256={sha256}">{filename}</a><br>\n'


def _versions(files: list[FakeFile]) -> list[str]:
    return sorted({f.artifact.version for f in files}, key=Version)
