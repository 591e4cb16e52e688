"""Servers that tests run as subprocesses: a port nobody else is handed meanwhile, and waiting for the server
without ever talking to a stranger.

Why (issue 10, item 30): tests picked a port by binding port 0 and closing the socket, then started
`shadowpi serve --port N`, which binds it about a second later (interpreter start-up). In that window the kernel
may hand the same port to any bind(0) on the machine: here, measured, once in ~25,000 binds, and every test
server (the fake upstream, the proxy under test) is one, in this run and in every other pytest run sharing the
host. The poller then sent GET /health to whoever had the port, retrying a non-200 answer without a pause for
30 s, and a test elsewhere whose fake upstream had the port failed on "unexpected GET /health".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
from collections.abc import AsyncIterator, Sequence

import aiohttp

from proxy import __version__
from tests.clients import clean_env


def reserve_port() -> int:
    """A loopback port that no bind(0) on this host is handed for the next minute, and that a server may still
    bind explicitly with SO_REUSEADDR (aiohttp's servers do).

    A connection is opened and closed on it so that the accepting side is left in TIME_WAIT: the kernel's
    ephemeral-port search skips ports held by a TIME_WAIT socket, while an explicit SO_REUSEADDR bind may take
    them. (Measured: 0 in 150,000 binds, against 6 for a port that was merely closed.)
    """
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        address = listener.getsockname()
        with socket.create_connection(address) as client:
            accepted, _ = listener.accept()
            accepted.close()  # the server side closes first: its end of the connection is the TIME_WAIT one
            client.recv(1)  # the FIN has arrived: the close is complete before the listener goes
        return int(address[1])


async def wait_until_serving(
    proc: asyncio.subprocess.Process,
    base_url: str,
    *,
    timeout: float = 30.0,  # noqa: ASYNC109 - a deadline for another process, not a timing assertion
) -> None:
    """Poll `base_url`/health until the shadowpi that `proc` is starting answers it.

    Fails at once, naming the cause, when `proc` exits first or when anything but a shadowpi answers on that port
    (another process has the port: this run must not keep talking to it).
    """
    async with aiohttp.ClientSession() as session, asyncio.timeout(timeout):
        while proc.returncode is None:
            try:
                async with session.get(base_url + "/health") as resp:
                    if resp.status == 200 and _is_our_health(await resp.read()):
                        return
                    raise AssertionError(
                        f"{base_url} is answered by another server ({resp.status}, {await resp.text()!r}), not by"
                        f" the shadowpi this test started (pid {proc.pid}): another process has the port"
                    )
            except aiohttp.ClientConnectionError:  # not listening yet
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await proc.wait()
    raise AssertionError(f"the shadowpi this test started exited with {proc.returncode} before it answered")


@contextlib.asynccontextmanager
async def serving_process(
    argv: Sequence[str], port: int, *, stop: signal.Signals = signal.SIGTERM, grace: float = 40.0
) -> AsyncIterator[str]:
    """Run `argv` (a server that will listen on `port`) in its own process group with its output discarded; yield
    its base URL once it answers /health (wait_until_serving); on the way out send `stop` to the whole group (forked
    workers too) and wait up to `grace` seconds for it to exit."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=clean_env(),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_serving(proc, url)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, stop)
        async with asyncio.timeout(grace):
            await proc.wait()


def _is_our_health(body: bytes) -> bool:
    """Whether a /health answer is shadowpi's (of this version)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("status") == "ok" and doc.get("version") == __version__
