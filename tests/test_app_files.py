"""Downloads through the file cache: tee to the client, verification, single-flight, failures, cached serving."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from proxy.fill import Following
from proxy.keys import FILES
from proxy.simple.model import DistFile
from tests.artifacts import Artifact, build_wheel
from tests.conftest import SampleDists, Upstream
from tests.proxy_fixtures import JSON, ProxyFactory


def file_url(artifact: Artifact) -> str:
    return f"/files/{artifact.project}/{artifact.sha256}/{artifact.filename}"


def upstream_path(artifact: Artifact) -> str:
    return f"/files/{artifact.project}/{artifact.filename}"


def blobs(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "blobs").rglob("*") if p.is_file())


def spools(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "tmp").iterdir())


@pytest.fixture(scope="module")
def big() -> Artifact:
    """A 2 MiB wheel: many chunks, so streaming and cut-offs are observable."""
    return build_wheel("bigpkg", "1.0", payload_size=2 * 2**20)


async def _listed(proxy: TestClient, project: str) -> None:
    assert (await proxy.get(f"/simple/{project}/", headers=JSON)).status == 200


async def settled(proxy: TestClient) -> None:
    """Until every fill committed: clients get their (verified) last byte before the commit's fsync."""
    await proxy.app[FILES].settled()


async def test_miss_then_hit(make_proxy: ProxyFactory, upstream: Upstream, big: Artifact):
    """First download streams from upstream and is cached; the second is served from disk, upstream untouched."""
    upstream.fake.add(big)
    proxy = await make_proxy()
    await _listed(proxy, "bigpkg")
    first = await proxy.get(file_url(big))
    assert first.status == 200
    assert first.headers["X-Shadowpi-Cache"] == "miss"
    assert await first.read() == big.data
    await settled(proxy)
    second = await proxy.get(file_url(big), headers={"Accept-Encoding": "gzip"})
    assert second.status == 200
    assert await second.read() == big.data
    assert second.headers["Content-Length"] == str(big.size)
    assert second.headers["Content-Type"] == "application/octet-stream"
    assert "Content-Encoding" not in second.headers
    assert "immutable" in second.headers["Cache-Control"]
    assert upstream.fake.hits[upstream_path(big)] == 1
    assert [p.name for p in blobs(make_proxy.data_dir)] == [big.sha256]
    assert spools(make_proxy.data_dir) == []


async def test_cached_file_supports_head_and_range(proxy: TestClient, dists: SampleDists):
    """A cached file answers HEAD with its length and Range with 206 (uv reads metadata this way)."""
    wheel = dists.tinylib_1
    await _listed(proxy, "tinylib")
    await (await proxy.get(file_url(wheel))).read()
    await settled(proxy)
    head = await proxy.head(file_url(wheel))
    assert head.status == 200
    assert head.headers["Content-Length"] == str(wheel.size)
    assert head.headers["Accept-Ranges"] == "bytes"
    part = await proxy.get(file_url(wheel), headers={"Range": "bytes=10-19"})
    assert part.status == 206
    assert await part.read() == wheel.data[10:20]


async def test_head_of_uncached_file_does_not_download(proxy: TestClient, upstream: Upstream, dists: SampleDists):
    """HEAD on an uncached file answers from the index data and starts no upstream download."""
    wheel = dists.tinylib_2
    await _listed(proxy, "tinylib")
    head = await proxy.head(file_url(wheel))
    assert head.status == 200
    assert head.headers["Content-Length"] == str(wheel.size)
    assert upstream.fake.hits[upstream_path(wheel)] == 0


