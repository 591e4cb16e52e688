"""Read shadowpi's index over HTTP: project pages (PEP 691 JSON, HTML fallback) and core metadata, memoized."""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urldefrag

import aiohttp

from proxy.errors import UpstreamInvalid
from proxy.simple.html import parse_project_html
from proxy.simple.json import parse_project_json
from proxy.simple.model import METADATA_SUFFIX, DistFile, ProjectPage
from proxy.simple.names import NormalizedName
from proxy.warm.download import Fetcher
from proxy.warm.metadata import Dependencies, dependencies, read_archive_metadata
from proxy.warm.model import WarmError

__all__ = ["ACCEPT", "IndexClient"]

# pip's Accept header: JSON preferred, HTML understood.
ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
K = TypeVar("K")
V = TypeVar("V")


class IndexClient:
    """Project pages and dependency metadata from one simple index, each fetched once per run."""

    def __init__(self, session: aiohttp.ClientSession, simple_url: str, fetcher: Fetcher, *, jobs: int = 8) -> None:
        self._session = session
        self._limit = asyncio.Semaphore(max(1, jobs))  # prefetching must not flood the server
        self._simple_url = simple_url if simple_url.endswith("/") else simple_url + "/"
        self._fetcher = fetcher
        self._pages: _Memo[NormalizedName, ProjectPage | None] = _Memo()
        self._metadata: _Memo[tuple[NormalizedName, str], Dependencies] = _Memo()

    async def page(self, name: NormalizedName) -> ProjectPage | None:
        """The project's page, None when the index has no such project. Raises WarmError on other failures."""
        return await self._pages.get(name, lambda: self._load_page(name))

    def prefetch(self, names: Iterable[NormalizedName]) -> None:
        """Start loading pages that will soon be needed (the resolver asks for them one at a time)."""
        for name in names:
            self._pages.get(name, functools.partial(self._load_page, name))

    async def dependencies(self, name: NormalizedName, dist: DistFile) -> Dependencies:
        """Requires-Dist of one file: its PEP 658 metadata if offered, else read from the downloaded archive."""
        return await self._metadata.get((name, dist.filename), lambda: self._load_dependencies(dist))

    async def _load_page(self, name: NormalizedName) -> ProjectPage | None:
        url = f"{self._simple_url}{quote(name)}/"
        try:
            async with self._limit, self._session.get(url, headers={"Accept": ACCEPT}) as response:
                if response.status == 404:
                    return None
                if response.status != 200:
                    raise WarmError(f"{name}: the index answered HTTP {response.status} {response.reason}")
                body = await response.read()
                kind = response.content_type
                final_url = str(response.url)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WarmError(f"{name}: cannot read the index page: {exc or type(exc).__name__}") from None
        try:
            if kind.endswith("+json"):
                return parse_project_json(body, final_url, name)
            return parse_project_html(body.decode("utf-8", "replace"), final_url, name)
        except UpstreamInvalid as exc:
            raise WarmError(f"{name}: unreadable index page: {exc}") from None

    async def _load_dependencies(self, dist: DistFile) -> Dependencies:
        if dist.has_metadata:
            return dependencies(await self._core_metadata(dist), dist.filename, from_sdist=False)
        kept = await self._fetcher.fetch_kept(dist)
        if kept.path is None:
            raise WarmError(f"cannot read the metadata of {dist.filename}: {kept.result.error}")
        data = await asyncio.get_running_loop().run_in_executor(None, read_archive_metadata, kept.path, dist.filename)
        await asyncio.to_thread(kept.path.unlink, missing_ok=True)  # read once: dependencies are memoized
        if data is None:
            raise WarmError(f"{dist.filename} has no readable core metadata (METADATA or PKG-INFO)")
        return dependencies(data, dist.filename, from_sdist=not dist.filename.endswith(".whl"))

    async def _core_metadata(self, dist: DistFile) -> bytes:
        url = urldefrag(dist.url).url + METADATA_SUFFIX
        try:
            async with self._limit, self._session.get(url) as response:
                if response.status != 200:
                    raise WarmError(f"{dist.filename}.metadata: HTTP {response.status} {response.reason}")
                data = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WarmError(f"{dist.filename}.metadata: {exc or type(exc).__name__}") from None
        expected = dist.metadata_sha256
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            raise WarmError(f"{dist.filename}.metadata does not match the sha256 the index lists for it")
        return data


class _Memo(Generic[K, V]):
    """One task per key: concurrent and later callers share the first call's outcome."""

    def __init__(self) -> None:
        self._tasks: dict[K, asyncio.Task[V]] = {}

    def get(self, key: K, load: Callable[[], Coroutine[Any, Any, V]]) -> asyncio.Task[V]:
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(load())
            task.add_done_callback(_retrieve)  # a prefetch nobody awaited must not log "never retrieved"
            self._tasks[key] = task
        return task


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
