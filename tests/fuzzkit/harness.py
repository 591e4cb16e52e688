"""The servers a fuzz run talks to: the fake upstream and shadowpi (create_app), on an event loop in a thread.

Hypothesis drives examples synchronously from the test's thread and sends them over real sockets; the servers run
on their own loop in a background thread, so a request that stalls the server's loop cannot stall the fuzzer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import bcrypt
from aiohttp import web
from aiohttp.typedefs import Handler

from proxy.app import create_app
from proxy.config_load import build_config
from proxy.connections import Limits
from proxy.keys import FILES
from proxy.server import new_runner, new_site
from tests.artifacts import build_sdist, build_wheel
from tests.conftest import SampleDists
from tests.fakes import FakeIndex
from tests.publishing import PASSWORD_AUTH, add_token

T = TypeVar("T")
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
HOST = "127.0.0.1"
# Fixed credentials, so a printed reproducer works in any later run (tokens are stored only as hashes).
FUZZ_TOKEN = "spi_" + "fuzz" * 10 + "tok"
TOKEN_OWNER = "ci"
METRICS_TOKEN = "fuzz-metrics-token"


@dataclass(frozen=True)
class Surface:
    """One shadowpi configuration under fuzz: anonymous reads, or `[auth] read = true` (plus a /metrics token)."""

    name: str
    read_auth: bool
    metrics_token: str | None = None
    bcrypt_cost: int = 4  # of alice's htpasswd entry: 4 keeps fuzzing fast, the bcrypt flood wants a real cost

    def config(self, data_dir: Path, upstream_url: str) -> dict[str, dict[str, Any]]:
        raw: dict[str, dict[str, Any]] = {
            "server": {"data_dir": str(data_dir)},
            "upstream": {"url": upstream_url},
            "auth": {"htpasswd": str(data_dir.parent / f"{self.name}.htpasswd"), "read": self.read_auth},
        }
        if self.metrics_token is not None:
            raw["metrics"] = {"token": self.metrics_token}
        return raw


SURFACES = (Surface("anonymous", read_auth=False), Surface("read-auth", read_auth=True, metrics_token=METRICS_TOKEN))


def sample_dists() -> SampleDists:
    """The artifacts the fake upstream serves (the same as the `dists` fixture)."""
    return SampleDists(
        tinylib_1=build_wheel("tinylib", "1.0", requires_python=">=3.8"),
        tinylib_2=build_wheel("tinylib", "2.0", requires_python=">=3.8"),
        tinylib_2_sdist=build_sdist("tinylib", "2.0", requires_python=">=3.8"),
        depends_on_tiny=build_wheel("depends-on-tiny", "1.0", requires_dist=["tinylib>=1"]),
    )


def prepare_credentials(surface: Surface, data_dir: Path, loops: LoopThread) -> None:
    """The htpasswd file (alice, bcrypt cost 4) and the fixed API token, before the server starts."""
    data_dir.mkdir(parents=True, exist_ok=True)
    user, password = PASSWORD_AUTH
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=surface.bcrypt_cost)).decode()
    (data_dir.parent / f"{surface.name}.htpasswd").write_text(f"{user}:{hashed}\n")
    loops.run(add_token(data_dir, TOKEN_OWNER, FUZZ_TOKEN))


class LoopThread:
    """An event loop running in a daemon thread; run() submits a coroutine and waits for its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fuzz-servers", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.run(_cancel_leftovers())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


async def _cancel_leftovers() -> None:
    # Connections a fuzz request left half-open can outlive runner.cleanup(): end them before the loop closes.
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class ProblemLog(logging.Handler):
    """Collects every log record that reports a problem: ERROR and above, or anything with a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info or "Traceback" in record.getMessage():
            text = f"{record.levelname} {record.name}: {record.getMessage()}"
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            self._lines.append(text)

    def take(self) -> list[str]:
        lines, self._lines = self._lines, []
        return lines


class InFlight:
    """Counts requests inside shadowpi's handlers, so a check runs only once the server has finished its work."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.count += 1
        self._idle.clear()
        try:
            return await handler(request)
        finally:
            self.count -= 1
            if self.count == 0:
                self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()


@dataclass
class InProcessTarget:
    """shadowpi from create_app, served by aiohttp's runner on a real port, as `shadowpi serve` does."""

    surface: Surface
    data_dir: Path
    port: int
    app: web.Application
    runner: web.AppRunner
    loops: LoopThread
    in_flight: InFlight
    problems: ProblemLog
    host: str = HOST
    health_seconds: list[float] = field(default_factory=list)

    def settle(self, timeout: float = 60.0) -> None:
        """Until no handler runs and no download fill is still committing."""
        self.loops.run(self._settled(), timeout)

    async def _settled(self) -> None:
        await self.in_flight.wait_idle()
        await self.app[FILES].settled()

    def take_log(self) -> list[str]:
        return self.problems.take()


async def start_upstream(
    dists: SampleDists, middlewares: tuple[Middleware, ...] = ()
) -> tuple[FakeIndex, web.AppRunner, str]:
    """The fake upstream serving `dists` on a free port, and its index URL; `middlewares` go inside its own."""
    fake = FakeIndex()
    dists.publish(fake)
    app = fake.app()
    app.middlewares.extend(middlewares)  # before the app starts and freezes them
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = runner.addresses[0][1]
    return fake, runner, f"http://{HOST}:{port}/simple/"


async def _start_shadowpi(surface: Surface, data_dir: Path, upstream_url: str) -> tuple[web.AppRunner, InFlight, int]:
    config = build_config(surface.config(data_dir, upstream_url))
    app = create_app(config)
    in_flight = InFlight()
    app.middlewares.insert(0, in_flight.middleware)  # outermost: observation only, before the app freezes
    runner = new_runner(app, config)  # exactly how `shadowpi serve` runs the app: its handler and site
    await runner.setup()
    server = config.server
    limits = Limits(server.header_timeout, server.max_connections, server.max_connections_per_client)
    site = new_site(runner, config, limits, HOST, 0)
    await site.start()
    return runner, in_flight, site.port


@contextmanager
def fuzz_servers(root: Path, surfaces: tuple[Surface, ...] = SURFACES) -> Iterator[dict[str, InProcessTarget]]:
    """The fake upstream and one shadowpi per surface, each on its own data dir under `root`; by surface name."""
    loops = LoopThread()
    problems = ProblemLog()
    logging.getLogger().addHandler(problems)
    runners: list[web.AppRunner] = []
    try:
        _fake, upstream_runner, url = loops.run(start_upstream(sample_dists()))
        runners.append(upstream_runner)
        targets: dict[str, InProcessTarget] = {}
        for surface in surfaces:
            data_dir = root / surface.name / "data"
            prepare_credentials(surface, data_dir, loops)
            runner, in_flight, port = loops.run(_start_shadowpi(surface, data_dir, url))
            runners.append(runner)
            targets[surface.name] = InProcessTarget(
                surface, data_dir, port, runner.app, runner, loops, in_flight, problems
            )
        yield targets
    finally:
        for runner in reversed(runners):
            loops.run(runner.cleanup())
        logging.getLogger().removeHandler(problems)
        loops.close()
