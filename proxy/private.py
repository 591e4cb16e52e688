"""The private overlay: pages of privately uploaded projects, and yank/unyank/delete of their files."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from proxy.db import Database, PrivateFile
from proxy.errors import FileNotFound, ProjectNotFound
from proxy.simple.model import DistFile, Origin, ProjectPage
from proxy.simple.names import NormalizedName
from proxy.simple.policy import merge_versions
from proxy.storage import BlobStore


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


class PrivateIndex:
    """Private projects, read from the database on every lookup (other processes may have changed them)."""

    def __init__(self, db: Database, store: BlobStore) -> None:
        self._db = db
        self._store = store
        # The same rows give the same page object, so rendered pages stay cached until something changes.
        self._pages: dict[NormalizedName, tuple[tuple[PrivateFile, ...], ProjectPage]] = {}

    async def page(self, name: NormalizedName) -> ProjectPage | None:
        """The private page for a project, or None when nothing was uploaded under that name."""
        rows = tuple(await self._db.private_files(name))
        if not rows:
            self._pages.pop(name, None)
            if await self._db.is_private_project(name):  # all files deleted: the name stays private
                return ProjectPage(name=name, files=(), origin=Origin.PRIVATE)
            return None
        known = self._pages.get(name)
        if known is not None and known[0] == rows:
            return known[1]
        page = ProjectPage(
            name=name,
            files=tuple(to_dist(r) for r in rows),
            versions=merge_versions(r.version for r in rows),
            origin=Origin.PRIVATE,
        )
        self._pages[name] = (rows, page)
        return page

    async def names(self) -> list[NormalizedName]:
        return await self._db.private_projects()

    async def select(self, project: NormalizedName, target: str) -> Selection:
        """Files named by `target`: a filename of the project, or a version (all its files).

        Raises ProjectNotFound / FileNotFound.
        """
        files = await self._db.private_files(project)
        if not files:
            raise ProjectNotFound(f"{project} has no private files")
        chosen = tuple(f for f in files if f.filename == target) or tuple(
            f for f in files if _same_version(f.version, target)
        )
        if not chosen:
            raise FileNotFound(f"{project} has no private file or version {target!r}")
        return Selection(project, chosen)

    async def yank(self, selection: Selection, reason: str) -> int:
        """PEP 592: yanked files stay installable by exact pin, but resolvers skip them."""
        return await self._db.set_yanked([f.filename for f in selection.files], reason)

    async def unyank(self, selection: Selection) -> int:
        return await self._db.set_yanked([f.filename for f in selection.files], None)

    async def delete(self, selection: Selection) -> None:
        """Remove files from the index and storage; their filenames stay reserved for the same bytes.

        Blobs are content-addressed and may be shared (sibling wheels often have identical METADATA), so a
        blob is deleted only when no remaining private file refers to it.
        """
        await self._db.delete_private_files(list(selection.files))
        for record in selection.files:
            for sha256 in filter(None, (record.sha256, record.metadata_sha256)):
                if not await self._db.is_private_blob(sha256):
                    await self._store.delete(sha256)


def _same_version(stored: str, target: str) -> bool:
    try:
        return Version(stored) == Version(target)
    except InvalidVersion:
        return stored == target
