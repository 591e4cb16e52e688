"""What every command shares: the common options (config, data dir, backends, upstream), the config they build, the
data-dir line, and running an async command with one line on stderr for a ProxyError.

A leaf for the command modules (proxy.cli, proxy.warm.command, proxy.bundle.command): it imports none of them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from proxy.backends.metadata import SchemaMismatch
from proxy.config import Config
from proxy.config_load import load_config
from proxy.errors import ProxyError

__all__ = ["add_common", "announce_data_dir", "config_from_args", "run"]


def add_common(parser: argparse.ArgumentParser, *, upstream_help: str | None = None) -> None:
    """The options of every command; `upstream_help` (argparse.SUPPRESS) hides --upstream where it means nothing."""
    parser.add_argument("--config", type=Path, help="TOML config file (flags override it)")
    parser.add_argument("--data-dir", type=Path, help="where the database and files live")
    parser.add_argument("--database", metavar="URL", help='the metadata database (default "sqlite:", in the data dir)')
    parser.add_argument("--storage", metavar="URL", help='where files are stored (default "file:", the data dir)')
    parser.add_argument("--upstream", help=upstream_help or "upstream simple-index URL (default https://pypi.org/simple/)")


def config_from_args(args: argparse.Namespace) -> Config:
    """Defaults < config file (--config or SHADOWPI_CONFIG) < SHADOWPI_* variables < flags.

    Raises ConfigError naming the key (or variable) at fault; SHADOWPI_* variables that look like misspelt
    settings are only warned about, on stderr.
    """
    flags: dict[str, dict[str, object]] = {
        "server": {
            "host": getattr(args, "host", None),
            "port": getattr(args, "port", None),
            "data_dir": str(args.data_dir) if args.data_dir else None,
            "workers": getattr(args, "workers", None),
        },
        "upstream": {"url": args.upstream, "offline": getattr(args, "offline", None)},
        "database": {"url": args.database},
        "storage": {"url": args.storage},
        "auth": {"htpasswd": str(args.htpasswd) if getattr(args, "htpasswd", None) else None},
        "logging": {"level": getattr(args, "log_level", None), "format": getattr(args, "log_format", None)},
    }
    overrides = {section: {k: v for k, v in values.items() if v is not None} for section, values in flags.items()}
    path = args.config or (Path(os.environ["SHADOWPI_CONFIG"]) if os.environ.get("SHADOWPI_CONFIG") else None)
    return load_config(path, overrides, os.environ, warn=_warn)


def _warn(message: str) -> None:
    print(f"shadowpi: warning: {message}", file=sys.stderr)


def announce_data_dir(config: Config) -> None:
    """The one stderr line every command that uses a data dir prints: which one, and why that one."""
    print(f"shadowpi: data dir {config.data_dir} ({config.data_dir_source})", file=sys.stderr)


def run(coro: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine; a ProxyError (or a database schema this shadowpi cannot use) becomes one line on
    stderr and exit code 1."""
    try:
        return asyncio.run(coro)
    except (ProxyError, SchemaMismatch) as exc:
        print(f"shadowpi: {exc}", file=sys.stderr)
        return 1
