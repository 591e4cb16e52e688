"""`shadowpi migrate --from-data-dir DIR`: copy a single-machine install (SQLite + files in DIR) into the configured
backends (PostgreSQL + S3, or any other pair), through the backend Protocols on both sides.

- **Verified**: every blob's bytes are hashed on the way and must match its name before the target commits it; a
  blob the target has is checked against the target's index (proxy/migrate_blobs.py).
- **Resumable**: blobs first (each one atomic), then the rows in transactions of ROWS_PER_TRANSACTION; a run that
  was killed is simply run again: it skips what is there and finishes.
- **Idempotent**: everything is keyed (sha256, filename, project name, token hash); a second run adds nothing.
  For a private file in both, the source wins (yank state, fields: the same rule as `shadowpi import`), so a
  final run after the old server stopped carries its last changes over; revocations are carried over, never undone.
- **Refusals**, one line each, before anything is written: the target is the source, DIR holds no shadowpi
  data, or the target's schema is not this shadowpi's (`shadowpi db upgrade` first).

Copied too: every index's private files and names, project owners and maintainers, the audit log (entries the target
lacks). Not copied: remembered upstream 404s (asked again), the web interface's signing secret (sessions sign in
again).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from proxy.access.model import ROOT
from proxy.backends import Backends, holds_local_install, local_locations, open_backends
from proxy.backends.metadata import MetadataStore
from proxy.backends.records import AuditEntry, PrivateFile
from proxy.backends.transaction import Transaction
from proxy.bundle.importer import deletion_action, merge_page, private_action
from proxy.bundle.manifest import BundleError
from proxy.config import Config, DatabaseConfig, StorageConfig
from proxy.errors import ProxyError
from proxy.migrate_blobs import Blobs, copy_blobs
from proxy.simple.names import NormalizedName

__all__ = ["MigrationRefused", "migrate", "plan"]

Print = Callable[[str], None]
T = TypeVar("T")
ROWS_PER_TRANSACTION = 200  # short write transactions: a running cluster's writers are held back only briefly
AUDIT_LIMIT = 10_000_000  # every entry: the log is read whole once per run


class MigrationRefused(ProxyError):
    """The migration cannot start (or go on): the message says why and what to do."""


def source_config(target: Config, data_dir: Path) -> Config:
    """The single-machine install in `data_dir`: its own SQLite database and files, the target's other settings."""
    return replace(target, server=replace(target.server, data_dir=data_dir), database=DatabaseConfig(),
                   storage=StorageConfig())


def check_not_source(target: Config, source: Config) -> None:
    """Refuse a target whose database file or file store is the source's."""
    src_db, src_files = local_locations(source)
    dst_db, dst_files = local_locations(target)
    if dst_db is not None and dst_db == src_db:
        raise MigrationRefused(f"the target database ({target.database.url}) is the source's own ({src_db}): "
                               "name the cluster's with --database")
    if dst_files is not None and src_files is not None and (dst_files == src_files or src_files in dst_files.parents):
        raise MigrationRefused(f"the target file store ({dst_files}) is the source's own: name the cluster's with"
                               " --storage")


def plan(target_config: Config, data_dir: Path) -> Config:
    """The source's config, once the refusals that need no backend are passed (the file system is read here:
    call it before the event loop runs)."""
    if not holds_local_install(data_dir):
        raise MigrationRefused(f"{data_dir} holds no shadowpi data (no database there): name the old data dir")
    source_cfg = source_config(target_config, data_dir.resolve())
    check_not_source(target_config, source_cfg)
    return source_cfg


async def migrate(target_config: Config, source_cfg: Config, out: Print) -> int:
    """Copy the install `source_cfg` describes (see plan()) into `target_config`'s backends; 0 when everything
    was copied, 1 when cached files had to be skipped."""
    data_dir = source_cfg.data_dir
    async with AsyncExitStack() as stack:
        # The source is brought up to this shadowpi's schema like any command's data dir; the target never is.
        source = await stack.enter_async_context(open_backends(source_cfg, migrate=True))
        target = await stack.enter_async_context(open_backends(target_config, migrate=False))
        return await _copy(source, target, data_dir, out)
    raise AssertionError("unreachable")  # pragma: no cover (mypy: AsyncExitStack may swallow exceptions)


