"""A hostile upstream (tests/fakes.py) against the download path: surplus bytes, trickles, odd hashes, hosts."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpServer

from proxy.keys import FILES
from tests.artifacts import Artifact, build_wheel
from tests.conftest import Upstream
from tests.fakes import SMUGGLED, FakeIndex
from tests.proxy_fixtures import JSON, ProxyFactory


def file_url(artifact: Artifact, key: str | None = None) -> str:
    return f"/files/{artifact.project}/{key or artifact.sha256}/{artifact.filename}"


def upstream_path(artifact: Artifact) -> str:
    return f"/files/{artifact.project}/{artifact.filename}"


def blobs(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "blobs").rglob("*") if p.is_file())


def spools(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "tmp").iterdir())


async def listed(proxy: TestClient, project: str) -> None:
    assert (await proxy.get(f"/simple/{project}/", headers=JSON)).status == 200


async def raw_exchange(proxy: TestClient, *paths: str) -> bytes:
    """Send every request at once on ONE keep-alive connection (as pipelining clients do); return every byte the
    server sends back until it closes the connection (or stays silent for 5 s)."""
    server = proxy.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    for path in paths:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {server.host}\r\nAccept: {JSON['Accept']}\r\n\r\n".encode())
    await writer.drain()
    received = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), timeout=5):
            received += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    writer.close()
    return received


def split_response(raw: bytes) -> tuple[dict[str, str], bytes, bytes]:
    """(headers, body, the rest): the body is what the response's Content-Length frames; the rest is what a
    keep-alive client reads as the answer to its next request."""
    head, _, after = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    return headers, after[:length], after[length:]


# --- item 1: never more than the declared size -------------------------------------------------------------


@pytest.mark.parametrize("framing", ["chunked", "close"])
async def test_surplus_bytes_from_upstream_never_reach_a_keepalive_client(
    make_proxy: ProxyFactory, upstream: Upstream, framing: str
) -> None:
    """Upstream sends the file without a Content-Length and appends an HTTP response: the client's connection is
    cut before the declared size, nothing past it is ever sent (no smuggled 'next response'), nothing is cached,
    and the same file downloads fine once upstream behaves."""
    wheel = build_wheel("victim", "1.0")
    upstream.fake.add(wheel)
    upstream.fake.oversend, upstream.fake.file_framing = SMUGGLED * 20, framing  # type: ignore[assignment]
    proxy = await make_proxy()
    await listed(proxy, "victim")
    raw = await raw_exchange(proxy, file_url(wheel), "/simple/victim/")
    headers, body, rest = split_response(raw)
    assert headers["content-length"] == str(wheel.size)
    assert b"SMUGGLED" not in raw
    assert len(body) < wheel.size and body == wheel.data[: len(body)]  # cut short: never complete-looking
    assert rest == b""  # the connection ended there: no bytes a client could take for its next response
    await proxy.app[FILES].settled()
    assert blobs(make_proxy.data_dir) == []
    assert spools(make_proxy.data_dir) == []
    upstream.fake.oversend = b""
    again = await proxy.get(file_url(wheel))
    assert (again.status, await again.read()) == (200, wheel.data)


async def test_a_follower_never_sends_past_the_declared_size(make_proxy: ProxyFactory, upstream: Upstream) -> None:
    """Another worker leads the download and its spool grows past the size the index declares (a leader without
    this check): this worker's client is sent at most the declared size (less the held-back byte), and is cut off
    when that leader fails; the surplus never reaches the connection."""
    wheel = build_wheel("foreign", "1.0")
    upstream.fake.add(wheel)
    worker = await make_proxy()
    await listed(worker, "foreign")
    spool = make_proxy.data_dir / "tmp" / f"fill-{wheel.sha256}.partial"
    fd = os.open(spool, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)  # what a leading process holds
    fcntl.flock(fd, fcntl.LOCK_EX)
    reader, writer = await asyncio.open_connection(worker.server.host, worker.server.port)
    try:
        os.write(fd, wheel.data + SMUGGLED)
        writer.write(f"GET {file_url(wheel)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        assert f"Content-Length: {wheel.size}".encode() in head
        body = await asyncio.wait_for(reader.readexactly(wheel.size - 1), timeout=10)
    finally:
        os.close(fd)  # the leader dies without committing
    rest = await asyncio.wait_for(reader.read(), timeout=10)  # until the connection is cut
    writer.close()
    assert body == wheel.data[:-1]
    assert rest == b""


async def test_file_without_any_declared_size_is_capped(make_proxy: ProxyFactory, upstream: Upstream) -> None:
    """No size on the page and no Content-Length: the download stops the moment it passes max_file_size, while
    upstream is still sending (the spool never grows past the cap), and the client's transfer is cut."""
    wheel = build_wheel("endless", "1.0")
    upstream.fake.add(wheel)
    upstream.fake.mode = "html"  # no PEP 700 size
    upstream.fake.oversend, upstream.fake.file_framing = b"x" * 400_000, "close"
    upstream.fake.file_chunk_size = 50_000
    pace = upstream.fake.file_pace = asyncio.Semaphore(0)
    proxy = await make_proxy(upstream={"max_file_size": 100_000})
    await listed(proxy, "endless")
    for _ in range(4):  # 200 kB: past the cap, far from the end of what upstream would send
        pace.release()
    resp = await proxy.get(file_url(wheel))
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await asyncio.wait_for(resp.read(), timeout=10)  # without the cap this waits for upstream forever
    await proxy.app[FILES].settled()
    assert spools(make_proxy.data_dir) == []
    assert blobs(make_proxy.data_dir) == []