async def test_client_receives_bytes_before_upstream_finishes(
    make_proxy: ProxyFactory, upstream: Upstream, big: Artifact
):
    """The first client (and every concurrent one) is streamed bytes while upstream is still sending."""
    upstream.fake.add(big)
    upstream.fake.file_chunk_size = 256 * 1024
    proxy = await make_proxy()
    await _listed(proxy, "bigpkg")
    gate = asyncio.Event()
    upstream.fake.file_stream_gate = gate  # upstream sends one chunk, then waits
    readers = [await proxy.get(file_url(big)) for _ in range(3)]
    for resp in readers:
        assert resp.status == 200
        head = await asyncio.wait_for(resp.content.readexactly(100_000), timeout=10)
        assert head == big.data[:100_000]
    assert not gate.is_set()  # all three got bytes while upstream was blocked
    gate.set()
    for resp in readers:
        assert await resp.read() == big.data[100_000:]
    assert upstream.fake.hits[upstream_path(big)] == 1


@contextlib.asynccontextmanager
async def _two_clients_while_the_disk_is_stuck(
    proxy: TestClient, upstream: Upstream, artifact: Artifact
) -> AsyncIterator[tuple[list[aiohttp.ClientResponse], asyncio.Future[bool]]]:
    """Two clients ask for an uncached `artifact`; once upstream has the request (the claim is done), the only worker
    thread is held (a stalled disk: the loop's executor must have one thread) and upstream answers. Yields both
    responses (status 200) and the hold, still holding; the disk comes back on the way out."""
    upstream.fake.gate = asyncio.Event()
    answers = [asyncio.create_task(proxy.get(file_url(artifact))) for _ in range(2)]
    await asyncio.wait_for(upstream.fake.wait_for_request(upstream_path(artifact)), timeout=10)
    disk_back = threading.Event()
    stuck = asyncio.get_running_loop().run_in_executor(None, disk_back.wait)
    upstream.fake.gate.set()
    try:
        responses = [await asyncio.wait_for(answer, timeout=10) for answer in answers]
        assert [resp.status for resp in responses] == [200, 200]
        yield responses, stuck
    finally:
        disk_back.set()
        await stuck


async def test_first_bytes_reach_clients_before_they_are_on_disk(
    make_proxy: ProxyFactory, upstream: Upstream, big: Artifact
):
    """The first chunk from upstream is sent to the clients from memory, not after the first write to the spool: with
    the only worker thread stuck (a stalled disk), clients still get it (all but the held-back last byte); the rest
    follows once the disk is back, whole, from one upstream fetch."""
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))  # spool writes take turns on it
    upstream.fake.add(big)
    upstream.fake.file_chunk_size = 256 * 1024
    proxy = await make_proxy()
    await _listed(proxy, "bigpkg")
    upstream.fake.file_stream_gate = asyncio.Event()  # upstream sends one chunk and waits
    async with _two_clients_while_the_disk_is_stuck(proxy, upstream, big) as (responses, stuck):
        for resp in responses:
            head = await asyncio.wait_for(resp.content.readexactly(256 * 1024 - 1), timeout=10)
            assert head == big.data[: 256 * 1024 - 1]
        assert not stuck.done()  # nothing was written meanwhile
    upstream.fake.file_stream_gate.set()
    for resp in responses:
        assert await resp.read() == big.data[256 * 1024 - 1 :]
    await settled(proxy)
    assert upstream.fake.hits[upstream_path(big)] == 1


async def test_concurrent_misses_cause_one_upstream_fetch(make_proxy: ProxyFactory, upstream: Upstream, big: Artifact):
    """Ten clients downloading the same uncached file at once: one upstream GET, ten correct copies."""
    upstream.fake.add(big)
    proxy = await make_proxy()
    await _listed(proxy, "bigpkg")
    gate = asyncio.Event()
    upstream.fake.gate = gate

    async def download() -> bytes:
        async with proxy.get(file_url(big)) as resp:
            assert resp.status == 200
            return await resp.read()

    tasks = [asyncio.create_task(download()) for _ in range(10)]
    await upstream.fake.wait_for_request(upstream_path(big))
    gate.set()
    copies = await asyncio.gather(*tasks)
    assert all(hashlib.sha256(c).hexdigest() == big.sha256 for c in copies)
    assert upstream.fake.hits[upstream_path(big)] == 1


