"""`shadowpi serve`: validate everything first, bind, say "serving" only once bound, run until SIGTERM/SIGINT.

Start-up problems end the process with one line and a non-zero status (2: configuration, 1: anything else,
such as a port in use), never a traceback or a live process that does not listen. A stop signal at any moment
after start-up begins is a clean exit 0: in-flight requests get SHUTDOWN_TIMEOUT seconds to finish.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from aiohttp import web

from proxy import __version__
from proxy.auth import Htpasswd
from proxy.config import Config, mask_url
from proxy.config_env import prepare_data_dir
from proxy.connections import (
    AcceptErrorLog,
    ConnectionGuard,
    GuardedSite,
    Limits,
    connection_cap,
    raise_open_file_limit,
)
from proxy.errors import ConfigError
from proxy.logs import AccessLogger, setup_logging

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


def serve(config: Config) -> int:
    """The `serve` command. Raises ConfigError (exit 2) before anything starts."""
    stop = StopFlag().install()
    setup_logging(config.logging.level, config.logging.format)
    validate(config)
    limits = Limits(
        config.server.header_timeout,
        connection_cap(config.server.max_connections, raise_open_file_limit()),
        config.server.max_connections_per_client,
    )
    log.info("data dir: %s (%s)", config.data_dir, config.data_dir_source)
    try:
        if config.server.workers > 1:
            from proxy.workers import Supervisor

            return Supervisor(config, limits, stop).run()
        return run_server(config, limits, stop, lambda port: log_serving(config, port))
    except ListenError as exc:
        print(f"shadowpi: {exc}", file=sys.stderr)
    except ConfigError:
        raise
    except Exception as exc:  # a damaged database, say: one line; the traceback only when asked for
        log.debug("start-up failed", exc_info=True)
        print(f"shadowpi: cannot run: {type(exc).__name__}: {exc} (--log-level DEBUG shows where)", file=sys.stderr)
    return 1


def validate(config: Config) -> None:
    """Everything that can be checked before starting (data dir, htpasswd). Raises ConfigError."""
    prepare_data_dir(config)
    if config.auth.htpasswd is not None:
        Htpasswd.load(config.auth.htpasswd)


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

    loop = asyncio.get_running_loop()
    loop.set_exception_handler(AcceptErrorLog())
    stopping = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stopping.set)
    if stop.requested is not None:  # a signal that arrived before the loop took over
        stopping.set()
    runner = new_runner(create_app(config, check_upstream=True), config)
    try:
        await runner.setup()  # the app's start-up: on failure, cleanup below closes what was opened
        if stopping.is_set():
            return 0
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