async def test_declared_size_above_max_file_size_is_refused_up_front(
    make_proxy: ProxyFactory, upstream: Upstream
) -> None:
    """A file whose declared size exceeds max_file_size is a clean 502 naming the key; upstream is not asked."""
    wheel = build_wheel("huge", "1.0")
    upstream.fake.add(wheel)
    proxy = await make_proxy(upstream={"max_file_size": wheel.size - 1})
    await listed(proxy, "huge")
    resp = await proxy.get(file_url(wheel))
    assert resp.status == 502
    assert "max_file_size" in resp.reason
    assert (await proxy.get("/health")).status == 200


# --- item 17: a trickle cannot hold a fill forever ---------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "advance", "expected"),
    [
        ({"download_timeout": 600, "min_download_speed": 0}, 601, "download_timeout"),
        ({"download_timeout": 0, "min_download_speed": 1024}, 31, "min_download_speed"),
    ],
)
async def test_trickling_upstream_fails_the_fill_cleanly(
    make_proxy: ProxyFactory,
    upstream: Upstream,
    caplog: pytest.LogCaptureFixture,
    limit: dict[str, int],
    advance: float,
    expected: str,
) -> None:
    """Upstream trickles bytes (one chunk per release, the clock moved by the test): past the whole-download
    deadline, or below the minimum average speed, the fill fails, the client is cut off, the spool is removed,
    and the next request starts a fresh download."""
    wheel = build_wheel("trickle", "1.0", payload_size=50_000)
    upstream.fake.add(wheel)
    upstream.fake.file_chunk_size = 100
    pace = upstream.fake.file_pace = asyncio.Semaphore(1)
    proxy = await make_proxy(upstream=limit)
    await listed(proxy, "trickle")
    resp = await proxy.get(file_url(wheel))
    assert resp.status == 200
    assert await asyncio.wait_for(resp.content.readexactly(99), timeout=10) == wheel.data[:99]
    make_proxy.clock.advance(advance)
    pace.release()  # one more chunk arrives: now too late, or too slow on average
    with pytest.raises(aiohttp.ClientPayloadError):
        await asyncio.wait_for(resp.read(), timeout=10)
    await proxy.app[FILES].settled()
    assert spools(make_proxy.data_dir) == []
    assert expected in caplog.text
    upstream.fake.file_pace = None
    again = await proxy.get(file_url(wheel))
    assert (again.status, await again.read()) == (200, wheel.data)
    assert upstream.fake.hits[upstream_path(wheel)] == 2


