"""File responses look the same however the file is held (cached, committing, still arriving): headers, Range,
HEAD, cache headers under read authentication, the access log's numbers, and quiet client disconnects."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from proxy.app import create_app
from proxy.keys import FILES
from proxy.logs import AccessLogger
from tests.artifacts import Artifact, build_wheel
from tests.conftest import SampleDists, Upstream
from tests.proxy_fixtures import JSON, ProxyFactory
from tests.publishing import TOKEN_AUTH, add_token, twine_form

HEAD_HEADERS = ("Content-Length", "Accept-Ranges", "Content-Type", "Cache-Control", "X-Shadowpi-Cache")


def file_url(artifact: Artifact) -> str:
    return f"/files/{artifact.project}/{artifact.sha256}/{artifact.filename}"


def upstream_path(artifact: Artifact) -> str:
    return f"/files/{artifact.project}/{artifact.filename}"


@pytest.fixture(scope="module")
def big() -> Artifact:
    return build_wheel("rangepkg", "1.0", payload_size=600_000)


async def listed(proxy: TestClient, project: str, headers: dict[str, str] | None = None) -> None:
    assert (await proxy.get(f"/simple/{project}/", headers={**JSON, **(headers or {})})).status == 200


# --- item 31: Range and HEAD do not depend on where the file is ---------------------------------------------


async def test_range_on_an_arriving_file_waits_for_verification_then_gets_206(
    make_proxy: ProxyFactory, upstream: Upstream, big: Artifact
) -> None:
    """A Range request for a file still arriving (or being committed) joins its download, waits until the file
    is verified and stored, and then gets the same 206 a cached file gives; one upstream GET in all."""
    upstream.fake.add(big)
    proxy = await make_proxy()
    await listed(proxy, "rangepkg")
    gate = upstream.fake.file_stream_gate = asyncio.Event()
    full = await proxy.get(file_url(big))  # the download starts; upstream holds after its first chunk
    part = asyncio.create_task(proxy.get(file_url(big), headers={"Range": "bytes=100-199"}))
    done, _ = await asyncio.wait([part], timeout=0.2)
    assert not done  # no bytes before verification
    gate.set()
    resp = await asyncio.wait_for(part, timeout=10)
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 100-199/{big.size}"
    assert await resp.read() == big.data[100:200]
    assert await full.read() == big.data
    again = await proxy.get(file_url(big), headers={"Range": "bytes=100-199"})
    assert (again.status, await again.read()) == (206, big.data[100:200])
    assert upstream.fake.hits[upstream_path(big)] == 1


@pytest.mark.parametrize("header", ["bytes=0--1", "bytes=abc", "lines=0-9"])
async def test_malformed_range_on_a_cold_file_is_416_and_starts_nothing(
    make_proxy: ProxyFactory, upstream: Upstream, big: Artifact, header: str
) -> None:
    """A Range header that does not parse gets 416 as it would for a cached file, before any download starts: a
    refused request stores nothing and costs upstream nothing (found by the fuzz suite)."""
    upstream.fake.add(big)
    proxy = await make_proxy()
    await listed(proxy, "rangepkg")
    resp = await proxy.get(file_url(big), headers={"Range": header})
    assert resp.status == 416
    assert resp.headers["Content-Range"] == f"bytes */{big.size}"
    assert upstream.fake.hits[upstream_path(big)] == 0
    assert proxy.app[FILES].in_flight == 0


async def test_range_on_a_failing_download_is_a_clean_502(
    make_proxy: ProxyFactory, upstream: Upstream, big: Artifact
) -> None:
    """A Range request waiting for a download that fails gets a 502 with the reason, never partial bytes."""
    upstream.fake.add(big, declared_sha256="0" * 64)
    proxy = await make_proxy()
    await listed(proxy, "rangepkg")
    resp = await proxy.get(f"/files/rangepkg/{'0' * 64}/{big.filename}", headers={"Range": "bytes=0-99"})
    assert resp.status == 502
    assert "sha256" in resp.reason


async def test_head_gives_the_same_headers_cold_and_cached(
    make_proxy: ProxyFactory, upstream: Upstream, big: Artifact
) -> None:
    """HEAD on an uncached file starts no download and answers the headers a cached file has (length, ranges,
    type, cache control), as it does while the file is arriving."""
    upstream.fake.add(big)
    proxy = await make_proxy()
    await listed(proxy, "rangepkg")
    cold = await proxy.head(file_url(big))
    assert upstream.fake.hits[upstream_path(big)] == 0
    gate = upstream.fake.file_stream_gate = asyncio.Event()
    arriving_get = await proxy.get(file_url(big))
    arriving = await proxy.head(file_url(big))
    gate.set()
    await arriving_get.read()
    await proxy.app[FILES].settled()
    cached = await proxy.head(file_url(big))
    expected = {
        "Content-Length": str(big.size),
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
        "Cache-Control": "public, max-age=31536000, immutable",
    }
    for resp, outcome in ((cold, "miss"), (arriving, "miss"), (cached, "hit")):
        assert resp.status == 200
        assert {k: resp.headers.get(k) for k in HEAD_HEADERS} == {**expected, "X-Shadowpi-Cache": outcome}
    assert upstream.fake.hits[upstream_path(big)] == 1


# --- item 3: behind read authentication, files are private to the client's cache ---------------------------


async def test_files_behind_read_auth_are_private(
    make_proxy: ProxyFactory, populated_upstream: Upstream, dists: SampleDists
) -> None:
    """With [auth] read = true, files and .metadata (streamed, cached, HEAD) say `Cache-Control: private`: a
    shared cache must not hand them to anyone without credentials. Without it they stay public."""
    await add_token(make_proxy.data_dir, "ci")
    auth = {"Authorization": aiohttp.encode_basic_auth(*TOKEN_AUTH)}
    proxy = await make_proxy(auth={"read": True})
    await listed(proxy, "tinylib", auth)
    url = file_url(dists.tinylib_1)
    private = "private, max-age=31536000, immutable"
    for path in (url, url + ".metadata"):
        assert (await proxy.head(path, headers=auth)).headers["Cache-Control"] == private
        miss = await proxy.get(path, headers=auth)
        assert (miss.headers["X-Shadowpi-Cache"], miss.headers["Cache-Control"]) == ("miss", private)
        await miss.read()
        await proxy.app[FILES].settled()
        hit = await proxy.get(path, headers=auth)
        assert (hit.headers["X-Shadowpi-Cache"], hit.headers["Cache-Control"]) == ("hit", private)
    open_proxy = await make_proxy()
    assert (await open_proxy.get(url)).headers["Cache-Control"] == "public, max-age=31536000, immutable"


# --- item 24: the access log counts file bytes and names the cache outcome ----------------------------------


@asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """`app` served as `shadowpi serve` runs it (a handler is not cancelled when its client goes away; JSON
    access log), and a client session. On exit the server shuts down, waiting for every handler."""
    runner = web.AppRunner(app, access_log_class=AccessLogger, access_log_format="json")
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as session:
            yield f"http://{host}:{port}", session
    finally:
        await runner.cleanup()


async def test_access_log_counts_file_bytes_and_cache_outcome(
    make_proxy: ProxyFactory, upstream: Upstream, big: Artifact, caplog: pytest.LogCaptureFixture
) -> None:
    """Streamed, cached (sendfile), ranged and private files are logged with the bytes actually sent (headers
    included) and cache=miss/hit/private, like pages."""
    upstream.fake.add(big)
    private = build_wheel("mine", "1.0", payload_size=50_000)
    await add_token(make_proxy.data_dir, "ci")
    app = create_app(make_proxy.config(), clock=make_proxy.clock)
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    async with served(app) as (url, session):
        auth = {"Authorization": aiohttp.encode_basic_auth(*TOKEN_AUTH)}
        form = twine_form(private)
        async with session.post(url + "/", data=form, headers=auth) as resp:
            assert resp.status == 200
        async with session.get(url + "/simple/rangepkg/", headers=JSON) as resp:
            assert resp.status == 200
        caplog.clear()
        for headers in ({}, {}, {"Range": "bytes=0-99"}):
            async with session.get(url + file_url(big), headers=headers) as resp:
                await resp.read()
            await app[FILES].settled()
        async with session.get(url + file_url(private)) as resp:
            assert await resp.read() == private.data
    lines: list[dict[str, Any]] = [  # the fake upstream logs to aiohttp.access too, in aiohttp's own format
        json.loads(r.getMessage()) for r in caplog.records if r.name == "aiohttp.access" and r.msg.startswith("{")
    ]
    logged = [(line["status"], line["cache"]) for line in lines]
    assert logged == [(200, "miss"), (200, "hit"), (206, "hit"), (200, "private")]
    sizes = [big.size, big.size, 100, private.size]
    for line, size in zip(lines, sizes, strict=True):
        assert size < line["bytes"] < size + 1000, line  # the body and its headers


# --- item 23: a client hanging up is normal ----------------------------------------------------------------


async def test_client_disconnect_during_a_streamed_download_logs_one_quiet_line(
    make_proxy: ProxyFactory, upstream: Upstream, big: Artifact, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that goes away while its download still streams from upstream (poetry does this) is an info
    line, never an ERROR with a traceback; the download still completes and is cached."""
    upstream.fake.add(big)
    upstream.fake.file_chunk_size = 100_000
    app = create_app(make_proxy.config(), clock=make_proxy.clock)
    caplog.set_level(logging.INFO)
    async with served(app) as (url, session):
        async with session.get(url + "/simple/rangepkg/", headers=JSON) as resp:
            assert resp.status == 200
        gate = upstream.fake.file_stream_gate = asyncio.Event()
        resp = await session.get(url + file_url(big))
        await asyncio.wait_for(resp.content.readexactly(1000), timeout=10)
        resp.close()  # the client goes away mid-file
        caplog.clear()
        gate.set()
        await app[FILES].settled()
    # The server has shut down: the handler that was streaming to the closed connection has finished.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert [r.levelno for r in caplog.records if "went away" in r.getMessage()] == [logging.INFO]
    assert upstream.fake.hits[upstream_path(big)] == 1


