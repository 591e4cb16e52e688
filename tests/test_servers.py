"""The test infrastructure for servers run as subprocesses (tests/servers.py) and the guard against processes a
test leaves running (tests/leaks.py, conftest.py): the causes of issue 10's item 30, where a poller that talked to
whoever had a reused port made an innocent test fail on "unexpected GET /health"."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from tests.clients import clean_env, run
from tests.conftest import Upstream
from tests.servers import reserve_port, wait_until_serving

REPO = Path(__file__).resolve().parent.parent


def alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie has finished running)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


async def sleeper() -> asyncio.subprocess.Process:
    """A child process that never listens anywhere: stands for a server that could not bind its port."""
    return await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(600)", env=clean_env())


async def test_waiting_stops_at_the_first_answer_from_a_stranger(upstream: Upstream):
    """When something other than the shadowpi being started answers on its port (another process took the port),
    waiting fails at once, naming that, after a single request: it never keeps talking to a stranger."""
    proc = await sleeper()
    try:
        with pytest.raises(AssertionError, match="answered by another server"):
            await wait_until_serving(proc, str(upstream.server.make_url("")).rstrip("/"))
    finally:
        proc.kill()
        await proc.wait()
    assert upstream.fake.requests == ["/health"]


async def test_waiting_fails_when_the_server_exits_first():
    """A server that exits before it answers (say, its port was taken) fails the wait with its exit status."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "raise SystemExit(3)", env=clean_env())
    with pytest.raises(AssertionError, match="exited with 3 before it answered"):
        await wait_until_serving(proc, f"http://127.0.0.1:{reserve_port()}")


def test_a_reserved_port_is_not_handed_out_by_bind_0_but_can_be_bound():
    """No bind to port 0 (how every test server, here or in another pytest run, gets its port) is handed a
    reserved port, while a server binding it explicitly with SO_REUSEADDR (as aiohttp does) gets it."""
    port = reserve_port()
    for _ in range(3000):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            assert s.getsockname()[1] != port
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()


INNER_TEST = """
import subprocess
import sys
from pathlib import Path

from tests.clients import clean_env


def test_forgets_its_server():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], env=clean_env())
    Path("pid").write_text(str(proc.pid))
"""


async def test_a_test_that_leaves_a_process_running_fails_and_the_process_is_killed(tmp_path: Path):
    """A test that returns with a process it started still running is reported as an error naming that process,
    and the process is killed, so it cannot disturb the tests after it."""
    (tmp_path / "conftest.py").write_text("from tests.conftest import no_process_left_running  # noqa: F401\n")
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**clean_env(), "PYTHONPATH": str(REPO)}
    result = await run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_inner.py",
                       env=env, cwd=tmp_path)
    pid = int((tmp_path / "pid").read_text())
    try:
        assert "1 passed, 1 error" in result.stdout, result.stdout
        assert f"the test left processes running (now killed): pid {pid}: " in result.stdout, result.stdout
        assert not alive(pid)
    finally:
        if alive(pid):  # without the guard: it is ours to stop (started by the run this test started)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
