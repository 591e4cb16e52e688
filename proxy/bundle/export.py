"""`shadowpi export`: snapshot the data dir's cached upstream pages and private files (only what storage can
serve), pick what is new since a cutoff, and write the bundle (and optionally a static index)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from proxy import __version__
from proxy.access.model import ROOT
from proxy.backends.blobs import BlobStore
from proxy.backends.metadata import MetadataStore
from proxy.backends.records import DeletedFile, PrivateFile
from proxy.bundle.blobfiles import BlobFiles
from proxy.bundle.indexes import only_indexes
from proxy.bundle.manifest import (
    DELETED,
    MANIFEST,
    SINCE_OVERLAP,
    BundleError,
    Manifest,
    Since,
    blob_path,
    is_sha256,
    iso_utc,
    page_path,
    parse_manifest,
    parse_time,
    private_path,
)
from proxy.bundle.reader import open_source, read_small
from proxy.bundle.records import (
    PageRecord,
    PrivateProject,
    encode_deleted,
    encode_page,
    encode_private,
    file_blob,
    metadata_blob,
    page_blobs,
    private_blobs,
)
from proxy.bundle.writer import Content, write_bundle
from proxy.config import Config
from proxy.errors import InvalidFilename
from proxy.progress import Progress, Silent
from proxy.simple.model import METADATA_SUFFIX, DistFile
from proxy.simple.names import NormalizedName, parse_dist_filename


@dataclass(frozen=True, slots=True)
class Cutoff:
    """An incremental export's reference point: blobs newer than `time` and not in `previous_blobs` are new."""

    time: float
    previous_blobs: frozenset[str] = frozenset()
    previous_manifest_sha256: str | None = None


@dataclass(slots=True)
class Snapshot:
    """What the data dir can serve right now (pages restricted to files whose bytes are stored)."""

    pages: list[PageRecord]
    private: dict[NormalizedName, list[PrivateFile]]
    deleted: list[DeletedFile]
    blob_times: dict[str, float]
    sizes: dict[str, int] = field(default_factory=dict)  # sha256 -> size of every blob referenced
    projects: dict[NormalizedName, PrivateProject] = field(default_factory=dict)  # indexes and members by name


@dataclass(frozen=True, slots=True)
class ExportResult:
    manifest: Manifest
    upstream_projects: int
    private_projects: int
    blobs: int
    blob_bytes: int


def resolve_since(text: str) -> Cutoff:
    """`--since`: a bundle (directory, .tar or its manifest.json), or an ISO date/datetime (UTC when naive).

    Synchronous (reads files). Raises BundleError.
    """
    path = Path(text)
    if not path.exists():
        return Cutoff(parse_time(text).timestamp())
    if path.is_file() and path.suffix != ".tar":
        data = path.read_bytes()
    else:
        source = open_source(path)
        try:
            source.sizes()
            data = read_small(source, MANIFEST)
        finally:
            source.close()
    manifest = parse_manifest(data)
    return Cutoff(
        parse_time(manifest.created_at).timestamp() - SINCE_OVERLAP,
        frozenset(manifest.blobs),
        hashlib.sha256(data).hexdigest(),
    )