async def _copy(source: Backends, target: Backends, data_dir: Path, out: Print) -> int:
    # Read once, for the blobs to copy and the rows to write: a file the source gained meanwhile is not half-copied.
    files = await source.meta.bundle_private_files(None)
    blobs, used, pinned = await _source_blobs(source, files)
    out(f"migrating {data_dir}: {len(blobs.sizes):,} file(s), {sum(blobs.sizes.values()):,} bytes")
    copied = await copy_blobs(source, target, blobs, out)
    private_failed = sorted(set(copied.failed) & blobs.private)
    for sha256, why in sorted(copied.failed.items()):
        kind = "private file" if sha256 in blobs.private else "cached file (skipped: refetched on demand)"
        out(f"not copied: {kind} {sha256}: {why}")
    if private_failed:
        raise MigrationRefused(f"{len(private_failed)} private file(s) could not be copied (see above); no rows were"
                               " written: repair or delete them in the source, then run migrate again")
    out(f"files: {copied.copied:,} copied ({copied.copied_bytes:,} bytes), {copied.present:,} already there")
    usable = Blobs({sha: n for sha, n in blobs.sizes.items() if sha not in copied.failed}, blobs.private)
    await _record_blobs(target.meta, usable, used, pinned)
    counts = await _copy_rows(source.meta, target.meta, usable, files, out)
    out(f"migrated {data_dir}: {copied.copied:,} file(s) copied ({copied.copied_bytes:,} bytes),"
        f" {copied.present:,} already there, {len(copied.failed):,} skipped; " + ", ".join(
            f"{n:,} {what}" for what, n in counts.items()))
    return 1 if copied.failed else 0


async def _source_blobs(source: Backends, files: list[PrivateFile]) -> tuple[Blobs, dict[str, float], set[str]]:
    """Every blob the source's index knows, with its size; which belong to private uploads (`files`, of every
    index); when each was last used (cached ones) or created; which are pinned."""
    meta = source.meta
    times = await meta.bundle_blob_times()
    cached = await meta.eviction_candidates(accessed_before=math.inf, limit=len(times) + 1)
    sizes = {record.sha256: record.size for record in cached}
    used = {**times, **{record.sha256: record.last_access for record in cached}}
    private: set[str] = set()
    for row in files:
        private.update(sha for sha in (row.sha256, row.metadata_sha256) if sha)
    # Not evictable and not private: pinned (`warm --pin`, imports). Their sizes are the store's.
    pinned = set(times) - set(sizes) - private
    for sha256 in (set(times) | private) - set(sizes):
        info = await source.blobs.stat(sha256)
        sizes[sha256] = info.size if info is not None else -1  # -1: reported as missing by the copy
    return Blobs(sizes=sizes, private=frozenset(private)), used, pinned


async def _indexes(meta: MetadataStore) -> list[str]:
    """Every index holding (or having held) a private name in this store, root first."""
    return sorted({ROOT} | {index for index, _ in await meta.private_project_indexes()}, key=lambda i: (i != ROOT, i))


