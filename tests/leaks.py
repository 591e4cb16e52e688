"""Processes a test leaves running: found by a tag in their environment, killed, and blamed on that test.

Every subprocess the tests start gets TESTS_SPAWNED_BY=<this pytest's pid> in its environment (`clean_env()`),
and so do the processes those start (forked workers, pip's and uv's children). After each test, `conftest.py`
looks for live tagged processes: a server or poller that outlived its test could otherwise answer, or send
requests to, a port a later test's server reuses (issue 10, item 30), failing an innocent test much later.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

SPAWNED_BY = "TESTS_SPAWNED_BY"


def tag(*, outlives_test: bool = False) -> dict[str, str]:
    """The environment entry that marks a process as started by this test run. A process a module- or
    session-scoped fixture starts (and stops at its own teardown) `outlives_test`: it is tagged apart, so the
    per-test check leaves it alone."""
    return {SPAWNED_BY: f"{os.getpid()}:fixture" if outlives_test else str(os.getpid())}


def running(owner: int | None = None) -> dict[int, str]:
    """Live (not zombie) processes tagged as started by the run `owner` (default: this one): pid -> command."""
    marker = f"{SPAWNED_BY}={owner or os.getpid()}".encode()
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes()  # empty for zombies and kernel threads
            if marker not in environ.split(b"\0"):
                continue
            command = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        found[int(entry.name)] = command.strip()
    return found


def stop_leftovers(grace: float = 2.0) -> dict[int, str]:
    """Processes of this run still running after `grace` seconds (for ones already being stopped to finish),
    killed; returns what they were (empty: nothing was left)."""
    deadline = time.monotonic() + grace
    leftovers = running()
    while leftovers and time.monotonic() < deadline:  # polling: waiting on other processes to exit
        time.sleep(0.02)
        leftovers = running()
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError):  # exited after all
            os.kill(pid, signal.SIGKILL)
    return leftovers
