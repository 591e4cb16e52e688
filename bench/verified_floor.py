"""The verified floor: the least an aiohttp server can do while keeping shadowpi's guarantees for a proxied file.

`python bench/verified_floor.py --port P --upstream http://127.0.0.1:U --data-dir DIR` is bench/floor.py plus
exactly the work those guarantees take, each done the cheapest way that never blocks the event loop:
- a page is fetched once (JSON only: the benchmark's clients ask for it), its files' declared sha256 (and size)
  are read from it, its file URLs are made to point here (serialized again, and gzipped when the client accepts
  it), and it is stored in SQLite behind the answer (a cache that survives a restart);
- a file is claimed across processes before upstream is asked (in a worker thread: a spool created and flock()ed
  under a fresh name, then linked to the file's fill name, so one process leads and a killed leader's claim is
  taken over), streamed to the client as it arrives but for its last byte, written to a spool and hashed, and the last
  byte is sent only once the sha256 matched (else the connection is cut); then fsynced and renamed into the blob
  directory (a cache copy that is whole after a crash), and the claim is dropped. A file of at most 64 KiB is read
  whole, checked, sent in one write and written by the commit's trip, as shadowpi does;
- a committed file is sent from its open file with sendfile; a second client of a file in flight in this process
  waits for its commit (cheaper than shadowpi's streaming to followers: this is a floor).

Not done, because shadowpi's guarantees do not need it, only its other features: recording blobs in the database
(for eviction and the other backends), merging private pages, access rules, hostile-page limits, HTML pages,
metrics, logs. So this floor's ratio to nginx is what the guarantees cost on aiohttp, and shadowpi's ratio over it
is what shadowpi's own code costs beyond them.
Not a product: it runs as one process, so a file that another live process leads is an error here, not followed.
"""

from __future__ import annotations

import asyncio
import fcntl
import gzip
import hashlib
import hmac
import json
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

import aiosqlite
from aiohttp import web

from bench.floor import SESSION, UPSTREAM, _serve, _session, arguments, health

PAGES = web.AppKey("pages", dict)  # (project, gzipped) -> (headers, body)
FILES = web.AppKey("files", dict)  # URL path -> Declared
BLOBS = web.AppKey("blobs", dict)  # sha256 -> (open file, size)
FLIGHTS = web.AppKey("flights", dict)  # sha256 -> Future, done when the file is committed (or failed)
DB = web.AppKey("db", aiosqlite.Connection)
DATA = web.AppKey("data", Path)
TASKS = web.AppKey("tasks", set)
SMALL_FILE = 64 * 1024
GZIP_MIN_BYTES = 1024  # as shadowpi (proxy/rendered.py)
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
ASKED = {"Accept": JSON_TYPE, "Accept-Encoding": "identity"}  # the page is parsed: no decompressing
SCHEMA = "CREATE TABLE IF NOT EXISTS pages (key TEXT PRIMARY KEY, body BLOB)"


@dataclass(frozen=True, slots=True)
class Declared:
    sha256: str
    size: int | None


async def page(request: web.Request) -> web.Response:
    gzipped = "gzip" in request.headers.get("Accept-Encoding", "")
    key = (request.match_info["project"], gzipped)
    cached = request.app[PAGES].get(key)
    if cached is None:
        async with request.app[SESSION].get(f"{request.app[UPSTREAM]}{request.path}", headers=ASKED) as upstream:
            body = await upstream.read()
            if upstream.status != 200:
                return web.Response(status=upstream.status, body=body)
        cached = _rendered(request, body, gzipped)
        request.app[PAGES][key] = cached
        _behind(request.app, request.app[DB].execute("INSERT OR REPLACE INTO pages VALUES (?, ?)",
                                                     (key[0], body)))
    headers, rendered = cached
    return web.Response(headers=headers, body=rendered)


