"""A hostile upstream (tests/fakes.py) against the page path: huge pages, unsafe filenames."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from aiohttp.test_utils import TestClient

from proxy.app import PAGE_THREADS
from proxy.keys import PAGE_POOL, PAGES, RENDERED
from tests.artifacts import build_wheel
from tests.conftest import Upstream
from tests.fakes import synthetic_filename
from tests.proxy_fixtures import HTML, JSON, ProxyFactory


async def page_json(proxy: TestClient, project: str) -> dict[str, object]:
    resp = await proxy.get(f"/simple/{project}/", headers=JSON)
    assert resp.status == 200
    return json.loads(await resp.text())  # type: ignore[no-any-return]


# --- item 7: bounded pages ----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("mode", ["json", "html"])
async def test_page_larger_than_max_page_size_is_refused(
    make_proxy: ProxyFactory, upstream: Upstream, chunked: bool, mode: str
) -> None:
    """A page past max_page_size (announced by Content-Length or not) is a 502 naming the key, before it is all
    read; a cached copy keeps being served (stale) meanwhile."""
    upstream.fake.add(build_wheel("fat", "1.0"))
    upstream.fake.mode = mode  # type: ignore[assignment]
    upstream.fake.chunked_pages = chunked
    proxy = await make_proxy(upstream={"max_page_size": 100_000})
    assert (await proxy.get("/simple/fat/", headers=JSON)).status == 200
    upstream.fake.page_padding = 200_000
    make_proxy.clock.advance(601)  # past page_ttl: the page is fetched again, and is now too big
    stale = await proxy.get("/simple/fat/", headers=JSON)
    assert (stale.status, stale.headers["X-Shadowpi-Cache"]) == (200, "stale")
    upstream.fake.add(build_wheel("fatter", "1.0"))
    fresh = await proxy.get("/simple/fatter/", headers=JSON)
    assert fresh.status == 502
    assert "max_page_size" in fresh.reason and "fatter" in fresh.reason


@pytest.mark.parametrize("mode", ["json", "html"])
async def test_page_with_more_files_than_max_page_files_is_refused(
    make_proxy: ProxyFactory, upstream: Upstream, mode: str
) -> None:
    """A page listing more files than max_page_files is a 502 naming the key; a cached copy is served stale."""
    upstream.fake.add(build_wheel("many", "1.0"))
    upstream.fake.mode = mode  # type: ignore[assignment]
    proxy = await make_proxy(upstream={"max_page_files": 50})
    upstream.fake.extra_files = 49
    assert len((await page_json(proxy, "many"))["files"]) == 50  # type: ignore[arg-type]
    upstream.fake.extra_files = 50
    make_proxy.clock.advance(601)
    stale = await proxy.get("/simple/many/", headers=JSON)
    assert (stale.status, stale.headers["X-Shadowpi-Cache"]) == (200, "stale")
    upstream.fake.add(build_wheel("more", "1.0"))
    resp = await proxy.get("/simple/more/", headers=JSON)
    assert resp.status == 502
    assert "51 files" in resp.reason and "max_page_files" in resp.reason


async def test_big_pages_are_parsed_and_rendered_off_the_event_loop(
    make_proxy: ProxyFactory, upstream: Upstream
) -> None:
    """A big page is parsed and rendered in the page threads: with every one of them held busy the page cannot
    be answered, while the event loop keeps serving; freed, the page is served whole, in both formats."""
    upstream.fake.add(build_wheel("bulky", "1.0"))
    upstream.fake.extra_files = 2000
    proxy = await make_proxy()
    busy = threading.Event()
    try:
        for headers, parsed in ((JSON, "parse and render"), (HTML, "render")):
            busy.clear()
            for _ in range(PAGE_THREADS):
                proxy.app[PAGE_POOL].submit(busy.wait)
            page = asyncio.create_task(proxy.get("/simple/bulky/", headers=headers))
            done, _ = await asyncio.wait([page], timeout=0.2)
            assert not done, f"the page was answered while no page thread could {parsed} it"
            assert (await proxy.get("/health")).status == 200
            busy.set()
            resp = await asyncio.wait_for(page, timeout=30)
            assert resp.status == 200
            assert synthetic_filename("bulky", 1999) in await resp.text()
    finally:
        busy.set()  # never leave the threads waiting: the interpreter joins them at exit


async def test_page_memory_is_bounded_by_bytes(make_proxy: ProxyFactory, upstream: Upstream) -> None:
    """Parsed and rendered pages held in memory stay within cache.page_memory (half each); the most recent page
    stays whatever its size, and evicted pages are served again from the database, unchanged."""
    for project in ("one", "two", "three"):
        upstream.fake.add(build_wheel(project, "1.0"))
    upstream.fake.extra_files = 200  # about 200 kB parsed, 50 kB rendered (with gzip) per page
    proxy = await make_proxy(cache={"page_memory": 500_000})
    first = await page_json(proxy, "one")
    for project in ("two", "three"):
        await page_json(proxy, project)
        await proxy.get(f"/simple/{project}/", headers=HTML)
    pages, parsed = proxy.app[PAGES].memory_usage
    renders, rendered = proxy.app[RENDERED].usage
    assert pages == 1 and parsed > 200_000  # one page is past its half alone: the latest stays
    assert 1 < renders < 5 and rendered <= 250_000
    upstream.fake.down = True  # the evicted page comes back from the database, not from upstream
    assert await page_json(proxy, "one") == first
    tiny = await make_proxy(cache={"page_memory": 0})
    assert await page_json(tiny, "one") == first
    assert tiny.app[PAGES].memory_usage[0] == 1 and tiny.app[RENDERED].usage[0] == 1


# --- item 15: unsafe upstream filenames ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["json", "html"])
@pytest.mark.parametrize("listed", ["../../evil-1.0.tar.gz", "a/evil-1.0.tar.gz", "..", "evil\\x-1.0.tar.gz"])
async def test_unsafe_upstream_filenames_never_reach_our_pages(
    make_proxy: ProxyFactory, upstream: Upstream, mode: str, listed: str
) -> None:
    """Upstream files named with '/', '\\' or '..' are dropped from the page: no href of ours leads elsewhere."""
    good = build_wheel("slashy", "1.0")
    upstream.fake.add(good)
    upstream.fake.add(build_wheel("slashy", "2.0"), listed_filename=listed)
    upstream.fake.mode = mode  # type: ignore[assignment]
    proxy = await make_proxy()
    page = await page_json(proxy, "slashy")
    assert [f["filename"] for f in page["files"]] == [good.filename]  # type: ignore[index, union-attr]
    html = await (await proxy.get("/simple/slashy/", headers=HTML)).text()
    assert "evil" not in html and "evil" not in json.dumps(page)
