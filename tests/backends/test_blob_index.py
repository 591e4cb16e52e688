"""Contract: the blob index (sizes, access times, pins, eviction) and upstream files without a declared hash."""

from __future__ import annotations

import pytest

from proxy.backends.records import BlobRecord, CacheUsage
from tests.backends.conftest import BackendsUnderTest
from tests.backends.samples import SHA_A, SHA_B, SHA_C, SHA_D, private_file

SHA_E = "e" * 64


async def test_usage_counts_only_cached_upstream_blobs(backends: BackendsUnderTest) -> None:
    """Private files and their metadata blobs are not counted; pinned bytes are reported."""
    meta = backends.meta
    await meta.add_private_file(private_file("acme-1.0-py3-none-any.whl", SHA_A, metadata_sha256=SHA_B))
    for sha, size in ((SHA_A, 100), (SHA_B, 20), (SHA_C, 3), (SHA_D, 4000)):
        await meta.record_blob(sha, size, now=0)
    assert await meta.pin_blobs([SHA_D]) == 1
    assert await meta.cache_usage() == CacheUsage(2, 4003, 4000)


async def test_candidates_are_least_recently_used_first_and_never_private_or_pinned(
    backends: BackendsUnderTest,
) -> None:
    """eviction_candidates: unpinned, non-private blobs not accessed since the cutoff, oldest access first, at most
    `limit`; unpinning makes a blob a candidate again."""
    meta = backends.meta
    await meta.add_private_file(private_file("acme-1.0.tar.gz", SHA_A))
    for sha, when in ((SHA_A, 1.0), (SHA_B, 4.0), (SHA_C, 2.0), (SHA_D, 3.0), (SHA_E, 50.0)):
        await meta.record_blob(sha, 10, now=when)
    await meta.pin_blobs([SHA_D])
    assert await meta.eviction_candidates(accessed_before=10) == [BlobRecord(SHA_C, 10, 2.0),
                                                                  BlobRecord(SHA_B, 10, 4.0)]
    assert [c.sha256 for c in await meta.eviction_candidates(accessed_before=10, limit=1)] == [SHA_C]
    assert await meta.pin_blobs([SHA_D], pinned=False) == 1
    assert [c.sha256 for c in await meta.eviction_candidates(accessed_before=10)] == [SHA_C, SHA_D, SHA_B]


async def test_hits_move_access_times_forward_only(backends: BackendsUnderTest) -> None:
    """touch_blobs records hits, never moving a last access back; record_blob of a known blob is a hit too."""
    meta = backends.meta
    await meta.record_blob(SHA_A, 10, now=5.0)
    await meta.record_blob(SHA_B, 10, now=5.0)
    await meta.touch_blobs({SHA_A: 9.0, SHA_B: 1.0, SHA_C: 9.0})  # an unknown blob is ignored
    await meta.touch_blobs({})
    await meta.record_blob(SHA_B, 10, now=7.0)
    assert await meta.eviction_candidates(accessed_before=100) == [BlobRecord(SHA_B, 10, 7.0),
                                                                   BlobRecord(SHA_A, 10, 9.0)]


async def test_evicting_forgets_the_row_only_with_the_bytes(backends: BackendsUnderTest) -> None:
    """A claimed blob's row is gone once the block ends; if deleting the bytes fails (the block raises), the row
    is back. A blob that became private, was pinned or was used since the cutoff is not claimed."""
    meta = backends.meta
    for sha in (SHA_A, SHA_B, SHA_C, SHA_D):
        await meta.record_blob(sha, 10, now=0)
    await meta.add_private_file(private_file("acme-1.0.tar.gz", SHA_A))
    await meta.pin_blobs([SHA_B])
    await meta.touch_blobs({SHA_C: 50})
    for sha in (SHA_A, SHA_B, SHA_C):
        async with meta.evicting(sha, accessed_before=10) as claimed:
            assert not claimed
    with pytest.raises(OSError, match="disk says no"):
        async with meta.evicting(SHA_D, accessed_before=10) as claimed:
            assert claimed
            raise OSError("disk says no")
    assert [c.sha256 for c in await meta.eviction_candidates(accessed_before=10)] == [SHA_D]
    async with meta.evicting(SHA_D, accessed_before=10) as claimed:
        assert claimed
    assert [c.sha256 for c in await meta.eviction_candidates(accessed_before=float("inf"))] == [SHA_C]
    assert (await meta.cache_usage()).files == 2  # b (pinned) and c remain; a is private, d is gone


async def test_forget_blob_and_pinned_imports(backends: BackendsUnderTest) -> None:
    """forget_blob drops a row; record_pinned_blob records a new blob pinned, pins a known one, and says whether it
    changed anything."""
    meta = backends.meta
    await meta.record_blob(SHA_A, 10, now=0)
    await meta.forget_blob(SHA_A)
    await meta.forget_blob(SHA_B)  # unknown: nothing happens
    assert await meta.bundle_blob_times() == {}
    assert await meta.record_pinned_blob(SHA_A, 10) is True
    assert await meta.record_pinned_blob(SHA_A, 10) is False
    await meta.record_blob(SHA_B, 5, now=0)
    assert await meta.record_pinned_blob(SHA_B, 5) is True
    assert await meta.cache_usage() == CacheUsage(2, 15, 15)


async def test_upstream_files_map_urls_to_blobs(backends: BackendsUnderTest) -> None:
    """remember_upstream_file maps a URL to a blob (True when new or changed), upstream_file_sha256 finds it."""
    meta = backends.meta
    url = "https://files.example/tinylib-1.0.tar.gz"
    assert await meta.upstream_file_sha256(url) is None
    assert await meta.remember_upstream_file(url, SHA_A) is True
    assert await meta.remember_upstream_file(url, SHA_A) is False
    assert await meta.remember_upstream_file(url, SHA_B) is True
    assert await meta.upstream_file_sha256(url) == SHA_B
    assert await meta.bundle_upstream_files() == {url: SHA_B}


async def test_the_usage_version_moves_when_another_process_commits(backends: BackendsUnderTest) -> None:
    """usage_version changes after any commit elsewhere that may change the usage (the janitor then counts again),
    and stays put while nothing is written."""
    meta = backends.meta
    before = await meta.usage_version()
    assert await meta.usage_version() == before
    async with backends.reopen() as other:
        await other.meta.record_blob(SHA_A, 10)
    after = await meta.usage_version()
    assert after != before
    await meta.record_blob(SHA_B, 10)
    assert await meta.usage_version() != after
