"""A leading replica SIGKILLed mid-file (a real `shadowpi serve`): the replicas following it lose nothing. One of
them takes the download over from upstream at the offset its clients have reached (a Range request, or the whole
file again with its first bytes compared), the others stream from it, and every client gets exactly the file; a
continuation whose bytes differ cuts every client off with nothing stored.
"""

from __future__ import annotations

import asyncio
import os
import signal
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import pytest

from proxy.keys import BACKENDS, FILES
from tests.cluster import Replica, file_url, replica
from tests.conftest import Upstream
from tests.engines.postgres import Database
from tests.engines.seaweed import S3Bucket
from tests.test_cluster_fills import BIG, GUARD, UPSTREAM_PATH
from tests.test_serve import serving

pytestmark = pytest.mark.engines

FOLLOWERS = 2


def file_ranges(upstream: Upstream) -> list[str | None]:
    """The Range header of every file request upstream saw, in order."""
    return [headers.get("Range") for path, headers in zip(upstream.fake.requests, upstream.fake.headers_seen,
                                                          strict=True) if path.startswith(UPSTREAM_PATH)]


async def followers_of_a_killed_leader(
    stack: AsyncExitStack, tmp_path: Path, upstream: Upstream, db: Database, bucket: S3Bucket
) -> tuple[list[Replica], list[aiohttp.ClientResponse], aiohttp.ClientSession, int]:
    """A real `shadowpi serve` leads the download of BIG, held mid-file by the gate; a client on each of FOLLOWERS
    other replicas has every byte the leader has but the one held back; then the leader is SIGKILLed. Returns the
    replicas, their clients' responses, the session and the bytes each follower has (the leader's)."""
    gate = upstream.fake.file_stream_gate = asyncio.Event()
    flags = ("--database", db.url, "--storage", bucket.url)
    leader = await stack.enter_async_context(serving(tmp_path / "leader", upstream, *flags, env=bucket.env))
    nodes = [await stack.enter_async_context(replica(tmp_path / f"r{i}", db.url, bucket.url, upstream.url))
             for i in range(FOLLOWERS)]
    session = await stack.enter_async_context(aiohttp.ClientSession())
    led = await stack.enter_async_context(session.get(await file_url(session, leader.url, "clusterlib")))
    await upstream.fake.wait_for_request(UPSTREAM_PATH)
    have = upstream.fake.file_chunk_size  # what the leader wrote before the gate
    responses = []
    for node in nodes:
        response = await stack.enter_async_context(session.get(await file_url(session, node.url, "clusterlib")))
        assert response.status == 200
        assert await response.content.readexactly(have - 1) == BIG.data[: have - 1]  # the last one is held back
        responses.append(response)
    os.killpg(leader.proc.pid, signal.SIGKILL)
    await leader.proc.wait()
    led.release()
    gate.set()
    return nodes, responses, session, have


@pytest.mark.parametrize("ranges", [True, False], ids=["range", "no-range"])
async def test_the_followers_of_a_killed_leader_complete_from_upstream_at_their_offset(
    tmp_path: Path, upstream: Upstream, postgres_db: Database, s3_bucket: S3Bucket, ranges: bool
):
    """The leader dies with a chunk of the file sent: every follower's client still gets exactly the file, upstream
    is asked once more, from the followers' offset (`Range: bytes=N-`; an upstream without Range support sends the
    whole file, whose first N bytes must match), the file is then in the bucket, and the next request is a hit."""
    upstream.fake.add(BIG)
    upstream.fake.ranges = ranges
    async with AsyncExitStack() as stack, asyncio.timeout(GUARD):
        nodes, responses, session, have = await followers_of_a_killed_leader(
            stack, tmp_path, upstream, postgres_db, s3_bucket)
        for response in responses:
            assert BIG.data[: have - 1] + await response.read() == BIG.data
        assert file_ranges(upstream) == [None, f"bytes={have}-"]
        for node in nodes:
            await node.app[FILES].settled()
        stored = await nodes[0].app[BACKENDS].blobs.stat(BIG.sha256)
        assert stored is not None and stored.size == len(BIG.data)
        async with session.get(await file_url(session, nodes[1].url, "clusterlib")) as again:
            assert again.status == 200
            assert await again.read() == BIG.data
        assert upstream.fake.hits[UPSTREAM_PATH] == 2


@pytest.mark.parametrize(
    ("ranges", "lie_at", "skew"),
    [(True, 100_000, 0), (False, 100, 0), (True, None, 1000)],
    ids=["range-other-bytes", "no-range-other-bytes", "range-from-elsewhere"],
)
async def test_a_continuation_with_other_bytes_cuts_every_follower_off_and_stores_nothing(
    tmp_path: Path, upstream: Upstream, postgres_db: Database, s3_bucket: S3Bucket, ranges: bool,
    lie_at: int | None, skew: int,
):
    """Asked again after the leader died, upstream sends different bytes (after the followers' offset, or, without
    Range support, among the bytes the clients have already), or a 206 whose Content-Range starts elsewhere than
    asked: every follower's client is cut off (never a complete-looking body), nothing is in the bucket, and the
    next request downloads the file afresh."""
    upstream.fake.add(BIG)
    upstream.fake.ranges = ranges
    upstream.fake.range_skew = skew
    if lie_at is not None:
        upstream.fake.ranged_data = BIG.data[:lie_at] + bytes([BIG.data[lie_at] ^ 0xFF]) + BIG.data[lie_at + 1 :]
    async with AsyncExitStack() as stack, asyncio.timeout(GUARD):
        nodes, responses, session, have = await followers_of_a_killed_leader(
            stack, tmp_path, upstream, postgres_db, s3_bucket)
        for response in responses:
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
        assert file_ranges(upstream) == [None, f"bytes={have}-"]
        for node in nodes:
            await node.app[FILES].settled()
        assert await nodes[0].app[BACKENDS].blobs.stat(BIG.sha256) is None
        async with session.get(await file_url(session, nodes[0].url, "clusterlib")) as again:
            assert again.status == 200
            assert await again.read() == BIG.data
        assert file_ranges(upstream) == [None, f"bytes={have}-", None]
