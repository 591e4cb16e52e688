"""SQLite statements: private files, private names, deleted filenames (each in an index: issue 14)."""

from __future__ import annotations

import sqlite3
import time

from proxy.access.model import ROOT
from proxy.backends.changes import Topic
from proxy.backends.metadata import DuplicateFilename
from proxy.backends.records import DeletedFile, PrivateFile
from proxy.backends.sqlite.base import Queries, Statements
from proxy.simple.names import NormalizedName

PRIVATE_COLUMNS = (
    "filename, project, version, sha256, blake2_256, size, requires_python, metadata_sha256, yanked,"
    " upload_time, uploaded_by, index_name"
)


class PrivateReads(Queries):

    async def private_files(self, project: NormalizedName, index: str = ROOT) -> list[PrivateFile]:
        query = f"SELECT {PRIVATE_COLUMNS} FROM private_files WHERE index_name = ? AND project = ? ORDER BY filename"  # noqa: S608 constant columns
        return [PrivateFile(*row) for row in await self._all(query, (index, project))]

    async def private_file(self, filename: str, index: str = ROOT) -> PrivateFile | None:
        query = f"SELECT {PRIVATE_COLUMNS} FROM private_files WHERE index_name = ? AND filename = ?"  # noqa: S608 constant columns
        row = await self._one(query, (index, filename))
        return PrivateFile(*row) if row else None

    async def private_projects(self, index: str = ROOT) -> list[NormalizedName]:
        query = "SELECT name FROM private_projects WHERE index_name = ? ORDER BY name"
        return [NormalizedName(row[0]) for row in await self._all(query, (index,))]

    async def private_project_indexes(self) -> list[tuple[str, NormalizedName]]:
        rows = await self._all("SELECT index_name, name FROM private_projects ORDER BY index_name, name")
        return [(str(row[0]), NormalizedName(row[1])) for row in rows]

    async def deleted_sha256(self, filename: str, index: str = ROOT) -> str | None:
        query = "SELECT sha256 FROM deleted_files WHERE index_name = ? AND filename = ?"
        row = await self._one(query, (index, filename))
        return str(row[0]) if row else None

    async def is_private_blob(self, sha256: str) -> bool:
        query = "SELECT 1 FROM private_files WHERE sha256 = ? OR metadata_sha256 = ? LIMIT 1"
        return await self._one(query, (sha256, sha256)) is not None


class PrivateWrites(PrivateReads, Statements):

    async def add_private_file(self, record: PrivateFile, *, replace: bool = False) -> None:
        await self.add_private_project(record.project, record.index, created_by=record.uploaded_by)
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        try:
            await self._run(
                f"{verb} INTO private_files ({PRIVATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.filename, record.project, record.version, record.sha256, record.blake2_256,
                    record.size, record.requires_python, record.metadata_sha256, record.yanked,
                    record.upload_time, record.uploaded_by, record.index,
                ),
                topic=Topic.PRIVATE,
                usage=True,  # a cached blob may become a private file's: it no longer counts
            )
        except sqlite3.IntegrityError:  # the filename's primary key: another upload committed it first
            raise DuplicateFilename(record.filename) from None

    async def add_private_project(
        self, name: NormalizedName, index: str = ROOT, *, created_by: str | None = None
    ) -> bool:
        query = "INSERT OR IGNORE INTO private_projects (index_name, name, created_at, created_by) VALUES (?, ?, ?, ?)"
        return await self._run(query, (index, name, time.time(), created_by), topic=Topic.PRIVATE) > 0

    async def set_yanked(self, filenames: list[str], reason: str | None, index: str = ROOT) -> int:
        marks = ", ".join("?" * len(filenames))
        return await self._run(
            f"UPDATE private_files SET yanked = ? WHERE index_name = ? AND filename IN ({marks})",  # noqa: S608 only "?" marks
            (reason, index, *filenames),
            topic=Topic.PRIVATE,
        )

    async def delete_private_files(self, files: list[PrivateFile]) -> None:
        now = time.time()
        await self._run_many(
            "INSERT OR REPLACE INTO deleted_files (index_name, filename, sha256, deleted_at) VALUES (?, ?, ?, ?)",
            [(f.index, f.filename, f.sha256, now) for f in files],
        )
        query = "DELETE FROM private_files WHERE index_name = ? AND filename = ?"
        await self._run_many(query, [(f.index, f.filename) for f in files], topic=Topic.PRIVATE, usage=True)

    async def remove_private_file(self, filename: str, index: str = ROOT) -> None:
        query = "DELETE FROM private_files WHERE index_name = ? AND filename = ?"
        await self._run(query, (index, filename), topic=Topic.PRIVATE, usage=True)

    async def add_deleted_file(self, deleted: DeletedFile) -> bool:
        query = "INSERT OR IGNORE INTO deleted_files (index_name, filename, sha256, deleted_at) VALUES (?, ?, ?, ?)"
        params = (deleted.index, deleted.filename, deleted.sha256, deleted.deleted_at)
        return await self._run(query, params, topic=Topic.PRIVATE) > 0
