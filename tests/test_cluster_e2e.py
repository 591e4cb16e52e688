"""End to end on a cluster: three `shadowpi serve` replicas on PostgreSQL + SeaweedFS behind nginx round-robin
(tests/cluster.py), with real pip, uv and twine: installs with dependencies through nginx (one upstream GET per file
in the whole cluster), a publish on one replica installed through another and yanked through a third, a replica
started later with an empty data dir on a dead upstream, and `shadowpi migrate` of a single-machine install."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.artifacts import build_wheel
from tests.clients import clean_env, run, run_pip, run_uv
from tests.cluster import Cluster, running_cluster
from tests.conftest import SampleDists, Upstream
from tests.engines.postgres import Database
from tests.engines.seaweed import S3Bucket
from tests.servers import reserve_port, serving_process
from tests.test_e2e_publish import client_env, twine, write_dist

pytestmark = [pytest.mark.e2e, pytest.mark.engines]

PRIVATE = build_wheel("acme-internal", "1.0.0", requires_dist=["tinylib>=1"])
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
WITHIN = 1.0  # seconds: what issue 13 promises for a change on one replica to show on every other


async def shows_within(seconds: float, check: Callable[[], Awaitable[bool]]) -> None:
    """Poll `check` (other processes are to show a change) until it holds; fails after `seconds`."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < seconds, f"not shown within {seconds} s"
        await asyncio.sleep(0.02)


async def files(session: aiohttp.ClientSession, base: str, name: str) -> list[dict[str, Any]]:
    async with session.get(f"{base}/simple/{name}/", headers=JSON) as resp:
        return list((await resp.json(content_type=None))["files"]) if resp.status == 200 else []


async def pip_install(index: str, target: Path, *reqs: str) -> None:
    result = await run_pip("install", "--target", str(target), "--index-url", f"{index}/simple/", *reqs)
    assert result.returncode == 0, result.stderr


async def create_token(cluster: Cluster) -> str:
    created = await cluster.command("token", "create", "--user", "ci")
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def dead_upstream() -> str:
    """An upstream URL nothing listens on: a replica on it has only the cluster's state to serve from."""
    return f"http://127.0.0.1:{reserve_port()}/simple/"


async def test_pip_and_uv_install_through_nginx_and_a_late_replica_needs_no_upstream(
    tmp_path: Path, cluster: Cluster, populated_upstream: Upstream, dists: SampleDists
):
    """pip, then uv, install depends-on-tiny (and its dependency tinylib) through nginx: each upstream file is
    fetched once in the whole cluster, whichever replicas answered. A fourth replica started afterwards with an
    empty data dir and a dead upstream installs the same from the cluster's database and bucket alone."""
    await pip_install(cluster.url, tmp_path / "pip", "depends-on-tiny")
    venv = tmp_path / "venv"
    assert (await run_uv("venv", "--python", sys.executable, str(venv))).returncode == 0
    uv = await run_uv("pip", "install", "--python", str(venv), "--index-url", f"{cluster.url}/simple/",
                      "depends-on-tiny")
    assert uv.returncode == 0, uv.stderr
    for target in (tmp_path / "pip", *venv.glob("lib/python*/site-packages")):
        assert (target / "depends_on_tiny-1.0.dist-info").is_dir()
        assert (target / "tinylib-2.0.dist-info").is_dir()
    downloads = {path: n for path, n in populated_upstream.fake.hits.items() if path.startswith("/files/")}
    wheels = ["/files/depends-on-tiny/depends_on_tiny-1.0-py3-none-any.whl",
              "/files/tinylib/tinylib-2.0-py3-none-any.whl"]
    assert downloads == {path + suffix: 1 for path in wheels for suffix in ("", ".metadata")}
    late = await cluster.start_replica(upstream=dead_upstream())
    asked = sum(populated_upstream.fake.hits.values())
    await pip_install(late.url, tmp_path / "late", "depends-on-tiny")
    assert (tmp_path / "late" / "tinylib-2.0.dist-info").is_dir()
    assert sum(populated_upstream.fake.hits.values()) == asked