async def test_lying_hash_is_never_completed_or_cached(make_proxy: ProxyFactory, upstream: Upstream, big: Artifact):
    """Upstream declares one sha256 and sends other bytes: the client's transfer is cut, nothing is cached."""
    upstream.fake.add(big, declared_sha256="0" * 64)
    proxy = await make_proxy()
    await _listed(proxy, "bigpkg")
    url = f"/files/bigpkg/{'0' * 64}/{big.filename}"
    resp = await proxy.get(url)
    assert resp.status == 200  # headers were already sent when the lie became visible
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()
    assert blobs(make_proxy.data_dir) == []
    assert spools(make_proxy.data_dir) == []
    again = await proxy.get(url)  # not served from a bad cache entry: upstream is asked again
    with pytest.raises(aiohttp.ClientPayloadError):
        await again.read()
    assert upstream.fake.hits[upstream_path(big)] == 2
    assert (await proxy.get("/health")).status == 200


async def test_cut_stream_is_never_completed_or_cached(make_proxy: ProxyFactory, upstream: Upstream, big: Artifact):
    """Upstream closes mid-file: the client's transfer fails, no partial file is left or served later."""
    upstream.fake.add(big)
    upstream.fake.cut_after = 700_000
    proxy = await make_proxy()
    await _listed(proxy, "bigpkg")
    resp = await proxy.get(file_url(big))
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()
    assert blobs(make_proxy.data_dir) == []
    assert spools(make_proxy.data_dir) == []
    upstream.fake.cut_after = None
    fixed = await proxy.get(file_url(big))
    assert await fixed.read() == big.data
    await settled(proxy)
    assert [p.name for p in blobs(make_proxy.data_dir)] == [big.sha256]


async def test_upstream_down_for_file_is_clean_502(make_proxy: ProxyFactory, upstream: Upstream, big: Artifact):
    """When upstream fails before the first byte the client gets a 502 with a reason, not a broken 200."""
    upstream.fake.add(big)
    proxy = await make_proxy()
    await _listed(proxy, "bigpkg")
    upstream.fake.down = True
    resp = await proxy.get(file_url(big))
    assert resp.status == 502
    assert "503" in resp.reason
    assert blobs(make_proxy.data_dir) == []


async def test_size_mismatch_is_refused_before_any_byte(make_proxy: ProxyFactory, upstream: Upstream, big: Artifact):
    """A Content-Length that contradicts the size in the index is refused up front (502)."""
    small = build_wheel("bigpkg", "2.0")
    upstream.fake.add(big)
    fake_file = upstream.fake.find("bigpkg", big.filename)
    assert fake_file is not None
    proxy = await make_proxy()
    page = json.loads(await (await proxy.get("/simple/bigpkg/", headers=JSON)).text())
    assert page["files"][0]["size"] == big.size
    fake_file.artifact = Artifact(big.filename, small.data, small.metadata)  # upstream now sends other bytes
    resp = await proxy.get(file_url(big))
    assert resp.status == 502
    assert "declared" in resp.reason


async def test_metadata_file_is_served_through_the_cache(proxy: TestClient, upstream: Upstream, dists: SampleDists):
    """PEP 658: <file>.metadata is fetched once, verified against core-metadata's hash, and cached."""
    wheel = dists.tinylib_2
    await _listed(proxy, "tinylib")
    url = file_url(wheel) + ".metadata"
    for _ in range(2):
        resp = await proxy.get(url)
        assert resp.status == 200
        assert await resp.read() == wheel.metadata
    assert upstream.fake.hits[upstream_path(wheel) + ".metadata"] == 1


async def test_metadata_not_advertised_is_404(make_proxy: ProxyFactory, upstream: Upstream):
    """A .metadata URL for a file without core metadata is a 404, and upstream is not asked."""
    wheel = build_wheel("nometa", "1.0")
    upstream.fake.add(wheel, serve_metadata=False)
    proxy = await make_proxy()
    await _listed(proxy, "nometa")
    resp = await proxy.get(file_url(wheel) + ".metadata")
    assert resp.status == 404
    assert upstream.fake.hits[upstream_path(wheel) + ".metadata"] == 0


