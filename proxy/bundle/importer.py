"""`shadowpi import`: verify a whole bundle, check it fits this data dir, commit its blobs, then write every row
in one transaction, with an audit-log entry per private project it changed in an index (like push's, one per
project, naming the files) and one per owner or maintainer it set (as `shadowpi owner add` records them).
Idempotent: a second import of the same bundle changes and records nothing."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from proxy.access.model import Member
from proxy.audit import Actor, audit_entry
from proxy.backends.blobs import BlobStore
from proxy.backends.metadata import MetadataStore
from proxy.backends.records import DeletedFile, PrivateFile, StoredPage
from proxy.backends.spools import SpoolDir
from proxy.backends.transaction import Transaction
from proxy.bundle.manifest import BundleError, blob_path
from proxy.bundle.reader import Source, VerifiedBundle, iter_chunks, open_source, verify
from proxy.bundle.records import PrivateProject, page_blobs, private_blobs
from proxy.members import owner_added
from proxy.simple.policy import merge_versions


@dataclass(frozen=True, slots=True)
class ImportResult:
    blobs_added: int = 0
    blob_bytes: int = 0
    pages_changed: int = 0
    private_names_added: int = 0
    private_added: int = 0
    private_updated: int = 0
    private_removed: int = 0
    deleted_added: int = 0
    members_changed: int = 0

    @property
    def changed(self) -> bool:
        return any((self.blobs_added, self.pages_changed, self.private_names_added, self.private_added,
                    self.private_updated, self.private_removed, self.deleted_added, self.members_changed))


@asynccontextmanager
async def opened_bundle(path: Path) -> AsyncIterator[tuple[Source, VerifiedBundle]]:
    """The bundle at `path`, every file verified against its manifest. Raises BundleError; touches no data dir."""
    source = await asyncio.to_thread(open_source, path)
    try:
        yield source, await asyncio.to_thread(verify, source)
    finally:
        await asyncio.to_thread(source.close)


async def apply_bundle(
    db: MetadataStore, store: BlobStore, spools: SpoolDir, source: Source, bundle: VerifiedBundle, *, who: Actor,
    name: str,
) -> ImportResult:
    """Add a verified bundle (file or directory `name`) to this data dir, recording `who` imported it in the audit
    log. Raises BundleError, before changing anything, when it does not fit (missing earlier bundles, private files
    that clash)."""
    await check_fits(db, store, bundle)
    added, size = await commit_blobs(store, spools, source, bundle)
    rows = await write_rows(db, bundle, who=who, name=name)
    return replace(rows, blobs_added=added, blob_bytes=size)


async def check_fits(db: MetadataStore, store: BlobStore, bundle: VerifiedBundle) -> None:
    """Every record's blobs are in the bundle or already here; no private file clashes with this data dir."""
    carried = bundle.manifest.blobs
    needed = {sha for record in bundle.pages for sha in page_blobs(record)}
    needed |= {sha for rows in bundle.private.values() for row in rows for sha in private_blobs(row)}
    missing = [sha for sha in sorted(needed - set(carried)) if await store.stat(sha) is None]
    if missing and bundle.manifest.since is None:
        raise BundleError(f"the bundle is inconsistent: its records need blob {missing[0]}, which it does not carry")
    if missing:
        raise BundleError(
            f"this incremental bundle needs {len(missing)} file(s) from earlier bundles that are not here"
            f" (e.g. blob {missing[0]}): import the earlier bundles first"
        )
    for rows in bundle.private.values():
        for row in rows:
            existing = await db.private_file(row.filename, row.index)
            private_action(row, existing, await db.deleted_sha256(row.filename, row.index))
    for gone in _deletions(bundle):
        deletion_action(gone.filename, gone.sha256, await db.private_file(gone.filename, gone.index))


def private_action(incoming: PrivateFile, existing: PrivateFile | None, deleted_sha256: str | None) -> str:
    """"add", "update" (same bytes, other yank state or fields: the bundle wins) or "skip". Raises BundleError."""
    if existing is not None and not hmac.compare_digest(existing.sha256, incoming.sha256):
        raise BundleError(
            f"private file {incoming.filename} already exists here with other bytes"
            f" (sha256 {existing.sha256[:12]}…, the bundle has {incoming.sha256[:12]}…)"
        )
    if existing is None and deleted_sha256 is not None and deleted_sha256 != incoming.sha256:
        raise BundleError(f"private file {incoming.filename} was deleted here and may not return with other bytes")
    if existing is None:
        return "add"
    return "skip" if replace(existing, uploaded_by=None) == incoming else "update"


def deletion_action(filename: str, sha256: str, existing: PrivateFile | None) -> bool:
    """Whether a file the source deleted must be removed here. Raises BundleError when it has other bytes."""
    if existing is None:
        return False
    if existing.sha256 != sha256:
        raise BundleError(f"private file {filename} was deleted at the source, but has other bytes here")
    return True


def _deletions(bundle: VerifiedBundle) -> list[DeletedFile]:
    live = {(row.index, row.filename) for rows in bundle.private.values() for row in rows}
    return [d for d in bundle.deleted if (d.index, d.filename) not in live]


def merge_page(existing: StoredPage | None, incoming: StoredPage) -> StoredPage:
    """The bundle's page merged into the cached one: union by filename, the bundle's entry wins.

    Idempotent: merging a page that adds nothing returns `existing` unchanged (so importing a bundle again
    changes and reports nothing). The versions keep the cached page's order unless the bundle adds one (upstream
    orders them its own way; re-sorting made every page "updated"), and the validators and fetch time are the
    fresher page's (an older bundle must not make a page look fresher or staler than it is).
    """
    if existing is None or existing.page is None or incoming.page is None:
        return incoming
    new = {f.filename: f for f in incoming.page.files}
    files = [new.pop(f.filename, f) for f in existing.page.files]
    files += new.values()
    versions = existing.page.versions
    if not set(incoming.page.versions) <= set(versions):
        versions = merge_versions(versions, incoming.page.versions)
    fresher = existing if existing.fetched_at >= incoming.fetched_at else incoming
    return replace(fresher, page=replace(existing.page, files=tuple(files), versions=versions))