async def test_publish_on_one_replica_install_through_another_yank_through_a_third(
    tmp_path: Path, cluster: Cluster, populated_upstream: Upstream
):
    """twine uploads to replica 1 (token made by `shadowpi token create` on the cluster's backends); replica 2
    lists it within a second and pip installs it from there with its upstream dependency; a yank through replica
    3's API shows on replicas 1 and 2 within a second."""
    token = await create_token(cluster)
    first, second, third = cluster.replicas
    env = client_env(tmp_path / "home")
    async with aiohttp.ClientSession() as session:
        assert await files(session, second.url, "acme-internal") == []  # asked before the upload
        uploaded = await twine("--repository-url", f"{first.url}/legacy/", "-u", "__token__", "-p", token,
                               *write_dist(tmp_path / "dist", PRIVATE), env=env)
        assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr

        async def listed() -> bool:
            return [f["filename"] for f in await files(session, second.url, "acme-internal")] == [PRIVATE.filename]

        await shows_within(WITHIN, listed)
        await pip_install(second.url, tmp_path / "pip", "acme-internal")
        assert (tmp_path / "pip" / "acme_internal-1.0.0.dist-info").is_dir()
        assert (tmp_path / "pip" / "tinylib-2.0.dist-info").is_dir()
        auth = {"Authorization": aiohttp.encode_basic_auth("__token__", token)}
        async with session.post(f"{third.url}/api/projects/acme-internal/1.0.0/yank", headers=auth,
                                json={"reason": "broken"}) as resp:
            assert resp.status == 200, await resp.text()

        async def yanked_everywhere() -> bool:
            seen = [[f.get("yanked") for f in await files(session, r.url, "acme-internal")] for r in (first, second)]
            return seen == [["broken"], ["broken"]]

        await shows_within(WITHIN, yanked_everywhere)


@contextlib.asynccontextmanager
async def single_machine(data_dir: Path, upstream: str) -> AsyncIterator[str]:
    """`shadowpi serve` the way one machine runs it: SQLite and files in `data_dir`."""
    port = reserve_port()
    argv = [sys.executable, "-m", "proxy", "serve", "--port", str(port), "--data-dir", str(data_dir),
            "--upstream", upstream, "--log-level", "WARNING"]
    async with serving_process(argv, port) as url:
        yield url


async def test_migrate_a_single_machine_install_then_install_from_the_cluster(
    tmp_path: Path, postgres_db: Database, s3_bucket: S3Bucket, populated_upstream: Upstream
):
    """A single-machine install with a twine upload and a pip install cached, migrated with `shadowpi migrate`
    into a cluster whose replicas have a dead upstream: pip installs the private package and the cached one,
    with their dependencies, through nginx."""
    old = tmp_path / "old"
    created = await run(sys.executable, "-m", "proxy", "token", "create", "--user", "ci", "--data-dir", str(old),
                        env=clean_env(), timeout=60)
    token = created.stdout.strip().splitlines()[-1]
    async with single_machine(old, populated_upstream.url) as url:
        uploaded = await twine("--repository-url", f"{url}/legacy/", "-u", "__token__", "-p", token,
                               *write_dist(tmp_path / "dist", PRIVATE), env=client_env(tmp_path / "home"))
        assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
        await pip_install(url, tmp_path / "warm", "depends-on-tiny")
    async with running_cluster(tmp_path / "cluster", postgres_db, s3_bucket, dead_upstream()) as cluster:
        migrated = await cluster.command("migrate", "--from-data-dir", str(old), timeout=120)
        assert migrated.returncode == 0, migrated.stderr
        assert migrated.stdout.splitlines()[-1].startswith(f"migrated {old}: ")
        asked = sum(populated_upstream.fake.hits.values())
        await pip_install(cluster.url, tmp_path / "pip", "acme-internal", "depends-on-tiny")
        for installed in ("acme_internal-1.0.0", "depends_on_tiny-1.0", "tinylib-2.0"):
            assert (tmp_path / "pip" / f"{installed}.dist-info").is_dir()
        assert sum(populated_upstream.fake.hits.values()) == asked


