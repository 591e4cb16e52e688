"""BlobStore spools shared by worker processes: one leader per blob fill, followers that see how it ended, and a
start-up sweep that removes only spools nobody holds. Two BlobStores on one root stand for two workers: flock()
locks belong to open files, so they conflict between the two exactly as between two processes."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

import pytest

from proxy.storage import BlobStore, FillOutcome, ForeignSpool, Spool

DATA = b"wheel bytes " * 1000
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
async def stores(tmp_path: Path) -> tuple[BlobStore, BlobStore]:
    """Two stores ("workers") on one data dir, both opened."""
    a, b = BlobStore(tmp_path), BlobStore(tmp_path)
    await a.open()
    await b.open()
    return a, b


def tmp_names(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "tmp").iterdir())


async def lead(store: BlobStore) -> Spool:
    spool = await store.claim_fill(SHA)
    assert isinstance(spool, Spool)
    return spool


async def follow(store: BlobStore) -> ForeignSpool:
    spool = await store.claim_fill(SHA)
    assert isinstance(spool, ForeignSpool)
    return spool


async def test_one_leader_and_a_follower_that_sees_the_commit(stores: tuple[BlobStore, BlobStore], tmp_path: Path):
    """The first claim leads under the shared name; the second follows, sees the bytes grow, then the commit."""
    a, b = stores
    leader = await lead(a)
    assert tmp_names(tmp_path) == [f"fill-{SHA}.partial"]  # the staging name is gone
    follower = await follow(b)
    assert await follower.outcome() is FillOutcome.WRITING
    await leader.write(DATA[:1000])
    assert follower.grown() and follower.size == 1000
    assert not follower.grown()
    await leader.write(DATA[1000:])
    await a.commit(leader)
    assert await follower.outcome() is FillOutcome.COMMITTED
    follower.grown()
    assert follower.size == len(DATA)
    with follower.sendfile_source() as source:
        assert source.read() == DATA
    a.release(leader)
    b.release(follower)
    assert tmp_names(tmp_path) == []


async def follow_a_failed_fill(leading: BlobStore, following: BlobStore) -> ForeignSpool:
    """A follower (in `following`) of a fill that `leading` started, wrote part of, and discarded."""
    leader = await lead(leading)
    follower = await follow(following)
    await leader.write(DATA[:100])
    await leading.discard(leader)
    leading.release(leader)
    return follower


async def test_a_discarded_fill_is_seen_as_failed(stores: tuple[BlobStore, BlobStore]):
    """The leader discards (bad hash, cut transfer): the follower learns it failed; the next claim leads."""
    a, b = stores
    follower = await follow_a_failed_fill(a, b)
    assert await follower.outcome() is FillOutcome.FAILED
    b.release(follower)
    b.release(await lead(b))


async def test_a_dead_leader_is_seen_and_its_spool_taken_over(stores: tuple[BlobStore, BlobStore], tmp_path: Path):
    """A leader whose lock is gone while its spool is still in place died: followers learn it, and the next
    claim removes the leftover and leads with an empty spool."""
    a, b = stores
    leader = await lead(a)
    follower = await follow(b)
    await leader.write(b"half a wheel")
    a.release(leader)  # the descriptor closes without commit or discard, as when the process is killed
    assert await follower.outcome() is FillOutcome.ABANDONED
    taken = await lead(a)  # at once: the follower, still open, must not hold the dead spool
    assert os.fstat(taken._fd).st_size == 0  # a new file, not the dead leader's bytes
    b.release(follower)
    await a.discard(taken)
    a.release(taken)
    assert tmp_names(tmp_path) == []


async def test_a_later_fill_never_completes_a_failed_one(stores: tuple[BlobStore, BlobStore]):
    """A follower of a failed fill is not fooled by the blob a later fill committed: its bytes are the failed
    fill's, so only its own file at the blob path counts as committed."""
    a, b = stores
    follower = await follow_a_failed_fill(a, b)
    retry = await lead(a)
    await retry.write(DATA)
    await a.commit(retry)
    a.release(retry)
    assert await follower.outcome() is FillOutcome.FAILED
    b.release(follower)


async def test_a_claim_after_the_commit_follows_the_blob(stores: tuple[BlobStore, BlobStore], tmp_path: Path):
    """A worker that missed the cache just before another committed does not fetch again: it follows the blob."""
    a, b = stores
    leader = await lead(a)
    await leader.write(DATA)
    await a.commit(leader)
    a.release(leader)
    late = await follow(b)
    assert await late.outcome() is FillOutcome.COMMITTED
    late.grown()
    assert late.size == len(DATA)
    b.release(late)
    assert tmp_names(tmp_path) == []


async def test_discard_after_commit_never_deletes_the_next_fills_spool(stores: tuple[BlobStore, BlobStore]):
    """Once committed, the shared name may belong to a new leader: a late discard must leave it alone."""
    a, b = stores
    first = await lead(a)
    await first.write(b"not the declared bytes")  # committed under its own hash: SHA's fill may start again
    await a.commit(first)
    second = await lead(b)
    await a.discard(first)
    a.release(first)
    assert second.path.exists()
    await b.discard(second)
    b.release(second)


async def test_startup_removes_only_spools_nobody_holds(stores: tuple[BlobStore, BlobStore], tmp_path: Path):
    """A starting worker deletes a crash's leftovers but not the fill or upload spools of running workers."""
    a, _ = stores
    fill = await lead(a)
    upload = await a.new_spool()
    (tmp_path / "tmp" / "deadbeef.partial").write_bytes(b"left by a crash")
    held = tmp_path / "tmp" / "held.partial"
    held.write_bytes(b"locked by someone else")
    fd = os.open(held, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert await BlobStore(tmp_path).open() == 1
        assert tmp_names(tmp_path) == sorted([fill.path.name, upload.path.name, "held.partial"])
    finally:
        os.close(fd)
    assert await BlobStore(tmp_path).open() == 1  # held.partial, now that its holder is gone
    for spool in (fill, upload):
        await a.discard(spool)
        a.release(spool)
    assert tmp_names(tmp_path) == []


async def test_spool_hashes_only_fixed_length_algorithms_it_knows(tmp_path: Path) -> None:
    """A spool computes the declared algorithms from a fixed list; shake_* (no fixed length) and unknown names are
    ignored instead of failing the download when the digests are read."""
    store = BlobStore(tmp_path)
    await store.open()
    spool = await store.new_spool(["shake_128", "shake_256", "sha512", "blake2_256", "md5", "nope", "sha512_256"])
    try:
        await spool.write(DATA)
        assert spool.digests() == {
            "sha256": SHA,
            "sha512": hashlib.sha512(DATA).hexdigest(),
            "blake2_256": hashlib.blake2b(DATA, digest_size=32).hexdigest(),
            "md5": hashlib.md5(DATA, usedforsecurity=False).hexdigest(),
        }
    finally:
        await store.discard(spool)
        store.release(spool)
