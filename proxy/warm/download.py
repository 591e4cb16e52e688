"""Fetch distribution files through shadowpi with bounded parallelism, hashing every byte on the way."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urldefrag

import aiofiles
import aiohttp

from proxy.simple.model import DistFile
from proxy.warm.model import FetchResult, Status

__all__ = ["CACHE_HEADER", "ByteCounter", "Fetcher", "Spooled"]

CACHE_HEADER = "X-Shadowpi-Cache"  # "miss" on a file response means: streamed from upstream just now
CHUNK = 256 * 1024


class ByteCounter(Protocol):
    def add_bytes(self, count: int) -> None: ...


class _Uncounted:
    def add_bytes(self, count: int) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Spooled:
    """A fetch whose bytes were also kept on disk (to read metadata out of the archive)."""

    result: FetchResult
    path: Path | None


class Fetcher:
    """Downloads each file URL once (single-flight), at most `jobs` at a time, and remembers the outcome."""

    def __init__(self, session: aiohttp.ClientSession, spool_dir: Path, *, jobs: int = 8,
                 algorithms: Iterable[str] = (), progress: ByteCounter | None = None) -> None:
        self._session = session
        self._spool_dir = spool_dir
        self._limit = asyncio.Semaphore(max(1, jobs))
        # sha256 always (the index's hash); other algorithms only when some input pins a file with them.
        self._algorithms = sorted({"sha256", *(a for a in algorithms if a in hashlib.algorithms_guaranteed)})
        self._progress: ByteCounter = progress or _Uncounted()
        self._flights: dict[str, asyncio.Task[Spooled]] = {}
        self._names = itertools.count()

    @property
    def results(self) -> dict[str, FetchResult]:
        """Every finished fetch so far, by file URL."""
        done = {url: t for url, t in self._flights.items() if t.done() and not t.cancelled()}
        return {url: t.result().result for url, t in done.items() if t.exception() is None}

    async def fetch(self, dist: DistFile) -> FetchResult:
        """Download `dist` through the server (or reuse the outcome of an earlier download of it)."""
        return (await self._flight(dist, keep=False)).result

    async def fetch_kept(self, dist: DistFile) -> Spooled:
        """Like fetch, also keeping the bytes on disk; the path is None when the fetch failed."""
        spooled = await self._flight(dist, keep=True)
        if spooled.path is None and spooled.result.status != "failed":  # first fetched without keeping
            again = await self._download(dist, keep=True)
            return Spooled(spooled.result, again.path)
        return spooled

    def _flight(self, dist: DistFile, *, keep: bool) -> asyncio.Task[Spooled]:
        task = self._flights.get(dist.url)
        if task is None:
            task = asyncio.ensure_future(self._download(dist, keep=keep))
            self._flights[dist.url] = task
        return task

    async def _download(self, dist: DistFile, *, keep: bool) -> Spooled:
        async with self._limit:
            path = self._spool_dir / f"{next(self._names)}.part" if keep else None
            try:
                result = await self._stream(dist, path)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                result = FetchResult(dist.filename, "failed", error=_describe(exc))
            return Spooled(result, path if result.status != "failed" else None)

    async def _stream(self, dist: DistFile, path: Path | None) -> FetchResult:
        url = urldefrag(dist.url).url
        async with self._session.get(url, headers={"Accept-Encoding": "identity"}) as response:
            if response.status != 200:
                return FetchResult(dist.filename, "failed", error=f"HTTP {response.status} {response.reason}")
            hashers = {alg: hashlib.new(alg) for alg in self._algorithms}
            size = 0
            sink = await aiofiles.open(path, "wb") if path is not None else None
            try:
                async for chunk in response.content.iter_chunked(CHUNK):
                    for hasher in hashers.values():
                        hasher.update(chunk)
                    if sink is not None:
                        await sink.write(chunk)
                    size += len(chunk)
                    self._progress.add_bytes(len(chunk))
            finally:
                if sink is not None:
                    await sink.close()
            status: Status = "fetched" if response.headers.get(CACHE_HEADER) == "miss" else "cached"
        digests = {alg: h.hexdigest() for alg, h in hashers.items()}
        if dist.sha256 and digests["sha256"] != dist.sha256:  # shadowpi checks too; this guards any --server
            return FetchResult(dist.filename, "failed", size, digests,
                               f"sha256 {digests['sha256']} differs from the index's {dist.sha256}")
        return FetchResult(dist.filename, status, size, digests)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the transfer was cut off (shadowpi aborts a download whose bytes do not match the index's hash)"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