async def export_bundle(
    db: MetadataStore,
    store: BlobStore,
    config: Config,
    out: Path,
    *,
    cutoff: Cutoff | None = None,
    projects: frozenset[NormalizedName] | None = None,
    indexes: frozenset[str] | None = None,
    progress: Progress | None = None,
) -> tuple[ExportResult, Snapshot]:
    """Write the bundle to `out` (a directory, or a tar when it ends with .tar), with the private projects of
    `indexes` (None: every index). Returns the snapshot of every index (a static tree needs a whole chain).
    Raises BundleError."""
    shown = progress or Silent()
    shown.phase("reading the data dir")
    snapshot = await take_snapshot(db, store, projects)
    chosen = only_indexes(snapshot, indexes)
    pages, private, blobs = select(chosen, cutoff)
    now = datetime.now(UTC)
    since = None
    if cutoff is not None:
        since = Since(iso_utc(datetime.fromtimestamp(cutoff.time, UTC)), cutoff.previous_manifest_sha256)
    header = Manifest(iso_utc(now), __version__, _source(config), since, ())
    contents = [Content(DELETED, data=encode_deleted(chosen.deleted))]
    contents += [Content(page_path(p.name), data=encode_page(p)) for p in pages]
    contents += [
        Content(private_path(name), data=encode_private(name, rows, chosen.projects[name]))
        for name, rows in private.items()
    ]
    files = BlobFiles(store, asyncio.get_running_loop())
    contents += [
        Content(blob_path(sha), blob=partial(files.open, sha), sha256=sha, size=snapshot.sizes[sha])
        for sha in sorted(blobs)
    ]
    shown.start(len(contents))

    def written(size: int) -> None:  # in the writer's thread; nothing else draws meanwhile
        shown.add_bytes(size)
        shown.file_done()

    manifest = await asyncio.to_thread(write_bundle, out, contents, header, written)
    size = sum(snapshot.sizes[sha] for sha in blobs)
    return ExportResult(manifest, len(pages), len(private), len(blobs), size), snapshot


def _source(config: Config) -> str:
    return f"{socket.gethostname()}:{config.data_dir.resolve()}"


async def take_snapshot(db: MetadataStore, store: BlobStore, projects: frozenset[NormalizedName] | None) -> Snapshot:
    """Every cached page and private project of every index (optionally only `projects`), keeping only files
    whose blobs exist."""
    upstream_files = await db.bundle_upstream_files()
    snapshot = Snapshot([], {}, [], await db.bundle_blob_times())
    known: set[NormalizedName] = set()
    for name, stored in await db.bundle_pages():
        known.add(name)
        if projects is None or name in projects:
            record = await _present_page(snapshot, store, PageRecord(name, stored, upstream_files))
            if record is not None:
                snapshot.pages.append(record)
    held: dict[NormalizedName, list[str]] = {}
    for index, name in await db.private_project_indexes():  # names stay private after their last file is deleted
        known.add(name)
        if projects is None or name in projects:
            held.setdefault(name, []).append(index)
    live: set[tuple[str, str]] = set()
    for index in sorted({ROOT} | {i for names in held.values() for i in names}):
        await _read_index(db, store, snapshot, index, projects, live)
    for name, rows in snapshot.private.items():  # a file makes its name private: say so even if a row is missing
        held.setdefault(name, []).extend(r.index for r in rows)
    for name, found in sorted(held.items()):
        indexes = tuple(sorted(set(found)))
        members = [(i, m) for i in indexes for m in await db.project_members(i, name)]
        snapshot.projects[name] = PrivateProject(indexes, tuple(members))
        snapshot.private.setdefault(name, [])
    snapshot.private = {name: snapshot.private[name] for name in sorted(snapshot.private)}
    unknown = sorted((projects or frozenset()) - known)
    if unknown:
        raise BundleError(f"no cached or private project named {unknown[0]} in this data dir")
    # A filename deleted and then uploaded again with the same bytes is live: the import must not remove it.
    snapshot.deleted = [d for d in snapshot.deleted if (d.index, d.filename) not in live]
    return snapshot


async def _read_index(
    db: MetadataStore, store: BlobStore, snapshot: Snapshot, index: str,
    projects: frozenset[NormalizedName] | None, live: set[tuple[str, str]],
) -> None:
    """One index's private files (those whose bytes are stored) and deleted filenames, into the snapshot."""
    for row in await db.bundle_private_files(index):
        live.add((index, row.filename))
        if projects is None or row.project in projects:
            present = await _present_private(snapshot, store, row)
            if present is not None:
                snapshot.private.setdefault(row.project, []).append(present)
    snapshot.deleted += [d for d in await db.bundle_deleted_files(index) if _selected(d.filename, projects)]


