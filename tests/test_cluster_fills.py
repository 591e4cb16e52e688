"""Replicas on one PostgreSQL database and one S3 bucket (the real engines), each with its own data dir and a real
HTTP listener: one upstream GET per file in the whole cluster, followers on other replicas streamed the bytes while
they arrive, a lying upstream failing every replica's client with nothing stored (a killed leader taken over:
test_cluster_takeover.py).
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import pytest

from proxy.keys import BACKENDS, FILES
from tests.artifacts import build_wheel
from tests.cluster import Replica, file_url, replica
from tests.conftest import Upstream
from tests.engines.postgres import Database
from tests.engines.seaweed import S3Bucket
from tests.servers import reserve_port

pytestmark = pytest.mark.engines

BIG = build_wheel("clusterlib", "1.0", payload_size=2 * 2**20)  # 32 chunks of the fake's 64 KiB
UPSTREAM_PATH = f"/files/clusterlib/{BIG.filename}"
GUARD = 60  # seconds: a broken test fails instead of hanging (never a timing assertion)


async def replicas(stack: AsyncExitStack, tmp_path: Path, n: int, db: Database, bucket: S3Bucket,
                   upstream: Upstream) -> list[Replica]:
    return [await stack.enter_async_context(replica(tmp_path / f"r{i}", db.url, bucket.url, upstream.url))
            for i in range(n)]


async def test_herd_across_replicas_is_one_upstream_get_streamed_to_every_replica_while_it_arrives(
    tmp_path: Path, upstream: Upstream, postgres_db: Database, s3_bucket: S3Bucket
):
    """Nine clients spread over three replicas ask for one cold file: upstream is asked once in the whole cluster,
    every client has bytes while upstream still holds back the rest of the file (followers stream from the
    leader, they do not wait for its commit), and all nine get exactly the file, which is then in the bucket."""
    upstream.fake.add(BIG)
    gate = upstream.fake.file_stream_gate = asyncio.Event()
    async with AsyncExitStack() as stack, asyncio.timeout(GUARD):
        nodes = await replicas(stack, tmp_path, 3, postgres_db, s3_bucket, upstream)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        urls = [await file_url(session, node.url, "clusterlib") for node in nodes]
        responses = [await stack.enter_async_context(session.get(urls[i % 3])) for i in range(9)]
        firsts = [await response.content.readexactly(1000) for response in responses]
        assert upstream.fake.hits[UPSTREAM_PATH] == 1  # the gate is still closed: all nine are mid-file
        gate.set()
        bodies = [first + await response.read() for first, response in zip(firsts, responses, strict=True)]
        assert [response.status for response in responses] == [200] * 9
        assert all(body == BIG.data for body in bodies)
        assert upstream.fake.hits[UPSTREAM_PATH] == 1
        for node in nodes:
            await node.app[FILES].settled()
            stored = await node.app[BACKENDS].blobs.stat(BIG.sha256)
            assert stored is not None and stored.size == len(BIG.data)


async def test_a_lying_upstream_fails_every_replicas_client_and_stores_nothing(
    tmp_path: Path, upstream: Upstream, postgres_db: Database, s3_bucket: S3Bucket
):
    """The index declares a sha256 the bytes do not have: the clients of the leader and of both followers are cut
    off before the last byte (never a complete-looking body), upstream was asked once, and neither the declared
    nor the real digest is in the bucket."""
    declared = "0" * 64
    upstream.fake.add(BIG, declared_sha256=declared)
    gate = upstream.fake.file_stream_gate = asyncio.Event()
    async with AsyncExitStack() as stack, asyncio.timeout(GUARD):
        nodes = await replicas(stack, tmp_path, 3, postgres_db, s3_bucket, upstream)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        urls = [await file_url(session, node.url, "clusterlib") for node in nodes]
        responses = [await stack.enter_async_context(session.get(url)) for url in urls]
        for response in responses:
            assert response.status == 200
            await response.content.readexactly(1000)  # every replica streams before the lie shows
        gate.set()
        for response in responses:
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
        assert upstream.fake.hits[UPSTREAM_PATH] == 1
        blobs = nodes[0].app[BACKENDS].blobs
        assert await blobs.stat(declared) is None
        assert await blobs.stat(BIG.sha256) is None


async def test_a_leader_advertising_the_followers_own_url_is_not_asked(
    tmp_path: Path, upstream: Upstream, postgres_db: Database, s3_bucket: S3Bucket
):
    """Misconfigured replicas that all advertise one URL (every one left at http://127.0.0.1:8080, say): a follower
    never streams from "the leader" at its own address (it would follow its own empty spool), it waits for the
    commit instead, and its client gets exactly the file; upstream is asked once."""
    upstream.fake.add(BIG)
    gate = upstream.fake.file_stream_gate = asyncio.Event()
    port = reserve_port()
    advertised = {"advertise_url": f"http://127.0.0.1:{port}"}
    async with AsyncExitStack() as stack, asyncio.timeout(GUARD):
        leader = await stack.enter_async_context(
            replica(tmp_path / "a", postgres_db.url, s3_bucket.url, upstream.url, server=advertised))
        follower = await stack.enter_async_context(
            replica(tmp_path / "b", postgres_db.url, s3_bucket.url, upstream.url, port=port))
        session = await stack.enter_async_context(aiohttp.ClientSession())
        led = await stack.enter_async_context(session.get(await file_url(session, leader.url, "clusterlib")))
        await upstream.fake.wait_for_request(UPSTREAM_PATH)
        following = asyncio.ensure_future(session.get(await file_url(session, follower.url, "clusterlib")))
        for _ in range(3000):  # until the follower's claim is made (it sends nothing before the commit)
            if follower.app[FILES].in_flight:
                break
            await asyncio.sleep(0.01)
        assert follower.app[FILES].in_flight == 1
        gate.set()
        assert await led.read() == BIG.data
        async with await following as response:
            assert response.status == 200
            assert await response.read() == BIG.data
        assert upstream.fake.hits[UPSTREAM_PATH] == 1