# --- cached files: what aiohttp's FileResponse answered, now answered by shadowpi itself ----------------------


SMALL = build_wheel("rangepkg", "2.0", payload_size=20_000)  # held in memory while open (below 64 KiB)


async def cached_proxy(make_proxy: ProxyFactory, upstream: Upstream, big: Artifact) -> TestClient:
    upstream.fake.add(big)
    proxy = await make_proxy()
    await listed(proxy, "rangepkg")
    assert await (await proxy.get(file_url(big))).read() == big.data
    await proxy.app[FILES].settled()
    return proxy


@pytest.mark.parametrize(
    ("method", "headers", "status", "span", "content_range"),
    [
        ("GET", {}, 200, (0, None), None),
        ("GET", {"Range": "bytes=100-199"}, 206, (100, 200), "bytes 100-199/{size}"),
        ("GET", {"Range": "bytes=-100"}, 206, (-100, None), "bytes {tail}-{last}/{size}"),
        ("GET", {"Range": "bytes=0-1,5-6"}, 200, (0, None), None),  # several ranges: the whole file
        ("GET", {"Range": "bytes={size}-"}, 416, (0, 0), "bytes */{size}"),
        ("GET", {"Range": "bytes=9-1"}, 416, (0, 0), "bytes */{size}"),
        ("HEAD", {"Range": "bytes=0-9"}, 206, (0, 0), "bytes 0-9/{size}"),
        ("GET", {"If-None-Match": '"{sha256}"'}, 304, (0, 0), None),
        ("GET", {"If-Modified-Since": "Fri, 31 Dec 9999 23:59:59 GMT"}, 304, (0, 0), None),
        ("GET", {"If-Match": '"something else"'}, 412, (0, 0), None),
    ],
)
@pytest.mark.parametrize("held", ["sendfile", "in memory"])
async def test_cached_file_answers_ranges_and_conditionals(
    make_proxy: ProxyFactory, upstream: Upstream, big: Artifact, method: str, headers: dict[str, str],
    status: int, span: tuple[int, int | None], content_range: str | None, held: str,
) -> None:
    """A cached file, sent from its file or (when small) from memory, answers Range (206; 416 with the size;
    several ranges get it whole), HEAD, If-None-Match and If-Modified-Since (304), If-Match (412), with its sha256
    as ETag; the server keeps serving afterwards."""
    big = big if held == "sendfile" else SMALL
    proxy = await cached_proxy(make_proxy, upstream, big)
    size = big.size
    values = {"size": size, "tail": size - 100, "last": size - 1, "sha256": big.sha256}
    resp = await proxy.request(method, file_url(big), headers={k: v.format(**values) for k, v in headers.items()})
    body = await resp.read()
    assert resp.status == status
    assert body == big.data[span[0] : span[1]] if span != (0, 0) else body == b""
    assert resp.headers.get("Content-Range") == (content_range.format(**values) if content_range else None)
    if status in (200, 206, 304):
        assert resp.headers["ETag"] == f'"{big.sha256}"'
        assert "Last-Modified" in resp.headers
    if status in (200, 206):
        assert resp.headers["Accept-Ranges"] == "bytes"
        expected_length = 10 if method == "HEAD" else len(body)
        assert resp.headers["Content-Length"] == str(expected_length)
    assert resp.headers["X-Shadowpi-Cache"] == "hit"
    again = await proxy.get(file_url(big))
    assert (again.status, await again.read()) == (200, big.data)


async def test_a_cached_file_is_served_while_every_worker_thread_is_busy(
    make_proxy: ProxyFactory, upstream: Upstream, big: Artifact
) -> None:
    """A cache hit needs no thread: with the loop's only executor thread held, a cached file (GET, Range, HEAD)
    is still served in full. (aiohttp's FileResponse stat()ed, opened and closed it in that executor.)"""
    proxy = await cached_proxy(make_proxy, upstream, big)
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(1)
    loop.set_default_executor(executor)
    release = threading.Event()
    busy = loop.run_in_executor(None, release.wait)
    try:
        full = await asyncio.wait_for(proxy.get(file_url(big)), timeout=10)
        assert await asyncio.wait_for(full.read(), timeout=10) == big.data
        part = await asyncio.wait_for(proxy.get(file_url(big), headers={"Range": "bytes=5-9"}), timeout=10)
        assert (part.status, await part.read()) == (206, big.data[5:10])
        head = await asyncio.wait_for(proxy.head(file_url(big)), timeout=10)
        assert head.headers["Content-Length"] == str(big.size)
        assert not busy.done()
    finally:
        release.set()
        await busy  # the executor stays the loop's default until the loop closes (and shuts it down)
