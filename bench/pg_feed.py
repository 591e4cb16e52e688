"""The PostgreSQL change feed's bound, measured: a commit in one process, the stamp watched in another.

    .venv/bin/python bench/pg_feed.py              # 500 commits (about 20 s with the server's start)
    .venv/bin/python bench/pg_feed.py --rounds 2000

It starts the PostgreSQL the tests use (tests/engines/postgres.py) and two shadowpi processes on one database
through open_backends: this one commits (a private name, which moves Topic.PRIVATE), a child process watches
stamp(Topic.PRIVATE) by polling it on every turn of its event loop, and reports when it changed. Two latencies
(CLOCK_MONOTONIC is shared by the processes of one machine): from the write's start (the whole transaction, its
three round trips included) and from the commit returning in this process, both to the stamp changing in the
other: the second is what proxy/backends/postgres/changes.py states as the feed's bound (often negative: the
notification reaches the other process before the committer has its own reply). Prints median, 90th and 99th
percentiles and the worst of each.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import `proxy` and `tests` from the checkout
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from proxy.backends import open_backends
from proxy.backends.changes import Topic
from proxy.config_load import build_config
from proxy.simple.names import NormalizedName
from tests.engines.postgres import PostgresServer


def _config(url: str, data_dir: Path) -> object:
    return build_config({"server": {"data_dir": str(data_dir)}, "database": {"url": url}})


async def watcher(url: str, data_dir: Path) -> None:
    """The child: on each "go" line, watch the stamp until it moves; print when it did (monotonic seconds)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with open_backends(_config(url, data_dir)) as backends:  # type: ignore[arg-type]
        print("ready", flush=True)
        while await reader.readline() == b"go\n":
            before = backends.changes.stamp(Topic.PRIVATE)
            print("watching", flush=True)
            while backends.changes.stamp(Topic.PRIVATE) == before:  # noqa: ASYNC110 - polling is the measurement
                await asyncio.sleep(0)
            print(f"{time.monotonic():.9f}", flush=True)


async def committer(url: str, data_dir: Path, rounds: int) -> list[tuple[float, float]]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--watch", url, "--data-dir", str(data_dir),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    latencies: list[tuple[float, float]] = []
    async with open_backends(_config(url, data_dir), migrate=True) as backends:  # type: ignore[arg-type]
        assert await child.stdout.readline() == b"ready\n"
        for i in range(rounds):
            child.stdin.write(b"go\n")
            assert await child.stdout.readline() == b"watching\n"
            started = time.monotonic()
            await backends.meta.add_private_project(NormalizedName(f"p{i}"))
            committed = time.monotonic()
            seen = float(await child.stdout.readline())
            latencies.append((seen - started, seen - committed))
    child.stdin.close()
    await child.wait()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--watch", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.watch:
        asyncio.run(watcher(args.watch, args.data_dir))
        return 0
    server = PostgresServer.start()
    try:
        database = server.create_database()
        with tempfile.TemporaryDirectory(prefix="shadowpi-bench-feed-") as data_dir:  # nothing is written there
            latencies = asyncio.run(committer(database.url, Path(data_dir), args.rounds))
    finally:
        server.stop()
    for what, column in (("write started", 0), ("commit returned", 1)):
        ms = sorted(1000 * sample[column] for sample in latencies)
        quantiles = statistics.quantiles(ms, n=100)
        print(f"{what} -> stamp moved in another process ({len(ms)} commits): median {statistics.median(ms):.2f} ms,"
              f" p90 {quantiles[89]:.2f} ms, p99 {quantiles[98]:.2f} ms, worst {ms[-1]:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
