"""The cluster fill coordinator (postgresql:// + s3://) between replicas on different hosts (data dirs of their own)
that cannot reach each other's peer endpoint: one leads, the others wait for its commit and then have every byte
from the store; a lead given up or a leader whose database connection died leaves the next claim to lead. (With a
reachable leader, followers stream from it: tests/test_cluster_fills.py runs replicas with real listeners.)"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from proxy.backends import Backends, open_backends
from proxy.backends.fills import FillOutcome, ForeignFill, Lead
from proxy.config import Config

pytestmark = pytest.mark.engines

DATA = b"cluster wheel bytes " * 5000
SHA = hashlib.sha256(DATA).hexdigest()
POLLS = 3000  # at 10 ms: 30 s before a test gives up waiting on another replica or the database server


@asynccontextmanager
async def host(config: Config, name: str, tmp_path: Path) -> AsyncIterator[Backends]:
    """A replica on its own host: its own data dir; listening on every address, so it advertises no peer URL."""
    server = replace(config.server, data_dir=tmp_path / name, host="0.0.0.0")  # never bound here
    async with open_backends(replace(config, server=server), migrate=True) as opened:
        yield opened


async def ended(follower: ForeignFill) -> FillOutcome:
    """The follower's outcome once it is not WRITING (it follows another replica in the background)."""
    for _ in range(POLLS):  # the leader is another replica: its progress can only be polled, with a deadline
        if (outcome := await follower.outcome()) is not FillOutcome.WRITING:
            return outcome
        await asyncio.sleep(0.01)
    raise AssertionError("the follower is still WRITING")


async def test_without_a_reachable_leader_a_replica_waits_for_the_commit(cluster_config: Config, tmp_path: Path):
    """Replica B's claim while A leads follows A; unable to reach A, it waits for A's commit, then has the whole
    blob from the store, verified, and sends it like any follower."""
    async with host(cluster_config, "a", tmp_path) as a, host(cluster_config, "b", tmp_path) as b:
        leader = await a.fills.claim(SHA)
        assert isinstance(leader, Lead)
        follower = await b.fills.claim(SHA)
        assert isinstance(follower, ForeignFill) and not isinstance(follower, Lead)
        try:
            await leader.spool.write(DATA)
            assert await follower.outcome() is FillOutcome.WRITING
            await a.blobs.commit(leader.spool)
            await leader.finish()
            assert await ended(follower) is FillOutcome.COMMITTED
            follower.grown()
            assert follower.size == len(DATA)
            assert b"".join([chunk async for chunk in follower.chunks(0, follower.size)]) == DATA
        finally:
            follower.close()
            await leader.finish()


async def test_a_lead_given_up_leaves_its_followers_abandoned_and_the_next_claim_leads(
    cluster_config: Config, tmp_path: Path
):
    """A leader that finishes without committing: its follower on another replica ends ABANDONED (its clients are
    cut off), nothing is stored, and the next claim, on either replica, leads."""
    async with host(cluster_config, "a", tmp_path) as a, host(cluster_config, "b", tmp_path) as b:
        leader = await a.fills.claim(SHA)
        assert isinstance(leader, Lead)
        follower = await b.fills.claim(SHA)
        assert isinstance(follower, ForeignFill)
        await leader.spool.write(DATA[:1000])
        await leader.finish()
        assert await ended(follower) is FillOutcome.ABANDONED
        follower.close()
        assert await b.blobs.stat(SHA) is None
        again = await b.fills.claim(SHA)
        assert isinstance(again, Lead)
        await again.finish()


async def test_a_leader_whose_database_connection_dies_is_taken_over(cluster_config: Config, tmp_path: Path):
    """The lead is the leader's session lock: when its connection is terminated (a killed replica's is), another
    replica's claim leads instead of following a leader that is gone."""
    async with host(cluster_config, "a", tmp_path) as a, host(cluster_config, "b", tmp_path) as b:
        leader = await a.fills.claim(SHA)
        assert isinstance(leader, Lead)
        conn = await asyncpg.connect(cluster_config.database.url)
        try:
            pid = await conn.fetchval("SELECT pid FROM fill_leaders WHERE sha256 = $1", SHA)
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
            for _ in range(POLLS):  # the server ends that backend, and its locks, asynchronously
                if not await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
                    break
                await asyncio.sleep(0.01)
        finally:
            await conn.close()
        taken = await b.fills.claim(SHA)
        assert isinstance(taken, Lead)
        await taken.finish()
        await leader.finish()
