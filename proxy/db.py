"""Database edge: one aiosqlite connection, schema migrations, and queries that return models, never rows.

Nothing outside this module knows the backend is SQLite; a future PostgreSQL backend implements the same methods.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from proxy.simple.json import parse_project_json, render_project_json
from proxy.simple.model import ProjectPage
from proxy.simple.names import NormalizedName

DB_FILENAME = "shadowpi.sqlite3"  # inside the data dir

# Applied in order from PRAGMA user_version upward; never edit a released entry, append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE pages (
        project       TEXT PRIMARY KEY,     -- normalized name
        status        INTEGER NOT NULL,     -- 200, or 404 for a remembered absence
        body          TEXT,                 -- PEP 691 JSON with absolute upstream URLs (status 200)
        etag          TEXT,
        last_modified TEXT,
        fetched_at    REAL NOT NULL         -- when upstream last confirmed this content (200 or 304)
    );
    CREATE TABLE blobs (
        sha256      TEXT PRIMARY KEY,
        size        INTEGER NOT NULL,
        created_at  REAL NOT NULL,
        last_access REAL NOT NULL
    );
    -- Upstream files whose page declared no sha256: what their bytes turned out to be.
    CREATE TABLE upstream_files (
        url        TEXT PRIMARY KEY,
        sha256     TEXT NOT NULL,
        fetched_at REAL NOT NULL
    );
    """,
    """
    CREATE TABLE private_files (
        filename        TEXT PRIMARY KEY,   -- globally unique: it embeds the project name and version
        project         TEXT NOT NULL,      -- normalized name
        version         TEXT NOT NULL,
        sha256          TEXT NOT NULL,
        blake2_256      TEXT,
        size            INTEGER NOT NULL,
        requires_python TEXT,
        metadata_sha256 TEXT,               -- blob holding the PEP 658 METADATA file (wheels)
        yanked          TEXT,               -- NULL: not yanked; '': yanked without reason; else the reason
        upload_time     TEXT NOT NULL,      -- PEP 700 format
        uploaded_by     TEXT
    );
    CREATE INDEX private_files_project ON private_files (project);
    -- Filenames of deleted private files: they may never come back with other bytes (as on PyPI).
    CREATE TABLE deleted_files (
        filename   TEXT PRIMARY KEY,
        sha256     TEXT NOT NULL,
        deleted_at REAL NOT NULL
    );
    CREATE TABLE tokens (
        id          INTEGER PRIMARY KEY,
        user        TEXT NOT NULL,
        token_hash  TEXT NOT NULL UNIQUE,   -- sha256 of the token; the token itself is never stored
        description TEXT,
        created_at  REAL NOT NULL,
        last_used   REAL,
        revoked_at  REAL
    );
    """,
    """
    ALTER TABLE blobs ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;  -- set by `shadowpi warm --pin`
    CREATE INDEX blobs_lru ON blobs (last_access);
    """,
    """
    -- A name, once private, stays private: deleting its last file must not hand it back to upstream.
    CREATE TABLE private_projects (
        name       TEXT PRIMARY KEY,
        created_at REAL NOT NULL
    );
    INSERT OR IGNORE INTO private_projects (name, created_at)
        SELECT DISTINCT project, CAST(strftime('%s', 'now') AS REAL) FROM private_files;
    """,
)


@dataclass(frozen=True, slots=True)
class StoredPage:
    """A cached upstream answer for one project: a page, or a remembered 404 (page is None)."""

    page: ProjectPage | None
    etag: str | None
    last_modified: str | None
    fetched_at: float


@dataclass(frozen=True, slots=True)
class CacheUsage:
    files: int
    bytes: int
    pinned_bytes: int


@dataclass(frozen=True, slots=True)
class BlobRecord:
    sha256: str
    size: int
    last_access: float


# Blobs that are cached upstream files: not a private upload, nor a private upload's metadata file.
_EVICTABLE_SCOPE = (
    "NOT EXISTS (SELECT 1 FROM private_files p WHERE p.sha256 = blobs.sha256 OR p.metadata_sha256 = blobs.sha256)"
)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An API token's bookkeeping (never the token itself)."""

    id: int
    user: str
    description: str | None
    created_at: float
    last_used: float | None
    revoked_at: float | None


