"""Downloads through the file cache: tee to the client, verification, single-flight, failures, cached serving."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from proxy.keys import FILES
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
