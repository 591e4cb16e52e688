"""Distribution file downloads: /files/<project>/<sha256>/<filename> (and PEP 658 `.metadata` siblings)."""

from __future__ import annotations

import logging
from dataclasses import replace

from aiohttp import web

from proxy.backends.blobs import BlobReader, ByteSource
from proxy.errors import FileNotFound, ProxyError, UpstreamUnavailable
from proxy.filecache import Cached
from proxy.fill import Following
from proxy.keys import CONFIG, FILES, INDEX, JANITOR, METRICS
from proxy.rendered import file_key
from proxy.simple.model import METADATA_SUFFIX, DistFile, Origin, ProjectPage
from proxy.simple.names import is_canonical, parse_project_name
from proxy.web.access import index_of, readable_index
from proxy.web.ranges import refused
from proxy.web.sending import Sent, send_blob, send_range

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

# The URL holds the content hash, so the bytes behind it never change: any cache may keep them for good; behind
# read authentication, only the client's own cache may (a shared one would hand them to anyone).
IMMUTABLE = "public, max-age=31536000, immutable"
IMMUTABLE_PRIVATE = "private, max-age=31536000, immutable"


@routes.get("/files/{name}/{key}/{filename}", name="file")
@routes.get("/index/{index}/files/{name}/{key}/{filename}", name="named_file")
async def download(request: web.Request) -> web.StreamResponse:
    # Read permission covers files: the project is resolved through the requested index's chain, so a private
    # file of an index outside that chain is a 404 (never a 403: its existence is not confirmed) even by exact URL.
    index = await readable_index(request)
    raw = request.match_info["name"]
    name = parse_project_name(raw)
    if not is_canonical(raw):
        raise FileNotFound("file URLs use the normalized project name")
    resolved = await request.app[INDEX].project(name, index.name)
    dist = find_file(resolved.page, request.match_info["filename"], request.match_info["key"])
    if request.app[CONFIG].storage.redirect:  # the object store carries the bytes of files it has
        location = await request.app[FILES].redirect_url(dist, request.method)
        if location is not None:
            return _redirect(request, location)
    offline = request.app[CONFIG].upstream.offline
    if dist.origin is Origin.PRIVATE or offline or request.method == "HEAD" or _refused_range(request):
        return await _without_download(request, dist)  # never a download
    with await request.app[FILES].open(dist) as found:
        if isinstance(found, Cached):
            return await _send_cached(request, dist, found.reader, "hit")
        request.app[METRICS].file_request("miss")
        if "Range" in request.headers:
            return await _range_after_fill(request, dist, found)
        return await _stream_fill(request, dist, found)


async def _without_download(request: web.Request, dist: DistFile) -> web.StreamResponse:
    """A private file, a file while offline, a HEAD or a refused Range: from the cache, else 404 (416 for the
    Range; the index data for HEAD)."""
    cached = await request.app[FILES].cached(dist)
    if cached is not None:
        with cached:
            return await _send_cached(request, dist, cached.reader, "hit")
    if dist.origin is Origin.PRIVATE:  # private bytes live only here: never fall through to upstream
        raise FileNotFound(f"{dist.filename} is missing from storage")
    if request.app[CONFIG].upstream.offline:
        raise FileNotFound(f"{dist.filename} is not in the cache and shadowpi is offline")
    if _refused_range(request):  # as a cached file answers it, before a download stores anything
        unsatisfiable = {"Content-Range": f"bytes */{dist.size}"} if dist.size is not None else None
        raise web.HTTPRequestRangeNotSatisfiable(headers=unsatisfiable)
    return await _head_only(request, dist)


def _refused_range(request: web.Request) -> bool:
    requested = request.headers.get("Range")
    return requested is not None and request.method == "GET" and refused(requested)


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


def _private(request: web.Request) -> bool:
    """Whether the bytes are behind authentication (shared caches must not keep them)."""
    if request.app[CONFIG].auth.read:
        return True
    return "index" in request.match_info and not index_of(request).world_readable