async def test_steady_download_is_not_cut_by_the_speed_check(make_proxy: ProxyFactory, upstream: Upstream) -> None:
    """A download that keeps up the minimum average speed completes, however long it takes in total."""
    wheel = build_wheel("steady", "1.0", payload_size=50_000)
    upstream.fake.add(wheel)
    upstream.fake.file_chunk_size = 40_000
    pace = upstream.fake.file_pace = asyncio.Semaphore(1)
    proxy = await make_proxy(upstream={"download_timeout": 0, "min_download_speed": 1024})
    await listed(proxy, "steady")
    resp = await proxy.get(file_url(wheel))
    await asyncio.wait_for(resp.content.readexactly(39_999), timeout=10)
    make_proxy.clock.advance(35)  # 40 kB in 35 s: above 1 kB/s
    pace.release()
    assert await asyncio.wait_for(resp.read(), timeout=10) == wheel.data[39_999:]


# --- item 16: odd hash names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"shake_128": "ab" * 16},
        {"shake_256": "cd" * 32, "whirlpool": "00" * 64, "x-unknown": "ff"},
        {"md5": "0" * 32},  # a fixed-length algorithm is checked: a wrong value is a lie
    ],
)
async def test_odd_hash_names_beside_sha256(make_proxy: ProxyFactory, upstream: Upstream, extra: dict[str, str]):
    """Unknown or variable-length algorithms beside a valid sha256 are ignored and the file downloads; a known
    algorithm whose value is wrong fails verification like a wrong sha256 would."""
    wheel = build_wheel("hashy", "1.0")
    upstream.fake.add(wheel, extra_hashes=extra)
    proxy = await make_proxy()
    await listed(proxy, "hashy")
    resp = await proxy.get(file_url(wheel))
    assert resp.status == 200
    if "md5" in extra:
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    else:
        assert await resp.read() == wheel.data


@pytest.mark.parametrize("declared", ["ab" * 16, "not-hex"])
async def test_malformed_sha256_is_a_clean_failure(
    make_proxy: ProxyFactory, upstream: Upstream, caplog: pytest.LogCaptureFixture, declared: str
) -> None:
    """A sha256 that is hex but not 64 digits is a clean 502 (no traceback); one that is not hex at all is no hash:
    the file is listed without one and downloads unverified, as pip treats such a link."""
    wheel = build_wheel("badhash", "1.0")
    upstream.fake.add(wheel, declared_sha256=declared)
    proxy = await make_proxy()
    page = await (await proxy.get("/simple/badhash/", headers=JSON)).json(content_type=None)
    if declared == "not-hex":
        assert page["files"][0]["hashes"] == {}
        resp = await proxy.get(file_url(wheel, "_"))
        assert (resp.status, await resp.read()) == (200, wheel.data)
        return
    resp = await proxy.get(file_url(wheel, declared))
    assert resp.status == 502
    assert "malformed sha256" in resp.reason
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# --- item 2: files and redirects only from the upstream's host and [upstream] file_hosts ---------------------


@pytest.fixture
async def elsewhere(aiohttp_server: AiohttpServer) -> Upstream:
    """A second fake index on another port of 127.0.0.1: another origin, standing for any other host."""
    fake = FakeIndex()
    return Upstream(fake, await aiohttp_server(fake.app()))


def origin(server: Upstream) -> str:
    return str(server.server.make_url("/")).rstrip("/")


def host_port(server: Upstream) -> str:
    return f"{server.server.host}:{server.server.port}"