@dataclass(frozen=True, slots=True)
class PrivateFile:
    """A privately uploaded distribution file."""

    filename: str
    project: NormalizedName
    version: str
    sha256: str
    blake2_256: str | None
    size: int
    requires_python: str | None
    metadata_sha256: str | None
    yanked: str | None  # None: not yanked; "": yanked without a reason; else the reason
    upload_time: str
    uploaded_by: str | None


_PRIVATE_COLUMNS = (
    "filename, project, version, sha256, blake2_256, size, requires_python, metadata_sha256, yanked,"
    " upload_time, uploaded_by"
)


class DuplicateFilename(Exception):
    """Another upload committed the same filename first (a race between two uploads)."""


class Database:
    """The shadowpi database. Use `async with Database.open(path) as db` or open()/close()."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open (creating if needed) and migrate the database file."""
        conn = await aiosqlite.connect(path)
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA busy_timeout=10000")  # other workers may hold the write lock briefly
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
            await _migrate(conn)
        except BaseException:
            await conn.close()
            raise
        return cls(conn)

    async def close(self) -> None:
        await self._conn.close()

    async def ping(self) -> None:
        """A trivial query: proves the database answers."""
        async with self._conn.execute("SELECT 1") as cur:
            await cur.fetchone()

    async def schema_version(self) -> int:
        async with self._conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    # --- upstream pages ---

    async def get_page(self, name: NormalizedName) -> StoredPage | None:
        """The cached upstream answer for a project, if any."""
        query = "SELECT status, body, etag, last_modified, fetched_at FROM pages WHERE project = ?"
        async with self._conn.execute(query, (name,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        status, body, etag, last_modified, fetched_at = row
        page = parse_project_json(body, "", name) if status == 200 and body else None
        return StoredPage(page, etag, last_modified, float(fetched_at))

    async def put_page(self, name: NormalizedName, stored: StoredPage) -> None:
        """Insert or replace the cached upstream answer for a project."""
        body = render_project_json(stored.page, lambda f: f.url) if stored.page is not None else None
        await self._conn.execute(
            "INSERT OR REPLACE INTO pages (project, status, body, etag, last_modified, fetched_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (name, 200 if stored.page else 404, body, stored.etag, stored.last_modified, stored.fetched_at),
        )
        await self._conn.commit()

    async def touch_page(self, name: NormalizedName, fetched_at: float) -> None:
        """Record that upstream confirmed the cached page unchanged (a 304)."""
        await self._conn.execute("UPDATE pages SET fetched_at = ? WHERE project = ?", (fetched_at, name))
        await self._conn.commit()

    async def cached_projects(self) -> list[NormalizedName]:
        """Names of projects with a cached upstream page (not remembered 404s)."""
        async with self._conn.execute("SELECT project FROM pages WHERE status = 200 ORDER BY project") as cur:
            return [NormalizedName(row[0]) async for row in cur]

    # --- blobs ---

    async def record_blob(self, sha256: str, size: int, now: float | None = None) -> None:
        """Remember a committed blob (for usage accounting and eviction)."""
        now = time.time() if now is None else now
        await self._conn.execute(
            "INSERT INTO blobs (sha256, size, created_at, last_access) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(sha256) DO UPDATE SET last_access = excluded.last_access",
            (sha256, size, now, now),
        )
        await self._conn.commit()

    async def remember_upstream_file(self, url: str, sha256: str) -> None:
        """Map an upstream URL without a declared hash to the blob its bytes became."""
        await self._conn.execute(
            "INSERT OR REPLACE INTO upstream_files (url, sha256, fetched_at) VALUES (?, ?, ?)",
            (url, sha256, time.time()),
        )
        await self._conn.commit()

    async def upstream_file_sha256(self, url: str) -> str | None:
        async with self._conn.execute("SELECT sha256 FROM upstream_files WHERE url = ?", (url,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None

    # --- cache accounting and eviction ---

    async def touch_blob(self, sha256: str, when: float) -> None:
        """Record a cache hit (callers throttle this: it is a write)."""
        await self._conn.execute("UPDATE blobs SET last_access = ? WHERE sha256 = ?", (when, sha256))
        await self._conn.commit()

    async def cache_usage(self) -> CacheUsage:
        """Files and bytes of cached upstream blobs (private uploads excluded), and how much is pinned."""
        query = (
            "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(size * pinned), 0)"  # noqa: S608 constant SQL
            f" FROM blobs WHERE {_EVICTABLE_SCOPE}"
        )
        async with self._conn.execute(query) as cur:
            row = await cur.fetchone()
        files, size, pinned = row if row else (0, 0, 0)
        return CacheUsage(int(files), int(size), int(pinned))

    async def eviction_candidates(self, *, accessed_before: float, limit: int = 500) -> list[BlobRecord]:
        """Least recently used upstream blobs that may go: not private, not pinned, not touched recently."""
        query = (
            f"SELECT sha256, size, last_access FROM blobs WHERE {_EVICTABLE_SCOPE} AND pinned = 0"  # noqa: S608 constant
            " AND last_access < ? ORDER BY last_access LIMIT ?"
        )
        async with self._conn.execute(query, (accessed_before, limit)) as cur:
            return [BlobRecord(str(r[0]), int(r[1]), float(r[2])) async for r in cur]

    async def forget_blob(self, sha256: str) -> None:
        await self._conn.execute("DELETE FROM blobs WHERE sha256 = ?", (sha256,))
        await self._conn.commit()

    async def pin_blobs(self, sha256s: list[str], *, pinned: bool = True) -> int:
        """Pin (or unpin) blobs so eviction never removes them; returns how many rows changed."""
        cur = await self._conn.executemany(
            "UPDATE blobs SET pinned = ? WHERE sha256 = ?", [(int(pinned), sha) for sha in sha256s]
        )
        await self._conn.commit()
        return cur.rowcount

    async def is_private_blob(self, sha256: str) -> bool:
        query = "SELECT 1 FROM private_files WHERE sha256 = ? OR metadata_sha256 = ? LIMIT 1"
        async with self._conn.execute(query, (sha256, sha256)) as cur:
            return await cur.fetchone() is not None

    async def drop_page(self, name: NormalizedName) -> StoredPage | None:
        """Remove a project's cached upstream page; returns what was cached."""
        stored = await self.get_page(name)
        await self._conn.execute("DELETE FROM pages WHERE project = ?", (name,))
        await self._conn.commit()
        return stored


    # --- API tokens ---

    async def add_token(self, user: str, token_hash: str, description: str | None = None) -> int:
        """Store a new token's hash; returns its id."""
        cur = await self._conn.execute(
            "INSERT INTO tokens (user, token_hash, description, created_at) VALUES (?, ?, ?, ?)",
            (user, token_hash, description, time.time()),
        )
        await self._conn.commit()
        return int(cur.lastrowid or 0)

    async def token_user(self, token_hash: str) -> str | None:
        """The user owning a live (not revoked) token with this hash; records its use."""
        query = "SELECT id, user FROM tokens WHERE token_hash = ? AND revoked_at IS NULL"
        async with self._conn.execute(query, (token_hash,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        # Throttled: a 50-file install with a token must not mean 50 write commits.
        now = time.time()
        cur = await self._conn.execute(
            "UPDATE tokens SET last_used = ? WHERE id = ? AND (last_used IS NULL OR last_used < ?)",
            (now, row[0], now - 60),
        )
        if cur.rowcount:
            await self._conn.commit()
        return str(row[1])

    async def revoke_token(self, token_id: int) -> bool:
        """Revoke a token by id; False when no live token has that id."""
        cur = await self._conn.execute(
            "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (time.time(), token_id)
        )
        await self._conn.commit()
        return cur.rowcount > 0

    async def list_tokens(self, user: str | None = None) -> list[TokenRecord]:
        """Tokens (optionally of one user), oldest first."""
        query = "SELECT id, user, description, created_at, last_used, revoked_at FROM tokens"
        params: tuple[str, ...] = ()
        if user is not None:
            query += " WHERE user = ?"
            params = (user,)
        async with self._conn.execute(query + " ORDER BY id", params) as cur:
            return [TokenRecord(*row) async for row in cur]


    # --- private files ---

    async def private_files(self, project: NormalizedName) -> list[PrivateFile]:
        """A private project's files, by filename (empty when the project is not private)."""
        query = f"SELECT {_PRIVATE_COLUMNS} FROM private_files WHERE project = ? ORDER BY filename"  # noqa: S608 constant columns
        async with self._conn.execute(query, (project,)) as cur:
            return [PrivateFile(*row) async for row in cur]

    async def private_file(self, filename: str) -> PrivateFile | None:
        query = f"SELECT {_PRIVATE_COLUMNS} FROM private_files WHERE filename = ?"  # noqa: S608 constant columns
        async with self._conn.execute(query, (filename,)) as cur:
            row = await cur.fetchone()
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
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        try:
            await self._conn.execute(
                "INSERT OR IGNORE INTO private_projects (name, created_at) VALUES (?, ?)", (record.project, time.time())
            )
            await self._conn.execute(
                f"{verb} INTO private_files ({_PRIVATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.filename, record.project, record.version, record.sha256, record.blake2_256,
                    record.size, record.requires_python, record.metadata_sha256, record.yanked,
                    record.upload_time, record.uploaded_by,
                ),
            )
            await self._conn.commit()
        except sqlite3.IntegrityError:
            await self._conn.rollback()
            raise DuplicateFilename(record.filename) from None

    async def set_yanked(self, filenames: list[str], reason: str | None) -> int:
        """Yank (reason: str, may be empty) or unyank (None) files; returns how many changed."""
        marks = ", ".join("?" * len(filenames))
        cur = await self._conn.execute(
            f"UPDATE private_files SET yanked = ? WHERE filename IN ({marks})",  # noqa: S608 only "?" marks
            (reason, *filenames),
        )
        await self._conn.commit()
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

    async def deleted_sha256(self, filename: str) -> str | None:
        """The sha256 a deleted private file had, if that filename was ever deleted."""
        async with self._conn.execute("SELECT sha256 FROM deleted_files WHERE filename = ?", (filename,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None


    # --- bundles (export/import) ---

    @dataclass(frozen=True, slots=True)
    class DeletedFile:
        """A deleted private filename and the sha256 it had (the reuse rule)."""

        filename: str
        sha256: str
        deleted_at: float

    async def bundle_pages(self) -> list[tuple[NormalizedName, StoredPage]]:
        """Every cached upstream page (remembered 404s excluded), by project name."""
        query = "SELECT project FROM pages WHERE status = 200 AND body IS NOT NULL ORDER BY project"
        async with self._conn.execute(query) as cur:
            names = [NormalizedName(row[0]) async for row in cur]
        found = [(name, await self.get_page(name)) for name in names]
        return [(name, stored) for name, stored in found if stored is not None and stored.page is not None]

    async def bundle_blob_times(self) -> dict[str, float]:
        """sha256 -> created_at of every recorded blob."""
        async with self._conn.execute("SELECT sha256, created_at FROM blobs") as cur:
            return {str(row[0]): float(row[1]) async for row in cur}

    async def bundle_upstream_files(self) -> dict[str, str]:
        """URL -> sha256 of upstream files whose page declared no sha256."""
        async with self._conn.execute("SELECT url, sha256 FROM upstream_files") as cur:
            return {str(row[0]): str(row[1]) async for row in cur}

    async def bundle_private_files(self) -> list[PrivateFile]:
        """Every private file, by project and filename."""
        query = f"SELECT {_PRIVATE_COLUMNS} FROM private_files ORDER BY project, filename"  # noqa: S608 constant columns
        async with self._conn.execute(query) as cur:
            return [PrivateFile(*row) async for row in cur]

    async def bundle_deleted_files(self) -> list[Database.DeletedFile]:
        """Every deleted private filename, by filename."""
        query = "SELECT filename, sha256, deleted_at FROM deleted_files ORDER BY filename"
        async with self._conn.execute(query) as cur:
            return [Database.DeletedFile(str(r[0]), str(r[1]), float(r[2])) async for r in cur]

    async def data_version(self) -> int:
        """SQLite's PRAGMA data_version: changes whenever ANOTHER connection commits (e.g. `shadowpi import`)."""
        async with self._conn.execute("PRAGMA data_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    # The bundle_stage_* methods do not commit: call them between bundle_begin() and bundle_commit().

    async def bundle_begin(self) -> None:
        """Start one write transaction (taking the write lock now, so reads inside it stay current)."""
        await self._conn.execute("BEGIN IMMEDIATE")

    async def bundle_commit(self) -> None:
        await self._conn.commit()

    async def bundle_rollback(self) -> None:
        await self._conn.rollback()

    async def bundle_stage_page(self, name: NormalizedName, stored: StoredPage) -> None:
        """Insert or replace a cached upstream page (as put_page, without committing)."""
        body = render_project_json(stored.page, lambda f: f.url) if stored.page is not None else None
        await self._conn.execute(
            "INSERT OR REPLACE INTO pages (project, status, body, etag, last_modified, fetched_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (name, 200 if stored.page else 404, body, stored.etag, stored.last_modified, stored.fetched_at),
        )

    async def bundle_stage_private_file(self, record: PrivateFile) -> None:
        """Insert or replace a private file row."""
        await self._conn.execute(
            f"INSERT OR REPLACE INTO private_files ({_PRIVATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 constant columns
            (
                record.filename, record.project, record.version, record.sha256, record.blake2_256,
                record.size, record.requires_python, record.metadata_sha256, record.yanked,
                record.upload_time, record.uploaded_by,
            ),
        )

    async def bundle_stage_private_project(self, name: NormalizedName) -> bool:
        """Register a name as private (for good, as uploads do); True when it was new."""
        cur = await self._conn.execute(
            "INSERT OR IGNORE INTO private_projects (name, created_at) VALUES (?, ?)", (name, time.time())
        )
        return cur.rowcount > 0

    async def bundle_stage_remove_private_file(self, filename: str) -> None:
        await self._conn.execute("DELETE FROM private_files WHERE filename = ?", (filename,))

    async def bundle_stage_deleted(self, deleted: Database.DeletedFile) -> bool:
        """Remember a deleted filename unless already known; True when it was new."""
        cur = await self._conn.execute(
            "INSERT OR IGNORE INTO deleted_files (filename, sha256, deleted_at) VALUES (?, ?, ?)",
            (deleted.filename, deleted.sha256, deleted.deleted_at),
        )
        return cur.rowcount > 0

    async def bundle_stage_upstream_file(self, url: str, sha256: str) -> bool:
        """Map an upstream URL to its blob; True when the mapping is new or changed."""
        cur = await self._conn.execute(
            "INSERT INTO upstream_files (url, sha256, fetched_at) VALUES (?, ?, ?)"
            " ON CONFLICT(url) DO UPDATE SET sha256 = excluded.sha256, fetched_at = excluded.fetched_at"
            " WHERE upstream_files.sha256 != excluded.sha256",
            (url, sha256, time.time()),
        )
        return cur.rowcount > 0

    async def bundle_stage_blob(self, sha256: str, size: int) -> bool:
        """Record an imported blob as pinned (offline, an evicted file could never come back); True when that
        changed anything."""
        now = time.time()
        cur = await self._conn.execute(
            "INSERT INTO blobs (sha256, size, created_at, last_access, pinned) VALUES (?, ?, ?, ?, 1)"
            " ON CONFLICT(sha256) DO UPDATE SET pinned = 1 WHERE blobs.pinned = 0",
            (sha256, size, now, now),
        )
        return cur.rowcount > 0


async def _migrate(conn: aiosqlite.Connection) -> None:
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    current = int(row[0]) if row else 0
    if current > len(MIGRATIONS):
        raise RuntimeError(f"database schema {current} is newer than this shadowpi ({len(MIGRATIONS)})")
    for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
        # executescript commits first; the schema change and the version bump land together.
        await conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
