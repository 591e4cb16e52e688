"""What both engines need: free ports, a private temp dir per server, polling with a deadline, stale-run cleanup.

Every server gets a directory `<tmp>/shadowpi-<engine>-XXXX/` holding its data, logs, sockets and an `owner`
file with the pid of the test process that started it. A test run killed with SIGKILL never reaches its
teardown; the next run that starts the same engine stops those orphans and deletes their directories
(`reap_orphans`), so a developer machine does not collect servers and gigabytes in /tmp.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PORT_CEILING = 55536  # weed also listens on port + 10000 (gRPC); 55535 + 10000 is still a valid port
_PORT_FLOOR = 10000
_DEFAULT_EPHEMERAL = (32768, 60999)


class EngineUnavailable(Exception):
    """An engine cannot be started here; the message says what to install or run."""


def ephemeral_ports() -> tuple[int, int]:
    """The kernel's range for outgoing connections, where a listening test server would collide with clients."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return _DEFAULT_EPHEMERAL


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:`port` can be bound right now (someone may still take it before the server does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_ports(count: int, *, also_free_at: int = 0) -> list[int]:
    """`count` distinct free ports below 55536, outside the ephemeral range, chosen at random.

    With `also_free_at=N`, port + N must be free (and outside the ephemeral range) as well. Random choice keeps
    concurrent test runs on one machine apart; a server that still loses the race is restarted on new ports
    by its caller.
    """
    low, high = ephemeral_ports()

    def usable(port: int) -> bool:
        return not low <= port <= high and port_is_free(port)

    chosen: list[int] = []
    for _ in range(10_000):
        port = _PORT_FLOOR + secrets.randbelow(PORT_CEILING - _PORT_FLOOR)
        taken = {p for c in chosen for p in (c, c + also_free_at)}
        if port in taken or port + also_free_at in taken:
            continue
        if usable(port) and (not also_free_at or usable(port + also_free_at)):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise EngineUnavailable(f"found no {count} free ports on 127.0.0.1 below {PORT_CEILING}")


def wait_until(ready: Callable[[], bool], *, timeout: float, what: str, alive: Callable[[], str | None]) -> None:
    """Poll `ready()` until it is true. `alive()` returns a reason when the server died, which ends the wait.

    This waits on another process, so polling with a deadline is the synchronisation we have.
    """
    deadline = time.monotonic() + timeout
    while True:
        died = alive()
        if died is not None:
            raise EngineUnavailable(f"{what}: {died}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise EngineUnavailable(f"{what}: not ready after {timeout:g} s")
        time.sleep(0.05)


def make_server_dir(engine: str) -> Path:
    """A new private directory `<tmp>/shadowpi-<engine>-XXXX` recording this process as its owner."""
    base = Path(tempfile.mkdtemp(prefix=f"shadowpi-{engine}-"))
    (base / "owner").write_text(str(os.getpid()))
    return base


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to someone else
        return True
    return True


def reap_orphans(engine: str, stop: Callable[[Path], None]) -> None:
    """Stop and delete the servers of `engine` whose owning test process no longer exists.

    Directories without an owner file (being created right now by another run) are left alone.
    """
    for base in Path(tempfile.gettempdir()).glob(f"shadowpi-{engine}-*"):
        try:
            owner = int((base / "owner").read_text())
        except (OSError, ValueError):
            continue
        if owner == os.getpid() or _pid_alive(owner):
            continue
        with contextlib.suppress(Exception):  # best effort: a half-dead orphan must not fail this run
            stop(base)
        shutil.rmtree(base, ignore_errors=True)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