@pytest.mark.parametrize("how", ["linked", "redirected"])
async def test_files_on_other_hosts_are_refused(
    make_proxy: ProxyFactory, upstream: Upstream, elsewhere: Upstream, how: str
) -> None:
    """A page linking a file on another host, or a file URL redirecting there, gets a 502 naming the host and
    [upstream] file_hosts; the other host is never contacted."""
    wheel = build_wheel("ssrf", "1.0")
    upstream.fake.add(wheel)
    elsewhere.fake.add(wheel)
    if how == "linked":
        upstream.fake.file_base_url = origin(elsewhere)
    else:
        upstream.fake.redirects[upstream_path(wheel)] = origin(elsewhere) + upstream_path(wheel)
    proxy = await make_proxy()
    await listed(proxy, "ssrf")
    resp = await proxy.get(file_url(wheel))
    assert resp.status == 502
    assert host_port(elsewhere) in resp.reason and "[upstream] file_hosts" in resp.reason
    assert elsewhere.fake.requests == []
    assert (await proxy.get("/health")).status == 200


@pytest.mark.parametrize("how", ["linked", "redirected"])
async def test_files_on_allowed_hosts_are_fetched(
    make_proxy: ProxyFactory, upstream: Upstream, elsewhere: Upstream, how: str
) -> None:
    """With the other host in [upstream] file_hosts (as files.pythonhosted.org is for PyPI), the file is fetched
    from there, through redirects too, and verified as usual."""
    wheel = build_wheel("cdn", "1.0")
    upstream.fake.add(wheel)
    elsewhere.fake.add(wheel)
    if how == "linked":
        upstream.fake.file_base_url = origin(elsewhere)
    else:
        upstream.fake.redirects[upstream_path(wheel)] = origin(elsewhere) + upstream_path(wheel)
    proxy = await make_proxy(upstream={"file_hosts": [host_port(elsewhere)]})
    await listed(proxy, "cdn")
    resp = await proxy.get(file_url(wheel))
    assert (resp.status, await resp.read()) == (200, wheel.data)
    assert elsewhere.fake.hits[upstream_path(wheel)] == 1


async def test_page_redirect_to_another_host_is_refused(
    make_proxy: ProxyFactory, upstream: Upstream, elsewhere: Upstream
) -> None:
    """A project page redirecting to another host is refused too (502 naming it); that host is never asked."""
    wheel = build_wheel("moved", "1.0")
    elsewhere.fake.add(wheel)
    upstream.fake.redirects["/simple/moved/"] = origin(elsewhere) + "/simple/moved/"
    proxy = await make_proxy()
    resp = await proxy.get("/simple/moved/", headers=JSON)
    assert resp.status == 502
    assert host_port(elsewhere) in resp.reason and "[upstream] file_hosts" in resp.reason
    assert elsewhere.fake.requests == []


async def test_redirects_within_the_upstream_are_followed(make_proxy: ProxyFactory, upstream: Upstream) -> None:
    """Redirects on the upstream's own host are followed, for pages and files; a redirect loop is a 502."""
    wheel, looping = build_wheel("hops", "1.0"), build_wheel("hops", "2.0")
    upstream.fake.add(wheel)
    upstream.fake.add(looping)
    upstream.fake.redirects["/simple/hops/"] = "/simple/hops/?moved=1"
    upstream.fake.redirects[upstream_path(wheel)] = upstream_path(wheel) + "?moved=1"
    upstream.fake.redirects[upstream_path(looping)] = upstream_path(looping)
    proxy = await make_proxy()
    await listed(proxy, "hops")
    assert upstream.fake.requests == ["/simple/hops/", "/simple/hops/?moved=1"]
    assert (await (await proxy.get(file_url(wheel))).read()) == wheel.data
    resp = await proxy.get(file_url(looping))
    assert resp.status == 502
    assert "redirected" in resp.reason
    assert upstream.fake.hits[upstream_path(looping)] == 6  # the request and MAX_REDIRECTS hops