@pytest.mark.parametrize(
    "path",
    [
        "/files/tinylib/{bad}/tinylib-1.0-py3-none-any.whl",
        "/files/tinylib/{sha}/tinylib-9.9-py3-none-any.whl",
        "/files/TinyLib/{sha}/tinylib-1.0-py3-none-any.whl",
        "/files/nope/{sha}/nope-1.0-py3-none-any.whl",
    ],
)
async def test_unlisted_file_urls_are_404(proxy: TestClient, upstream: Upstream, dists: SampleDists, path: str):
    """Only files the page lists, under their own hash and canonical name, can be downloaded."""
    url = path.format(bad="f" * 64, sha=dists.tinylib_1.sha256)
    resp = await proxy.get(url)
    assert resp.status == 404
    assert not any(r.startswith("/files/") for r in upstream.fake.requests)


async def test_offline_serves_cached_files_only(
    make_proxy: ProxyFactory, populated_upstream: Upstream, dists: SampleDists
):
    """Offline: a cached file is served; an uncached one is a clear 404; upstream is never contacted."""
    online = await make_proxy()
    await _listed(online, "tinylib")
    await (await online.get(file_url(dists.tinylib_1))).read()
    await online.close()
    populated_upstream.fake.clear_log()
    offline = await make_proxy(upstream={"offline": True})
    assert await (await offline.get(file_url(dists.tinylib_1))).read() == dists.tinylib_1.data
    missing = await offline.get(file_url(dists.tinylib_2))
    assert missing.status == 404
    assert "offline" in missing.reason
    assert populated_upstream.fake.requests == []


async def test_leftover_spools_are_removed_at_startup(make_proxy: ProxyFactory, populated_upstream: Upstream):
    """Partial downloads left by a crash are deleted when shadowpi starts."""
    tmp = make_proxy.data_dir / "tmp"
    tmp.mkdir(parents=True)
    (tmp / "deadbeef.partial").write_bytes(b"half a file")
    await make_proxy()
    assert spools(make_proxy.data_dir) == []


async def test_client_disconnect_does_not_abort_the_fill(make_proxy: ProxyFactory, upstream: Upstream, big: Artifact):
    """A client that hangs up mid-download does not stop the cache fill: the file still gets cached."""
    upstream.fake.add(big)
    proxy = await make_proxy()
    await _listed(proxy, "bigpkg")
    gate = asyncio.Event()
    upstream.fake.file_stream_gate = gate
    resp = await proxy.get(file_url(big))
    await resp.content.readexactly(1000)
    resp.close()  # the client goes away
    gate.set()
    again = await proxy.get(file_url(big))
    assert await again.read() == big.data
    assert upstream.fake.hits[upstream_path(big)] == 1


# --- across workers: two apps on one data dir, as `--workers 2` runs them ---


def fill_spool(data_dir: Path, sha256: str) -> Path:
    """The one spool of a file being fetched, shared by every worker (see proxy/backends/local/fills.py)."""
    return data_dir / "tmp" / f"fill-{sha256}.partial"


@pytest.fixture
async def stream_gate(make_proxy: ProxyFactory, upstream: Upstream) -> AsyncIterator[asyncio.Event]:
    """Holds upstream file bodies after their first chunk until set; set at teardown, so a failing test cannot
    leave the servers waiting on it."""
    gate = asyncio.Event()
    upstream.fake.file_stream_gate = gate
    yield gate
    gate.set()


async def two_workers(make_proxy: ProxyFactory, project: str) -> tuple[TestClient, TestClient]:
    workers = await make_proxy(), await make_proxy()
    for worker in workers:
        await _listed(worker, project)  # pages first, so only the file request meets the gated upstream
    return workers


