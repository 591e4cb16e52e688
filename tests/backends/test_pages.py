"""Contract: cached upstream pages and remembered 404s."""

from __future__ import annotations

import asyncio

from proxy.backends.metadata import MetadataStore
from proxy.backends.records import PageFreshness
from proxy.simple.names import NormalizedName
from tests.backends.conftest import BackendsUnderTest
from tests.backends.samples import missing_page, stored_page

TINYLIB, GONE = NormalizedName("tinylib"), NormalizedName("gone")


async def test_a_page_round_trips(backends: BackendsUnderTest) -> None:
    """What put_page stores, get_page returns (files, versions, validators, fetch time), in any process; a big
    page (parsed off the event loop) as well as a small one."""
    meta = backends.meta
    small, big = stored_page("tinylib"), stored_page("bigproject", files=600)
    await meta.put_page(TINYLIB, small)
    await meta.put_page(NormalizedName("bigproject"), big)
    assert await meta.get_page(TINYLIB) == small
    async with backends.reopen() as other:
        assert await other.meta.get_page(NormalizedName("bigproject")) == big
    assert await meta.get_page(NormalizedName("unknown")) is None


async def test_put_page_replaces_touch_page_moves_only_the_fetch_time(backends: BackendsUnderTest) -> None:
    """A second put replaces the page; touch_page (upstream said 304) changes the fetch time and nothing else."""
    meta = backends.meta
    await meta.put_page(TINYLIB, stored_page(files=1))
    newer = stored_page(files=2, fetched_at=200.0)
    await meta.put_page(TINYLIB, newer)
    assert await meta.get_page(TINYLIB) == newer
    await meta.touch_page(TINYLIB, 300.0)
    touched = await meta.get_page(TINYLIB)
    assert touched is not None and touched.fetched_at == 300.0 and touched.page == newer.page


async def test_a_remembered_404_is_a_page_without_content(backends: BackendsUnderTest) -> None:
    """A 404 is stored as a page of None; it is not a cached project."""
    meta = backends.meta
    await meta.put_page(GONE, missing_page(fetched_at=5.0))
    await meta.put_page(TINYLIB, stored_page())
    assert await meta.get_page(GONE) == missing_page(fetched_at=5.0)
    assert await meta.cached_projects() == [TINYLIB]


async def test_drop_page_returns_what_was_cached(backends: BackendsUnderTest) -> None:
    """drop_page forgets a project's page and returns it; dropping an unknown project returns None."""
    meta = backends.meta
    await meta.put_page(TINYLIB, stored_page())
    assert await meta.drop_page(TINYLIB) == stored_page()
    assert await meta.get_page(TINYLIB) is None
    assert await meta.drop_page(TINYLIB) is None


async def test_expired_404s_are_forgotten_in_bounded_batches(backends: BackendsUnderTest) -> None:
    """forget_expired_negative_pages removes at most `limit` 404s fetched before the cutoff, oldest first, and
    never a real page."""
    meta = backends.meta
    for i in range(5):
        await meta.put_page(NormalizedName(f"gone-{i}"), missing_page(fetched_at=float(i)))
    await meta.put_page(TINYLIB, stored_page(fetched_at=0.0))
    assert await meta.forget_expired_negative_pages(fetched_before=4.0, limit=3) == 3
    assert [await meta.get_page(NormalizedName(f"gone-{i}")) is None for i in range(5)] == [
        True, True, True, False, False
    ]
    assert await meta.forget_expired_negative_pages(fetched_before=4.0, limit=3) == 1
    assert await meta.get_page(TINYLIB) is not None


async def test_only_the_newest_404s_are_kept(backends: BackendsUnderTest) -> None:
    """forget_oldest_negative_pages keeps the newest `keep` 404s; real pages do not count."""
    meta = backends.meta
    for i in range(5):
        await meta.put_page(NormalizedName(f"gone-{i}"), missing_page(fetched_at=float(i)))
    await meta.put_page(TINYLIB, stored_page(fetched_at=0.0))
    assert await meta.forget_oldest_negative_pages(keep=2, limit=2) == 2
    assert await meta.forget_oldest_negative_pages(keep=2, limit=10) == 1
    assert await meta.forget_oldest_negative_pages(keep=2, limit=10) == 0
    left = [i for i in range(5) if await meta.get_page(NormalizedName(f"gone-{i}")) is not None]
    assert left == [3, 4]
    assert await meta.get_page(TINYLIB) is not None


async def test_page_freshness_tells_the_fetch_time_and_validators_without_the_page(backends: BackendsUnderTest) -> None:
    """page_freshness: the fetch time, validators and whether it is a remembered 404; touch_page moves the time;
    a copy in memory is the same answer when its validators match."""
    meta = backends.meta
    assert await meta.page_freshness(TINYLIB) is None
    page = stored_page()
    await meta.put_page(TINYLIB, page)
    await meta.put_page(GONE, missing_page(fetched_at=7.0))
    await meta.touch_page(TINYLIB, 300.0)
    freshness = await meta.page_freshness(TINYLIB)
    assert freshness == PageFreshness(300.0, page.etag, page.last_modified, missing=False)
    assert page.same_answer(freshness)
    assert await meta.page_freshness(GONE) == PageFreshness(7.0, None, None, missing=True)
    assert missing_page().same_answer(PageFreshness(7.0, None, None, missing=True))
    assert not page.same_answer(PageFreshness(300.0, '"etag-2"', page.last_modified, missing=False))


async def test_the_refresh_lock_admits_one_holder_of_a_name_at_a_time(backends: BackendsUnderTest) -> None:
    """While one holds a page's refresh lock, another asking for it (without waiting) does not get it; other
    names are free; once released, a waiter gets it."""
    meta = backends.meta
    async with meta.page_refresh_lock(TINYLIB, wait=5) as held:
        assert held
        async with meta.page_refresh_lock(TINYLIB, wait=0) as second:
            assert not second
        async with meta.page_refresh_lock(GONE, wait=0) as other_name:
            assert other_name
        waiter = asyncio.create_task(_hold(meta, TINYLIB))
        await asyncio.wait({waiter}, timeout=0.2)  # it waits for the holder however long this is
        assert not waiter.done()
    assert await waiter is True


async def _hold(meta: MetadataStore, name: NormalizedName) -> bool:
    async with meta.page_refresh_lock(name, wait=30) as held:
        return held
