"""Distribution file downloads: /files/<project>/<sha256>/<filename> (and PEP 658 `.metadata` siblings)."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import replace
from typing import BinaryIO

from aiohttp import web

from proxy.errors import FileNotFound, ProxyError, UpstreamUnavailable
from proxy.files import CHUNK, Fill, SendFile
from proxy.keys import BACKENDS, CONFIG, FILES, INDEX, METRICS
from proxy.logs import SendfileCounted
from proxy.rendered import file_key
from proxy.simple.model import METADATA_SUFFIX, DistFile, Origin, ProjectPage
from proxy.simple.names import is_canonical, parse_project_name

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

# The URL holds the content hash, so the bytes behind it never change: any cache may keep them for good; behind
# read authentication, only the client's own cache may (a shared one would hand them to anyone).
IMMUTABLE = "public, max-age=31536000, immutable"
IMMUTABLE_PRIVATE = "private, max-age=31536000, immutable"


# aiohttp sends files with sendfile unless this is set; then its own writer sends (and counts) them.
_NOSENDFILE = bool(os.environ.get("AIOHTTP_NOSENDFILE"))


class _Blob(SendfileCounted, web.FileResponse):
    """A committed blob; aiohttp sends it with sendfile, which its own byte count does not see."""

    def sendfile_bytes(self) -> int:
        # aiohttp counts the headers once the response finished (body_length): then the whole body went out too.
        finished = self.body_length > 0 and self.status in {200, 206} and not _NOSENDFILE
        return (self.content_length or 0) if finished else 0


class _Streamed(SendfileCounted, web.StreamResponse):
    """A file streamed from a fill; its sendfile'd bytes are counted as they go."""

    sent = 0

    def sendfile_bytes(self) -> int:
        return self.sent


@routes.get("/files/{name}/{key}/{filename}", name="file")
async def download(request: web.Request) -> web.StreamResponse:
    raw = request.match_info["name"]
    name = parse_project_name(raw)
    if not is_canonical(raw):
        raise FileNotFound("file URLs use the normalized project name")
    resolved = await request.app[INDEX].project(name)
    dist = find_file(resolved.page, request.match_info["filename"], request.match_info["key"])
    files = request.app[FILES]
    metrics = request.app[METRICS]
    cached = await files.cached(dist)
    if cached is not None:
        outcome = "private" if dist.origin is Origin.PRIVATE else "hit"
        metrics.file_requests.labels(outcome).inc()
        if request.method == "GET" and "Range" not in request.headers:
            metrics.bytes_served.labels("cache").inc(cached.blob.size)
        return _serve_blob(request, dist, cached.blob.sha256, outcome)
    if dist.origin is Origin.PRIVATE:  # private bytes live only here: never fall through to upstream
        raise FileNotFound(f"{dist.filename} is missing from storage")
    if request.app[CONFIG].upstream.offline:
        raise FileNotFound(f"{dist.filename} is not in the cache and shadowpi is offline")
    if request.method == "HEAD":  # answer from the index data; a HEAD must not start a download
        return await _head_only(request, dist)
    if "Range" in request.headers and not _range_is_valid(request):
        # As for a cached file (aiohttp's FileResponse answers 416), and before any download starts: a request that
        # is refused stores nothing.
        unsatisfiable = {"Content-Range": f"bytes */{dist.size}"} if dist.size is not None else None
        raise web.HTTPRequestRangeNotSatisfiable(headers=unsatisfiable)
    metrics.file_requests.labels("miss").inc()
    if "Range" in request.headers:
        return await _range_after_fill(request, dist, files.fill(dist))
    return await _stream_fill(request, dist, files.fill(dist))


def _range_is_valid(request: web.Request) -> bool:
    try:
        request.http_range  # noqa: B018 - parsing it is the check
    except ValueError:
        return False
    return True


def find_file(page: ProjectPage, filename: str, key: str) -> DistFile:
    """The listed file (or the PEP 658 metadata of a listed file) that this URL names."""
    dist = page.file(filename)
    if dist is None and filename.endswith(METADATA_SUFFIX):
        parent = page.file(filename.removesuffix(METADATA_SUFFIX))
        if parent is not None and parent.has_metadata:
            if file_key(parent) != key:
                raise FileNotFound(f"{filename} is not listed under this hash")
            return metadata_file(parent)
    if dist is None or file_key(dist) != key:
        raise FileNotFound(f"{page.name} has no file {filename!r} with that hash")
    return dist


