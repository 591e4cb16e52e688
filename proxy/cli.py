"""Command line: argparse -> config (file, then flags) -> logging -> run the server (or another command)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from proxy import __version__
from proxy.bundle.command import add_bundle_parsers, run_export, run_import
from proxy.config import Config, load_config, mask_url
from proxy.errors import ConfigError
from proxy.logs import AccessLogger, setup_logging
from proxy.warm.command import add_warm_parser, run_warm

log = logging.getLogger("shadowpi")
SHUTDOWN_TIMEOUT = 30.0  # seconds in-flight requests (downloads) get to finish after SIGTERM


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shadowpi", description="Caching proxy and private overlay index for Python packages."
    )
    parser.add_argument("--version", action="version", version=f"shadowpi {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the index server")
    _add_common(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--htpasswd", type=Path, help="htpasswd file with users (bcrypt)")
    serve.add_argument("--offline", action="store_true", default=None, help="never contact upstream")
    serve.add_argument("--workers", type=int, help="worker processes sharing the port and data dir")
    serve.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="overrides logging.level")
    serve.add_argument("--log-format", choices=["text", "json"], help="overrides logging.format")
    add_warm_parser(commands)
    _add_token_commands(commands)
    _add_file_commands(commands)
    add_bundle_parsers(commands)
    audit = commands.add_parser("audit", help="list private projects whose names also exist upstream")
    _add_common(audit)
    cache = commands.add_parser("cache", help="show cache usage, or purge a project's cached pages and files")
    cache_actions = cache.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add_common(cache_actions.add_parser("usage", help="cached files and bytes, pinned bytes, the limit"))
    purge = cache_actions.add_parser("purge", help="drop a project's cached page and files (refetched on demand)")
    purge.add_argument("project")
    _add_common(purge)
    return parser


def _add_token_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = commands.add_parser("token", help="create, list and revoke API tokens (for twine and uv publish)")
    actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a token; it is printed once, on the last line")
    create.add_argument("--user", required=True, help="who the token acts as")
    create.add_argument("--description", help="a note, e.g. 'CI for acme-utils'")
    listing = actions.add_parser("list", help="list tokens (never the tokens themselves)")
    listing.add_argument("--user", help="only this user's tokens")
    revoke = actions.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id", type=int)
    for sub in (create, listing, revoke):
        _add_common(sub)


def _add_file_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    helps = {
        "yank": "yank a private release or file (PEP 592): pinned installs still work",
        "unyank": "undo a yank",
        "delete": "delete a private release or file (its filename can never return with other bytes)",
    }
    for name, text in helps.items():
        sub = commands.add_parser(name, help=text)
        sub.add_argument("project")
        sub.add_argument("target", metavar="VERSION_OR_FILENAME")
        if name == "yank":
            sub.add_argument("--reason", default="", help="shown to pip and uv users")
        _add_common(sub)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML config file (flags override it)")
    parser.add_argument("--data-dir", type=Path, help="where the database and files live")
    parser.add_argument("--upstream", help="upstream simple-index URL (default https://pypi.org/simple/)")


def config_from_args(args: argparse.Namespace) -> Config:
    """Defaults < config file (--config or SHADOWPI_CONFIG) < SHADOWPI_* variables < flags.

    Raises ConfigError naming the key at fault.
    """
    flags: dict[str, dict[str, object]] = {
        "server": {
            "host": getattr(args, "host", None),
            "port": getattr(args, "port", None),
            "data_dir": str(args.data_dir) if args.data_dir else None,
            "workers": getattr(args, "workers", None),
        },
        "upstream": {"url": args.upstream, "offline": getattr(args, "offline", None)},
        "auth": {"htpasswd": str(args.htpasswd) if getattr(args, "htpasswd", None) else None},
        "logging": {"level": getattr(args, "log_level", None), "format": getattr(args, "log_format", None)},
    }
    overrides = {section: {k: v for k, v in values.items() if v is not None} for section, values in flags.items()}
    path = args.config or (Path(os.environ["SHADOWPI_CONFIG"]) if os.environ.get("SHADOWPI_CONFIG") else None)
    return load_config(path, overrides, os.environ)


def prepare_data_dir(config: Config) -> None:
    """Create the data dir and prove it is writable, so a bad path fails at start-up, not on first use."""
    path = config.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"server.data_dir: {path} is not a writable directory ({exc.strerror})") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        if args.command == "serve":
            return serve(config)
        if args.command == "warm":
            return run_warm(args, config)
        return _admin(args, config)
    except ConfigError as exc:
        print(f"shadowpi: config error: {exc}", file=sys.stderr)
        return 2


def _admin(args: argparse.Namespace, config: Config) -> int:
    from proxy import admin

    prepare_data_dir(config)
    if args.command == "token":
        if args.action == "create":
            return admin.run(admin.token_create(config, args.user, args.description, print))
        if args.action == "list":
            return admin.run(admin.token_list(config, args.user, print))
        return admin.run(admin.token_revoke(config, args.id, print))
    if args.command in {"yank", "unyank", "delete"}:
        reason = getattr(args, "reason", "")
        return admin.run(admin.change_files(config, args.command, args.project, args.target, reason, print))
    if args.command == "audit":
        return admin.run(admin.audit(config, print))
    if args.command == "export":
        return run_export(args, config)
    if args.command == "import":
        return run_import(args, config)
    if args.command == "cache":
        if args.action == "usage":
            return admin.run(admin.cache_usage(config, print))
        return admin.run(admin.cache_purge(config, args.project, print))
    raise AssertionError(args.command)  # argparse only accepts the commands above


def serve(config: Config) -> int:
    """Run the server until SIGINT/SIGTERM (graceful: in-flight requests get time to finish)."""
    setup_logging(config.logging.level, config.logging.format)
    prepare_data_dir(config)
    upstream = "offline" if config.upstream.offline else mask_url(config.upstream.url)
    log.info(
        "shadowpi %s serving http://%s:%d/simple/ (upstream: %s, data: %s, workers: %d)",
        __version__,
        config.server.host,
        config.server.port,
        upstream,
        config.data_dir.resolve(),
        config.server.workers,
    )
    if config.server.workers > 1:
        return _serve_workers(config)
    _run(config, reuse_port=False)
    return 0


def _run(config: Config, *, reuse_port: bool) -> None:
    from proxy.app import create_app  # the server's imports are only paid for by `serve`

    web.run_app(
        create_app(config),
        host=config.server.host,
        port=config.server.port,
        reuse_port=reuse_port,
        print=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        access_log_class=AccessLogger,
        access_log_format=config.logging.format,
    )


def _serve_workers(config: Config) -> int:
    """Fork N workers that share the listening port (SO_REUSEPORT) and the data dir."""
    from proxy.db import DB_FILENAME, Database

    async def migrate() -> None:  # once, before forking, so workers never race on the schema
        await (await Database.open(config.data_dir / DB_FILENAME)).close()

    asyncio.run(migrate())
    children: list[int] = []
    for _ in range(config.server.workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - exercised by the multi-worker tests in a subprocess
            try:
                _run(config, reuse_port=True)
            finally:
                os._exit(0)
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    for child in children:
        _pid, code = os.waitpid(child, 0)
        status = status or os.waitstatus_to_exitcode(code)
    return status
