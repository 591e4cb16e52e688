"""One attack against a real `shadowpi serve`, while a legitimate real `pip install` goes through the same server.

The fake upstream (with huge pages under /simple/huge-*) and the attack run on event loops in threads of their
own; pip is a subprocess. The caller decides what to assert (tests: correctness) or measure (bench: peak RSS).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.clients import clean_env
from tests.fuzzkit import attacks
from tests.fuzzkit.attacks import AttackRun
from tests.fuzzkit.harness import FUZZ_TOKEN, LoopThread, Surface, sample_dists, start_upstream
from tests.fuzzkit.serve import ServeTarget

PIP_TIMEOUT = 300.0
ANONYMOUS = Surface("anonymous", read_auth=False)
# A real bcrypt cost (htpasswd -B uses 5, many operators raise it): each wrong password costs the server ~0.1 s.
# 300 slow connections must not exhaust a server that may open only this many files (a low, but real, limit).
NOFILE = 256
GUARDED = Surface("read-auth", read_auth=True, bcrypt_cost=10)


@dataclass(frozen=True)
class Siege:
    """An attack (item of issue 10), the surface it needs, and how to start it against host:port."""

    item: int
    name: str
    surface: Surface
    launch: Callable[[str, int], AttackRun]  # called on the attack loop
    nofile: int | None = None  # the server's file-descriptor limit (slowloris: a host with a low limit)


def sieges(*, bomb_entries: int = 300_000, parts: int = 100_000, connections: int = 300, flooders: int = 32
           ) -> list[Siege]:
    """The five attacks; sizes scale (tests use smaller ones than bench/attacks.py). Bodies are built at launch."""

    def http(name: str, worker: Callable[[], attacks.Worker], concurrency: int) -> Callable[[str, int], AttackRun]:
        return lambda host, port: attacks.start(name, f"http://{host}:{port}", worker(), concurrency)

    return [
        Siege(4, "bcrypt-flood", GUARDED, http("bcrypt", lambda: attacks.bcrypt_flood, flooders)),
        Siege(5, "zip-bomb", ANONYMOUS, http("zip", lambda: attacks.poster(*attacks.bomb_upload(bomb_entries)), 2)),
        Siege(6, "part-flood", ANONYMOUS, http("parts", lambda: attacks.poster(*attacks.part_flood(parts)), 4)),
        Siege(7, "huge-pages", ANONYMOUS, http("pages", lambda: attacks.huge_pages, 4)),
        Siege(8, "slowloris", ANONYMOUS, lambda h, p: attacks.slowloris(h, p, connections), nofile=NOFILE),
    ]


@dataclass
class Field:
    """What a siege has running: the server, the attack, and the loops behind them."""

    server: ServeTarget
    attack: AttackRun
    attack_loop: LoopThread

    def pip_install(
        self, target_dir: Path, *requirements: str, retries: int = 5, timeout: float = PIP_TIMEOUT
    ) -> tuple[int, str]:
        """A real `pip install` through the server (token credentials when reads need them); (exit code, output).

        pip's defaults otherwise: 15 s read timeout, `retries` retries (pip's default is 5).
        """
        userinfo = f"__token__:{FUZZ_TOKEN}@" if self.server.surface.read_auth else ""
        index = f"http://{userinfo}{self.server.host}:{self.server.port}/simple/"
        argv = [sys.executable, "-m", "pip", "install", "--index-url", index, "--target", str(target_dir),
                "--no-cache-dir", "--disable-pip-version-check", "--retries", str(retries), *requirements]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return -1, f"pip did not finish within {timeout} s"
        return done.returncode, done.stdout + done.stderr


@contextmanager
def siege(spec: Siege, root: Path, *, huge_files: int = 100_000, engage_timeout: float = 120.0) -> Iterator[Field]:
    """Server up, attack engaged (it has had answers, or all its connections are open); torn down on exit."""
    upstream_loop, attack_loop = LoopThread(), LoopThread()
    middleware = attacks.huge_pages_middleware(huge_files)
    _fake, upstream, url = upstream_loop.run(start_upstream(sample_dists(), (middleware,)))
    server = ServeTarget(spec.surface, root, url, nofile=spec.nofile)
    failed = True
    try:
        server.start(upstream_loop)
        run = attack_loop.run(_launch(spec, server))
        try:
            attack_loop.run(run.engaged.wait(), engage_timeout)
            yield Field(server, run, attack_loop)
            failed = False
        finally:
            attack_loop.run(run.halt())
    finally:
        # A server that lost to the attack may take its whole shutdown grace: after a failure, do not wait for it.
        server.exit_code = server.stop(grace=5.0 if failed else 40.0)
        upstream_loop.run(upstream.cleanup())
        attack_loop.close()
        upstream_loop.close()


async def _launch(spec: Siege, server: ServeTarget) -> AttackRun:
    return spec.launch(server.host, server.port)


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set size so far (VmHWM), in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def wait_seconds(seconds: float) -> None:
    """Let an attack run for a while (bench only: measuring under a sustained attack, not synchronisation)."""
    time.sleep(seconds)
