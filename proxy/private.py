"""The private overlay: pages of privately uploaded projects, and yank/unyank/delete of their files."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from proxy.access.model import ROOT
from proxy.audit import Actor, audit_entry
from proxy.backends.changes import ChangeFeed, Topic
from proxy.backends.metadata import MetadataStore
from proxy.backends.records import PrivateFile
from proxy.errors import FileNotFound, ProjectNotFound
from proxy.reaper import BlobReaper
from proxy.simple.model import DistFile, Origin, ProjectPage
from proxy.simple.names import NormalizedName
from proxy.simple.policy import merge_versions


def to_dist(record: PrivateFile) -> DistFile:
    """The page model of a private file (url is empty: private bytes live in blob storage)."""
    return DistFile(
        filename=record.filename,
        url="",
        hashes={"sha256": record.sha256},
        requires_python=record.requires_python,
        yanked=False if record.yanked is None else (record.yanked or True),
        core_metadata={"sha256": record.metadata_sha256} if record.metadata_sha256 else False,
        size=record.size,
        upload_time=record.upload_time,
        origin=Origin.PRIVATE,
    )


@dataclass(frozen=True, slots=True)
class Selection:
    """The private files a yank/delete request names: one file, or every file of a release."""

    project: NormalizedName
    files: tuple[PrivateFile, ...]
    index: str = ROOT

    @property
    def filenames(self) -> list[str]:
        return [f.filename for f in self.files]


class PrivateIndex:
    """Private projects, kept in memory and reloaded as soon as any process commits a private change.

    Every project lookup asks "is this name private?", so the answer must cost no query; the change feed's
    stamp (a memory read) says when the names and pages held here are out of date.
    """

    def __init__(self, db: MetadataStore, changes: ChangeFeed, reaper: BlobReaper) -> None:
        self._db = db
        self._changes = changes
        self._reaper = reaper
        self._stamp: bytes | None = None
        self._names: dict[str, frozenset[NormalizedName]] | None = None  # index -> its private names
        self._holders: dict[NormalizedName, frozenset[str]] = {}  # name -> the indexes holding it (memoized)
        # Kept until the next private change: the same page object keeps rendered bytes cached.
        self._pages: dict[tuple[str, NormalizedName], ProjectPage] = {}
        self._files: tuple[PrivateFile, ...] | None = None

    async def page(self, name: NormalizedName, index: str = ROOT) -> ProjectPage | None:
        """The private page for a project in an index, or None when nothing was uploaded under that name there."""
        stamp = self.version()
        page = self._pages.get((index, name))
        if page is not None:  # held pages were dropped by version() if anything changed
            return page
        if name not in (await self._private_names(stamp)).get(index, ()):
            return None
        rows = await self._db.private_files(name, index)
        page = ProjectPage(  # no rows: every file was deleted, but the name stays private
            name=name,
            files=tuple(to_dist(r) for r in rows),
            versions=merge_versions(r.version for r in rows),
            origin=Origin.PRIVATE,
        )
        if stamp == self._stamp:  # nothing changed while reading: safe to keep
            self._pages[(index, name)] = page
        return page

    async def names(self, index: str = ROOT) -> list[NormalizedName]:
        return sorted((await self._private_names(self.version())).get(index, ()))

    async def holders(self, name: NormalizedName) -> frozenset[str]:
        """The indexes that hold a private project of this name (a memory read while nothing changes)."""
        stamp = self.version()
        held = self._holders.get(name)
        if held is None:
            names = await self._private_names(stamp)
            held = frozenset(index for index, there in names.items() if name in there)
            if stamp == self._stamp:
                self._holders[name] = held
        return held

    async def files(self) -> tuple[PrivateFile, ...]:
        """Every private file of every index, by project and filename (the web interface's listings, recent
        uploads): one query, then held until the next private change, so the same tuple comes back while nothing
        changed."""
        stamp = self.version()
        files = self._files
        if files is None:
            files = tuple(await self._db.bundle_private_files(None))  # every index
            if stamp == self._stamp:
                self._files = files
        return files

    def version(self) -> bytes:
        """The change stamp now: it changes whenever any private project does (an upload, a deletion, a yank, in any
        process). Drops everything held when it differs from the last one seen."""
        stamp = self._changes.stamp(Topic.PRIVATE)
        if stamp != self._stamp:
            self._stamp = stamp
            self._names = None
            self._holders = {}
            self._files = None
            self._pages.clear()
        return stamp

    async def _private_names(self, stamp: bytes) -> dict[str, frozenset[NormalizedName]]:
        names = self._names
        if names is None:
            grouped: dict[str, set[NormalizedName]] = {}
            for index, name in await self._db.private_project_indexes():
                grouped.setdefault(index, set()).add(name)
            names = {index: frozenset(found) for index, found in grouped.items()}
            if stamp == self._stamp:  # a change during the query makes the result suspect for later requests
                self._names = names
        return names

    async def select(self, project: NormalizedName, target: str, index: str = ROOT) -> Selection:
        """Files of a project in an index named by `target`: a filename, or a version (all its files).

        Raises ProjectNotFound / FileNotFound.
        """
        files = await self._db.private_files(project, index)
        if not files:
            where = "" if index == ROOT else f" in index {index!r}"
            raise ProjectNotFound(f"{project} has no private files{where}")
        chosen = tuple(f for f in files if f.filename == target) or tuple(
            f for f in files if _same_version(f.version, target)
        )
        if not chosen:
            raise FileNotFound(f"{project} has no private file or version {target!r}")
        return Selection(project, chosen, index)

    async def yank(self, selection: Selection, reason: str, actor: Actor | None = None) -> int:
        """PEP 592: yanked files stay installable by exact pin, but resolvers skip them."""
        return await self._mark(selection, reason, actor, "yank")

    async def unyank(self, selection: Selection, actor: Actor | None = None) -> int:
        return await self._mark(selection, None, actor, "unyank")

    async def _mark(self, selection: Selection, reason: str | None, actor: Actor | None, action: str) -> int:
        async with self._db.transaction() as tx:
            changed = await tx.set_yanked(selection.filenames, reason, selection.index)
            if actor is not None:
                detail = {"files": selection.filenames} | ({"reason": reason} if reason else {})
                await tx.add_audit(audit_entry(actor, action, selection.index, selection.project, detail=detail))
        return changed

    async def delete(self, selection: Selection, actor: Actor | None = None) -> None:
        """Remove files from the index and storage; their filenames stay reserved for the same bytes.

        Blobs are content-addressed and may be shared (sibling wheels often have identical METADATA, and a pushed
        file is the same blob in two indexes), so a blob is deleted only when no remaining private file refers to it.
        """
        async with self._db.transaction() as tx:
            await tx.delete_private_files(list(selection.files))
            if actor is not None:
                detail = {"files": selection.filenames}
                await tx.add_audit(audit_entry(actor, "delete", selection.index, selection.project, detail=detail))
        # Rows first: a crash in between leaves unused bytes, never a listed file without its bytes.
        blobs = [sha256 for f in selection.files for sha256 in (f.sha256, f.metadata_sha256)]
        await self._reaper.reclaim(blobs)


def _same_version(stored: str, target: str) -> bool:
    try:
        return Version(stored) == Version(target)
    except InvalidVersion:
        return stored == target