def _rendered(request: web.Request, body: bytes, gzipped: bool) -> tuple[dict[str, str], bytes]:
    """The page with every file URL pointing here (each file's path, kept), as shadowpi must so that downloads
    come through its verified cache; the declared sha256 and size of each file learnt by that path."""
    doc = json.loads(body)
    base = str(request.url)
    for item in doc["files"]:
        path = urlsplit(urljoin(base, item["url"])).path
        item["url"] = path
        request.app[FILES][path] = Declared(item["hashes"]["sha256"], item.get("size"))
        metadata = item.get("core-metadata")
        if isinstance(metadata, dict) and "sha256" in metadata:
            request.app[FILES][path + ".metadata"] = Declared(metadata["sha256"], None)
    rendered = json.dumps(doc, separators=(",", ":")).encode()
    headers = {"Content-Type": JSON_TYPE, "Vary": "Accept, Accept-Encoding"}
    if gzipped and len(rendered) >= GZIP_MIN_BYTES:
        rendered = gzip.compress(rendered, compresslevel=6, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return headers, rendered


async def file(request: web.Request) -> web.StreamResponse:
    declared = request.app[FILES].get(request.path)
    if declared is None:
        raise web.HTTPNotFound()
    while True:
        blob = request.app[BLOBS].get(declared.sha256)
        if blob is not None:
            return await _send_blob(request, *blob)
        flight = request.app[FLIGHTS].get(declared.sha256)
        if flight is None:
            return await _fill(request, declared)
        await asyncio.shield(flight)  # a failed fill raises here: a clean 502


async def _send_blob(request: web.Request, handle: BinaryIO, size: int) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = size
    await response.prepare(request)
    assert request.transport is not None
    await asyncio.get_running_loop().sendfile(request.transport, handle, 0, size, fallback=False)
    await response.write_eof()
    return response


async def _fill(request: web.Request, declared: Declared) -> web.StreamResponse:
    app = request.app
    loop = asyncio.get_running_loop()
    flight: asyncio.Future[None] = loop.create_future()
    app[FLIGHTS][declared.sha256] = flight
    spool: Spool | None = None
    try:
        spool = await loop.run_in_executor(None, _claim, app[DATA], declared.sha256)
        response = await _stream(request, declared, spool)
        await loop.run_in_executor(None, _commit, app[DATA], declared.sha256, spool)
        app[BLOBS][declared.sha256] = (spool.handle, spool.size)
        flight.set_result(None)
        return response
    except BaseException as exc:
        flight.set_exception(web.HTTPBadGateway(text=f"fill failed: {exc!r}"))
        flight.exception()  # retrieved: followers may be none
        if spool is not None:
            await loop.run_in_executor(None, _release, spool)
        raise
    finally:
        del app[FLIGHTS][declared.sha256]


class Spool:
    """The file being filled: its descriptor, what was written and the running hash (updated in the writer)."""

    def __init__(self, handle: BinaryIO, path: Path) -> None:
        self.handle = handle
        self.path = path
        self.size = 0
        self.hash = hashlib.sha256()
        self.staged = b""  # a small file's verified bytes, written by the commit

    def write(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.hash.update(chunk)  # releases the GIL for big chunks, as the write does
        self.size += os.writev(self.handle.fileno(), chunks)


def _claim(data: Path, sha256: str) -> Spool:
    """The cross-process claim and the spool, in one trip: the spool is created and locked under a fresh name, then
    linked to the file's fill name, which fails when another process leads. A claim whose lock can be taken is a
    killed leader's: removed, and claimed again. So a live claim exists before upstream is asked, and a dead one
    never blocks the file (as shadowpi's local fills do)."""
    fill = data / f"{sha256}.fill"
    for _ in range(3):
        fd, staging = tempfile.mkstemp(dir=data, prefix=".staging-")
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            os.link(staging, fill)
        except FileExistsError:
            os.close(fd)
            if not _remove_if_abandoned(fill):
                raise  # a live leader: this floor does not follow other processes' fills
            continue
        finally:
            Path(staging).unlink()
        return Spool(os.fdopen(fd, "w+b", buffering=0), fill)
    raise OSError(f"the claim of {sha256} kept changing")


def _remove_if_abandoned(fill: Path) -> bool:
    try:
        fd = os.open(fill, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    fill.unlink(missing_ok=True)
    return True


def _commit(data: Path, sha256: str, spool: Spool) -> None:
    if spool.staged:
        spool.size = os.write(spool.handle.fileno(), spool.staged)
    os.fsync(spool.handle.fileno())
    spool.path.rename(data / "blobs" / sha256)  # the lock goes with it: released when the handle closes


def _release(spool: Spool) -> None:
    spool.path.unlink(missing_ok=True)
    spool.handle.close()


async def _stream(request: web.Request, declared: Declared, spool: Spool) -> web.StreamResponse:
    """Upstream's bytes to the client and the spool; the last byte only once the sha256 matched."""
    async with request.app[SESSION].get(f"{request.app[UPSTREAM]}{request.path}") as upstream:
        if upstream.status != 200:
            raise web.HTTPBadGateway(text=f"upstream answered {upstream.status}")
        size = declared.size if declared.size is not None else upstream.content_length
        if size is not None and size <= SMALL_FILE:  # as shadowpi: whole in memory, one trip to write it
            return await _small(request, declared, spool, await upstream.read())
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = size
        await response.prepare(request)
        writer = WriteBehind(spool)
        held, received = b"", 0
        async for chunk in upstream.content.iter_any():
            await writer.put(chunk)
            received += len(chunk)
            if held:
                await response.write(held)
                held = b""
            if size is not None and received < size:
                await response.write(chunk)
            else:
                await response.write(memoryview(chunk)[:-1])
                held = chunk[-1:]
        await writer.close()
    if (size is not None and spool.size != size) or not hmac.compare_digest(spool.hash.hexdigest(), declared.sha256):
        assert request.transport is not None
        request.transport.abort()  # headers are gone: cut the connection before the body completes
        raise ValueError("upstream's bytes do not match the index")
    await response.write(held)
    await response.write_eof()
    return response


async def _small(request: web.Request, declared: Declared, spool: Spool, body: bytes) -> web.StreamResponse:
    """Checked on the loop, sent in one write, written to the spool by the commit's trip."""
    if not hmac.compare_digest(hashlib.sha256(body).hexdigest(), declared.sha256):
        raise web.HTTPBadGateway(text="upstream's bytes do not match the index")
    spool.staged = body
    response = web.Response(body=body, headers={"Content-Type": "application/octet-stream"})
    await response.prepare(request)
    await response.write_eof()
    return response


class WriteBehind:
    """Chunks to the spool from a worker thread while the loop reads on (at most 2 MiB queued)."""

    def __init__(self, spool: Spool) -> None:
        self._spool = spool
        self._queued: list[bytes] = []
        self._bytes = 0
        self._task: asyncio.Task[None] | None = None

    async def put(self, chunk: bytes) -> None:
        self._queued.append(chunk)
        self._bytes += len(chunk)
        if self._task is None or self._task.done():
            if self._task is not None:
                await self._task  # its error, now
            self._task = asyncio.create_task(self._drain())
        elif self._bytes >= 2 * 1024 * 1024:
            await asyncio.shield(self._task)

    async def close(self) -> None:
        if self._task is not None:
            await self._task
        await self._drain()

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queued:
            batch, self._queued, self._bytes = self._queued, [], 0
            await loop.run_in_executor(None, self._spool.write, batch)


def _behind(app: web.Application, awaitable: Awaitable[object]) -> None:
    task = asyncio.ensure_future(awaitable)
    app[TASKS].add(task)
    task.add_done_callback(app[TASKS].discard)


async def _database(app: web.Application) -> AsyncIterator[None]:
    (app[DATA] / "blobs").mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(app[DATA] / "floor.sqlite", isolation_level=None) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute(SCHEMA)
        app[DB] = db
        yield
        await asyncio.gather(*app[TASKS])


def make_app(upstream: str, data: Path) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")
    app[DATA] = data
    app[PAGES], app[FILES], app[BLOBS], app[FLIGHTS], app[TASKS] = {}, {}, {}, {}, set()
    app.cleanup_ctx.append(_session)
    app.cleanup_ctx.append(_database)
    app.router.add_get("/health", health)
    app.router.add_get("/simple/{project}/", page)
    app.router.add_get("/{tail:.*}", file)
    return app


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(_serve(make_app(args.upstream, args.data_dir), args.port))


if __name__ == "__main__":
    main()
