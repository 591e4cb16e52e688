"""The cache janitor: indexed background reads (on the SQLite store's background connection, so requests never
wait for a sweep), counting only when something changed, eviction that deletes a file and forgets its row
together, and forgetting remembered upstream 404s (expired ones, and the oldest beyond [cache] max_negative_pages).
What the metadata store promises the janitor is checked for every backend in tests/backends/test_blob_index.py."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from proxy.backends.records import PrivateFile, StoredPage
from proxy.backends.sqlite import DB_FILENAME, SqliteMetadata
from proxy.janitor import BATCH
from proxy.keys import BACKENDS, FILES, JANITOR, PAGES
from proxy.simple.names import NormalizedName
from tests.artifacts import build_wheel
from tests.conftest import SampleDists, Upstream
from tests.proxy_fixtures import JSON, ProxyFactory
from tests.publishing import add_token, blob_files, twine_upload
from tests.stores import data_dir_meta

SHA_A, SHA_B = "a" * 64, "b" * 64


@contextlib.asynccontextmanager
async def database(data_dir: Path) -> AsyncIterator[SqliteMetadata]:
    """The data dir's metadata store, as another process opens it (SQLite: these tests check its query plans)."""
    async with data_dir_meta(data_dir) as meta:
        assert isinstance(meta, SqliteMetadata)
        yield meta


def sqlite_meta(proxy: TestClient) -> SqliteMetadata:
    meta = proxy.app[BACKENDS].meta
    assert isinstance(meta, SqliteMetadata)
    return meta


def private_file(filename: str, sha256: str, metadata_sha256: str | None = None) -> PrivateFile:
    return PrivateFile(filename, NormalizedName("acme"), "1.0", sha256, None, 10, None, metadata_sha256, None,
                       "2025-01-01T00:00:00.000000Z", "ci")