BIG = build_wheel("clusterlib", "1.0", payload_size=2 * 2**20)  # 32 chunks of the fake's 64 KiB
BIG_PATH = f"/files/clusterlib/{BIG.filename}"
GUARD = 90  # seconds: a broken test fails instead of hanging (never a timing assertion)


async def file_link(session: aiohttp.ClientSession, base: str) -> str:
    """The URL of clusterlib's wheel as the replica (or nginx) at `base` lists it."""
    [entry] = await files(session, base, "clusterlib")
    return f"{base}/simple/clusterlib/{entry['url']}"


async def test_a_herd_of_32_clients_across_the_replicas_is_one_upstream_get(
    cluster: Cluster, populated_upstream: Upstream
):
    """32 clients ask nginx (round-robin over three replicas) for one cold 2 MiB file at once: upstream is asked
    once in the whole cluster, every client has bytes while upstream still holds back the rest, and all 32 get
    exactly the file."""
    populated_upstream.fake.add(BIG)
    gate = populated_upstream.fake.file_stream_gate = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack, asyncio.timeout(GUARD):
        session = await stack.enter_async_context(aiohttp.ClientSession())
        url = await file_link(session, cluster.url)
        responses = await asyncio.gather(*(stack.enter_async_context(session.get(url)) for _ in range(32)))
        assert [r.status for r in responses] == [200] * 32
        firsts = await asyncio.gather(*(r.content.readexactly(1000) for r in responses))
        assert populated_upstream.fake.hits[BIG_PATH] == 1  # the gate is still closed: all 32 are mid-file
        gate.set()
        bodies = await asyncio.gather(*(r.read() for r in responses))
    assert [first + body == BIG.data for first, body in zip(firsts, bodies, strict=True)] == [True] * 32
    assert populated_upstream.fake.hits[BIG_PATH] == 1


async def test_sigkill_of_the_leading_replica_mid_download(
    tmp_path: Path, cluster: Cluster, populated_upstream: Upstream
):
    """The replica leading a cold download is SIGKILLed while another replica's client streams from it: that
    replica takes the download over (a Range request from its offset) and its client gets exactly the file; the
    next request through nginx (which skips the dead replica) is served from the cluster without asking upstream
    again, and pip installs through nginx as before."""
    populated_upstream.fake.add(BIG)
    gate = populated_upstream.fake.file_stream_gate = asyncio.Event()
    leader, follower, _ = cluster.replicas
    async with contextlib.AsyncExitStack() as stack, asyncio.timeout(GUARD):
        session = await stack.enter_async_context(aiohttp.ClientSession())
        led = await stack.enter_async_context(session.get(await file_link(session, leader.url)))
        await populated_upstream.fake.wait_for_request(BIG_PATH)
        following = await stack.enter_async_context(session.get(await file_link(session, follower.url)))
        assert (led.status, following.status) == (200, 200)
        first = await following.content.readexactly(1000)  # streaming from the leader
        await leader.stop(signal.SIGKILL)
        gate.set()
        assert first + await following.read() == BIG.data
        led.release()
        async with session.get(await file_link(session, cluster.url)) as again:
            assert (again.status, await again.read() == BIG.data) == (200, True)
        assert populated_upstream.fake.hits[BIG_PATH] == 2  # the dead leader's GET and the takeover's Range GET
    await pip_install(cluster.url, tmp_path / "pip", "clusterlib")
    assert (tmp_path / "pip" / "clusterlib-1.0.dist-info").is_dir()
