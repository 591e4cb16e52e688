"""The upstream page cache through HTTP: TTL, revalidation, negative caching, single-flight, stale, offline."""

from __future__ import annotations

import asyncio
import json

from aiohttp.test_utils import TestClient

from proxy.backends.records import PageFreshness, StoredPage
from proxy.keys import BACKENDS, INDEX, PAGES
from proxy.simple.names import NormalizedName
from tests.artifacts import build_wheel
from tests.conftest import SampleDists, Upstream
from tests.proxy_fixtures import JSON, ProxyFactory

PAGE = "/simple/tinylib/"


def _page_requests(upstream: Upstream, name: str = "tinylib") -> int:
    return upstream.fake.hits[f"/simple/{name}/"]


async def test_page_is_cached_within_ttl(make_proxy: ProxyFactory, populated_upstream: Upstream):
    """Within page_ttl repeated requests (any format) do not reach upstream."""
    proxy = await make_proxy(upstream={"page_ttl": 600})
    for headers in (JSON, {}, JSON):
        assert (await proxy.get(PAGE, headers=headers)).status == 200
    assert _page_requests(populated_upstream) == 1


async def test_expired_page_is_revalidated_with_etag(make_proxy: ProxyFactory, populated_upstream: Upstream):
    """After the TTL shadowpi sends If-None-Match; a 304 keeps the cached page and restarts the TTL."""
    proxy = await make_proxy(upstream={"page_ttl": 100})
    first = await proxy.get(PAGE, headers=JSON)
    assert first.headers["X-Shadowpi-Cache"] == "miss"
    make_proxy.clock.advance(101)
    second = await proxy.get(PAGE, headers=JSON)
    assert second.headers["X-Shadowpi-Cache"] == "revalidated"
    assert await second.text() == await first.text()
    assert populated_upstream.fake.not_modified == 1
    conditional = populated_upstream.fake.headers_seen[-1]
    assert "If-None-Match" in conditional
    third = await proxy.get(PAGE, headers=JSON)
    assert third.headers["X-Shadowpi-Cache"] == "hit"
    assert _page_requests(populated_upstream) == 2


async def test_a_page_answered_from_memory_still_expires(make_proxy: ProxyFactory, populated_upstream: Upstream):
    """Hits reuse the last answer, but only within page_ttl: past it the page is revalidated as before."""
    proxy = await make_proxy(upstream={"page_ttl": 100})
    outcomes = [(await proxy.get(PAGE, headers=JSON)).headers["X-Shadowpi-Cache"] for _ in range(3)]
    assert outcomes == ["miss", "hit", "hit"]
    make_proxy.clock.advance(101)
    assert (await proxy.get(PAGE, headers=JSON)).headers["X-Shadowpi-Cache"] == "revalidated"
    assert (await proxy.get(PAGE, headers=JSON)).headers["X-Shadowpi-Cache"] == "hit"
    assert _page_requests(populated_upstream) == 2


async def test_reused_answers_let_go_of_pages_the_page_cache_evicts(
    make_proxy: ProxyFactory, populated_upstream: Upstream
):
    """The answers ProjectIndex reuses never hold a page the page cache has let go: with room for one parsed page,
    asking for a second page evicts the first, and no reused answer keeps it (white-box: that is where a page
    could outlive [cache] page_memory)."""
    proxy = await make_proxy(cache={"page_memory": 4096})  # half of it for parsed pages: one small page
    index = proxy.app[INDEX]
    for _ in range(3):
        assert (await proxy.get(PAGE, headers=JSON)).status == 200
    assert [name for _, name in index._hot] == ["tinylib"]  # reused now
    for _ in range(3):
        assert (await proxy.get("/simple/depends-on-tiny/", headers=JSON)).status == 200
    assert [name for _, name in index._hot] == ["depends-on-tiny"]
    assert (await proxy.get(PAGE, headers=JSON)).headers["X-Shadowpi-Cache"] == "hit"  # from the database


async def test_a_cold_page_reads_the_database_once(make_proxy: ProxyFactory, populated_upstream: Upstream):
    """A page with no row is fetched without reading its row again under the refresh lock: no page was stored
    anywhere since the first read (the change feed says so), so a second read could only find nothing."""
    proxy = await make_proxy()
    meta = proxy.app[BACKENDS].meta
    rereads: list[str] = []
    freshness = meta.page_freshness

    async def counted(name: NormalizedName) -> PageFreshness | None:
        rereads.append(name)
        return await freshness(name)

    meta.page_freshness = counted  # type: ignore[method-assign]
    assert (await proxy.get(PAGE, headers=JSON)).headers["X-Shadowpi-Cache"] == "miss"
    assert rereads == []


async def test_a_page_another_worker_stores_meanwhile_is_not_fetched_again(
    make_proxy: ProxyFactory, populated_upstream: Upstream
):
    """Two workers on one data dir: when the other one stores the page between this one's read (no row) and its
    refresh, this one finds it stored and does not ask upstream again."""
    other, proxy = await make_proxy(), await make_proxy()
    meta = proxy.app[BACKENDS].meta
    read = meta.get_page

    async def read_then_other_stores(name: NormalizedName) -> StoredPage | None:
        found = await read(name)
        meta.get_page = read  # type: ignore[method-assign]  # once: the re-read must see the row
        assert (await other.get(PAGE, headers=JSON)).headers["X-Shadowpi-Cache"] == "miss"
        await other.app[PAGES].flushed()  # committed: the row is there, and the change feed moved
        return found

    meta.get_page = read_then_other_stores  # type: ignore[method-assign]
    assert (await proxy.get(PAGE, headers=JSON)).headers["X-Shadowpi-Cache"] == "hit"
    assert _page_requests(populated_upstream) == 1


