"""Shared fixtures: the fake upstream index and a set of prebuilt sample distributions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from tests.artifacts import Artifact, build_sdist, build_wheel
from tests.fakes import FakeIndex
from tests.leaks import stop_leftovers


@pytest.fixture(autouse=True)
def no_process_left_running() -> Iterator[None]:
    """Fails the test that leaves a process it started running (and kills it), instead of a later test that a
    leftover server or poller disturbs by reusing its port (issue 10, item 30)."""
    yield
    leftovers = stop_leftovers()
    if leftovers:
        listed = "; ".join(f"pid {pid}: {command}" for pid, command in leftovers.items())
        pytest.fail(f"the test left processes running (now killed): {listed}", pytrace=False)


@dataclass
class Upstream:
    """A FakeIndex and the running TestServer that serves it."""

    fake: FakeIndex
    server: TestServer

    @property
    def url(self) -> str:
        """The index URL (`.../simple/`) to configure a client or the proxy with."""
        return str(self.server.make_url("/simple/"))


@dataclass(frozen=True)
class SampleDists:
    """Prebuilt artifacts: tinylib 1.0/2.0 wheels, a tinylib 2.0 sdist, depends-on-tiny needing tinylib>=1."""

    tinylib_1: Artifact
    tinylib_2: Artifact
    tinylib_2_sdist: Artifact
    depends_on_tiny: Artifact

    @property
    def all(self) -> tuple[Artifact, ...]:
        return (self.tinylib_1, self.tinylib_2, self.tinylib_2_sdist, self.depends_on_tiny)

    def publish(self, fake: FakeIndex) -> None:
        """Add every sample artifact to `fake` with default FakeFile settings."""
        for artifact in self.all:
            fake.add(artifact)


@pytest.fixture(scope="session")
def dists() -> SampleDists:
    """Sample artifacts, built once per session (building is deterministic, so sharing is safe)."""
    return SampleDists(
        tinylib_1=build_wheel("tinylib", "1.0", requires_python=">=3.8"),
        tinylib_2=build_wheel("tinylib", "2.0", requires_python=">=3.8"),
        tinylib_2_sdist=build_sdist("tinylib", "2.0", requires_python=">=3.8"),
        depends_on_tiny=build_wheel("depends-on-tiny", "1.0", requires_dist=["tinylib>=1"]),
    )


@pytest.fixture
async def upstream(aiohttp_server: AiohttpServer) -> Upstream:
    """An empty FakeIndex, already listening on 127.0.0.1 when the test starts."""
    fake = FakeIndex()
    return Upstream(fake, await aiohttp_server(fake.app()))


@pytest.fixture
async def populated_upstream(upstream: Upstream, dists: SampleDists) -> Upstream:
    """The `upstream` fixture with every sample artifact published."""
    dists.publish(upstream.fake)
    return upstream


# Fixtures imported last because they build on the ones above: shadowpi itself, and the real engines
# (PostgreSQL, SeaweedFS S3; started on first use, see tests/engines/fixtures.py), and a cluster of them.
from tests.cluster import cluster  # noqa: E402, F401 - three replicas behind nginx (tests/cluster.py)
from tests.engines.fixtures import postgres_db, postgres_server, s3_bucket, seaweed_server  # noqa: E402, F401
from tests.proxy_fixtures import make_proxy, proxy  # noqa: E402, F401