def _selected(filename: str, projects: frozenset[NormalizedName] | None) -> bool:
    if projects is None:
        return True
    try:
        return parse_dist_filename(filename)[0] in projects
    except InvalidFilename:
        return False


async def _stored(snapshot: Snapshot, store: BlobStore, sha256: str | None) -> str | None:
    """The sha256 if that blob is in storage (recording its size for the summary), else None."""
    if sha256 is None or not is_sha256(sha256):
        return None
    info = await store.stat(sha256)
    if info is None:
        return None
    snapshot.sizes[sha256] = info.size
    return sha256


async def _present_page(snapshot: Snapshot, store: BlobStore, record: PageRecord) -> PageRecord | None:
    page = record.stored.page
    assert page is not None
    kept: list[DistFile] = []
    mapping: dict[str, str] = {}
    for dist in page.files:
        sha256 = await _stored(snapshot, store, file_blob(dist, record.upstream_files))
        if sha256 is None:
            continue
        if dist.sha256 is None:
            mapping[dist.url] = sha256
        meta = await _stored(snapshot, store, metadata_blob(dist, record.upstream_files))
        if meta is not None:
            if record.upstream_files.get(dist.url + METADATA_SUFFIX) == meta:
                mapping[dist.url + METADATA_SUFFIX] = meta
        elif dist.core_metadata is not False:
            dist = replace(dist, core_metadata=False)  # pip fails on a metadata file it cannot fetch
        kept.append(dist)
    if not kept:
        return None
    stored = replace(record.stored, page=replace(page, files=tuple(kept)))
    return PageRecord(record.name, stored, mapping)


async def _present_private(snapshot: Snapshot, store: BlobStore, row: PrivateFile) -> PrivateFile | None:
    if await _stored(snapshot, store, row.sha256) is None:
        return None
    if row.metadata_sha256 and await _stored(snapshot, store, row.metadata_sha256) is None:
        return replace(row, metadata_sha256=None)
    return row


def select(
    snapshot: Snapshot, cutoff: Cutoff | None
) -> tuple[list[PageRecord], dict[NormalizedName, list[PrivateFile]], set[str]]:
    """The pages, private projects and blobs to write: everything, or only the blobs new since `cutoff`, with
    the pages of projects that have any (and every private project's records)."""
    if cutoff is None:
        blobs = {sha for p in snapshot.pages for sha in page_blobs(p)}
        blobs |= {sha for rows in snapshot.private.values() for r in rows for sha in private_blobs(r)}
        return snapshot.pages, snapshot.private, blobs
    blobs = set()
    pages = []
    for record in snapshot.pages:
        new = _new(cutoff, page_blobs(record), snapshot.blob_times)
        if new:
            pages.append(record)
            blobs |= new
    # Private records are small and carry yank state, which has no timestamp: they always travel in full.
    for rows in snapshot.private.values():
        blobs |= {sha for r in rows if _uploaded_after(r, cutoff) for sha in _new(cutoff, private_blobs(r), None)}
    return pages, snapshot.private, blobs


def _new(cutoff: Cutoff, shas: Iterable[str], created: Mapping[str, float] | None) -> set[str]:
    """Blobs not carried by the previous bundle and (when `created` is given) recorded after the cutoff.

    A blob with no `blobs` row has an unknown age: it counts as new rather than being lost.
    """
    fresh = {sha for sha in shas if sha not in cutoff.previous_blobs}
    if created is not None:
        fresh = {sha for sha in fresh if (when := created.get(sha)) is None or when > cutoff.time}
    return fresh


def _uploaded_after(row: PrivateFile, cutoff: Cutoff) -> bool:
    try:
        return parse_time(row.upload_time).timestamp() > cutoff.time
    except BundleError:
        return True  # an unreadable upload time: export it rather than lose it