async def test_workers_share_one_download_and_stream_it(
    make_proxy: ProxyFactory, upstream: Upstream, big: Artifact, stream_gate: asyncio.Event
):
    """Clients of both workers: one upstream GET, and the other worker's clients get bytes while it is running."""
    upstream.fake.add(big)
    upstream.fake.file_chunk_size = 256 * 1024
    worker_a, worker_b = await two_workers(make_proxy, "bigpkg")
    gate = stream_gate  # upstream sends one chunk, then waits
    leader = await worker_a.get(file_url(big))  # headers come once worker A leads and upstream has answered
    readers = [leader, *[await worker_b.get(file_url(big)) for _ in range(3)], await worker_a.get(file_url(big))]
    for resp in readers:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == str(big.size)
        head = await asyncio.wait_for(resp.content.readexactly(100_000), timeout=10)
        assert head == big.data[:100_000]
    assert not gate.is_set()  # worker B's clients were streamed bytes while upstream was blocked
    gate.set()
    for resp in readers:
        assert await resp.read() == big.data[100_000:]
    assert upstream.fake.hits[upstream_path(big)] == 1
    await settled(worker_a)
    await settled(worker_b)
    assert [p.name for p in blobs(make_proxy.data_dir)] == [big.sha256]
    assert spools(make_proxy.data_dir) == []
    cached = await worker_b.get(file_url(big))
    assert cached.headers["X-Shadowpi-Cache"] == "hit" and await cached.read() == big.data


async def test_other_worker_streams_a_file_of_unknown_size(
    make_proxy: ProxyFactory, upstream: Upstream, big: Artifact, stream_gate: asyncio.Event
):
    """An index without sizes (HTML): the following worker cannot know the length, so it streams chunked."""
    upstream.fake.add(big)
    upstream.fake.mode = "html"  # no PEP 700 size on the page
    worker_a, worker_b = await two_workers(make_proxy, "bigpkg")
    gate = stream_gate
    leader = await worker_a.get(file_url(big))
    follower = await worker_b.get(file_url(big))
    assert "Content-Length" not in follower.headers
    assert follower.headers["Transfer-Encoding"] == "chunked"
    assert await asyncio.wait_for(follower.content.readexactly(10_000), timeout=10) == big.data[:10_000]
    gate.set()
    assert await follower.read() == big.data[10_000:]
    assert await leader.read() == big.data
    assert upstream.fake.hits[upstream_path(big)] == 1


@pytest.mark.parametrize("fault", ["lying hash", "cut stream"])
async def test_other_worker_aborts_when_the_download_fails(
    make_proxy: ProxyFactory, upstream: Upstream, big: Artifact, stream_gate: asyncio.Event, fault: str
):
    """The leading worker's download fails after the other worker's client got bytes: that client's transfer is
    cut too, nothing is cached or left behind, and the next request fetches again."""
    key = "0" * 64 if fault == "lying hash" else big.sha256
    upstream.fake.add(big, declared_sha256=key)
    upstream.fake.cut_after = 700_000 if fault == "cut stream" else None
    worker_a, worker_b = await two_workers(make_proxy, "bigpkg")
    gate = stream_gate
    url = f"/files/bigpkg/{key}/{big.filename}"
    leader = await worker_a.get(url)
    follower = await worker_b.get(url)
    assert await asyncio.wait_for(follower.content.readexactly(1000), timeout=10) == big.data[:1000]
    gate.set()
    for resp in (leader, follower):
        with pytest.raises(aiohttp.ClientPayloadError):
            await asyncio.wait_for(resp.read(), timeout=10)
    await settled(worker_a)
    await settled(worker_b)
    assert upstream.fake.hits[upstream_path(big)] == 1  # worker B followed; it did not fetch on its own
    assert blobs(make_proxy.data_dir) == []
    assert spools(make_proxy.data_dir) == []
    upstream.fake.cut_after = None  # a cut transfer was a passing fault; the lie stays
    again = await worker_b.get(url)  # now worker B fetches on its own
    if fault == "cut stream":
        assert await again.read() == big.data
    else:
        with pytest.raises(aiohttp.ClientPayloadError):
            await again.read()
    assert upstream.fake.hits[upstream_path(big)] == 2


