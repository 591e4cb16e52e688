"""Upstream pages across replicas on one PostgreSQL database: single-flight and the TTL hold cluster-wide (issue 13).

Each replica is a whole shadowpi app (create_app) with a data dir of its own, all on one test database and one
fake upstream, sharing a clock the test moves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from proxy.app import create_app
from proxy.backends import open_backends
from proxy.config import Config
from proxy.config_load import build_config
from proxy.simple.names import NormalizedName
from tests.artifacts import build_wheel
from tests.conftest import Upstream
from tests.engines.postgres import Database
from tests.proxy_fixtures import JSON, FakeClock

pytestmark = pytest.mark.engines
PAGE = "/simple/tinylib/"
# Seconds the other replica gets to (wrongly) reach upstream while the first one's fetch is held up. A cluster
# that single-flights keeps it waiting however long this is (and the test passes); one that does not fails it.
WAIT = 0.5


class Replicas:
    """Starts shadowpi replicas on one database and one upstream."""

    def __init__(self, client_factory: AiohttpClient, tmp_path: Path, upstream: Upstream, database: Database) -> None:
        self._client_factory, self._tmp_path = client_factory, tmp_path
        self._upstream, self._database = upstream, database
        self.clock = FakeClock()
        self._count = 0

    def config(self, **upstream: object) -> Config:
        self._count += 1
        return build_config({
            "server": {"data_dir": str(self._tmp_path / f"replica-{self._count}")},
            "upstream": {"url": self._upstream.url, "page_ttl": 100, **upstream},
            "database": {"url": self._database.url},
        })

    async def start(self, **upstream: object) -> TestClient:
        return await self._client_factory(create_app(self.config(**upstream), clock=self.clock, background=False))


@pytest.fixture
def replicas(postgres_db: Database, aiohttp_client: AiohttpClient, tmp_path: Path,
             populated_upstream: Upstream) -> Replicas:
    # postgres_db first: set up first, torn down last, after the replicas have closed (and stored their pages).
    return Replicas(aiohttp_client, tmp_path, populated_upstream, postgres_db)


def page_requests(upstream: Upstream) -> int:
    return upstream.fake.hits[PAGE]


async def test_concurrent_lookups_on_two_replicas_make_one_upstream_request(
    replicas: Replicas, populated_upstream: Upstream
):
    """Ten clients on each of two replicas ask for the same uncached page at once: one upstream request in the
    cluster; the replica that fetched answers "miss", the other waits for it and answers from the stored page."""
    first, second = await replicas.start(), await replicas.start()
    gate = asyncio.Event()
    populated_upstream.fake.gate = gate
    on_first = [asyncio.create_task(first.get(PAGE, headers=JSON)) for _ in range(10)]
    await populated_upstream.fake.wait_for_request(PAGE)
    on_second = [asyncio.create_task(second.get(PAGE, headers=JSON)) for _ in range(10)]
    another = asyncio.create_task(populated_upstream.fake.wait_for_request(PAGE, count=2))
    await asyncio.wait({another}, timeout=WAIT)
    another.cancel()
    gate.set()
    answers = [await response.text() for response in await asyncio.gather(*on_first, *on_second)]
    assert page_requests(populated_upstream) == 1
    assert len(set(answers)) == 1 and "tinylib" in answers[0]
    assert {r.headers["X-Shadowpi-Cache"] for r in [await task for task in on_first]} == {"miss"}
    assert {r.headers["X-Shadowpi-Cache"] for r in [await task for task in on_second]} == {"hit"}


async def test_the_ttl_holds_across_replicas(replicas: Replicas, populated_upstream: Upstream):
    """Once the TTL has passed, the replica that asks first revalidates with upstream; another replica whose own
    copy has expired too finds the revalidated page stored and asks nobody."""
    first, second = await replicas.start(), await replicas.start()
    assert (await first.get(PAGE, headers=JSON)).headers["X-Shadowpi-Cache"] == "miss"
    assert (await second.get(PAGE, headers=JSON)).headers["X-Shadowpi-Cache"] == "hit"  # from the database
    replicas.clock.advance(101)
    assert (await first.get(PAGE, headers=JSON)).headers["X-Shadowpi-Cache"] == "revalidated"
    assert (await second.get(PAGE, headers=JSON)).headers["X-Shadowpi-Cache"] == "hit"
    assert page_requests(populated_upstream) == 2


async def test_a_page_changed_upstream_reaches_every_replica_through_one_fetch(
    replicas: Replicas, populated_upstream: Upstream
):
    """A new upstream release fetched by one replica after the TTL is what another replica serves once its own
    copy expires, without asking upstream itself."""
    first, second = await replicas.start(), await replicas.start()
    await first.get(PAGE, headers=JSON)
    await second.get(PAGE, headers=JSON)
    new = build_wheel("tinylib", "3.0")
    populated_upstream.fake.add(new)
    replicas.clock.advance(101)
    await first.get(PAGE, headers=JSON)
    served = await second.get(PAGE, headers=JSON)
    assert served.headers["X-Shadowpi-Cache"] == "hit"
    assert new.filename in [f["filename"] for f in json.loads(await served.text())["files"]]
    assert page_requests(populated_upstream) == 2


@pytest.fixture
async def stuck_refresh(replicas: Replicas) -> AsyncIterator[None]:
    """Another replica holding tinylib's refresh lock and never letting go (hung, not dead)."""
    async with open_backends(replicas.config(), migrate=True) as stuck, stuck.meta.page_refresh_lock(
        NormalizedName("tinylib"), wait=5
    ) as held:
        assert held
        yield


async def test_a_replica_stuck_on_a_refresh_holds_others_up_for_page_timeout_at_most(
    replicas: Replicas, populated_upstream: Upstream, stuck_refresh: None
):
    """A replica that holds a page's refresh lock and never finishes delays the others' lookups by
    upstream.page_timeout at most; then they ask upstream themselves and answer."""
    replica = await replicas.start(page_timeout=0.5)
    response = await replica.get(PAGE, headers=JSON)
    assert (response.status, response.headers["X-Shadowpi-Cache"]) == (200, "miss")
    assert page_requests(populated_upstream) == 1