async def test_changed_upstream_page_is_picked_up_after_ttl(make_proxy: ProxyFactory, populated_upstream: Upstream):
    """A new upstream release appears once the TTL has passed (and not before)."""
    proxy = await make_proxy(upstream={"page_ttl": 100})
    await proxy.get(PAGE, headers=JSON)
    new = build_wheel("tinylib", "3.0")
    populated_upstream.fake.add(new)
    cached = json.loads(await (await proxy.get(PAGE, headers=JSON)).text())
    assert new.filename not in [f["filename"] for f in cached["files"]]
    make_proxy.clock.advance(101)
    fresh = json.loads(await (await proxy.get(PAGE, headers=JSON)).text())
    assert new.filename in [f["filename"] for f in fresh["files"]]
    assert "3.0" in fresh["versions"]


async def test_404_is_cached_for_negative_ttl(make_proxy: ProxyFactory, upstream: Upstream, dists: SampleDists):
    """An upstream 404 is remembered for negative_ttl, then asked again."""
    proxy = await make_proxy(upstream={"negative_ttl": 30, "page_ttl": 600})
    assert (await proxy.get(PAGE)).status == 404
    upstream.fake.add(dists.tinylib_1)
    assert (await proxy.get(PAGE)).status == 404
    assert _page_requests(upstream) == 1
    make_proxy.clock.advance(31)
    assert (await proxy.get(PAGE)).status == 200
    assert _page_requests(upstream) == 2


async def test_concurrent_requests_cause_one_upstream_fetch(make_proxy: ProxyFactory, populated_upstream: Upstream):
    """Twenty clients asking for the same uncached page at once share one upstream request."""
    proxy = await make_proxy()
    gate = asyncio.Event()
    populated_upstream.fake.gate = gate
    requests = [asyncio.create_task(proxy.get(PAGE, headers=JSON)) for _ in range(20)]
    await populated_upstream.fake.wait_for_request(PAGE)
    gate.set()
    responses = await asyncio.gather(*requests)
    assert [r.status for r in responses] == [200] * 20
    assert _page_requests(populated_upstream) == 1


async def test_stale_page_served_when_upstream_down(make_proxy: ProxyFactory, populated_upstream: Upstream):
    """Upstream answering 503 after the TTL: the last good page is served and marked stale."""
    proxy = await make_proxy(upstream={"page_ttl": 10})
    good = await (await proxy.get(PAGE, headers=JSON)).text()
    populated_upstream.fake.down = True
    make_proxy.clock.advance(11)
    resp = await proxy.get(PAGE, headers=JSON)
    assert resp.status == 200
    assert resp.headers["X-Shadowpi-Cache"] == "stale"
    assert "Stale" in resp.headers["Warning"]
    assert await resp.text() == good


async def test_502_when_upstream_down_and_nothing_cached(proxy: TestClient, upstream: Upstream):
    """With nothing cached, an upstream 5xx becomes a clear 502 naming the cause."""
    upstream.fake.down = True
    resp = await proxy.get(PAGE)
    assert resp.status == 502
    assert "503" in resp.reason
    upstream.fake.down = False
    assert (await proxy.get(PAGE)).status == 200  # and shadowpi keeps serving


async def test_dropped_connection_is_502(proxy: TestClient, upstream: Upstream):
    """An upstream that closes the connection without answering is reported as unreachable."""
    upstream.fake.drop = True
    resp = await proxy.get(PAGE)
    assert resp.status == 502
    assert "unreachable" in await resp.text()


async def test_slow_upstream_times_out_with_504(make_proxy: ProxyFactory, populated_upstream: Upstream):
    """An upstream slower than page_timeout gives 504 when nothing is cached, stale when something is."""
    proxy = await make_proxy(upstream={"page_timeout": 0.2, "page_ttl": 10})
    populated_upstream.fake.gate = asyncio.Event()  # never released: upstream hangs
    resp = await proxy.get(PAGE)
    assert resp.status == 504
    populated_upstream.fake.gate = None
    assert (await proxy.get(PAGE)).status == 200
    populated_upstream.fake.gate = asyncio.Event()
    make_proxy.clock.advance(11)
    stale = await proxy.get(PAGE)
    assert stale.status == 200
    assert stale.headers["X-Shadowpi-Cache"] == "stale"


async def test_pages_survive_restart(make_proxy: ProxyFactory, populated_upstream: Upstream):
    """The page cache is persistent: a restarted shadowpi serves cached pages with upstream gone."""
    first = await make_proxy()
    before = await (await first.get(PAGE, headers=JSON)).text()
    await first.close()
    populated_upstream.fake.down = True
    second = await make_proxy()
    resp = await second.get(PAGE, headers=JSON)
    assert resp.status == 200
    assert await resp.text() == before


async def test_offline_serves_cache_and_never_asks_upstream(make_proxy: ProxyFactory, populated_upstream: Upstream):
    """Offline mode answers from the cache only: cached pages 200, others a clear 404, upstream untouched."""
    online = await make_proxy()
    await online.get(PAGE)
    await online.close()
    populated_upstream.fake.clear_log()
    offline = await make_proxy(upstream={"offline": True})
    make_proxy.clock.advance(10**6)  # way past any TTL: offline never revalidates
    assert (await offline.get(PAGE)).status == 200
    missing = await offline.get("/simple/depends-on-tiny/")
    assert missing.status == 404
    assert populated_upstream.fake.requests == []