def plans(path: Path, statements: list[str]) -> dict[str, list[str]]:
    """Each traced query's plan (EXPLAIN QUERY PLAN), one line per step."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return {
            sql: [str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
            for sql in statements
            if sql.startswith(("SELECT", "DELETE", "UPDATE"))
        }


async def test_every_sweep_query_reads_private_files_and_404s_through_an_index(tmp_path: Path):
    """A sweep (count, write hits, evict, forget 404s) never scans private_files or pages: each private-or-not
    question is one index probe, so a sweep stays cheap however many private files there are."""
    async with database(tmp_path) as db:
        await db.add_private_file(private_file("acme-1.0-py3-none-any.whl", SHA_A, metadata_sha256=SHA_B))
        await db.record_blob(SHA_A, 10, now=0)
        await db.record_blob("c" * 64, 10, now=0)
        await db.put_page(NormalizedName("nothing-here"), StoredPage(None, None, None, 5))
        statements: list[str] = []
        await db.trace(statements.append)
        await db.cache_usage()
        await db.eviction_candidates(accessed_before=1)
        async with db.evicting("c" * 64, accessed_before=1) as claimed:
            assert claimed
        await db.is_private_blob(SHA_B)
        await db.forget_expired_negative_pages(fetched_before=1, limit=BATCH)
        await db.forget_oldest_negative_pages(keep=0, limit=BATCH)
        await db.trace(None)
    found = plans(tmp_path / DB_FILENAME, statements)
    assert len(found) == 8, statements
    for sql, steps in found.items():
        # Counting reads every blob row (that is the count); any other table is read only through an index.
        full_scans = [s for s in steps if s.startswith("SCAN") and "INDEX" not in s and s != "SCAN blobs"]
        assert full_scans == [], f"{sql}\n{steps}"


class QueryGate:
    """Holds every statement of one database connection mid-way (in that connection's thread) until opened:
    stands for a sweep whose query takes seconds."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self._open = threading.Event()
        self._loop = asyncio.get_running_loop()

    def __call__(self) -> int:
        if not self._open.is_set():
            self._loop.call_soon_threadsafe(self.entered.set)
            self._open.wait()
        return 0

    def open(self) -> None:
        self._open.set()


@contextlib.asynccontextmanager
async def sweep_held_in_a_query(proxy: TestClient) -> AsyncIterator[None]:
    """A sweep running, stuck inside one of its queries, for the duration of the block."""
    gate = QueryGate()
    background = sqlite_meta(proxy).connection("background")
    await background.set_progress_handler(gate, 1)
    sweep = asyncio.create_task(proxy.app[JANITOR].sweep())
    try:
        await gate.entered.wait()
        yield
    finally:
        gate.open()
        await sweep
        await background.set_progress_handler(None, 1)  # type: ignore[arg-type]  # None removes it


@pytest.mark.parametrize("request_kind", ["page after an upload", "upload", "file hit", "uncached page"])
async def test_requests_complete_while_a_sweep_is_inside_a_query(
    make_proxy: ProxyFactory, populated_upstream: Upstream, dists: SampleDists, request_kind: str
):
    """While a sweep's query runs (held here for as long as the request takes), pages, uploads and file hits are
    answered: the janitor's queries never stand in line before a request's."""
    await add_token(make_proxy.data_dir, "ci")
    make_proxy.background = False
    proxy = await make_proxy(cache={"max_size": 10**9})
    url = f"/files/tinylib/{dists.tinylib_1.sha256}/{dists.tinylib_1.filename}"
    assert await (await proxy.get(url)).read() == dists.tinylib_1.data
    await proxy.app[FILES].settled()
    if request_kind == "page after an upload":  # private data changed: the next page reads the database
        assert (await twine_upload(proxy, build_wheel("acme-one", "1.0"))).status == 200
    async with sweep_held_in_a_query(proxy), asyncio.timeout(60):  # the timeout only turns a hang into a failure
        if request_kind == "upload":
            assert (await twine_upload(proxy, build_wheel("acme-two", "1.0"))).status == 200
        elif request_kind == "file hit":
            assert await (await proxy.get(url)).read() == dists.tinylib_1.data
        elif request_kind == "uncached page":
            assert (await proxy.get("/simple/depends-on-tiny/", headers=JSON)).status == 200
        else:
            assert (await proxy.get("/simple/tinylib/", headers=JSON)).status == 200


async def test_a_sweep_with_nothing_changed_does_not_count_again(make_proxy: ProxyFactory, populated_upstream: Upstream,
                                                                 dists: SampleDists):
    """The cache is counted after a fill or any other process's commit, not on every sweep of an idle server."""
    make_proxy.background = False
    proxy = await make_proxy()
    janitor, background = proxy.app[JANITOR], sqlite_meta(proxy).connection("background")
    statements: list[str] = []
    await background.set_trace_callback(statements.append)
    await janitor.sweep()
    await janitor.sweep()
    counts = [s for s in statements if s.startswith("SELECT COUNT(*), COALESCE(SUM(size)")]
    assert len(counts) == 1
    url = f"/files/tinylib/{dists.tinylib_1.sha256}/{dists.tinylib_1.filename}"
    assert await (await proxy.get(url)).read() == dists.tinylib_1.data
    await proxy.app[FILES].settled()
    await janitor.sweep()
    await background.set_trace_callback(None)  # type: ignore[arg-type]  # None removes it
    counts = [s for s in statements if s.startswith("SELECT COUNT(*), COALESCE(SUM(size)")]
    assert len(counts) == 2
    assert (janitor.usage.files, janitor.usage.bytes) == (1, dists.tinylib_1.size)


async def test_writing_hits_alone_does_not_make_the_next_sweep_count_again(
    make_proxy: ProxyFactory, populated_upstream: Upstream, dists: SampleDists
):
    """Hits move access times, never the usage: a sweep that only wrote hits leaves the next one nothing to
    count (a busy server that only serves cached files counts once, not every 30 s)."""
    make_proxy.background = False
    proxy = await make_proxy()
    janitor, background = proxy.app[JANITOR], sqlite_meta(proxy).connection("background")
    url = f"/files/tinylib/{dists.tinylib_1.sha256}/{dists.tinylib_1.filename}"
    assert await (await proxy.get(url)).read() == dists.tinylib_1.data
    await proxy.app[FILES].settled()
    await janitor.sweep()  # counts the fill
    statements: list[str] = []
    await background.set_trace_callback(statements.append)
    for _ in range(2):
        make_proxy.clock.advance(1000)
        assert await (await proxy.get(url)).read() == dists.tinylib_1.data  # a hit, written by the next sweep
        await janitor.sweep()
    await background.set_trace_callback(None)  # type: ignore[arg-type]  # None removes it
    assert [s for s in statements if s.startswith("SELECT COUNT(*), COALESCE(SUM(size)")] == []
    assert (janitor.usage.files, janitor.usage.bytes) == (1, dists.tinylib_1.size)


async def test_a_hit_is_written_by_the_next_sweep(make_proxy: ProxyFactory, populated_upstream: Upstream,
                                                  dists: SampleDists):
    """A file hit costs the request no database write; the next sweep records it for LRU order."""
    make_proxy.background = False
    proxy = await make_proxy()
    url = f"/files/tinylib/{dists.tinylib_1.sha256}/{dists.tinylib_1.filename}"
    assert await (await proxy.get(url)).read() == dists.tinylib_1.data
    await proxy.app[FILES].settled()
    make_proxy.clock.advance(1000)
    assert await (await proxy.get(url)).read() == dists.tinylib_1.data  # the hit
    async with database(make_proxy.data_dir) as db:
        before = await db.eviction_candidates(accessed_before=float("inf"))
        await proxy.app[JANITOR].sweep()
        after = await db.eviction_candidates(accessed_before=float("inf"))
    assert [c.last_access for c in before] == [1_000_000.0]
    assert [c.last_access for c in after] == [1_001_000.0]


def unknown_names(count: int, prefix: str = "nothing") -> Iterator[str]:
    return (f"{prefix}-{i}" for i in range(count))


async def remembered(data_dir: Path, names: list[str]) -> list[str]:
    """Which of `names` have a remembered 404 in the database."""
    async with database(data_dir) as db:
        return [n for n in names if await db.get_page(NormalizedName(n)) is not None]


async def test_expired_404s_are_forgotten(make_proxy: ProxyFactory, upstream: Upstream):
    """Remembered upstream 404s older than negative_ttl are deleted by the sweep; fresh ones stay."""
    make_proxy.background = False
    proxy = await make_proxy(upstream={"negative_ttl": 30})
    old = list(unknown_names(3, "old"))
    for name in old:
        assert (await proxy.get(f"/simple/{name}/")).status == 404
    make_proxy.clock.advance(31)
    assert (await proxy.get("/simple/fresh/")).status == 404
    await proxy.app[PAGES].flushed()
    assert await remembered(make_proxy.data_dir, [*old, "fresh"]) == [*old, "fresh"]
    await proxy.app[JANITOR].sweep()
    assert await remembered(make_proxy.data_dir, [*old, "fresh"]) == ["fresh"]
    assert (await proxy.get("/simple/old-0/")).status == 404  # forgotten only means: upstream is asked again
    assert upstream.fake.hits["/simple/old-0/"] == 2


async def test_404s_are_forgotten_in_batches_and_bounded_in_count(make_proxy: ProxyFactory, upstream: Upstream):
    """More expired 404s than one batch all go in one sweep; of the unexpired ones, only the newest
    max_negative_pages are kept."""
    expired, recent = list(unknown_names(2 * BATCH + 7, "expired")), list(unknown_names(5, "recent"))
    async with database(make_proxy.data_dir) as db, db.transaction() as tx:
        for name in expired:
            await tx.put_page(NormalizedName(name), StoredPage(None, None, None, 0.0))
        for age, name in enumerate(recent):  # recent-0 is the newest
            await tx.put_page(NormalizedName(name), StoredPage(None, None, None, 1_000_000.0 - age))
    make_proxy.background = False
    proxy = await make_proxy(upstream={"negative_ttl": 60}, cache={"max_negative_pages": 2})
    await proxy.app[JANITOR].sweep()
    assert await remembered(make_proxy.data_dir, expired + recent) == ["recent-0", "recent-1"]


async def test_eviction_deletes_the_file_and_forgets_its_row(make_proxy: ProxyFactory, upstream: Upstream):
    """An evicted blob is gone from disk and from the accounting; a later fill records it anew."""
    wheels = [build_wheel("evictme", f"{i}.0", payload_size=20_000) for i in range(3)]
    for wheel in wheels:
        upstream.fake.add(wheel)
    make_proxy.background = False
    proxy = await make_proxy(cache={"max_size": 45_000})
    for wheel in wheels:
        assert await (await proxy.get(f"/files/evictme/{wheel.sha256}/{wheel.filename}")).read() == wheel.data
        await proxy.app[FILES].settled()
        make_proxy.clock.advance(300)
    assert await proxy.app[JANITOR].sweep() == 2
    assert blob_files(make_proxy.data_dir) == {wheels[2].sha256}
    async with database(make_proxy.data_dir) as db:
        assert [c.sha256 for c in await db.eviction_candidates(accessed_before=float("inf"))] == [wheels[2].sha256]
    assert proxy.app[JANITOR].usage.files == 1
