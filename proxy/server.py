"""Running one server process: bind, say "serving" only once bound, run until SIGTERM/SIGINT (proxy.serve is the
command; proxy.workers runs this in each worker).

A stop signal at any moment after start-up begins is a clean exit 0: in-flight requests get SHUTDOWN_TIMEOUT
seconds to finish. An address that cannot be bound is a ListenError with the one line to show.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

from aiohttp import web

from proxy import __version__
from proxy.config import Config, mask_url
from proxy.connections import ConnectionGuard, GuardedSite, Limits
from proxy.descriptors import AcceptErrorLog
from proxy.logs import AccessLogger
from proxy.memory import freeze_startup_heap

log = logging.getLogger("shadowpi")
SHUTDOWN_TIMEOUT = 30.0  # seconds in-flight requests (downloads) get to finish after SIGTERM
KEEPALIVE_TIMEOUT = 75.0  # seconds an idle keep-alive connection stays open (aiohttp's run_app default)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ListenError(Exception):
    """The server could not bind its address; str() is the one line to show."""


class StopFlag:
    """Records SIGTERM/SIGINT with a plain signal handler while no event loop handles them (before the loop
    starts, between fork and the loop in a worker, after the loop ends), so a stop is never lost to the default
    action of dying by the signal."""

    def __init__(self) -> None:
        self.requested: int | None = None

    def install(self) -> StopFlag:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._record)
        return self

    def _record(self, signum: int, _frame: FrameType | None) -> None:
        self.requested = signum


def log_serving(config: Config, port: int) -> None:
    upstream = "offline" if config.upstream.offline else mask_url(config.upstream.url)
    log.info(
        "shadowpi %s serving http://%s:%d/simple/ (upstream: %s, data: %s, workers: %d)",
        __version__, config.server.host, port, upstream, config.data_dir, config.server.workers,
    )


def run_server(config: Config, limits: Limits, stop: StopFlag, on_listening: Callable[[int], None], *,
               reuse_port: bool = False) -> int:
    """Serve until a stop signal; 0 after a clean shutdown. Raises ListenError when the address cannot be bound."""
    try:
        return asyncio.run(_serve(config, limits, stop, on_listening, reuse_port))
    finally:
        stop.install()  # asyncio.run restored the default actions: keep recording until the process exits


async def _serve(
    config: Config, limits: Limits, stop: StopFlag, on_listening: Callable[[int], None], reuse_port: bool
) -> int:
    from proxy.app import create_app  # the server's imports are only paid for by `serve`
    from proxy.reload import reload_access

    loop = asyncio.get_running_loop()
    loop.set_exception_handler(AcceptErrorLog())
    stopping = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stopping.set)
    if stop.requested is not None:  # a signal that arrived before the loop took over
        stopping.set()
    app = create_app(config, check_upstream=True)
    loop.add_signal_handler(signal.SIGHUP, reload_access, app)  # indexes, groups, users: no connection dropped
    runner = new_runner(app, config)
    try:
        await runner.setup()  # the app's start-up: on failure, cleanup below closes what was opened
        if stopping.is_set():
            return 0
        log.debug("%d objects of the start-up heap frozen", freeze_startup_heap())
        site = new_site(runner, config, limits, config.server.host, config.server.port, reuse_port=reuse_port)
        try:
            await site.start()
        except OSError as exc:
            raise ListenError(listen_error(config, exc)) from None
        on_listening(site.port)
        await stopping.wait()
        log.info("stopping: finishing in-flight requests (up to %g s)", SHUTDOWN_TIMEOUT)
        return 0
    finally:
        await runner.cleanup()


def _handler_args(config: Config) -> dict[str, Any]:
    return {"access_log_class": AccessLogger, "access_log_format": config.logging.format,
            "keepalive_timeout": KEEPALIVE_TIMEOUT}


def new_runner(app: web.Application, config: Config) -> web.AppRunner:
    """The runner `serve` uses (access log, keep-alive, shutdown grace); also for tests that fuzz a real server."""
    return web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT, **_handler_args(config))


def new_site(runner: web.AppRunner, config: Config, limits: Limits, host: str, port: int, *,
             reuse_port: bool = False) -> GuardedSite:
    """The listening site `serve` uses: header timeout, connection caps, client mistakes logged as one line."""
    return GuardedSite(runner, host, port, ConnectionGuard(limits), reuse_port=reuse_port,
                       handler_args=_handler_args(config))


def listen_error(config: Config, exc: OSError) -> str:
    where = f"cannot listen on {config.server.host}:{config.server.port}"
    hints = {
        errno.EADDRINUSE: "the address is already in use (another shadowpi? choose another --port)",
        errno.EACCES: "permission denied (ports below 1024 need privileges)",
        errno.EADDRNOTAVAIL: "this machine has no such address (check --host)",
    }
    return f"{where}: {hints.get(exc.errno or 0, exc.strerror or str(exc))}"
