"""Command line: argparse -> config (file, variables, flags) -> the command (`serve` lives in proxy.serve).

The composition root of the commands: the parsers and options every command shares are in proxy/cli_common.py,
which the command modules (warm, bundle) import; nothing imports this module but proxy.__main__.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from proxy import __version__
from proxy.access.model import Role
from proxy.backends.urls import mask_password
from proxy.bundle.command import add_bundle_parsers, run_export, run_import
from proxy.cli_common import add_common, announce_data_dir, config_from_args, run
from proxy.config import Config
from proxy.config_env import prepare_data_dir
from proxy.errors import ConfigError, ProxyError
from proxy.warm.command import add_warm_parser, run_warm

if TYPE_CHECKING:
    from aiohttp import web


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shadowpi", description="Caching proxy and private overlay index for Python packages."
    )
    parser.add_argument("--version", action="version", version=f"shadowpi {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the index server")
    add_common(serve)
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
    _add_index_commands(commands)
    add_bundle_parsers(commands)
    audit = commands.add_parser("audit", help="list private projects whose names also exist upstream")
    add_common(audit)
    cache = commands.add_parser("cache", help="show cache usage, or purge a project's cached pages and files")
    cache_actions = cache.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_common(cache_actions.add_parser("usage", help="cached files and bytes, pinned bytes, the limit"))
    purge = cache_actions.add_parser("purge", help="drop a project's cached page and files (refetched on demand)")
    purge.add_argument("project")
    add_common(purge)
    migrate = commands.add_parser(
        "migrate", help="copy a single-machine install (its data dir) into the configured database and storage",
    )
    migrate.add_argument("--from-data-dir", type=Path, required=True, metavar="DIR",
                         help="the old install's data dir (SQLite + files); it is only read")
    add_common(migrate, upstream_help=argparse.SUPPRESS)
    db = commands.add_parser("db", help="the metadata database's schema")
    db_actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_common(db_actions.add_parser(
        "upgrade", help="apply this shadowpi's schema migrations now (serve applies them too, once per cluster)",
    ), upstream_help=argparse.SUPPRESS)
    return parser


def _add_token_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = commands.add_parser("token", help="create, list and revoke API tokens (for twine and uv publish)")
    actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a token; it is printed once, on the last line")
    create.add_argument("--user", required=True, help="who the token acts as")
    create.add_argument("--description", help="a note, e.g. 'CI for acme-utils'")
    create.add_argument("--index", action="append", default=[], dest="indexes", metavar="NAME",
                        help="valid in this index only (repeat for several; default: every index the user may use)")
    create.add_argument("--project", help="uploads, yanks and deletes of this project only")
    create.add_argument("--read-only", action="store_true", help="reads only: what CI installs with")
    create.add_argument("--expires", type=float, metavar="DAYS", help="expires after this many days")
    listing = actions.add_parser("list", help="list tokens (never the tokens themselves)")
    listing.add_argument("--user", help="only this user's tokens")
    revoke = actions.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id", type=int)
    for sub in (create, listing, revoke):
        add_common(sub)


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
        sub.add_argument("--index", default="root", help="the index holding the project (default root)")
        if name == "yank":
            sub.add_argument("--reason", default="", help="shown to pip and uv users")
        add_common(sub)


def _add_index_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    index = commands.add_parser("index", help="list the indexes, or show one (chain, permissions, projects)")
    actions = index.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_common(actions.add_parser("list", help="every index with its chain"))
    show = actions.add_parser("show", help="one index: chain, who may read/upload/administer, projects")
    show.add_argument("name")
    add_common(show)
    owner = commands.add_parser("owner", help="owners and maintainers of a private project in an index")
    owner_actions = owner.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name in ("add", "remove", "list"):
        sub = owner_actions.add_parser(name, help=f"{name} owners/maintainers (a user or group:NAME)")
        sub.add_argument("project")
        if name != "list":
            sub.add_argument("principal", metavar="USER_OR_GROUP")
        sub.add_argument("--index", default="root")
        if name == "add":
            sub.add_argument("--role", choices=["owner", "maintainer"], default="maintainer")
        add_common(sub)
    push = commands.add_parser("push", help="make a release of one index visible in another (same files)")
    push.add_argument("project")
    push.add_argument("version")
    push.add_argument("--from", dest="source", required=True, metavar="INDEX")
    push.add_argument("--to", dest="target", required=True, metavar="INDEX")
    push.add_argument("--as", dest="as_user", metavar="USER", help="only if USER may upload it to the target")
    add_common(push)
    log = commands.add_parser("log", help="the audit log: uploads, yanks, deletes, pushes, owner and token changes")
    log.add_argument("--index")
    log.add_argument("--project")
    log.add_argument("--since", help="a date (2026-11-01) or a Unix time")
    add_common(log)


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
            return run_warm(args, config, make_app=_warm_app)
        announce_data_dir(config)
        return _admin(args, config)
    except ConfigError as exc:
        print(f"shadowpi: config error: {exc}", file=sys.stderr)
        return 2


def _admin(args: argparse.Namespace, config: Config) -> int:
    from proxy import admin, admin_indexes

    if args.command == "import":  # verifies the bundle before it creates anything
        return run_import(args, config)
    prepare_data_dir(config)
    if args.command == "token":
        if args.action == "create":
            return run(admin_indexes.token_create(config, args.user, args.description, args.indexes, args.project,
                                                  args.read_only, args.expires, print))
        if args.action == "list":
            return run(admin.token_list(config, args.user, print))
        return run(admin.token_revoke(config, args.id, print))
    if args.command in {"yank", "unyank", "delete"}:
        reason = getattr(args, "reason", "")
        return run(admin.change_files(config, args.command, args.project, args.target, reason, print,
                                      index=args.index))
    if args.command in {"index", "owner", "push", "log"}:
        return _index_admin(args, config)
    if args.command == "audit":
        return run(admin.audit(config, print))
    if args.command == "export":
        return run_export(args, config)
    if args.command == "cache":
        if args.action == "usage":
            return run(admin.cache_usage(config, print))
        return run(admin.cache_purge(config, args.project, print))
    if args.command == "db":
        return run(_db_upgrade(config, print))
    if args.command == "migrate":
        return _migrate(config, args.from_data_dir)
    raise AssertionError(args.command)  # argparse only accepts the commands above


def _index_admin(args: argparse.Namespace, config: Config) -> int:
    from proxy import admin_indexes

    if args.command == "index":
        if args.action == "list":
            return admin_indexes.index_list(config, print)
        return run(admin_indexes.index_show(config, args.name, print))
    if args.command == "owner":
        principal = getattr(args, "principal", "")
        role: Role = "owner" if getattr(args, "role", "maintainer") == "owner" else "maintainer"
        return run(admin_indexes.owner_change(config, args.action, args.project, principal, args.index, role, print))
    if args.command == "push":
        return run(admin_indexes.push(config, args.project, args.version, args.source, args.target, args.as_user,
                                      print))
    return run(admin_indexes.log(config, args.index, args.project, args.since, print))


async def _db_upgrade(config: Config, out: Callable[[str], None]) -> int:
    """`shadowpi db upgrade`: migrate the configured database (under the store's lock: a replica starting at the
    same moment waits for it, or it for the replica) and say from which schema version to which."""
    from proxy.backends import open_backends

    async with open_backends(config, check_schema=False) as backends:
        applied = await backends.meta.migrate()  # what this process applied: another may have done it meanwhile
        after = await backends.meta.schema_version()
    where = mask_password(config.database.url)
    out(f"database schema {after - applied} -> {after} ({where})" if applied else f"database schema {after}, up to"
        f" date ({where})")
    return 0


def _migrate(config: Config, data_dir: Path) -> int:
    from proxy.migrate import migrate, plan

    try:
        source = plan(config, data_dir)
    except ProxyError as exc:
        print(f"shadowpi: {exc}", file=sys.stderr)
        return 1
    return run(migrate(config, source, print))


def _warm_app(config: Config) -> web.Application:
    """`shadowpi warm` runs a shadowpi in-process: this composition root hands it the app factory, so the warm
    package never imports the server (the server's imports are only paid for when warming in-process)."""
    from proxy.app import create_app

    return create_app(config)