async def _copy_rows(
    source: MetadataStore, target: MetadataStore, blobs: Blobs, files: list[PrivateFile], out: Print
) -> dict[str, int]:
    """Check that the private files fit, then write every row (idempotently); returns what changed, by kind."""
    deleted = [d for index in await _indexes(source) for d in await source.bundle_deleted_files(index)]
    live = {(row.index, row.filename) for row in files}
    gone = [d for d in deleted if (d.index, d.filename) not in live]
    try:
        for row in files:
            existing = await target.private_file(row.filename, row.index)
            private_action(row, existing, await target.deleted_sha256(row.filename, row.index))
        for d in gone:
            deletion_action(d.filename, d.sha256, await target.private_file(d.filename, d.index))
    except BundleError as exc:  # the same clash rules as an import: nothing is overwritten with other bytes
        raise MigrationRefused(f"{exc}; nothing was changed") from None
    counts = {"pages": 0, "private names": 0, "private files": 0, "deleted names": 0, "tokens": 0, "owners": 0,
              "audit entries": 0}
    counts["pages"] = await _copy_pages(source, target, blobs)
    out(f"pages: {counts['pages']:,} written")
    projects = await source.private_project_indexes()
    for names in _batches(projects):
        async with target.transaction() as tx:
            counts["private names"] += sum([await tx.add_private_project(name, index) for index, name in names])
    for rows in _batches(files):
        async with target.transaction() as tx:
            counts["private files"] += sum([await _put_private(tx, row) for row in rows])
    for deletions in _batches(deleted):
        async with target.transaction() as tx:
            counts["deleted names"] += sum([await tx.add_deleted_file(d) for d in deletions])
    async with target.transaction() as tx:
        for d in gone:
            if deletion_action(d.filename, d.sha256, await tx.private_file(d.filename, d.index)):
                await tx.remove_private_file(d.filename, d.index)
    for token_batch in _batches(await source.bundle_tokens()):
        async with target.transaction() as tx:
            counts["tokens"] += sum([await tx.restore_token(record, token_hash) for record, token_hash in token_batch])
    counts["owners"] = await _copy_members(source, target, projects)
    counts["audit entries"] = await _copy_audit(source, target)
    return counts


async def _copy_members(source: MetadataStore, target: MetadataStore,
                        projects: Sequence[tuple[str, NormalizedName]]) -> int:
    """Owners and maintainers of every private project, added where the target lacks them (never removed)."""
    added = 0
    for batch in _batches(projects):
        async with target.transaction() as tx:
            for index, name in batch:
                for member in await source.project_members(index, name):
                    added += await tx.add_member(index, name, member.principal, member.role)
    return added


async def _copy_audit(source: MetadataStore, target: MetadataStore) -> int:
    """The audit log's entries the target does not have yet (by time, actor, action and what), oldest first."""
    def key(entry: AuditEntry) -> tuple[object, ...]:
        return entry.at, entry.actor, entry.via, entry.action, entry.index, entry.project, entry.target, entry.detail

    present = {key(entry) for entry in await target.audit_entries(limit=AUDIT_LIMIT)}
    missing = [e for e in reversed(await source.audit_entries(limit=AUDIT_LIMIT)) if key(e) not in present]
    for batch in _batches(missing):
        async with target.transaction() as tx:
            for entry in batch:
                await tx.add_audit(replace(entry, id=0))
    return len(missing)


async def _put_private(tx: Transaction, row: PrivateFile) -> bool:
    existing = await tx.private_file(row.filename, row.index)
    # Raises on a clash (checked before, too).
    private_action(row, existing, await tx.deleted_sha256(row.filename, row.index))
    if existing == row:
        return False
    await tx.add_private_file(row, replace=existing is not None)
    return True


async def _copy_pages(source: MetadataStore, target: MetadataStore, blobs: Blobs) -> int:
    changed = 0
    mappings = sorted((await source.bundle_upstream_files()).items())
    for batch in _batches(await source.bundle_pages()):
        async with target.transaction() as tx:
            for name, stored in batch:
                existing = await tx.get_page(name)
                merged = merge_page(existing, stored)
                if merged != existing:
                    await tx.put_page(name, merged)
                    changed += 1
    for url_batch in _batches(mappings):
        async with target.transaction() as tx:
            for url, sha256 in url_batch:
                if sha256 in blobs.sizes:
                    await tx.remember_upstream_file(url, sha256)
    return changed


async def _record_blobs(target: MetadataStore, blobs: Blobs, used: dict[str, float], pinned: set[str]) -> None:
    """The target's index rows of the copied blobs (last use kept: eviction order survives), pins included."""
    for batch in _batches(sorted(blobs.sizes)):
        async with target.transaction() as tx:
            for sha256 in batch:
                await tx.record_blob(sha256, blobs.sizes[sha256], now=used.get(sha256))
            await tx.pin_blobs([sha256 for sha256 in batch if sha256 in pinned])


def _batches(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), ROWS_PER_TRANSACTION):
        yield items[start : start + ROWS_PER_TRANSACTION]
