"""Cache eviction with S3 storage: `[cache] max_size` is enforced against the bucket's objects through the metadata
blob index (the bucket is never listed), the reaper's deletes reach the bucket, and an evicted file is fetched
from upstream again: never served from a local read-cache copy of the deleted object."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.keys import FILES, JANITOR
from tests.artifacts import build_wheel
from tests.backends.buckets import bucket_of
from tests.conftest import Upstream
from tests.engines.seaweed import S3Bucket
from tests.proxy_fixtures import ProxyFactory

pytestmark = pytest.mark.engines

WHEELS = [build_wheel("evictme", f"{i}.0", payload_size=100_000) for i in range(3)]  # > 64 KiB: not in memory


async def objects(bucket: S3Bucket) -> set[str]:
    """The sha256 of every blob object in the bucket (seen by the test's own client)."""
    async with bucket_of(bucket.url) as found:
        assert found is not None
        return {key.rpartition("/")[2] for key in await found.keys()}


def copies(data_dir: Path) -> set[str]:
    """The blobs the local read cache holds copies of."""
    return {path.name for path in (data_dir / "readcache").rglob("*") if len(path.name) == 64}


@pytest.mark.parametrize("local_cache", [0, 10**6], ids=["streaming", "local-cache"])
async def test_eviction_deletes_objects_and_an_evicted_file_is_fetched_again(
    make_proxy: ProxyFactory, upstream: Upstream, s3_bucket: S3Bucket, local_cache: int
):
    """Three cached wheels, room for one: a sweep evicts the two least recently used, their objects are deleted
    from the bucket (the kept one stays), and a request for an evicted file goes upstream again and gets the
    right bytes, with or without a local read cache holding copies of the deleted objects."""
    for wheel in WHEELS:
        upstream.fake.add(wheel)
    make_proxy.background = False
    storage = {"url": s3_bucket.url, "local_cache": local_cache}
    proxy = await make_proxy(cache={"max_size": 150_000}, storage=storage)
    for wheel in WHEELS:
        assert await (await proxy.get(f"/files/evictme/{wheel.sha256}/{wheel.filename}")).read() == wheel.data
        await proxy.app[FILES].settled()
        make_proxy.clock.advance(300)
    assert await objects(s3_bucket) >= {wheel.sha256 for wheel in WHEELS}
    assert copies(make_proxy.data_dir) == ({wheel.sha256 for wheel in WHEELS} if local_cache else set())

    assert await proxy.app[JANITOR].sweep() == 2
    assert await objects(s3_bucket) & {wheel.sha256 for wheel in WHEELS} == {WHEELS[2].sha256}
    assert copies(make_proxy.data_dir) == ({WHEELS[2].sha256} if local_cache else set())
    assert proxy.app[JANITOR].usage.files == 1
    for wheel in WHEELS[:2]:
        response = await proxy.get(f"/files/evictme/{wheel.sha256}/{wheel.filename}")
        assert (response.status, response.headers["X-Shadowpi-Cache"]) == (200, "miss")
        assert await response.read() == wheel.data
        await proxy.app[FILES].settled()
    assert [upstream.fake.hits[f"/files/evictme/{wheel.filename}"] for wheel in WHEELS] == [2, 2, 1]
    assert await objects(s3_bucket) >= {wheel.sha256 for wheel in WHEELS}
