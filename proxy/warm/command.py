"""`shadowpi warm`: arguments -> inputs and targets -> warm through a running server or an in-process one.

The in-process server is built by the app factory the caller passes (`make_app`: proxy.cli hands it
proxy.app.create_app), so this package never imports the server itself.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from proxy.cli_common import add_common
from proxy.config import Config
from proxy.errors import ConfigError

if TYPE_CHECKING:
    from aiohttp import web
    from aiohttp.typedefs import Handler, Middleware

    from proxy.warm.core import WarmInputs
    from proxy.warm.model import WarmReport
    from proxy.warm.report import Progress
    from proxy.warm.targets import Target

__all__ = ["AppFactory", "add_warm_parser", "load_inputs", "run_warm", "simple_url_of", "warm_in_process"]

AppFactory = Callable[[Config], "web.Application"]  # proxy.app.create_app

GUARD_HEADER = "X-Shadowpi-Warm-Guard"
EXAMPLES = """examples:
  shadowpi warm -r requirements.txt --python 3.11 --python 3.12 --platform manylinux_2_28_x86_64 --platform win_amd64
  shadowpi warm --lock uv.lock --server http://shadowpi.internal:8080/
  shadowpi warm "requests[socks]>=2.31" --data-dir /srv/shadowpi
"""


def _jobs(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("must be between 1 and 64")
    return value


def add_warm_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `shadowpi warm` and its flags (plus the common --config/--data-dir/--upstream)."""
    warm = commands.add_parser(
        "warm", help="pre-fetch everything a project installs, for chosen platforms, into the cache",
        description="Resolve requirements (or follow lock files) for each target environment and fetch every "
                    "file an install needs through shadowpi, so that it is cached (e.g. before going offline).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    warm.add_argument("specifiers", nargs="*", metavar="REQ", help="requirement specifiers, e.g. 'django>=5'")
    warm.add_argument("-r", "--requirement", dest="requirement_files", action="append", default=[], type=Path,
                      metavar="FILE", help="pip requirements file (repeatable; -r/-c inside are followed)")
    warm.add_argument("-c", "--constraint", dest="constraint_files", action="append", default=[], type=Path,
                      metavar="FILE", help="pip constraints file (repeatable)")
    warm.add_argument("--lock", dest="lock_files", action="append", default=[], type=Path, metavar="FILE",
                      help="pylock.toml (PEP 751) or uv.lock: warm exactly the files it lists (repeatable)")
    warm.add_argument("--python", dest="pythons", action="append", default=[], metavar="X.Y",
                      help="target Python version (repeatable; default: this interpreter's)")
    warm.add_argument("--platform", dest="platforms", action="append", default=[], metavar="TAG",
                      help="target platform, e.g. manylinux_2_28_x86_64, macosx_11_0_arm64, win_amd64 "
                           "(repeatable; default: this machine's)")
    warm.add_argument("--pre", action="store_true", help="consider pre-releases, as pip --pre does")
    warm.add_argument("--server", metavar="URL",
                      help="warm through this running shadowpi (base or /simple/ URL) instead of an in-process one")
    warm.add_argument("--jobs", type=_jobs, default=8, help="parallel downloads (default 8)")
    warm.add_argument("--index", metavar="NAME",
                      help="resolve through this index's chain (/index/NAME/simple/) instead of root's")
    warm.add_argument("--pin", action="store_true",
                      help="exempt the warmed files from cache eviction (needs the data dir: not with --server)")
    add_common(warm)


def simple_url_of(server: str, index: str | None = None) -> str:
    """A shadowpi base URL or its /simple/ URL -> the /simple/ URL (of `index` when given: /index/NAME/simple/).
    Raises ConfigError for a non-http URL."""
    parts = urlsplit(server)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(f"--server: expected an http(s) URL, not {server!r}")
    path = parts.path.rstrip("/")
    if index is not None:
        path = path.removesuffix("/simple") + f"/index/{index}"
    if not path.endswith("/simple"):
        path += "/simple"
    return urlunsplit((parts.scheme, parts.netloc, path + "/", "", ""))


def load_inputs(specifiers: Sequence[str], requirement_files: Sequence[Path], constraint_files: Sequence[Path],
                lock_files: Sequence[Path], *, pre: bool = False) -> WarmInputs:
    """Read and parse every input (blocking file reads: call before the event loop starts).

    Raises RequirementsError or LockError naming the file and line at fault.
    """
    from proxy.warm.core import WarmInputs
    from proxy.warm.locks import parse_lock
    from proxy.warm.requirements import RequirementSet, parse_requirement, parse_requirements_file

    def read(path: str) -> str:
        return Path(path).read_text(encoding="utf-8")

    wanted = RequirementSet(tuple(parse_requirement(s) for s in specifiers), prereleases=pre)
    for path in requirement_files:
        wanted += parse_requirements_file(str(path), read)
    for path in constraint_files:
        parsed = parse_requirements_file(str(path), read)
        wanted += replace(parsed, requirements=(), constraints=parsed.requirements + parsed.constraints)
    locks = tuple(parse_lock(_read_lock(path), str(path)) for path in lock_files)
    return WarmInputs(wanted, locks)


def _read_lock(path: Path) -> str:
    from proxy.warm.locks import LockError

    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LockError(f"{path}: cannot read lock file: {exc.strerror or exc}") from None


def run_warm(args: argparse.Namespace, config: Config, *, make_app: AppFactory) -> int:
    """The `shadowpi warm` command: 0 when everything was warmed, 1 when anything is missing, 2 on bad input."""
    from proxy.warm.locks import LockError
    from proxy.warm.report import progress_for, render_summary
    from proxy.warm.requirements import RequirementsError
    from proxy.warm.targets import TargetError, build_targets

    try:
        inputs = load_inputs(args.specifiers, args.requirement_files, args.constraint_files, args.lock_files,
                             pre=args.pre)
        targets = build_targets(args.pythons, args.platforms)
        server = simple_url_of(args.server, args.index) if args.server else None
        if args.index is not None and args.index not in config.access().indexes:
            raise ConfigError(f"--index: no index named {args.index!r} (known: {', '.join(config.access().indexes)})")
    except (RequirementsError, LockError, TargetError, ConfigError) as exc:
        print(f"shadowpi warm: {exc}", file=sys.stderr)
        return 2
    if not inputs.requirements.requirements and not inputs.locks:
        print("shadowpi warm: nothing to warm: give requirement specifiers, -r FILE or --lock FILE", file=sys.stderr)
        return 2
    if server is not None and (args.config or args.data_dir or args.upstream or args.database or args.storage):
        print("shadowpi warm: note: --config/--data-dir/--database/--storage/--upstream are ignored with --server",
              file=sys.stderr)
    progress = progress_for(sys.stderr, "warming")
    if server is None:
        from proxy.config_env import prepare_data_dir

        prepare_data_dir(config)
        report = asyncio.run(warm_in_process(config, make_app, inputs, targets, jobs=args.jobs, progress=progress,
                                             index=args.index))
    else:
        from proxy.warm.core import warm

        report = asyncio.run(warm(server, inputs, targets, jobs=args.jobs, progress=progress))
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(render_summary(report))
    if args.pin:
        if server is not None:
            print("shadowpi warm: --pin needs the data dir; run warm without --server to pin", file=sys.stderr)
            return 2
        pinned = asyncio.run(pin_warmed(config, report))
        print(f"pinned: {pinned} file(s) exempt from cache eviction")
    return 0 if report.ok else 1


async def pin_warmed(config: Config, report: WarmReport) -> int:
    """Pin every file this run fetched or found cached, and its PEP 658 metadata file: an offline pip told
    that metadata exists fails when it is gone, so both must survive eviction."""
    from proxy.backends import open_backends

    sha256s = {r.digests["sha256"] for r in report.results.values() if r.status != "failed" and "sha256" in r.digests}
    for plan in report.plans:
        for pick in plan.picks:
            metadata_sha256 = pick.dist.metadata_sha256
            if metadata_sha256 is not None and report.pick_error(pick) is None:
                sha256s.add(metadata_sha256)
    async with open_backends(config, migrate=True) as backends:
        return await backends.meta.pin_blobs(sorted(sha256s))


async def warm_in_process(config: Config, make_app: AppFactory, inputs: WarmInputs, targets: Sequence[Target], *,
                          jobs: int = 8, progress: Progress | None = None, index: str | None = None) -> WarmReport:
    """Start shadowpi on the config's data dir (127.0.0.1, a free port) and warm through it over HTTP (through
    `index`'s chain when given: that index is readable by this run's guarded server, like root)."""
    from proxy.warm.core import warm

    if index is not None and index != "root":
        tables = {section: dict(values) for section, values in config.access_tables.items()}
        tables["indexes"][index] = {**tables["indexes"][index], "read": ["*"]}
        config = replace(config, access_tables=tables)
    async with in_process_server(config, make_app) as (simple_url, headers):
        if index is not None:
            simple_url = simple_url.removesuffix("simple/") + f"index/{index}/simple/"
        return await warm(simple_url, inputs, targets, jobs=jobs, headers=headers, progress=progress)


@asynccontextmanager
async def in_process_server(config: Config, make_app: AppFactory) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A private shadowpi for this run: (its /simple/ URL, the headers every request must carry).

    Read authentication is off, so a per-run secret header guards it instead: no other local process can
    use it while it runs. Hash checks, shadowing and the cache work exactly as in `shadowpi serve`.
    """
    from aiohttp import web

    secret = secrets.token_urlsafe(32)
    app = make_app(replace(config, auth=replace(config.auth, read=False)))
    app.middlewares.insert(0, _guard(secret))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}/simple/", {GUARD_HEADER: secret}
    finally:
        await runner.cleanup()


def _guard(secret: str) -> Middleware:
    from aiohttp import web

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not hmac.compare_digest(request.headers.get(GUARD_HEADER, ""), secret):
            raise web.HTTPForbidden(reason="this shadowpi belongs to a running `shadowpi warm`")
        return await handler(request)

    return guard