def _file_headers(request: web.Request, dist: DistFile, outcome: str) -> dict[str, str]:
    # Explicit type, never a Content-Encoding: clients must get the archive bytes as they are.
    headers = {"Content-Type": "application/octet-stream", "X-Shadowpi-Cache": outcome}
    if dist.sha256:
        headers["Cache-Control"] = IMMUTABLE_PRIVATE if _private(request) else IMMUTABLE
    return headers


async def _send_cached(request: web.Request, dist: DistFile, reader: BlobReader, outcome: str) -> web.StreamResponse:
    """A committed blob: a cache hit ("private" for an upload), or a download that has just been committed."""
    if outcome == "hit":
        outcome = "private" if dist.origin is Origin.PRIVATE else "hit"
        metrics = request.app[METRICS]
        metrics.file_request(outcome)
        if request.method == "GET" and "Range" not in request.headers:
            metrics.bytes_sent("cache", reader.size)
    with request.app[JANITOR].serving(reader.sha256):  # no replica evicts it while it is being sent
        return await send_blob(request, reader, _file_headers(request, dist, outcome))


def _redirect(request: web.Request, location: str) -> web.StreamResponse:
    """302 to the object store: it carries the bytes. Never cached by anyone (the URL expires; behind read
    authentication it is the capability to read the file)."""
    request.app[METRICS].file_request("redirect")
    headers = {"Location": location, "Cache-Control": "private, no-store", "X-Shadowpi-Cache": "redirect"}
    return web.Response(status=302, headers=headers)


async def _head_only(request: web.Request, dist: DistFile) -> web.StreamResponse:
    """The headers the cached file will have, from the index data (the length when the index declares it)."""
    response = web.StreamResponse(headers=_file_headers(request, dist, "miss"))
    response.headers["Accept-Ranges"] = "bytes"
    if dist.size is not None:
        response.content_length = dist.size
    await response.prepare(request)
    await response.write_eof()
    return response


async def _range_after_fill(request: web.Request, dist: DistFile, following: Following) -> web.StreamResponse:
    """A Range is answered from the verified, committed file, as for a file that was cached already: never from
    bytes that are still unverified. Waits for the download (this request may have started it)."""
    await following.fill.finished()  # a failed download raises here: a clean 502 before any header
    cached = await request.app[FILES].cached(dist)
    if cached is None:  # verified, but the cache copy could not be stored
        raise UpstreamUnavailable(f"{dist.filename} could not be stored in the cache; retry without a Range header")
    with cached:
        return await _send_cached(request, dist, cached.reader, "miss")


async def _stream_fill(request: web.Request, dist: DistFile, following: Following) -> web.StreamResponse:
    fill = following.fill
    await fill.wait_started()  # errors before the first byte become a clean 4xx/5xx
    response = Sent(headers=_file_headers(request, dist, "miss"))
    if fill.content_length is not None:
        response.content_length = fill.content_length
    await response.prepare(request)
    sendfile = fill.content_length is not None  # else chunked: aiohttp frames (and counts) the bytes itself
    metrics = request.app[METRICS]

    async def send(source: ByteSource, offset: int, count: int) -> None:
        await send_range(request, response, source, offset, count, sendfile=sendfile)

    try:
        async for sent in request.app[FILES].send(following, send):
            metrics.bytes_sent("upstream", sent)
    except ProxyError as exc:
        # Headers are gone: the only honest signal left is to cut the connection before the body completes.
        log.warning("aborting download of %s: %s", dist.filename, exc)
        if request.transport is not None:
            request.transport.abort()
        return response
    except ConnectionError:  # normal (pip, uv and poetry hang up on purpose): one line, and the fill goes on
        log.info("client went away during the download of %s", dist.filename)
        return response
    await response.write_eof()
    return response
