"""Contract: the change feed (proxy/backends/changes.py). Every committed write moves the stamps of the topics it
touched, in every process, and no other; a bump is seen by every process sharing the backend, and a new stamp
never equals one seen before. A networked feed shows another process's change within its bound: the tests wait
with caught_up() (immediate for SQLite), never for "long enough"."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from proxy.backends.changes import Topic
from proxy.backends.metadata import MetadataStore
from proxy.backends.records import DeletedFile
from proxy.simple.names import NormalizedName
from tests.backends.conftest import BackendsUnderTest
from tests.backends.samples import SHA_A, SHA_B, missing_page, private_file, stored_page

TINYLIB = NormalizedName("tinylib")
Write = Callable[[MetadataStore], Awaitable[object]]


async def _rolled_back(meta: MetadataStore) -> None:
    with pytest.raises(KeyError):
        async with meta.transaction() as tx:
            await tx.add_private_file(private_file("new-1.0.tar.gz", project="new"))
            await tx.put_page(NormalizedName("new"), stored_page("new"))
            raise KeyError("rolled back")


async def _evict(meta: MetadataStore) -> None:
    async with meta.evicting(SHA_B, accessed_before=float("inf")) as claimed:
        assert claimed


WRITES: list[tuple[str, Write, set[Topic]]] = [
    ("put_page", lambda m: m.put_page(TINYLIB, stored_page(fetched_at=9.0)), {Topic.PAGES}),
    ("touch_page", lambda m: m.touch_page(TINYLIB, 9.0), set()),
    ("drop_page", lambda m: m.drop_page(TINYLIB), {Topic.PAGES}),
    ("forget_expired_negative_pages", lambda m: m.forget_expired_negative_pages(fetched_before=1e9, limit=9), set()),
    ("forget_oldest_negative_pages", lambda m: m.forget_oldest_negative_pages(keep=0, limit=9), set()),
    ("add_private_file", lambda m: m.add_private_file(private_file("acme-2.0.tar.gz", version="2.0")),
     {Topic.PRIVATE}),
    ("add_private_project", lambda m: m.add_private_project(NormalizedName("other")), {Topic.PRIVATE}),
    ("set_yanked", lambda m: m.set_yanked(["acme-1.0.tar.gz"], "bad"), {Topic.PRIVATE}),
    ("delete_private_files", lambda m: m.delete_private_files([private_file()]), {Topic.PRIVATE}),
    ("remove_private_file", lambda m: m.remove_private_file("acme-1.0.tar.gz"), {Topic.PRIVATE}),
    ("add_deleted_file", lambda m: m.add_deleted_file(DeletedFile("x-1.0.tar.gz", SHA_A, 1.0)), {Topic.PRIVATE}),
    ("record_blob", lambda m: m.record_blob(SHA_A, 1), set()),
    ("record_pinned_blob", lambda m: m.record_pinned_blob(SHA_A, 1), set()),
    ("remember_upstream_file", lambda m: m.remember_upstream_file("https://files.example/x", SHA_A), set()),
    ("touch_blobs", lambda m: m.touch_blobs({SHA_B: 1e9}), set()),
    ("pin_blobs", lambda m: m.pin_blobs([SHA_B]), set()),
    ("forget_blob", lambda m: m.forget_blob(SHA_B), {Topic.BLOBS}),
    ("evicting", _evict, {Topic.BLOBS}),
    ("add_token", lambda m: m.add_token("ci", "1" * 64), set()),
    ("a rolled-back transaction", _rolled_back, set()),
]


@pytest.mark.parametrize(("write", "topics"), [(w, t) for _, w, t in WRITES], ids=[name for name, _, _ in WRITES])
async def test_every_write_moves_the_stamps_of_its_topics_and_no_other(
    backends: BackendsUnderTest, write: Write, topics: set[Topic]
) -> None:
    """A committed write changes exactly its topics' stamps, as seen by this process (as soon as the write returns)
    and by another one."""
    meta = backends.meta
    await meta.put_page(TINYLIB, stored_page())
    await meta.put_page(NormalizedName("gone"), missing_page(fetched_at=0.0))
    await meta.add_private_file(private_file())
    await meta.record_blob(SHA_B, 10, now=0.0)
    async with backends.reopen() as other:
        feeds = [backends.changes, other.changes]
        before = [{topic: feed.stamp(topic) for topic in Topic} for feed in feeds]
        await write(meta)
        own = {topic: backends.changes.stamp(topic) for topic in Topic}
        for feed in feeds:
            await feed.caught_up()
        after = [{topic: feed.stamp(topic) for topic in Topic} for feed in feeds]
    assert {topic for topic in Topic if own[topic] != before[0][topic]} == topics
    for was, now in zip(before, after, strict=True):
        assert {topic for topic in Topic if now[topic] != was[topic]} == topics


async def test_a_bump_is_seen_by_every_process_and_never_repeats_a_stamp(backends: BackendsUnderTest) -> None:
    """After bump(t) in one process, stamp(t) in another differs from every stamp it returned before; the other
    topics are untouched."""
    async with backends.reopen() as other:
        seen, own = {other.changes.stamp(Topic.PRIVATE)}, {backends.changes.stamp(Topic.PRIVATE)}
        pages = other.changes.stamp(Topic.PAGES)
        for _ in range(20):
            await backends.changes.bump(Topic.PRIVATE)
            mine = backends.changes.stamp(Topic.PRIVATE)  # the bumping process sees it at once
            assert mine not in own
            own.add(mine)
            await other.changes.caught_up()
            stamp = other.changes.stamp(Topic.PRIVATE)
            assert stamp not in seen
            seen.add(stamp)
        assert other.changes.stamp(Topic.PAGES) == pages
        await other.changes.bump(Topic.PAGES, Topic.BLOBS)
        await backends.changes.caught_up()
        assert backends.changes.stamp(Topic.PAGES) != pages


async def test_a_stamp_is_stable_while_nothing_changes(backends: BackendsUnderTest) -> None:
    """Reading a stamp changes nothing: the same value comes back until a bump."""
    feed = backends.changes
    assert {feed.stamp(Topic.BLOBS) for _ in range(5)} == {feed.stamp(Topic.BLOBS)}
