"""Queries: private files, private names, deleted filenames."""

from __future__ import annotations

import sqlite3
import time
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

import aiosqlite

from proxy.db.base import Queries
from proxy.db.changes import Topic
from proxy.db.records import DuplicateFilename, PrivateFile
from proxy.simple.names import NormalizedName

if TYPE_CHECKING:  # writer.py builds on these queries
    from proxy.db.writer import Writer, WriteTransaction

_PRIVATE_COLUMNS = (
    "filename, project, version, sha256, blake2_256, size, requires_python, metadata_sha256, yanked,"
    " upload_time, uploaded_by"
)


async def insert_private_file(conn: aiosqlite.Connection, record: PrivateFile, *, replace: bool) -> None:
    """The statements that add a private file and make its name private (committed by the caller)."""
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    await conn.execute(
        "INSERT OR IGNORE INTO private_projects (name, created_at) VALUES (?, ?)", (record.project, time.time())
    )
    await conn.execute(
        f"{verb} INTO private_files ({_PRIVATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.filename, record.project, record.version, record.sha256, record.blake2_256,
            record.size, record.requires_python, record.metadata_sha256, record.yanked,
            record.upload_time, record.uploaded_by,
        ),
    )


class PrivateQueries(Queries):
    _writer: Writer  # set by Database

    async def private_files(self, project: NormalizedName) -> list[PrivateFile]:
        """A private project's files, by filename (empty when the project is not private)."""
        query = f"SELECT {_PRIVATE_COLUMNS} FROM private_files WHERE project = ? ORDER BY filename"  # noqa: S608 constant columns
        async with self._conn.execute(query, (project,)) as cur:
            return [PrivateFile(*row) async for row in cur]

    async def private_file(self, filename: str) -> PrivateFile | None:
        query = f"SELECT {_PRIVATE_COLUMNS} FROM private_files WHERE filename = ?"  # noqa: S608 constant columns
        row = await self._one(query, (filename,))
        return PrivateFile(*row) if row else None

    async def private_projects(self) -> list[NormalizedName]:
        """Every name that is or was private (with or without files now)."""
        async with self._conn.execute("SELECT name FROM private_projects ORDER BY name") as cur:
            return [NormalizedName(row[0]) async for row in cur]

    async def is_private_project(self, name: NormalizedName) -> bool:
        async with self._conn.execute("SELECT 1 FROM private_projects WHERE name = ?", (name,)) as cur:
            return await cur.fetchone() is not None

    async def add_private_file(self, record: PrivateFile, *, replace: bool = False) -> None:
        """Insert a private file (or replace one, when overwrites are allowed).

        Raises DuplicateFilename when another upload of that filename won the race.
        """
        try:
            await insert_private_file(self._conn, record, replace=replace)
            await self._conn.commit()
        except sqlite3.IntegrityError:
            await self._conn.rollback()
            raise DuplicateFilename(record.filename) from None
        self._changes.bump(Topic.PRIVATE)

    def write_transaction(self) -> AbstractAsyncContextManager[WriteTransaction]:
        """A transaction for a check and the writes that depend on it (see proxy/db/writer.py)."""
        return self._writer.transaction()

    async def set_yanked(self, filenames: list[str], reason: str | None) -> int:
        """Yank (reason: str, may be empty) or unyank (None) files; returns how many changed."""
        marks = ", ".join("?" * len(filenames))
        cur = await self._conn.execute(
            f"UPDATE private_files SET yanked = ? WHERE filename IN ({marks})",  # noqa: S608 only "?" marks
            (reason, *filenames),
        )
        await self._conn.commit()
        self._changes.bump(Topic.PRIVATE)
        return cur.rowcount

    async def delete_private_files(self, files: list[PrivateFile]) -> None:
        """Delete files and remember their names, so they can't come back with other bytes."""
        now = time.time()
        await self._conn.executemany(
            "INSERT OR REPLACE INTO deleted_files (filename, sha256, deleted_at) VALUES (?, ?, ?)",
            [(f.filename, f.sha256, now) for f in files],
        )
        await self._conn.executemany("DELETE FROM private_files WHERE filename = ?", [(f.filename,) for f in files])
        await self._conn.commit()
        self._changes.bump(Topic.PRIVATE)

    async def deleted_sha256(self, filename: str) -> str | None:
        """The sha256 a deleted private file had, if that filename was ever deleted."""
        row = await self._one("SELECT sha256 FROM deleted_files WHERE filename = ?", (filename,))
        return str(row[0]) if row else None
