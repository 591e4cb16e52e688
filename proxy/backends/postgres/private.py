"""PostgreSQL statements: private files, private names, deleted filenames.

Inside a transaction every statement here takes the private-state lock first (base.py): reads too, because a
transaction reads private state to decide what to write (a free release slot, an unused filename)."""

from __future__ import annotations

import time

from proxy.backends.changes import Topic
from proxy.backends.metadata import DuplicateFilename
from proxy.backends.postgres.base import Queries, Statements
from proxy.backends.records import DeletedFile, PrivateFile
from proxy.simple.names import NormalizedName

PRIVATE_COLUMNS = (
    "filename, project, version, sha256, blake2_256, size, requires_python, metadata_sha256, yanked,"
    " upload_time, uploaded_by"
)
_REPLACE = ", ".join(f"{c} = excluded.{c}" for c in PRIVATE_COLUMNS.replace(" ", "").split(",")[1:])


class PrivateReads(Queries):

    async def private_files(self, project: NormalizedName) -> list[PrivateFile]:
        query = f"SELECT {PRIVATE_COLUMNS} FROM private_files WHERE project = $1 ORDER BY filename"  # noqa: S608 constant
        return [PrivateFile(*row) for row in await self._all(query, project)]

    async def private_file(self, filename: str) -> PrivateFile | None:
        query = f"SELECT {PRIVATE_COLUMNS} FROM private_files WHERE filename = $1"  # noqa: S608 constant columns
        row = await self._one(query, filename)
        return PrivateFile(*row) if row is not None else None

    async def private_projects(self) -> list[NormalizedName]:
        return [NormalizedName(r[0]) for r in await self._all("SELECT name FROM private_projects ORDER BY name")]

    async def deleted_sha256(self, filename: str) -> str | None:
        row = await self._one("SELECT sha256 FROM deleted_files WHERE filename = $1", filename)
        return str(row[0]) if row is not None else None

    async def is_private_blob(self, sha256: str) -> bool:
        # Two EXISTS, one index each (private_files_sha256, private_files_metadata_sha256), as in SQLite.
        return bool(await self._db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM private_files WHERE sha256 = $1)"
            " OR EXISTS (SELECT 1 FROM private_files WHERE metadata_sha256 = $1)",
            sha256,
        ))


class PrivateWrites(PrivateReads, Statements):

    async def private_files(self, project: NormalizedName) -> list[PrivateFile]:
        await self._lock_private()
        return await super().private_files(project)

    async def private_file(self, filename: str) -> PrivateFile | None:
        await self._lock_private()
        return await super().private_file(filename)

    async def deleted_sha256(self, filename: str) -> str | None:
        await self._lock_private()
        return await super().deleted_sha256(filename)

    async def is_private_blob(self, sha256: str) -> bool:
        await self._lock_private()
        return await super().is_private_blob(sha256)

    async def add_private_file(self, record: PrivateFile, *, replace: bool = False) -> None:
        await self.add_private_project(record.project)
        conflict = f"DO UPDATE SET {_REPLACE}" if replace else "DO NOTHING"  # no error: the transaction goes on
        added = await self._run(
            f"INSERT INTO private_files ({PRIVATE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"  # noqa: S608 constant
            f" ON CONFLICT (filename) {conflict}",
            record.filename, record.project, record.version, record.sha256, record.blake2_256, record.size,
            record.requires_python, record.metadata_sha256, record.yanked, record.upload_time, record.uploaded_by,
            topic=Topic.PRIVATE,
            usage=True,  # a cached blob may become a private file's: it no longer counts
        )
        if not added:  # the filename's primary key: another upload committed it first
            raise DuplicateFilename(record.filename)

    async def add_private_project(self, name: NormalizedName) -> bool:
        await self._lock_private()
        query = "INSERT INTO private_projects (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        return await self._run(query, name, time.time(), topic=Topic.PRIVATE) > 0

    async def set_yanked(self, filenames: list[str], reason: str | None) -> int:
        await self._lock_private()
        query = "UPDATE private_files SET yanked = $1 WHERE filename = ANY($2::text[])"
        return await self._run(query, reason, filenames, topic=Topic.PRIVATE)

    async def delete_private_files(self, files: list[PrivateFile]) -> None:
        await self._lock_private()
        gone = {f.filename: f.sha256 for f in files}  # one row each: an upsert may not touch a row twice
        await self._run(
            "INSERT INTO deleted_files (filename, sha256, deleted_at)"
            " SELECT filename, sha256, $3 FROM unnest($1::text[], $2::text[]) AS d (filename, sha256)"
            " ON CONFLICT (filename) DO UPDATE SET sha256 = excluded.sha256, deleted_at = excluded.deleted_at",
            list(gone), list(gone.values()), time.time(),
        )
        query = "DELETE FROM private_files WHERE filename = ANY($1::text[])"
        await self._run(query, list(gone), topic=Topic.PRIVATE, usage=True)

    async def remove_private_file(self, filename: str) -> None:
        await self._lock_private()
        query = "DELETE FROM private_files WHERE filename = $1"
        await self._run(query, filename, topic=Topic.PRIVATE, usage=True)

    async def add_deleted_file(self, deleted: DeletedFile) -> bool:
        await self._lock_private()
        query = "INSERT INTO deleted_files (filename, sha256, deleted_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
        params = (deleted.filename, deleted.sha256, deleted.deleted_at)
        return await self._run(query, *params, topic=Topic.PRIVATE) > 0
