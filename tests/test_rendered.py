"""Tests for proxy.rendered: our file URLs, and the render cache (bounded by bytes, big pages off the loop)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from proxy.rendered import RENDER_INLINE_FILES, RenderCache, file_path, render_project
from proxy.simple.model import DistFile, ProjectPage
from proxy.simple.names import NormalizedName
from proxy.simple.negotiate import Format

NAME = NormalizedName("demo")


def page(files: int, name: str = "demo") -> ProjectPage:
    return ProjectPage(
        NormalizedName(name), tuple(DistFile(f"demo-1.{i}.tar.gz", f"https://f.example/{i}") for i in range(files))
    )


@pytest.mark.parametrize(
    ("filename", "segment"),
    [
        ("demo-1.0.tar.gz", "demo-1.0.tar.gz"),
        ("demo-1.0+local-py3-none-any.whl", "demo-1.0%2Blocal-py3-none-any.whl"),
        ("a/../b.whl", "a%2F..%2Fb.whl"),
        ("x#y?z%.whl", "x%23y%3Fz%25.whl"),
    ],
)
def test_file_path_quotes_the_filename_as_one_segment(filename: str, segment: str) -> None:
    """Every character that could end or leave the path segment is percent-encoded, '/' included."""
    assert file_path(NAME, DistFile(filename, "u")) == f"files/demo/_/{segment}"


async def test_cache_is_bounded_by_bytes_and_keeps_the_latest() -> None:
    """Renderings are evicted oldest first once their bytes pass the bound; the latest always stays."""
    small = [page(3, f"p{i}") for i in range(5)]
    one = len(render_project(small[0], Format.JSON).body)
    cache = RenderCache(max_bytes=2 * one + one // 2)
    for p in small:
        await cache.render(p, Format.JSON)
    assert cache.usage[0] == 2
    assert cache.get(small[4], Format.JSON) is not None and cache.get(small[2], Format.JSON) is None
    huge = page(100)
    await cache.render(huge, Format.JSON)
    assert cache.usage[0] == 1 and cache.get(huge, Format.JSON) is not None


async def test_big_pages_render_in_the_executor_once() -> None:
    """A page past RENDER_INLINE_FILES renders in the given executor, once for concurrent requests; a small one
    renders inline. (The executor's only thread is held busy: nothing can finish until it is free.)"""
    pool = ThreadPoolExecutor(1)
    cache = RenderCache(executor=pool)
    busy = threading.Event()
    try:
        pool.submit(busy.wait)
        small = page(3)
        rendered = await asyncio.wait_for(cache.render(small, Format.HTML), timeout=5)
        assert rendered == render_project(small, Format.HTML)
        big = page(RENDER_INLINE_FILES + 1)
        waiting = [asyncio.create_task(cache.render(big, Format.JSON)) for _ in range(3)]
        done, _ = await asyncio.wait(waiting, timeout=0.05)
        assert not done  # queued behind the busy thread: the render is not on the event loop
        busy.set()
        first, *others = await asyncio.wait_for(asyncio.gather(*waiting), timeout=10)
        assert all(other is first for other in others)
        assert cache.get(big, Format.JSON) is first
    finally:
        busy.set()
        pool.shutdown()
