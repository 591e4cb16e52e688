"""Command line: argparse -> config (file, variables, flags) -> the command (`serve` lives in proxy.serve)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from proxy import __version__
from proxy.bundle.command import add_bundle_parsers, run_export, run_import
from proxy.config import Config, load_config
from proxy.config_env import prepare_data_dir
from proxy.errors import ConfigError
from proxy.warm.command import add_warm_parser, run_warm


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        if args.command == "serve":
            from proxy.serve import serve  # the server's imports are only paid for by `serve`

            return serve(config)
        if args.command == "warm":
            if not args.server:  # with --server, the data dir is the server's business
                announce_data_dir(config)
            return run_warm(args, config)
        announce_data_dir(config)
        return _admin(args, config)
    except ConfigError as exc:
        print(f"shadowpi: config error: {exc}", file=sys.stderr)
        return 2


def _admin(args: argparse.Namespace, config: Config) -> int:
    from proxy import admin

    if args.command == "import":  # verifies the bundle before it creates anything
        return run_import(args, config)
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
    if args.command == "cache":
        if args.action == "usage":
            return admin.run(admin.cache_usage(config, print))
        return admin.run(admin.cache_purge(config, args.project, print))
    raise AssertionError(args.command)  # argparse only accepts the commands above
