"""Shadowpi clusters for tests.

Processes behind nginx (the `cluster` fixture, for end-to-end tests): real `shadowpi serve` replicas on one
PostgreSQL database and one SeaweedFS bucket (tests/engines/), each with its own empty data dir, and nginx
round-robin in front (deploy/nginx.conf, rewritten for 127.0.0.1 ports). `Cluster.start_replica()` adds one (e.g.
later, on a dead upstream), `Cluster.command()` runs any other shadowpi command on the cluster's backends. Without
nginx the tests that need it are skipped, saying how to install it (`.ci/run` does).

In the test process (`replica()`, for tests that look inside a replica): shadowpi apps on one PostgreSQL database
and one S3 bucket, each with a data dir of its own and a real HTTP listener (other replicas stream downloads from
its peer endpoint).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web

from proxy.app import create_app
from proxy.config_load import build_config
from tests.clients import RunResult, clean_env, run
from tests.engines.postgres import Database
from tests.engines.seaweed import S3Bucket
from tests.servers import reserve_port, serving_process, wait_until_serving

if TYPE_CHECKING:
    from tests.conftest import Upstream

REPO = Path(__file__).parent.parent
NGINX_CONF = REPO / "deploy" / "nginx.conf"
REPLICAS = 3


@dataclass
class ReplicaProcess:
    """One `shadowpi serve` process of the cluster."""

    url: str
    port: int
    data_dir: Path
    proc: asyncio.subprocess.Process

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop it (SIGKILL: as a crash would) and wait for it to exit."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        async with asyncio.timeout(40):
            await self.proc.wait()


@dataclass
class Cluster:
    """Replicas on shared backends, and nginx in front of the first REPLICAS of them (`url`)."""

    database: Database
    bucket: S3Bucket
    upstream: str
    tmp: Path
    replicas: list[ReplicaProcess] = field(default_factory=list)
    url: str = ""  # nginx
    _started: int = 0

    def flags(self, data_dir: Path | None = None) -> list[str]:
        """The options that put a command on the cluster's backends."""
        data = data_dir or self.tmp / "commands"
        return ["--data-dir", str(data), "--database", self.database.url, "--storage", self.bucket.url]

    async def command(self, *args: str, timeout: float = 60) -> RunResult:  # noqa: ASYNC109 - kills the child
        """`shadowpi ARGS` on the cluster's backends (a process of its own, with its own data dir)."""
        return await run(sys.executable, "-m", "proxy", *args, *self.flags(), env=clean_env(), timeout=timeout)

    async def start_replica(self, *, upstream: str | None = None) -> ReplicaProcess:
        """A new replica with an empty data dir of its own (on `upstream`, default the cluster's)."""
        self._started += 1  # before any await: replicas started together get distinct data dirs
        port, data_dir = reserve_port(), self.tmp / f"replica-{self._started}"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy", "serve", "--port", str(port), *self.flags(data_dir),
            "--upstream", upstream or self.upstream, "--log-level", "WARNING",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=clean_env(),
            start_new_session=True,
        )
        replica = ReplicaProcess(f"http://127.0.0.1:{port}", port, data_dir, proc)
        self.replicas.append(replica)
        await wait_until_serving(proc, replica.url, timeout=60)
        return replica


