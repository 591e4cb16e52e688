"""`shadowpi serve`: validate everything first, then run one server, or supervise N workers that each run one.

Start-up problems end the process with one line and a non-zero status (2: configuration, 1: anything else,
such as a port in use), never a traceback or a live process that does not listen.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace

from proxy.auth import Htpasswd
from proxy.config import Config
from proxy.config_env import prepare_data_dir
from proxy.connections import Limits
from proxy.descriptors import connection_cap, held_files_cap, raise_open_file_limit
from proxy.errors import ConfigError
from proxy.logs import setup_logging
from proxy.memory import limit_malloc_arenas
from proxy.server import ListenError, StopFlag, log_serving, run_server

log = logging.getLogger("shadowpi")


def serve(config: Config) -> int:
    """The `serve` command. Raises ConfigError (exit 2) before anything starts."""
    limit_malloc_arenas()  # before any thread (forked workers inherit it)
    stop = StopFlag().install()
    setup_logging(config.logging.level, config.logging.format)
    validate(config)
    open_files = raise_open_file_limit()
    held = held_files_cap(config.cache.open_files, open_files)
    config = replace(config, cache=replace(config.cache, open_files=held))
    limits = Limits(
        config.server.header_timeout,
        connection_cap(config.server.max_connections, open_files, held),
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
