"""SQLite statements: private files, private names, deleted filenames."""

from __future__ import annotations

import sqlite3
import time

from proxy.backends.changes import Topic
from proxy.backends.metadata import DuplicateFilename
from proxy.backends.records import DeletedFile, PrivateFile
from proxy.backends.sqlite.base import Queries, Statements
from proxy.simple.names import NormalizedName

PRIVATE_COLUMNS = (
    "filename, project, version, sha256, blake2_256, size, requires_python, metadata_sha256, yanked,"
    " upload_time, uploaded_by"
)


class PrivateReads(Queries):

    async def private_files(self, project: NormalizedName) -> list[PrivateFile]:
        query = f"SELECT {PRIVATE_COLUMNS} FROM private_files WHERE project = ? ORDER BY filename"  # noqa: S608 constant columns
        return [PrivateFile(*row) for row in await self._all(query, (project,))]

    async def private_file(self, filename: str) -> PrivateFile | None:
        query = f"SELECT {PRIVATE_COLUMNS} FROM private_files WHERE filename = ?"  # noqa: S608 constant columns
        row = await self._one(query, (filename,))
        return PrivateFile(*row) if row else None

    async def private_projects(self) -> list[NormalizedName]:
        return [NormalizedName(row[0]) for row in await self._all("SELECT name FROM private_projects ORDER BY name")]

    async def deleted_sha256(self, filename: str) -> str | None:
        row = await self._one("SELECT sha256 FROM deleted_files WHERE filename = ?", (filename,))
        return str(row[0]) if row else None

    async def is_private_blob(self, sha256: str) -> bool:
        query = "SELECT 1 FROM private_files WHERE sha256 = ? OR metadata_sha256 = ? LIMIT 1"
        return await self._one(query, (sha256, sha256)) is not None


class PrivateWrites(PrivateReads, Statements):

    async def add_private_file(self, record: PrivateFile, *, replace: bool = False) -> None:
        await self.add_private_project(record.project)
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        try:
            await self._run(
                f"{verb} INTO private_files ({PRIVATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.filename, record.project, record.version, record.sha256, record.blake2_256,
                    record.size, record.requires_python, record.metadata_sha256, record.yanked,
                    record.upload_time, record.uploaded_by,
                ),
                topic=Topic.PRIVATE,
                usage=True,  # a cached blob may become a private file's: it no longer counts
            )
        except sqlite3.IntegrityError:  # the filename's primary key: another upload committed it first
            raise DuplicateFilename(record.filename) from None

    async def add_private_project(self, name: NormalizedName) -> bool:
        query = "INSERT OR IGNORE INTO private_projects (name, created_at) VALUES (?, ?)"
        return await self._run(query, (name, time.time()), topic=Topic.PRIVATE) > 0

    async def set_yanked(self, filenames: list[str], reason: str | None) -> int:
        marks = ", ".join("?" * len(filenames))
        return await self._run(
            f"UPDATE private_files SET yanked = ? WHERE filename IN ({marks})",  # noqa: S608 only "?" marks
            (reason, *filenames),
            topic=Topic.PRIVATE,
        )

    async def delete_private_files(self, files: list[PrivateFile]) -> None:
        now = time.time()
        await self._run_many(
            "INSERT OR REPLACE INTO deleted_files (filename, sha256, deleted_at) VALUES (?, ?, ?)",
            [(f.filename, f.sha256, now) for f in files],
        )
        query = "DELETE FROM private_files WHERE filename = ?"
        await self._run_many(query, [(f.filename,) for f in files], topic=Topic.PRIVATE, usage=True)

    async def remove_private_file(self, filename: str) -> None:
        await self._run("DELETE FROM private_files WHERE filename = ?", (filename,), topic=Topic.PRIVATE, usage=True)

    async def add_deleted_file(self, deleted: DeletedFile) -> bool:
        query = "INSERT OR IGNORE INTO deleted_files (filename, sha256, deleted_at) VALUES (?, ?, ?)"
        params = (deleted.filename, deleted.sha256, deleted.deleted_at)
        return await self._run(query, params, topic=Topic.PRIVATE) > 0
