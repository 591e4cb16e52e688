"""PostgreSQL statements: private files, private names, deleted filenames.

Inside a transaction every statement here takes the private-state lock first (base.py): reads too, because a
transaction reads private state to decide what to write (a free release slot, an unused filename)."""

from __future__ import annotations

import time

from proxy.access.model import ROOT
from proxy.backends.changes import Topic
from proxy.backends.metadata import DuplicateFilename
from proxy.backends.postgres.base import Queries, Statements
from proxy.backends.records import DeletedFile, PrivateFile
from proxy.simple.names import NormalizedName

PRIVATE_COLUMNS = (
    "filename, project, version, sha256, blake2_256, size, requires_python, metadata_sha256, yanked,"
    " upload_time, uploaded_by, index_name"
)
_REPLACE = ", ".join(f"{c} = excluded.{c}" for c in PRIVATE_COLUMNS.replace(" ", "").split(",")[1:-1])


class PrivateReads(Queries):

    async def private_files(self, project: NormalizedName, index: str = ROOT) -> list[PrivateFile]:
        query = f"SELECT {PRIVATE_COLUMNS} FROM private_files WHERE index_name = $1 AND project = $2 ORDER BY filename"  # noqa: S608 constant
        return [PrivateFile(*row) for row in await self._all(query, index, project)]

    async def private_file(self, filename: str, index: str = ROOT) -> PrivateFile | None:
        query = f"SELECT {PRIVATE_COLUMNS} FROM private_files WHERE index_name = $1 AND filename = $2"  # noqa: S608 constant columns
        row = await self._one(query, index, filename)
        return PrivateFile(*row) if row is not None else None

    async def private_projects(self, index: str = ROOT) -> list[NormalizedName]:
        query = "SELECT name FROM private_projects WHERE index_name = $1 ORDER BY name"
        return [NormalizedName(r[0]) for r in await self._all(query, index)]

    async def private_project_indexes(self) -> list[tuple[str, NormalizedName]]:
        rows = await self._all("SELECT index_name, name FROM private_projects ORDER BY index_name, name")
        return [(str(r[0]), NormalizedName(r[1])) for r in rows]

    async def deleted_sha256(self, filename: str, index: str = ROOT) -> str | None:
        query = "SELECT sha256 FROM deleted_files WHERE index_name = $1 AND filename = $2"
        row = await self._one(query, index, filename)
        return str(row[0]) if row is not None else None

    async def is_private_blob(self, sha256: str) -> bool:
        # Two EXISTS, one index each (private_files_sha256, private_files_metadata_sha256), as in SQLite.
        return bool(await self._db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM private_files WHERE sha256 = $1)"
            " OR EXISTS (SELECT 1 FROM private_files WHERE metadata_sha256 = $1)",
            sha256,
        ))


class PrivateWrites(PrivateReads, Statements):

    async def private_files(self, project: NormalizedName, index: str = ROOT) -> list[PrivateFile]:
        await self._lock_private()
        return await super().private_files(project, index)

    async def private_file(self, filename: str, index: str = ROOT) -> PrivateFile | None:
        await self._lock_private()
        return await super().private_file(filename, index)

    async def deleted_sha256(self, filename: str, index: str = ROOT) -> str | None:
        await self._lock_private()
        return await super().deleted_sha256(filename, index)

    async def is_private_blob(self, sha256: str) -> bool:
        await self._lock_private()
        return await super().is_private_blob(sha256)

    async def add_private_file(self, record: PrivateFile, *, replace: bool = False) -> None:
        await self.add_private_project(record.project, record.index, created_by=record.uploaded_by)
        conflict = f"DO UPDATE SET {_REPLACE}" if replace else "DO NOTHING"  # no error: the transaction goes on
        added = await self._run(
            f"INSERT INTO private_files ({PRIVATE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"  # noqa: S608 constant
            f" ON CONFLICT (index_name, filename) {conflict}",
            record.filename, record.project, record.version, record.sha256, record.blake2_256, record.size,
            record.requires_python, record.metadata_sha256, record.yanked, record.upload_time, record.uploaded_by,
            record.index,
            topic=Topic.PRIVATE,
            usage=True,  # a cached blob may become a private file's: it no longer counts
        )
        if not added:  # the filename's primary key: another upload committed it first
            raise DuplicateFilename(record.filename)

    async def add_private_project(
        self, name: NormalizedName, index: str = ROOT, *, created_by: str | None = None
    ) -> bool:
        await self._lock_private()
        query = ("INSERT INTO private_projects (index_name, name, created_at, created_by) VALUES ($1, $2, $3, $4)"
                 " ON CONFLICT DO NOTHING")
        return await self._run(query, index, name, time.time(), created_by, topic=Topic.PRIVATE) > 0

    async def set_yanked(self, filenames: list[str], reason: str | None, index: str = ROOT) -> int:
        await self._lock_private()
        query = "UPDATE private_files SET yanked = $1 WHERE index_name = $3 AND filename = ANY($2::text[])"
        return await self._run(query, reason, filenames, index, topic=Topic.PRIVATE)

    async def delete_private_files(self, files: list[PrivateFile]) -> None:
        await self._lock_private()
        # One row each: an upsert may not touch a row twice.
        gone = {(f.index, f.filename): f.sha256 for f in files}
        indexes, names = [k[0] for k in gone], [k[1] for k in gone]
        await self._run(
            "INSERT INTO deleted_files (index_name, filename, sha256, deleted_at)"
            " SELECT i, f, s, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS d (i, f, s)"
            " ON CONFLICT (index_name, filename) DO UPDATE SET sha256 = excluded.sha256,"
            " deleted_at = excluded.deleted_at",
            indexes, names, list(gone.values()), time.time(),
        )
        query = ("DELETE FROM private_files WHERE (index_name, filename) IN"
                 " (SELECT * FROM unnest($1::text[], $2::text[]))")
        await self._run(query, indexes, names, topic=Topic.PRIVATE, usage=True)

    async def remove_private_file(self, filename: str, index: str = ROOT) -> None:
        await self._lock_private()
        query = "DELETE FROM private_files WHERE index_name = $1 AND filename = $2"
        await self._run(query, index, filename, topic=Topic.PRIVATE, usage=True)

    async def add_deleted_file(self, deleted: DeletedFile) -> bool:
        await self._lock_private()
        query = ("INSERT INTO deleted_files (index_name, filename, sha256, deleted_at) VALUES ($1, $2, $3, $4)"
                 " ON CONFLICT DO NOTHING")
        params = (deleted.index, deleted.filename, deleted.sha256, deleted.deleted_at)
        return await self._run(query, *params, topic=Topic.PRIVATE) > 0
