"""Eviction across replicas sharing a PostgreSQL store: one janitor evicts at a time (MetadataStore.eviction_lock),
and a blob one replica is sending is never evicted by another replica's janitor (CacheJanitor.serving, with its
lease written at once where deletions reach other hosts' sends)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from proxy.backends import Backends
from proxy.config import CacheConfig
from proxy.janitor import GRACE, CacheJanitor
from proxy.metrics import Metrics
from proxy.reaper import BlobReaper
from tests.backends.conftest import BackendsUnderTest

pytestmark = pytest.mark.engines


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def janitor(backends: Backends, clock: Clock, *, leases_now: bool = False) -> CacheJanitor:
    """A janitor whose limit (1 byte) makes every sweep try to evict."""
    return CacheJanitor(backends.meta, BlobReaper(backends.meta, backends.blobs), Metrics(), CacheConfig(max_size=1),
                        negative_ttl=60, clock=clock, interval=3600, leases_now=leases_now)


@pytest.fixture
async def other(postgresql_backends: BackendsUnderTest) -> AsyncIterator[Backends]:
    """Another replica on the same database (its own connections and session)."""
    async with postgresql_backends.reopen() as opened:
        yield opened


async def cached_blob(backends: Backends, accessed: float) -> str:
    blob = await backends.blobs.put_bytes(b"cached upstream bytes " * 100)
    await backends.meta.record_blob(blob.sha256, blob.size, now=accessed)
    return blob.sha256


async def test_one_janitor_evicts_at_a_time(postgresql_backends: BackendsUnderTest, other: Backends):
    """While one replica holds the eviction lock, another replica's sweep over the limit evicts nothing; once it is
    released, the next sweep evicts."""
    clock = Clock()
    sha256 = await cached_blob(postgresql_backends, accessed=0)
    sweeping = janitor(other, clock)
    async with postgresql_backends.meta.eviction_lock() as held:
        assert held
        async with other.meta.eviction_lock() as also:
            assert not also
        assert await sweeping.sweep() == 0
        assert await other.blobs.stat(sha256) is not None
    assert await sweeping.sweep() == 1
    assert await other.blobs.stat(sha256) is None


async def test_a_blob_being_sent_by_one_replica_is_not_evicted_by_another(
    postgresql_backends: BackendsUnderTest, other: Backends
):
    """A blob last accessed long ago that replica A is sending right now: A's sweeps renew its lease (a hit), so
    replica B's janitor, over its limit, leaves it; once the send has ended and GRACE has passed, B evicts it."""
    clock = Clock()
    sha256 = await cached_blob(postgresql_backends, accessed=0)
    sending, evicting = janitor(postgresql_backends, clock), janitor(other, clock)
    with sending.serving(sha256):
        clock.now += 10 * GRACE  # a long send (a slow client): the hit recorded when it started is old by now
        await sending.sweep()
        assert await evicting.sweep() == 0
        assert await other.blobs.stat(sha256) is not None
    clock.now += GRACE + 1
    assert await evicting.sweep() == 1
    assert await other.blobs.stat(sha256) is None


@pytest.mark.parametrize(("leases_now", "evicted"), [(True, 0), (False, 1)], ids=["object-store", "local-store"])
async def test_a_send_that_just_started_is_protected_before_its_replicas_next_sweep(
    postgresql_backends: BackendsUnderTest, other: Backends, leases_now: bool, evicted: int
):
    """Replica A starts sending a blob last used long ago, and replica B's janitor sweeps before A's next sweep.
    Where deleting cuts sends anywhere (an object store: leases_now), A wrote the lease at once and B leaves the
    blob. On a local store (not leases_now) nothing is written until A's sweep and B may evict it: harmless there,
    as an unlinked file keeps streaming to the readers that have it open."""
    clock = Clock()
    sha256 = await cached_blob(postgresql_backends, accessed=0)
    sending, evicting = janitor(postgresql_backends, clock, leases_now=leases_now), janitor(other, clock)
    with sending.serving(sha256):
        await sending.leases_written()
        assert await evicting.sweep() == evicted
    assert (await other.blobs.stat(sha256) is None) == bool(evicted)
