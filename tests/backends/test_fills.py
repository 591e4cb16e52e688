"""FillCoordinator contract: one leader per blob among all claimants (`backends` and `peer`, a reopen of it, stand
for two processes), followers that see the bytes grow and how the fill ended, and a claim after the commit that
finds the blob instead of fetching it again."""

from __future__ import annotations

import hashlib

import pytest

from proxy.backends.blobs import BlobReader
from proxy.backends.fills import FillOutcome, ForeignFill, Lead
from tests.backends.conftest import Backends

DATA = b"wheel bytes " * 1000
SHA = hashlib.sha256(DATA).hexdigest()


async def lead(backends: Backends) -> Lead:
    claimed = await backends.fills.claim(SHA)
    assert isinstance(claimed, Lead)
    return claimed


async def follow(backends: Backends) -> ForeignFill:
    claimed = await backends.fills.claim(SHA)
    assert isinstance(claimed, ForeignFill)
    return claimed


async def read_all(source: ForeignFill | BlobReader) -> bytes:
    return b"".join([chunk async for chunk in source.chunks(0, source.size)])


async def test_one_leader_and_a_follower_that_sees_the_commit(backends: Backends, peer: Backends):
    """The first claim leads; another process's claim follows it, sees the bytes grow, then the commit."""
    leader = await lead(backends)
    follower = await follow(peer)
    try:
        assert follower.sha256 == SHA
        assert await follower.outcome() is FillOutcome.WRITING
        await leader.spool.write(DATA[:1000])
        assert follower.grown() and follower.size == 1000
        assert not follower.grown()
        await leader.spool.write(DATA[1000:])
        await backends.blobs.commit(leader.spool)
        await leader.finish()
        assert await follower.outcome() is FillOutcome.COMMITTED
        follower.grown()
        assert follower.size == len(DATA)
        assert await read_all(follower) == DATA
    finally:
        follower.close()
        await leader.finish()


async def test_a_claim_in_the_leading_process_follows_too(backends: Backends):
    """One leader per blob, even among claims of one process."""
    leader = await lead(backends)
    follower = await follow(backends)
    follower.close()
    await leader.finish()


async def test_a_failed_fill_is_seen_and_the_next_claim_leads(backends: Backends, peer: Backends):
    """The leader gives up (bad hash, cut transfer): its follower learns it failed; the next claim leads afresh."""
    leader = await lead(backends)
    follower = await follow(peer)
    await leader.spool.write(DATA[:100])
    await leader.finish()
    assert await follower.outcome() is FillOutcome.FAILED
    follower.close()
    retry = await lead(peer)
    assert retry.spool.size == 0
    await retry.finish()


async def test_a_later_fill_never_completes_a_failed_one(backends: Backends, peer: Backends):
    """A follower of a failed fill is not fooled by the blob a later fill committed: the bytes it followed were
    the failed fill's, so only their own commit would count."""
    leader = await lead(backends)
    follower = await follow(peer)
    await leader.spool.write(DATA[:100])
    await leader.finish()
    retry = await lead(backends)
    await retry.spool.write(DATA)
    await backends.blobs.commit(retry.spool)
    await retry.finish()
    assert await follower.outcome() is FillOutcome.FAILED
    follower.close()


async def test_a_claim_after_the_commit_gets_the_blob(backends: Backends, peer: Backends):
    """A process that missed the cache just before another committed does not fetch again: the claim returns the
    committed blob's reader."""
    leader = await lead(backends)
    await leader.spool.write(DATA)
    await backends.blobs.commit(leader.spool)
    await leader.finish()
    late = await peer.fills.claim(SHA)
    assert not isinstance(late, Lead | ForeignFill)
    try:
        assert (late.sha256, late.size) == (SHA, len(DATA))
        assert await read_all(late) == DATA
    finally:
        late.close()


async def test_a_lead_hashes_the_algorithms_asked_for(backends: Backends):
    """The lead's spool computes the claimed algorithms besides sha256 (to check the index's other hashes)."""
    claimed = await backends.fills.claim(SHA, ["sha512", "md5"])
    assert isinstance(claimed, Lead)
    try:
        await claimed.spool.write(DATA)
        assert claimed.spool.digests() == {
            "sha256": SHA,
            "sha512": hashlib.sha512(DATA).hexdigest(),
            "md5": hashlib.md5(DATA, usedforsecurity=False).hexdigest(),
        }
    finally:
        await claimed.finish()


@pytest.mark.parametrize("finishes", [1, 2])
async def test_finish_is_idempotent(backends: Backends, finishes: int):
    """finish() may be called again (after a commit, in a finally): the next claim still leads."""
    leader = await lead(backends)
    for _ in range(finishes):
        await leader.finish()
    await (await lead(backends)).finish()


async def test_follow_local_follows_the_fill_led_on_this_host(backends: Backends, peer: Backends):
    """What the peer endpoint serves: the fill a process of this host leads, growing, then committed; None when
    no fill runs here; a malformed digest is a ValueError (it never names a file)."""
    assert await peer.fills.follow_local(SHA) is None
    with pytest.raises(ValueError, match="sha256"):
        await peer.fills.follow_local("../" + SHA[3:])
    leader = await lead(backends)
    local = await peer.fills.follow_local(SHA)
    assert local is not None
    try:
        await leader.spool.write(DATA)
        assert local.grown() and local.size == len(DATA)
        assert await local.outcome() is FillOutcome.WRITING
        await backends.blobs.commit(leader.spool)
        await leader.finish()
        assert await local.outcome() is FillOutcome.COMMITTED
        assert await read_all(local) == DATA
    finally:
        local.close()
        await leader.finish()