async def test_spool_of_a_dead_worker_is_taken_over(make_proxy: ProxyFactory, upstream: Upstream, big: Artifact):
    """A spool left by a worker that died mid-download (no lock on it) is replaced, and the file fetched."""
    upstream.fake.add(big)
    worker = await make_proxy()
    await _listed(worker, "bigpkg")
    fill_spool(make_proxy.data_dir, big.sha256).write_bytes(b"the first bytes of something else")
    resp = await worker.get(file_url(big))
    assert resp.status == 200
    assert await resp.read() == big.data
    await settled(worker)
    assert [p.name for p in blobs(make_proxy.data_dir)] == [big.sha256]
    assert spools(make_proxy.data_dir) == []


async def test_clients_following_a_worker_that_dies_are_cut_off(
    make_proxy: ProxyFactory, upstream: Upstream, big: Artifact
):
    """Another process leads the download and dies mid-file (its lock vanishes, its spool stays): this worker's
    client is cut off rather than handed a partial file, and the next request takes over and fetches."""
    upstream.fake.add(big)
    worker = await make_proxy()
    await _listed(worker, "bigpkg")
    spool = fill_spool(make_proxy.data_dir, big.sha256)
    fd = os.open(spool, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)  # what a leading process holds
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        os.write(fd, big.data[:5000])
        resp = await worker.get(file_url(big))
        assert resp.status == 200
        assert await asyncio.wait_for(resp.content.readexactly(4999), timeout=10) == big.data[:4999]
    finally:
        os.close(fd)  # the leader dies
    with pytest.raises(aiohttp.ClientPayloadError):
        await asyncio.wait_for(resp.read(), timeout=10)  # a follower that missed the death would wait forever
    assert upstream.fake.hits[upstream_path(big)] == 0
    again = await worker.get(file_url(big))
    assert await again.read() == big.data
    assert upstream.fake.hits[upstream_path(big)] == 1
    await settled(worker)
    assert spools(make_proxy.data_dir) == []


async def test_starting_worker_spares_the_spools_of_running_ones(
    make_proxy: ProxyFactory, upstream: Upstream, big: Artifact, stream_gate: asyncio.Event
):
    """A worker starting while another downloads deletes a crash's leftovers, never a live download's spool."""
    upstream.fake.add(big)
    worker = await make_proxy()
    await _listed(worker, "bigpkg")
    gate = stream_gate
    resp = await worker.get(file_url(big))
    (make_proxy.data_dir / "tmp" / "deadbeef.partial").write_bytes(b"left by a crash")
    await make_proxy()  # starts, sweeping the spool directory
    assert spools(make_proxy.data_dir) == [fill_spool(make_proxy.data_dir, big.sha256)]
    gate.set()
    assert await resp.read() == big.data
    await settled(worker)
    assert [p.name for p in blobs(make_proxy.data_dir)] == [big.sha256]


async def test_a_request_cancelled_while_claiming_leaves_no_fill_behind(
    make_proxy: ProxyFactory, upstream: Upstream, big: Artifact
):
    """A request cancelled while its claim is on the way to storage (shutdown, a client gone) does not strand what
    the claim brings: the download it leads runs on, is committed, and the spool is gone; the next request hits."""
    upstream.fake.add(big)
    proxy = await make_proxy()
    dist = DistFile(big.filename, str(upstream.server.make_url(upstream_path(big))), {"sha256": big.sha256},
                    size=big.size)
    opening = asyncio.create_task(proxy.app[FILES].open(dist))
    # The claim runs in a worker thread. Look at every turn of the loop whether it has led (its spool exists):
    # the result takes more turns than that to reach the request, so the cancel comes after the claim led and
    # before the request got what it brings.
    spool, deadline = fill_spool(make_proxy.data_dir, big.sha256), time.monotonic() + 10
    while not spool.exists():
        assert time.monotonic() < deadline, "the claim never led"
        await asyncio.sleep(0)
    opening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await opening
    with await proxy.app[FILES].open(dist) as joined:  # waits for that claim, then joins what it started
        assert isinstance(joined, Following)
    await asyncio.wait_for(settled(proxy), timeout=10)  # a stranded lead would be followed forever
    assert [p.name for p in blobs(make_proxy.data_dir)] == [big.sha256]
    assert spools(make_proxy.data_dir) == []
    await _listed(proxy, "bigpkg")
    again = await proxy.get(file_url(big))
    assert (again.headers["X-Shadowpi-Cache"], await again.read()) == ("hit", big.data)
    assert upstream.fake.hits[upstream_path(big)] == 1


