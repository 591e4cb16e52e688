"""The local backend's own promises, beyond the contract: spool names and locks in `<data dir>/tmp`, dead leaders
taken over, the sweep of abandoned spools, and hits served from open files without any file-system call."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.backends.fills import FillOutcome, ForeignFill
from proxy.backends.local.backend import LocalStorage, open_local
from proxy.backends.local.fills import LocalLead
from proxy.backends.spools import SpoolDir

DATA = b"wheel bytes " * 1000
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[LocalStorage, LocalStorage]]:
    """Two local backends ("workers") on one data dir: flock() locks belong to open files, so they conflict
    between the two exactly as between two processes."""
    stamp = [b"0"]
    a = await open_local(tmp_path, changed=lambda: stamp[0])
    b = await open_local(tmp_path, changed=lambda: stamp[0])
    yield a, b
    await a.blobs.close()
    await b.blobs.close()


def tmp_names(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "tmp").iterdir())


async def lead(storage: LocalStorage) -> LocalLead:
    claimed = await storage.fills.claim(SHA)
    assert isinstance(claimed, LocalLead)
    return claimed


async def test_the_fill_spool_has_one_shared_name(stores: tuple[LocalStorage, LocalStorage], tmp_path: Path):
    """A leader's spool is `fill-<sha256>.partial` (the staging name is gone); nothing is left once it ends."""
    a, b = stores
    leader = await lead(a)
    assert tmp_names(tmp_path) == [f"fill-{SHA}.partial"]
    follower = await b.fills.claim(SHA)
    assert isinstance(follower, ForeignFill)
    await leader.spool.write(DATA)
    await a.blobs.commit(leader.spool)
    await leader.finish()
    follower.close()
    assert tmp_names(tmp_path) == []


async def test_a_dead_leader_is_seen_and_its_spool_taken_over(stores: tuple[LocalStorage, LocalStorage],
                                                               tmp_path: Path):
    """A leader whose lock is gone while its spool is still in place died: followers learn it, and the next
    claim removes the leftover and leads with an empty spool."""
    a, b = stores
    leader = await lead(a)
    follower = await b.fills.claim(SHA)
    assert isinstance(follower, ForeignFill)
    await leader.spool.write(b"half a wheel")
    leader.spool.close()  # the descriptor closes without commit or discard, as when the process is killed
    assert await follower.outcome() is FillOutcome.ABANDONED
    taken = await lead(a)  # at once: the follower, still open, must not hold the dead spool
    assert os.stat(taken.spool.path).st_size == 0  # a new file, not the dead leader's bytes
    follower.close()
    await taken.finish()
    assert tmp_names(tmp_path) == []


async def test_discard_after_commit_never_deletes_the_next_fills_spool(stores: tuple[LocalStorage, LocalStorage]):
    """Once committed, the shared name may belong to a new leader: a late discard must leave it alone."""
    a, b = stores
    first = await lead(a)
    await first.spool.write(b"not the declared bytes")  # committed under its own hash: SHA's fill may start again
    await a.blobs.commit(first.spool)
    second = await lead(b)
    await first.finish()
    assert second.spool.path.exists()
    await second.finish()


async def test_sweeps_remove_only_spools_nobody_holds(stores: tuple[LocalStorage, LocalStorage], tmp_path: Path):
    """A sweep deletes a crash's leftovers but not the fill or upload spools of running workers."""
    a, _ = stores
    fill = await lead(a)
    upload = await a.spools.create()
    (tmp_path / "tmp" / "deadbeef.partial").write_bytes(b"left by a crash")
    held = tmp_path / "tmp" / "held.partial"
    held.write_bytes(b"locked by someone else")
    fd = os.open(held, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert await SpoolDir(tmp_path / "tmp").sweep() == 1
        assert tmp_names(tmp_path) == sorted([fill.spool.path.name, upload.path.name, "held.partial"])
    finally:
        os.close(fd)
    assert await SpoolDir(tmp_path / "tmp").sweep() == 1  # held.partial, now that its holder is gone
    await fill.finish()
    await upload.dispose()
    assert tmp_names(tmp_path) == []


async def test_a_hit_is_served_from_an_open_file(tmp_path: Path):
    """Once read (or committed), a blob is handed out from memory: reader_nowait gives it with no I/O, its file
    stays open and shared, and the least recently used one is closed beyond `open_files`."""
    storage = await open_local(tmp_path, changed=lambda: b"", open_files=2)
    try:
        blobs = [await storage.blobs.put_bytes(bytes([i]) * 100) for i in range(3)]
        assert storage.blobs.reader_nowait(blobs[0].sha256) is None  # the oldest of three went
        first, again = storage.blobs.reader_nowait(blobs[2].sha256), storage.blobs.reader_nowait(blobs[2].sha256)
        assert first is not None and again is not None
        assert first.sendfile_source() is again.sendfile_source()
        first.close()
        again.close()
        assert not again.sendfile_source().closed  # the cache still holds it
        reopened = await storage.blobs.reader(blobs[0].sha256)
        assert reopened is not None and reopened.size == 100
        assert reopened.memory() == bytes([0]) * 100  # small: its bytes are held too
        reopened.close()
        assert storage.blobs.reader_nowait(blobs[0].sha256) is not None  # kept again, most recently used
    finally:
        await storage.blobs.close()


async def test_a_moved_stamp_empties_the_open_file_cache(tmp_path: Path):
    """When the BLOBS stamp moves (a deletion somewhere), every held file is let go; readers still open keep
    reading until they are closed."""
    stamp = [b"1"]
    storage = await open_local(tmp_path, changed=lambda: stamp[0])
    try:
        blob = await storage.blobs.put_bytes(DATA * 10)
        reader = storage.blobs.reader_nowait(blob.sha256)
        assert reader is not None and reader.memory() is None  # too big to hold in memory
        stamp[0] = b"2"
        assert storage.blobs.reader_nowait(blob.sha256) is None
        assert b"".join([c async for c in reader.chunks(0, reader.size)]) == DATA * 10
        reader.close()
        await storage.blobs.close()  # waits for the closes it sent off the loop
        assert reader.sendfile_source().closed
    finally:
        await storage.blobs.close()