def find_nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def render_nginx_conf(prefix: Path, port: int, replica_ports: list[int]) -> Path:
    """deploy/nginx.conf for this host: listening on 127.0.0.1:`port`, the replicas on 127.0.0.1, in the
    foreground, with its pid, logs and temporary files under `prefix`."""
    nginx = find_nginx()
    assert nginx is not None
    (prefix / "temp").mkdir(parents=True, exist_ok=True)
    text = NGINX_CONF.read_text()
    servers = "\n        ".join(f"server 127.0.0.1:{p};" for p in replica_ports)
    text, n = re.subn(r"(\s*server shadowpi-\d+:8080;)+", "\n        " + servers, text)
    assert n == 1, "deploy/nginx.conf: the replicas' server lines moved"
    text, n = re.subn(r"listen 8080;", f"listen 127.0.0.1:{port};", text)
    assert n == 1, "deploy/nginx.conf: the listen line moved"
    text = text.replace("worker_processes auto;", "worker_processes 1;")
    built = subprocess.run([nginx, "-V"], capture_output=True, text=True, check=False).stderr
    temp = [f"client_body_temp_path {prefix / 'temp' / 'body'};", f"proxy_temp_path {prefix / 'temp' / 'proxy'};"]
    temp += [f"{m}_temp_path {prefix / 'temp' / m};" for m in ("fastcgi", "uwsgi", "scgi")
             if f"--without-http_{m}_module" not in built]
    text = text.replace("http {\n", "http {\n    " + "\n    ".join(temp) + "\n", 1)
    # As root, nginx would switch its workers to `nobody`, who cannot use the temp dir.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    head = f"daemon off;\n{user}pid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'} warn;\n"
    conf = prefix / "nginx.conf"
    conf.write_text(head + text)
    return conf


@contextlib.asynccontextmanager
async def running_nginx(prefix: Path, replica_ports: list[int]) -> AsyncIterator[str]:
    """nginx round-robin over `replica_ports`; yields its URL once it answers /health (through a replica)."""
    nginx = find_nginx()
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx; .ci/run installs it)")
    port = reserve_port()
    conf = render_nginx_conf(prefix, port, replica_ports)
    argv = [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    # SIGQUIT: graceful, the workers finish, then the master exits.
    async with serving_process(argv, port, stop=signal.SIGQUIT, grace=30) as url:
        yield url


@contextlib.asynccontextmanager
async def running_cluster(
    tmp: Path, database: Database, bucket: S3Bucket, upstream: str, *, replicas: int = REPLICAS
) -> AsyncIterator[Cluster]:
    """`replicas` replicas (started together: they migrate the empty database once between them) and nginx."""
    cluster = Cluster(database, bucket, upstream, tmp)
    try:
        await asyncio.gather(*(cluster.start_replica() for _ in range(replicas)))
        async with running_nginx(tmp / "nginx", [r.port for r in cluster.replicas]) as url:
            cluster.url = url
            yield cluster
    finally:
        await asyncio.gather(*(replica.stop() for replica in cluster.replicas))


@pytest.fixture
async def cluster(
    tmp_path: Path, postgres_db: Database, s3_bucket: S3Bucket, populated_upstream: Upstream
) -> AsyncIterator[Cluster]:
    """Three replicas on a fresh PostgreSQL database and bucket, on the sample upstream, behind nginx."""
    async with running_cluster(tmp_path, postgres_db, s3_bucket, populated_upstream.url) as started:
        yield started


# --- replicas in the test process ---

JSON_ACCEPT = {"Accept": "application/vnd.pypi.simple.v1+json"}


@dataclass
class Replica:
    """A replica app in the test process and its URL."""

    app: web.Application
    url: str


@asynccontextmanager
async def replica(
    data_dir: Path, database: str, storage: str, upstream: str, *, port: int | None = None,
    **sections: dict[str, Any],
) -> AsyncIterator[Replica]:
    """A replica listening on 127.0.0.1 (its advertise_url derived from host and port unless set)."""
    port = port or reserve_port()
    raw: dict[str, dict[str, Any]] = {
        "server": {"data_dir": str(data_dir), "host": "127.0.0.1", "port": port},
        "upstream": {"url": upstream},
        "database": {"url": database},
        "storage": {"url": storage},
    }
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    runner = web.AppRunner(create_app(build_config(raw), background=False))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
        yield Replica(runner.app, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


async def file_url(session: aiohttp.ClientSession, base: str, project: str) -> str:
    """The URL of the project's first file on the replica at `base`."""
    async with session.get(f"{base}/simple/{project}/", headers=JSON_ACCEPT) as resp:
        assert resp.status == 200, await resp.text()
        page = await resp.json(content_type=None)
    return f"{base}/simple/{project}/{page['files'][0]['url']}"