@pytest.fixture(scope="module")
def small() -> Artifact:
    """A wheel under download.SMALL_FILE: held in memory, hashed on the event loop, written with its commit."""
    from proxy.download import SMALL_FILE

    artifact = build_wheel("smallpkg", "1.0", payload_size=30_000)
    assert artifact.size <= SMALL_FILE
    return artifact


async def test_concurrent_misses_of_a_small_file_get_it_whole_once_committed(
    make_proxy: ProxyFactory, upstream: Upstream, small: Artifact
):
    """Ten clients of one uncached small file: one upstream GET, ten exact copies, the blob committed and no
    spool left; a second worker asking meanwhile follows the first one's spool and gets the same bytes."""
    upstream.fake.add(small)
    proxy = await make_proxy()
    other = await make_proxy()
    await _listed(proxy, "smallpkg")
    await _listed(other, "smallpkg")
    gate = asyncio.Event()
    upstream.fake.gate = gate

    async def download(client: TestClient) -> bytes:
        async with client.get(file_url(small)) as resp:
            assert resp.status == 200
            return await resp.read()

    tasks = [asyncio.create_task(download(proxy)) for _ in range(10)]
    await upstream.fake.wait_for_request(upstream_path(small))
    tasks.append(asyncio.create_task(download(other)))

    for _ in range(10_000):  # polling with a deadline: the other worker stands for another process
        if other.app[FILES].in_flight:  # it follows the leader's spool, before upstream answers
            break
        await asyncio.sleep(0.001)
    else:
        pytest.fail("the other worker never followed the fill")
    gate.set()
    assert await asyncio.gather(*tasks) == [small.data] * 11
    await settled(proxy)
    await settled(other)
    assert upstream.fake.hits[upstream_path(small)] == 1
    assert [p.name for p in blobs(make_proxy.data_dir)] == [small.sha256]
    assert spools(make_proxy.data_dir) == []


async def test_a_verified_small_file_reaches_clients_before_its_commit(
    make_proxy: ProxyFactory, upstream: Upstream, small: Artifact
):
    """A small file is verified in memory and sent from there at once: with the only worker thread stuck (a
    stalled disk, so the commit's write and fsync cannot run), clients still get the whole file; the commit follows
    once the disk is back."""
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))  # the thread the commit needs
    upstream.fake.add(small)
    proxy = await make_proxy()
    await _listed(proxy, "smallpkg")
    async with _two_clients_while_the_disk_is_stuck(proxy, upstream, small) as (responses, stuck):
        for resp in responses:
            assert await asyncio.wait_for(resp.read(), timeout=10) == small.data
        assert not stuck.done()
        assert blobs(make_proxy.data_dir) == []  # not committed yet
    await settled(proxy)
    assert [p.name for p in blobs(make_proxy.data_dir)] == [small.sha256]
    assert spools(make_proxy.data_dir) == []
    assert upstream.fake.hits[upstream_path(small)] == 1


async def test_a_small_file_with_a_lying_hash_is_never_completed_or_cached(
    make_proxy: ProxyFactory, upstream: Upstream, small: Artifact
):
    """A small file whose bytes do not match its declared sha256 is verified before anything is written: the
    client is cut off, no blob and no spool is left, and the next request asks upstream again."""
    upstream.fake.add(small, declared_sha256="0" * 64)
    proxy = await make_proxy()
    await _listed(proxy, "smallpkg")
    url = f"/files/smallpkg/{'0' * 64}/{small.filename}"
    for _ in range(2):
        resp = await proxy.get(url)
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
        await settled(proxy)
        assert blobs(make_proxy.data_dir) == []
        assert spools(make_proxy.data_dir) == []
    assert upstream.fake.hits[upstream_path(small)] == 2