# --- blobs ---


async def commit_blobs(store: BlobStore, spools: SpoolDir, source: Source, bundle: VerifiedBundle) -> tuple[int, int]:
    """Commit each blob the data dir lacks (atomic, content-addressed); returns (count, bytes)."""
    added = size = 0
    for sha256, expected in sorted(bundle.manifest.blobs.items()):
        if await store.stat(sha256) is not None:
            continue
        try:
            await _commit_one(store, spools, source, sha256, expected)
        except OSError as exc:  # a full disk: the rows are not written, so nothing becomes visible
            raise BundleError(f"cannot store {blob_path(sha256)} in this data dir: {exc.strerror or exc}") from None
        added, size = added + 1, size + expected
    return added, size


async def _commit_one(store: BlobStore, spools: SpoolDir, source: Source, sha256: str, expected: int) -> None:
    chunks = iter_chunks(source, blob_path(sha256))
    try:
        async with spools.new() as spool:
            while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                await spool.write(chunk)
            if spool.digests()["sha256"] != sha256 or spool.size != expected:
                raise BundleError(f"{blob_path(sha256)} changed while it was being imported")
            await store.commit(spool)
    finally:
        await asyncio.to_thread(chunks.close)


# --- rows ---


Changes = dict[tuple[str, str], dict[str, list[str]]]  # (index, project) -> "files" (added), "updated", "removed"
MembersSet = list[tuple[str, str, Member]]  # (index, project, member) the import added or changed the role of


async def write_rows(db: MetadataStore, bundle: VerifiedBundle, *, who: Actor, name: str) -> ImportResult:
    """Every page, mapping, private file and deleted filename, in one transaction (conflicts re-checked in it),
    with the audit-log entries of the private projects it changed (`who` imported the bundle `name`)."""
    counts = {"page": 0, "names": 0, "add": 0, "update": 0, "skip": 0, "removed": 0, "deleted": 0, "members": 0}
    changes: Changes = {}
    async with db.transaction() as tx:
        for sha256, size in bundle.manifest.blobs.items():
            await tx.record_pinned_blob(sha256, size)
        for record in bundle.pages:
            existing = await tx.get_page(record.name)
            merged = merge_page(existing, record.stored)
            if merged != existing:
                await tx.put_page(record.name, merged)
                counts["page"] += 1
            for url, sha256 in record.upstream_files.items():
                await tx.remember_upstream_file(url, sha256)
        members = await _write_private(tx, bundle, counts, changes)
        await _write_deletions(tx, bundle, counts, changes)
        for (index, project), files in sorted(changes.items()):
            detail = {"bundle": name, "files": [], **{key: sorted(names) for key, names in files.items()}}
            await tx.add_audit(audit_entry(who, "import", index, project, detail=detail))
        for index, project, member in members:  # as `shadowpi owner add` records them, naming the bundle
            await tx.add_audit(owner_added(who, index, project, member.principal, member.role, bundle=name))
    return ImportResult(
        pages_changed=counts["page"],
        private_names_added=counts["names"],
        private_added=counts["add"],
        private_updated=counts["update"],
        private_removed=counts["removed"],
        deleted_added=counts["deleted"],
        members_changed=counts["members"],
    )


async def _write_private(
    tx: Transaction, bundle: VerifiedBundle, counts: dict[str, int], changes: Changes
) -> MembersSet:
    """The private names, members and files; returns the members it set (new, or with another role)."""
    members: MembersSet = []
    for name, rows in bundle.private.items():
        project = bundle.projects.get(name, PrivateProject())
        for index in project.indexes:
            counts["names"] += await tx.add_private_project(name, index)  # private for good, files or not
        for index, member in project.members:  # the bundle's role wins, like its yank state
            if await tx.add_member(index, name, member.principal, member.role):
                counts["members"] += 1
                members.append((index, name, member))
        for row in rows:
            action = await _stage_private(tx, row, counts)
            if action != "skip":  # files already here as the bundle has them record nothing
                key = "files" if action == "add" else "updated"
                changes.setdefault((row.index, row.project), {}).setdefault(key, []).append(row.filename)
    return members


async def _write_deletions(tx: Transaction, bundle: VerifiedBundle, counts: dict[str, int], changes: Changes) -> None:
    for gone in bundle.deleted:
        counts["deleted"] += await tx.add_deleted_file(gone)
    for gone in _deletions(bundle):
        there = await tx.private_file(gone.filename, gone.index)
        if there is not None and deletion_action(gone.filename, gone.sha256, there):
            await tx.remove_private_file(gone.filename, gone.index)
            counts["removed"] += 1
            changes.setdefault((gone.index, there.project), {}).setdefault("removed", []).append(gone.filename)


async def _stage_private(tx: Transaction, row: PrivateFile, counts: dict[str, int]) -> str:
    existing = await tx.private_file(row.filename, row.index)
    action = private_action(row, existing, await tx.deleted_sha256(row.filename, row.index))
    counts[action] += 1
    if action != "skip":
        uploaded_by = existing.uploaded_by if existing is not None else None
        await tx.add_private_file(replace(row, uploaded_by=uploaded_by), replace=True)
    return action