def metadata_file(dist: DistFile) -> DistFile:
    """The PEP 658 core-metadata file of a distribution, as a file of its own (hashes from the index)."""
    return replace(
        dist,
        filename=dist.filename + METADATA_SUFFIX,
        url=dist.url + METADATA_SUFFIX,
        hashes=dict(dist.metadata_hashes),
        size=None,
        core_metadata=False,
    )


def _file_headers(request: web.Request, dist: DistFile, outcome: str) -> dict[str, str]:
    # Explicit type, never a Content-Encoding: clients must get the archive bytes as they are.
    headers = {"Content-Type": "application/octet-stream", "X-Shadowpi-Cache": outcome}
    if dist.sha256:
        headers["Cache-Control"] = IMMUTABLE_PRIVATE if request.app[CONFIG].auth.read else IMMUTABLE
    return headers


def _serve_blob(request: web.Request, dist: DistFile, sha256: str, outcome: str) -> web.FileResponse:
    """A committed blob, whatever the request: aiohttp answers HEAD, Range (206/416) and conditionals."""
    path = request.app[BACKENDS].blobs.serve_path(sha256)
    return _Blob(path, headers=_file_headers(request, dist, outcome))


async def _head_only(request: web.Request, dist: DistFile) -> web.StreamResponse:
    """The headers the cached file will have, from the index data (the length when the index declares it)."""
    response = web.StreamResponse(headers=_file_headers(request, dist, "miss"))
    response.headers["Accept-Ranges"] = "bytes"
    if dist.size is not None:
        response.content_length = dist.size
    await response.prepare(request)
    await response.write_eof()
    return response


async def _range_after_fill(request: web.Request, dist: DistFile, fill: Fill) -> web.StreamResponse:
    """A Range is answered from the verified, committed file, as for a file that was cached already: never from
    bytes that are still unverified. Waits for the download (this request may have started it)."""
    await fill.finished()  # a failed download raises here: a clean 502 before any header
    cached = await request.app[FILES].cached(dist)
    if cached is None:  # verified, but the cache copy could not be stored
        raise UpstreamUnavailable(f"{dist.filename} could not be stored in the cache; retry without a Range header")
    return _serve_blob(request, dist, cached.blob.sha256, "miss")


async def _stream_fill(request: web.Request, dist: DistFile, fill: Fill) -> web.StreamResponse:
    await fill.wait_started()  # errors before the first byte become a clean 4xx/5xx
    response = _Streamed(headers=_file_headers(request, dist, "miss"))
    if fill.content_length is not None:
        response.content_length = fill.content_length
    await response.prepare(request)
    transport = request.transport
    sendfile = fill.content_length is not None  # else chunked: aiohttp frames (and counts) the bytes itself
    streamed = request.app[METRICS].bytes_served.labels("upstream")
    try:
        if transport is None:
            raise ConnectionResetError("client went away")
        send = _sendfile(transport) if sendfile else _write_chunks(response)
        async for sent in request.app[FILES].send(fill, send):
            streamed.inc(sent)
            if sendfile:
                response.sent += sent
    except ProxyError as exc:
        # Headers are gone: the only honest signal left is to cut the connection before the body completes.
        log.warning("aborting download of %s: %s", dist.filename, exc)
        if transport is not None:
            transport.abort()
        return response
    except ConnectionError:  # normal (pip, uv and poetry hang up on purpose): one line, and the fill goes on
        log.info("client went away during the download of %s", dist.filename)
        return response
    await response.write_eof()
    return response


def _sendfile(transport: asyncio.Transport) -> SendFile:
    loop = asyncio.get_running_loop()

    async def sendfile(source: BinaryIO, offset: int, count: int) -> int:
        if transport.is_closing():  # loop.sendfile would raise a RuntimeError: the client is simply gone
            raise ConnectionResetError("client went away")
        return await loop.sendfile(transport, source, offset, count)

    return sendfile


def _write_chunks(response: web.StreamResponse) -> SendFile:
    """Without a length the response is chunked: bytes must go through aiohttp's writer, which frames them."""
    loop = asyncio.get_running_loop()

    async def write(source: BinaryIO, offset: int, count: int) -> None:
        end = offset + count
        while offset < end:
            data = await loop.run_in_executor(None, os.pread, source.fileno(), min(CHUNK, end - offset), offset)
            if not data:
                raise ConnectionResetError("the spool is shorter than announced")
            await response.write(data)
            offset += len(data)

    return write
