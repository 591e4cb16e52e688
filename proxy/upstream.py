"""Upstream edge: one aiohttp ClientSession that fetches project pages (JSON preferred) and streams files.

Every request goes only to the upstream's own origin or a host in `[upstream] file_hosts`, redirects included
(followed here, hop by hop, so each hop is checked): a page that links a file on an internal host must not turn
shadowpi into a way to reach it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import aiohttp
from yarl import URL

from proxy import __version__
from proxy.config import UpstreamConfig, mask_url
from proxy.errors import FileNotFound, UpstreamInvalid, UpstreamTimeout, UpstreamUnavailable
from proxy.simple.html import parse_project_html
from proxy.simple.json import parse_project_json
from proxy.simple.model import ProjectPage
from proxy.simple.names import NormalizedName

USER_AGENT = f"shadowpi/{__version__} (+https://github.com/shadowpi)"
# PEP 691: prefer JSON, accept either HTML flavour so any simple index works as upstream.
PAGE_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
)
_JSON_TYPES = {"application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.latest+json"}
_HTML_TYPES = {"application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.latest+html", "text/html"}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5  # hops followed per request (PyPI itself needs none)
# Page bodies up to this size are parsed on the event loop: handing them to a thread costs more than parsing.
PARSE_INLINE_BYTES = 64 * 1024
PAGE_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class FetchedPage:
    page: ProjectPage
    etag: str | None
    last_modified: str | None


class NotModified:
    """Upstream confirmed the cached page (304)."""


class Missing:
    """Upstream does not know the project (404/410)."""


PageResult = FetchedPage | NotModified | Missing
# (kind "page" | "file", result, seconds): how the metrics see upstream, without this module knowing them.
Observer = Callable[[str, str, float], None]


def _ignore(_kind: str, _result: str, _seconds: float) -> None:
    return None


@dataclass(slots=True)
class UpstreamFile:
    """An open upstream file response; iterate `chunks()` inside the `open_file` context. `content_length` is the
    whole file's (also for a partial answer), `start` the offset of the body's first byte in the file."""

    response: aiohttp.ClientResponse
    content_length: int | None
    start: int = 0

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.response.content.iter_chunked(size):
                yield chunk
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamUnavailable(f"upstream transfer failed: {type(exc).__name__}: {exc}") from None
        except TimeoutError:
            raise UpstreamTimeout("upstream stopped sending the file") from None


class UpstreamClient:
    """Talks to the upstream simple index named in the config."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: UpstreamConfig,
        observe: Observer = _ignore,
        *,
        executor: Executor | None = None,
    ) -> None:
        """`executor` parses big pages off the event loop (None: the loop's default executor)."""
        self._session = session
        self._config = config
        self._observe = observe
        self._executor = executor
        self._origin = URL(config.url).origin()
        self._hosts = frozenset(config.file_hosts)
        self._page_timeout = aiohttp.ClientTimeout(
            total=config.page_timeout, sock_connect=config.connect_timeout
        )
        self._file_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=config.connect_timeout, sock_read=config.read_timeout
        )

    def project_url(self, name: NormalizedName) -> str:
        return f"{self._config.url}{name}/"

    async def fetch_project(
        self, name: NormalizedName, *, etag: str | None = None, last_modified: str | None = None
    ) -> PageResult:
        """Fetch a project page, conditionally when validators are given.

        Raises UpstreamUnavailable (connection failure, 5xx, unexpected status), UpstreamTimeout, UpstreamInvalid.
        """
        headers = {"Accept": PAGE_ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        started = time.monotonic()
        result = "error"
        try:
            page = await self._get_page(name, headers)
            result = type(page).__name__.lower()
            return page
        except UpstreamTimeout:
            result = "timeout"
            raise
        finally:
            self._observe("page", result, time.monotonic() - started)

    async def _get_page(self, name: NormalizedName, headers: dict[str, str]) -> PageResult:
        url = self.project_url(name)
        try:
            async with self._get(url, f"the page of {name}", headers=headers, timeout=self._page_timeout) as resp:
                if resp.status == 304:
                    return NotModified()
                if resp.status in {404, 410}:
                    return Missing()
                if resp.status != 200:
                    raise UpstreamUnavailable(f"upstream answered {resp.status} for {name}")
                body = await self._read_page(resp, name)
                page = await self._parse(resp.content_type, body, str(resp.url), name)
                return FetchedPage(page, resp.headers.get("ETag"), resp.headers.get("Last-Modified"))
        except TimeoutError:
            raise UpstreamTimeout(f"upstream did not answer within {self._config.page_timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {_describe(exc)}") from None

    async def _read_page(self, resp: aiohttp.ClientResponse, name: NormalizedName) -> bytes:
        """The page body, refused as soon as it passes max_page_size (decompressed bytes: what memory holds)."""
        limit = self._config.max_page_size
        too_big = f"the upstream page of {name} is larger than [upstream] max_page_size ({limit} bytes)"
        if resp.content_length is not None and resp.content_length > limit:
            raise UpstreamInvalid(too_big)
        chunks: list[bytes] = []
        total = 0
        async for chunk in resp.content.iter_chunked(PAGE_CHUNK):
            total += len(chunk)
            if total > limit:
                raise UpstreamInvalid(too_big)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _parse(self, content_type: str, body: bytes, url: str, name: NormalizedName) -> ProjectPage:
        parse = partial(_parse_page, content_type, body, url, name, self._config.max_page_files)
        if len(body) <= PARSE_INLINE_BYTES:
            return parse()
        # A big page takes seconds of CPU: on the loop it would stall every other request meanwhile.
        return await asyncio.get_running_loop().run_in_executor(self._executor, parse)

    def allows(self, url: URL) -> bool:
        """Whether shadowpi may send a request to `url`: the upstream's own origin or a host in file_hosts."""
        if url.scheme not in {"http", "https"} or url.host is None:
            return False
        if url.origin() == self._origin:
            return True
        if url.host == self._origin.host and url.scheme == "https" and url.is_default_port():
            return True  # the upstream itself upgraded to https (http://index/ redirecting to https://index/)
        host = url.host.lower()
        return host in self._hosts or f"{host}:{url.port}" in self._hosts

    @asynccontextmanager
    async def _get(
        self,
        url: str,
        what: str,
        *,
        headers: dict[str, str],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 -- aiohttp's own per-request timeout, passed through
        auto_decompress: bool = True,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET `url`, following up to MAX_REDIRECTS redirects, each only to a host `allows` accepts.

        Raises UpstreamUnavailable naming the refused host, or when the redirects do not end.
        """
        target = URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            if not self.allows(target):
                where = target.host if target.is_default_port() else f"{target.host}:{target.port}"  # no userinfo
                raise UpstreamUnavailable(
                    f"refused to fetch {what} from {where or target.scheme}: not the upstream's host "
                    f"and not in [upstream] file_hosts"
                )
            async with self._session.get(
                target, headers=headers, timeout=timeout, auto_decompress=auto_decompress, allow_redirects=False
            ) as resp:
                location = resp.headers.get("Location") if resp.status in _REDIRECTS else None
                if location is None:
                    yield resp
                    return
            target = _redirected(target, location)
        raise UpstreamUnavailable(f"upstream redirected {what} more than {MAX_REDIRECTS} times")

    @asynccontextmanager
    async def open_file(self, url: str, start: int = 0) -> AsyncIterator[UpstreamFile]:
        """Open a file download; the body is not decompressed (archives must stay byte-exact). From byte `start`
        on when it is not 0 (a Range request): upstream may still answer 200 with the whole file (`start` of the
        result says which).

        Raises FileNotFound for 404/410 and UpstreamUnavailable for anything else that is not a 200 (or a 206 with
        a Content-Range from `start` to the end), or for a host that is not allowed.
        """
        started = time.monotonic()
        headers = {"Accept-Encoding": "identity"}
        if start:
            headers["Range"] = f"bytes={start}-"
        try:
            async with self._get(
                url, URL(url).name or "a file", timeout=self._file_timeout, auto_decompress=False, headers=headers
            ) as resp:
                result = "ok" if resp.status in {200, 206} else str(resp.status)
                self._observe("file", result, time.monotonic() - started)
                if resp.status in {404, 410}:
                    raise FileNotFound(f"upstream has no file at {mask_url(url)}")
                if resp.status == 206 and start:
                    yield UpstreamFile(resp, _range_total(resp, start), start)
                    return
                if resp.status != 200:
                    raise UpstreamUnavailable(f"upstream answered {resp.status} for a file download")
                yield UpstreamFile(resp, resp.content_length)
        except TimeoutError:
            self._observe("file", "timeout", time.monotonic() - started)
            raise UpstreamTimeout("upstream did not answer the file request in time") from None
        except aiohttp.ClientError as exc:
            self._observe("file", "error", time.monotonic() - started)
            raise UpstreamUnavailable(f"upstream unreachable: {_describe(exc)}") from None


_CONTENT_RANGE = re.compile(r"bytes (\d{1,18})-(\d{1,18})/(\d{1,18}|\*)")


def _range_total(resp: aiohttp.ClientResponse, start: int) -> int | None:
    """The whole file's length from a 206 answering `Range: bytes=start-` (None: upstream does not say). Raises
    UpstreamUnavailable unless the body is exactly the bytes from `start` to the end."""
    header = resp.headers.get("Content-Range", "")
    match = _CONTENT_RANGE.fullmatch(header.strip())
    first, last = (int(match[1]), int(match[2])) if match else (-1, -1)
    total = None if match is None or match[3] == "*" else int(match[3])
    if (
        match is None
        or first != start
        or last < first
        or (total is not None and last + 1 != total)
        or (resp.content_length is not None and resp.content_length != last - first + 1)
    ):
        raise UpstreamUnavailable(
            f"upstream answered the request for bytes {start}- of a file with Content-Range {header[:80]!r}"
        )
    return total


def _redirected(current: URL, location: str) -> URL:
    """Where a redirect points; the credentials of the upstream URL go along only to the same origin."""
    try:
        target = current.join(URL(location))
    except ValueError:
        raise UpstreamUnavailable("upstream redirected to an invalid URL") from None
    if target.origin() == current.origin() and current.user is not None and target.user is None:
        target = target.with_user(current.user).with_password(current.password)
    return target


def _parse_page(content_type: str, body: bytes, url: str, name: NormalizedName, max_files: int) -> ProjectPage:
    if content_type in _JSON_TYPES or content_type == "application/json":
        return parse_project_json(body, url, name, max_files=max_files)
    if content_type in _HTML_TYPES or content_type == "application/xhtml+xml":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise UpstreamInvalid("upstream page is not UTF-8") from None
        return parse_project_html(text, url, name, max_files=max_files)
    raise UpstreamInvalid(f"upstream answered with unsupported content type {content_type!r}")


def _describe(exc: BaseException) -> str:
    # Connection errors can embed the URL; never echo credentials from it.
    text = str(exc) or type(exc).__name__
    return text if "@" not in text else type(exc).__name__

