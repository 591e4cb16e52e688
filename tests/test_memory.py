"""proxy/memory.py: the malloc arena limit, measured in a fresh interpreter (glibc's own count of its arenas), and the
start-up heap frozen out of the cyclic collector's full collections."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.clients import clean_env
from tests.servers import reserve_port, wait_until_serving

REPO = Path(__file__).resolve().parent.parent

# Eight threads allocate and hold memory at once; then glibc's malloc_info() lists one <heap> per arena.
COUNT_ARENAS = """
import ctypes, sys, tempfile, threading
from proxy.memory import limit_malloc_arenas
print(limit_malloc_arenas() if sys.argv[1] == "limit" else None)
held, together = [], threading.Barrier(9)
def allocate():
    held.append([bytearray(1000) for _ in range(100)])
    together.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
together.wait()
for thread in threads:
    thread.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.NamedTemporaryFile("r") as out:
    stream = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    print(out.read().count("<heap nr="))
"""

glibc = pytest.mark.skipif(not hasattr(os, "confstr") or "glibc" not in (os.confstr("CS_GNU_LIBC_VERSION") or ""),
                           reason="the arena limit is glibc's")


def _arenas(mode: str, **env: str) -> tuple[str, int]:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    done = subprocess.run([sys.executable, "-c", COUNT_ARENAS, mode], cwd=REPO, env=environ, capture_output=True,
                          text=True, check=True, timeout=60)
    returned, count = done.stdout.split()
    return returned, int(count)


@glibc
def test_threads_share_two_arenas_once_limited():
    assert _arenas("none")[1] > 2  # each thread gets one of its own otherwise
    assert _arenas("limit") == ("True", 2)


@glibc
def test_the_environment_variable_wins():
    returned, count = _arenas("limit", MALLOC_ARENA_MAX="4")
    assert (returned, count) == ("False", 4)


def _arena_heaps(pid: int) -> int:
    """glibc's thread arenas in a process's memory map: each is a 64 MiB-aligned anonymous reservation of 64 MiB, its
    used part rw-p and the rest ---p (the main arena lives in the brk heap and is not counted)."""
    rows = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        start, end = (int(x, 16) for x in fields[0].split("-"))
        rows.append((start, end, fields[1], fields[5] if len(fields) > 5 else ""))
    heaps = 0
    for i, (start, end, perms, name) in enumerate(rows):
        if start % ARENA_SPAN or perms != "rw-p" or name:
            continue
        for later_start, later_end, later_perms, later_name in rows[i + 1 :]:
            if later_start != end or later_perms != "---p" or later_name:
                break
            end = later_end
        heaps += end - start == ARENA_SPAN
    return heaps


ARENA_SPAN = 64 * 1024 * 1024


@glibc
@pytest.mark.parametrize(("variable", "most"), [(None, 1), ("8", None)])
async def test_a_running_server_uses_two_arenas(tmp_path: Path, variable: str | None, most: int | None):
    """`shadowpi serve` after serving requests from its threads: the main arena and one more. With MALLOC_ARENA_MAX
    set, the operator's value wins (and this count sees the extra arenas: the check can fail)."""
    port = reserve_port()
    env = {k: v for k, v in clean_env().items() if k != "MALLOC_ARENA_MAX"}
    if variable:
        env["MALLOC_ARENA_MAX"] = variable
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "serve", "--port", str(port), "--data-dir", str(tmp_path / "data"),
        "--upstream", "http://127.0.0.1:9/simple/", cwd=REPO, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_until_serving(proc, url)
        async with aiohttp.ClientSession() as session:
            for path in ("/simple/", "/ready", "/metrics", "/simple/nothing/") * 5:  # the loop, executor, db
                async with session.get(url + path) as response:
                    await response.read()
        heaps = _arena_heaps(proc.pid)
        if most is not None:
            assert heaps <= most
        else:
            assert heaps > 1
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        await proc.wait()


# A fresh interpreter with the server's imports: a garbage cycle, then the freeze.
FREEZE = """
import gc, weakref
import proxy.app
from proxy.memory import freeze_startup_heap
class Node:
    pass
node = Node()
node.me = node
gone = weakref.ref(node)
del node
frozen = freeze_startup_heap()
print(frozen, gc.get_freeze_count(), gone() is None, len(gc.get_objects()))
"""


def test_the_start_up_heap_is_collected_then_frozen():
    """Garbage is collected before the freeze (never kept for good), and afterwards a full collection walks none
    of the start-up objects (gc.get_objects() lists what it would walk)."""
    done = subprocess.run([sys.executable, "-c", FREEZE], cwd=REPO, env=clean_env(), capture_output=True, text=True,
                          check=True, timeout=60)
    frozen, count, collected, walked = done.stdout.split()
    assert int(frozen) == int(count) > 10_000
    assert collected == "True"
    assert int(walked) < 1_000


async def test_serve_freezes_its_start_up_heap(tmp_path: Path):
    """`shadowpi serve` freezes once its app has started and before it listens (it says so at DEBUG)."""
    port = reserve_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy", "serve", "--port", str(port), "--data-dir", str(tmp_path / "data"),
            "--upstream", "http://127.0.0.1:9/simple/", "--log-level", "DEBUG", cwd=REPO, env=clean_env(),
            stdout=out, stderr=out, start_new_session=True,
        )
    try:
        await wait_until_serving(proc, f"http://127.0.0.1:{port}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        await proc.wait()
    text = log.read_text()
    frozen = [line for line in text.splitlines() if "objects of the start-up heap frozen" in line]
    assert len(frozen) == 1, text[-2000:]
    assert int(frozen[0].split("objects of the start-up heap frozen")[0].split()[-1]) > 10_000
    assert text.index("objects of the start-up heap frozen") < text.index("serving http://")
