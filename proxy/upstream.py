"""Upstream edge: one aiohttp ClientSession that fetches project pages (JSON preferred) and streams files."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

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
    """An open upstream file response; iterate `chunks()` inside the `open_file` context."""

    response: aiohttp.ClientResponse
    content_length: int | None

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

    def __init__(self, session: aiohttp.ClientSession, config: UpstreamConfig, observe: Observer = _ignore) -> None:
        self._session = session
        self._config = config
        self._observe = observe
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
            async with self._session.get(url, headers=headers, timeout=self._page_timeout) as resp:
                if resp.status == 304:
                    return NotModified()
                if resp.status in {404, 410}:
                    return Missing()
                if resp.status != 200:
                    raise UpstreamUnavailable(f"upstream answered {resp.status} for {name}")
                body = await resp.read()
                page = _parse_page(resp.content_type, body, str(resp.url), name)
                return FetchedPage(page, resp.headers.get("ETag"), resp.headers.get("Last-Modified"))
        except TimeoutError:
            raise UpstreamTimeout(f"upstream did not answer within {self._config.page_timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {_describe(exc)}") from None

    @asynccontextmanager
    async def open_file(self, url: str) -> AsyncIterator[UpstreamFile]:
        """Open a file download; the body is not decompressed (archives must stay byte-exact).

        Raises FileNotFound for 404/410 and UpstreamUnavailable for anything else that is not a 200.
        """
        started = time.monotonic()
        try:
            async with self._session.get(
                url,
                timeout=self._file_timeout,
                auto_decompress=False,
                headers={"Accept-Encoding": "identity"},
            ) as resp:
                result = "ok" if resp.status == 200 else str(resp.status)
                self._observe("file", result, time.monotonic() - started)
                if resp.status in {404, 410}:
                    raise FileNotFound(f"upstream has no file at {mask_url(url)}")
                if resp.status != 200:
                    raise UpstreamUnavailable(f"upstream answered {resp.status} for a file download")
                yield UpstreamFile(resp, resp.content_length)
        except TimeoutError:
            self._observe("file", "timeout", time.monotonic() - started)
            raise UpstreamTimeout("upstream did not answer the file request in time") from None
        except aiohttp.ClientError as exc:
            self._observe("file", "error", time.monotonic() - started)
            raise UpstreamUnavailable(f"upstream unreachable: {_describe(exc)}") from None


def _parse_page(content_type: str, body: bytes, url: str, name: NormalizedName) -> ProjectPage:
    if content_type in _JSON_TYPES or content_type == "application/json":
        return parse_project_json(body, url, name)
    if content_type in _HTML_TYPES or content_type == "application/xhtml+xml":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise UpstreamInvalid("upstream page is not UTF-8") from None
        return parse_project_html(text, url, name)
    raise UpstreamInvalid(f"upstream answered with unsupported content type {content_type!r}")


def _describe(exc: BaseException) -> str:
    # Connection errors can embed the URL; never echo credentials from it.
    text = str(exc) or type(exc).__name__
    return text if "@" not in text else type(exc).__name__

