"""The `shadowpi export` and `shadowpi import` commands: arguments, the data dir, and what is printed."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from proxy.access.model import ROOT
from proxy.audit import operator
from proxy.backends import open_backends
from proxy.bundle.blobfiles import BlobFiles
from proxy.bundle.export import export_bundle, resolve_since
from proxy.bundle.importer import ImportResult, apply_bundle, opened_bundle
from proxy.bundle.indexes import map_indexes
from proxy.bundle.manifest import BundleError
from proxy.bundle.reader import VerifiedBundle
from proxy.bundle.static import plan_static, write_static
from proxy.cli_common import add_common, run
from proxy.config import Config
from proxy.progress import Progress, Silent, progress_for
from proxy.simple.names import parse_project_name

Print = Callable[[str], None]


def add_bundle_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `export` and `import` to the CLI's subcommands."""
    export = commands.add_parser("export", help="write cached and private packages to a bundle (for an air gap)")
    export.add_argument("out", type=Path, metavar="OUT", help="new bundle directory, or a file ending in .tar")
    export.add_argument(
        "--since",
        metavar="DATE|BUNDLE",
        help="only files new since an ISO date/datetime (UTC), or since a previous bundle (dir, .tar, manifest.json)",
    )
    export.add_argument("--project", action="append", metavar="NAME", help="only this project (repeatable)")
    export.add_argument("--static", type=Path, metavar="DIR", help="also write a static PEP 503/691 index to DIR")
    export.add_argument("--index", action="append", metavar="NAME",
                        help="only this index's private projects (repeatable; default every index); with --static,"
                             " the static index is this index's view")
    imported = commands.add_parser("import", help="verify a bundle and add its packages to this data dir")
    imported.add_argument("bundle", type=Path, metavar="BUNDLE", help="bundle directory or .tar")
    imported.add_argument("--index-map", action="append", metavar="OLD=NEW",
                          help="import the bundle's index OLD into this server's index NEW (repeatable)")
    for sub in (export, imported):
        add_common(sub, upstream_help=argparse.SUPPRESS)  # a bundle never involves upstream


def run_export(args: argparse.Namespace, config: Config) -> int:
    progress = progress_for(sys.stderr, "exporting")
    return run(export_command(config, args.out, since=args.since, projects=args.project, static=args.static,
                              indexes=args.index, progress=progress))


def run_import(args: argparse.Namespace, config: Config) -> int:
    return run(import_command(config, args.bundle, index_map=args.index_map))


def _indexes(config: Config, names: Sequence[str] | None, *, static: bool) -> frozenset[str] | None:
    """`--index` values, each an index this config defines. Raises BundleError."""
    known = config.access().indexes
    for name in names or ():
        if name not in known:
            raise BundleError(f"--index: no index named {name!r} (known: {', '.join(known)})")
    if static and names and len(set(names)) > 1:
        raise BundleError("--static writes one index's view: give at most one --index with it")
    return frozenset(names) if names else None


def parse_index_map(config: Config, pairs: Sequence[str] | None) -> dict[str, str]:
    """`--index-map OLD=NEW` values; NEW must be an index this config defines. Raises BundleError."""
    known = config.access().indexes
    mapping: dict[str, str] = {}
    for pair in pairs or ():
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise BundleError(f"--index-map {pair!r}: expected OLD=NEW (an index of the bundle, one of this server)")
        if new not in known:
            raise BundleError(f"--index-map {pair!r}: no index named {new!r} here (known: {', '.join(known)})")
        mapping[old] = new
    return mapping


async def export_command(
    config: Config,
    path: Path,
    *,
    since: str | None = None,
    projects: Sequence[str] | None = None,
    static: Path | None = None,
    indexes: Sequence[str] | None = None,
    out: Print = print,
    progress: Progress | None = None,
) -> int:
    """Export the data dir to a bundle at `path`. Raises ProxyError (BundleError, InvalidProjectName)."""
    chosen = _indexes(config, indexes, static=static is not None)
    cutoff = await asyncio.to_thread(resolve_since, since) if since else None
    names = frozenset(parse_project_name(p) for p in projects) if projects else None
    written = 0
    shown = progress or Silent()
    skipped: list[str] = []
    try:
        async with open_backends(config, migrate=True) as backends:
            result, snapshot = await export_bundle(
                backends.meta, backends.blobs, config, path, cutoff=cutoff, projects=names, indexes=chosen,
                progress=shown,
            )
            if static is not None:
                shown.phase(f"writing the static index to {static}")
                tree = plan_static(snapshot, config.access(), min(chosen) if chosen else ROOT)
                files = BlobFiles(backends.blobs, asyncio.get_running_loop())
                written = await asyncio.to_thread(write_static, static, tree, files)
                skipped = tree.skipped
    finally:
        shown.finish()
    manifest = result.manifest
    out(
        f"Exported {result.upstream_projects} upstream and {result.private_projects} private project(s):"
        f" {result.blobs} file(s), {_size(result.blob_bytes)}."
    )
    if manifest.since is not None:
        out(f"Incremental: only files new since {manifest.since.time}; import the earlier bundles first.")
    out(f"Bundle: {path} ({len(manifest.files) + 2} files including the manifest)")
    for line in skipped:
        out(f"warning: static index: {line}")
    if static is not None:
        out(f"Static index: {static} ({written} files); serve {static}/simple/ with any web server.")
    return 0


async def import_command(
    config: Config, path: Path, *, index_map: Sequence[str] | None = None, out: Print = print
) -> int:
    """Verify and import the bundle at `path`, each private project into its recorded index (renamed by
    `index_map`). Raises ProxyError (BundleError) before changing anything, and a data dir this import created is
    removed again when it fails."""
    mapping = parse_index_map(config, index_map)
    async with opened_bundle(path) as (source, verified):
        out(_verified(path, verified))
        bundle = map_indexes(verified, mapping, config.access().indexes)
        created = not await asyncio.to_thread(config.data_dir.exists)
        try:
            async with open_backends(config, migrate=True) as backends:
                result = await apply_bundle(backends.meta, backends.blobs, backends.spools, source, bundle,
                                            who=operator(), name=path.name)
        except BaseException:
            if created:  # nothing of it was ever visible: leave no empty data dir behind
                await asyncio.to_thread(shutil.rmtree, config.data_dir, True)
            raise
    if not result.changed:
        out(f"Nothing to do: everything in {path} is already in {config.data_dir}.")
        return 0
    out(_imported(result))
    return 0


def _verified(path: Path, bundle: VerifiedBundle) -> str:
    manifest = bundle.manifest
    total = sum(f.size for f in manifest.files)
    return (
        f"Verified {path}: manifest and {len(manifest.files)} files, {_size(total)}, all sha256s match"
        f" (made {manifest.created_at} by shadowpi {manifest.shadowpi_version} on {manifest.source})."
    )


def _imported(result: ImportResult) -> str:
    return (
        f"Imported {result.blobs_added} new file(s) of {_size(result.blob_bytes)},"
        f" {result.pages_changed} upstream page(s) added or updated, {result.private_names_added} new private"
        f" project(s), private files: {result.private_added} added, {result.private_updated} updated,"
        f" {result.private_removed} removed; {result.deleted_added} deleted filename(s) recorded"
        + (f"; {result.members_changed} owner(s) or maintainer(s) set." if result.members_changed else ".")
    )


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    value, unit = float(count) / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value >= 1024:
            value, unit = value / 1024, bigger
    return f"{value:.1f} {unit} ({count} bytes)"
