"""Operations through HTTP: /health, /ready, Prometheus /metrics, and cache eviction with its exemptions."""

from __future__ import annotations

import re
import shutil

from aiohttp.test_utils import TestClient

from proxy.keys import FILES, JANITOR
from tests.artifacts import Artifact, build_wheel
from tests.conftest import SampleDists, Upstream
from tests.proxy_fixtures import JSON, ProxyFactory
from tests.publishing import add_token, blob_files, twine_upload
from tests.stores import data_dir_meta


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent); label order does not matter."""
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        sample_name, _, rest = sample.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if sample_name == name and found == labels:
            return float(value)
    return 0.0


async def scrape(proxy: TestClient) -> str:
    resp = await proxy.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return await resp.text()


def file_url(artifact: Artifact) -> str:
    return f"/files/{artifact.project}/{artifact.sha256}/{artifact.filename}"


async def test_health_and_ready(proxy: TestClient):
    """/health is a cheap liveness answer; /ready checks the database and data dir and reports the cache."""
    assert (await (await proxy.get("/health")).json())["status"] == "ok"
    await proxy.get("/simple/tinylib/")
    body = await (await proxy.get("/ready")).json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "data_dir": "ok"}
    assert body["upstream"]["mode"] == "online"
    assert body["upstream"]["last_page"]["result"] == "fetchedpage"
    assert set(body["cache"]) >= {"bytes", "files"}


async def test_not_ready_when_data_dir_is_broken(make_proxy: ProxyFactory, populated_upstream: Upstream):
    """/ready answers 503 naming the failing check when the data dir cannot be written; /health stays 200."""
    proxy = await make_proxy()
    tmp = make_proxy.data_dir / "tmp"
    shutil.rmtree(tmp)
    tmp.write_text("not a directory")  # root ignores permission bits, so break the path itself
    try:
        resp = await proxy.get("/ready")
        assert resp.status == 503
        body = await resp.json()
        assert body["checks"]["data_dir"].startswith("failed")
        assert body["checks"]["database"] == "ok"
        assert (await proxy.get("/health")).status == 200
    finally:
        tmp.unlink()
        tmp.mkdir()


async def test_metrics_move_with_requests(proxy: TestClient, dists: SampleDists):
    """Page and file outcomes, bytes by source, upstream calls and per-route requests are counted."""
    await proxy.get("/simple/tinylib/", headers=JSON)
    await proxy.get("/simple/tinylib/", headers=JSON)
    wheel = dists.tinylib_1
    assert await (await proxy.get(file_url(wheel))).read() == wheel.data
    await proxy.app[FILES].settled()
    assert await (await proxy.get(file_url(wheel))).read() == wheel.data
    text = await scrape(proxy)
    assert metric(text, "shadowpi_page_lookups_total", outcome="miss") == 1
    assert metric(text, "shadowpi_page_lookups_total", outcome="hit") == 1
    assert metric(text, "shadowpi_file_requests_total", outcome="miss") == 1
    assert metric(text, "shadowpi_file_requests_total", outcome="hit") == 1
    assert metric(text, "shadowpi_file_bytes_served_total", source="upstream") == wheel.size
    assert metric(text, "shadowpi_file_bytes_served_total", source="cache") == wheel.size
    assert metric(text, "shadowpi_upstream_requests_total", kind="page", result="fetchedpage") == 1
    assert metric(text, "shadowpi_upstream_requests_total", kind="file", result="ok") == 1
    assert metric(text, "shadowpi_http_requests_total", route="/simple/{name}/", method="GET", status="200") == 2
    assert metric(text, "shadowpi_downloads_in_flight") == 0


async def test_unrouted_requests_get_404_or_405_and_are_counted(proxy: TestClient):
    """A path no route has is a 404, a method a route lacks a 405 naming the methods it has (as aiohttp's router
    answers); both are counted under the route "unmatched", never under the raw path."""
    missing = await proxy.get("/no/such/page")
    assert missing.status == 404
    wrong_method = await proxy.request("DELETE", "/health")
    assert wrong_method.status == 405
    assert set(wrong_method.headers["Allow"].split(",")) == {"GET", "HEAD"}
    assert (await proxy.head("/health")).status == 200
    text = await scrape(proxy)
    assert metric(text, "shadowpi_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert metric(text, "shadowpi_http_requests_total", route="unmatched", method="DELETE", status="405") == 1
    assert metric(text, "shadowpi_http_requests_total", route="/health", method="HEAD", status="200") == 1
    assert "/no/such/page" not in text


async def test_metrics_token_and_disable(make_proxy: ProxyFactory, upstream: Upstream):
    """A metrics token makes /metrics answer 401 without the bearer token; enabled = false removes it."""
    protected = await make_proxy(metrics={"token": "s3cret"})
    assert (await protected.get("/metrics")).status == 401
    assert (await protected.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await protected.get("/metrics", headers={"Authorization": "Bearer s3cret"})).status == 200
    await protected.close()
    disabled = await make_proxy(metrics={"enabled": False})
    assert (await disabled.get("/metrics")).status == 404


async def test_eviction_is_lru_and_spares_private_pinned_and_recent(make_proxy: ProxyFactory, upstream: Upstream):
    """Over max_size the least recently used upstream files go first; private, pinned and recent ones stay."""
    wheels = [build_wheel("evictme", f"{i}.0", payload_size=20_000) for i in range(4)]
    for wheel in wheels:
        upstream.fake.add(wheel)
    private = build_wheel("acme-private", "1.0", payload_size=20_000)
    await add_token(make_proxy.data_dir, "ci")
    make_proxy.background = False  # this test decides when sweeps run
    proxy = await make_proxy(cache={"max_size": 70_000})
    janitor = proxy.app[JANITOR]
    assert (await twine_upload(proxy, private)).status == 200
    await proxy.get("/simple/evictme/", headers=JSON)
    for wheel in wheels:  # fetched one after another, each a minute apart on the injected clock
        assert await (await proxy.get(file_url(wheel))).read() == wheel.data
        await proxy.app[FILES].settled()  # committed (and timestamped) before the clock moves
        make_proxy.clock.advance(300)
    async with data_dir_meta(make_proxy.data_dir) as meta:
        await meta.pin_blobs([wheels[0].sha256])  # the oldest, but pinned (shadowpi warm --pin)
    assert await (await proxy.get(file_url(wheels[1]))).read() == wheels[1].data  # now the most recent
    evicted = await janitor.sweep()
    remaining = blob_files(make_proxy.data_dir)
    assert evicted == 2
    assert wheels[2].sha256 not in remaining and wheels[3].sha256 not in remaining
    assert {wheels[0].sha256, wheels[1].sha256, private.sha256} <= remaining
    assert janitor.usage.bytes <= 70_000
    text = await scrape(proxy)
    assert metric(text, "shadowpi_cache_evictions_total") == 2
    again = await proxy.get(file_url(wheels[2]))  # an evicted file is simply fetched again
    assert await again.read() == wheels[2].data


async def test_nothing_is_evicted_under_the_limit_or_when_unlimited(proxy: TestClient, dists: SampleDists):
    """Without max_size (the default) the janitor only measures."""
    await proxy.get("/simple/tinylib/")
    await (await proxy.get(file_url(dists.tinylib_1))).read()
    await proxy.app[FILES].settled()
    assert await proxy.app[JANITOR].sweep() == 0
    assert proxy.app[JANITOR].usage.files == 1
    assert proxy.app[JANITOR].usage.bytes == dists.tinylib_1.size
