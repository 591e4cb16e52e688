"""The SQLite schema: migrations, applied explicitly (MetadataStore.migrate) from PRAGMA user_version upward."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import aiosqlite

from proxy.backends.metadata import SchemaMismatch

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
    """
    -- "Is this blob a private upload's?" is asked for every blob when the cache is measured or evicted, and
    -- for every cached file deleted: without these it scanned every private file per blob (seconds at 5,000).
    CREATE INDEX private_files_sha256 ON private_files (sha256);
    CREATE INDEX private_files_metadata_sha256 ON private_files (metadata_sha256);
    -- Remembered upstream 404s, oldest first: the janitor forgets expired ones and bounds how many are kept.
    CREATE INDEX pages_negative ON pages (fetched_at) WHERE status = 404;
    """,
    """
    -- "user" is a reserved word in PostgreSQL: the same schema must read the same in every backend.
    ALTER TABLE tokens RENAME COLUMN user TO user_name;
    """,
    """
    -- Secrets every process of one installation shares (the web interface's session signing key): kept with the
    -- metadata, so replicas on one database sign and check the same way.
    CREATE TABLE secrets (
        name       TEXT PRIMARY KEY,
        value      BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    """,
    """
    -- Indexes, owners and permissions (issue 14). A private project, its files and its deleted filenames belong to
    -- an index now: the same name (and filename) may exist in several indexes. Everything there was is root's.
    -- SQLite cannot change a primary key in place: the three tables are rebuilt.
    CREATE TABLE private_files_v8 (
        index_name      TEXT NOT NULL,
        filename        TEXT NOT NULL,
        project         TEXT NOT NULL,
        version         TEXT NOT NULL,
        sha256          TEXT NOT NULL,
        blake2_256      TEXT,
        size            INTEGER NOT NULL,
        requires_python TEXT,
        metadata_sha256 TEXT,
        yanked          TEXT,
        upload_time     TEXT NOT NULL,
        uploaded_by     TEXT,
        PRIMARY KEY (index_name, filename)
    );
    INSERT INTO private_files_v8 SELECT 'root', filename, project, version, sha256, blake2_256, size,
        requires_python, metadata_sha256, yanked, upload_time, uploaded_by FROM private_files;
    DROP TABLE private_files;
    ALTER TABLE private_files_v8 RENAME TO private_files;
    CREATE INDEX private_files_project ON private_files (index_name, project);
    CREATE INDEX private_files_sha256 ON private_files (sha256);
    CREATE INDEX private_files_metadata_sha256 ON private_files (metadata_sha256);
    CREATE TABLE private_projects_v8 (
        index_name TEXT NOT NULL,
        name       TEXT NOT NULL,
        created_at REAL NOT NULL,
        created_by TEXT,
        PRIMARY KEY (index_name, name)
    );
    INSERT INTO private_projects_v8 SELECT 'root', name, created_at, NULL FROM private_projects;
    DROP TABLE private_projects;
    ALTER TABLE private_projects_v8 RENAME TO private_projects;
    CREATE TABLE deleted_files_v8 (
        index_name TEXT NOT NULL,
        filename   TEXT NOT NULL,
        sha256     TEXT NOT NULL,
        deleted_at REAL NOT NULL,
        PRIMARY KEY (index_name, filename)
    );
    INSERT INTO deleted_files_v8 SELECT 'root', filename, sha256, deleted_at FROM deleted_files;
    DROP TABLE deleted_files;
    ALTER TABLE deleted_files_v8 RENAME TO deleted_files;
    -- Owners and maintainers: a user name or "group:NAME". The first uploader of a project owns it.
    CREATE TABLE project_members (
        index_name TEXT NOT NULL,
        project    TEXT NOT NULL,
        principal  TEXT NOT NULL,
        role       TEXT NOT NULL,           -- owner | maintainer
        added_at   REAL NOT NULL,
        PRIMARY KEY (index_name, project, principal)
    );
    INSERT OR IGNORE INTO project_members (index_name, project, principal, role, added_at)
        SELECT 'root', f.project, f.uploaded_by, 'owner', CAST(strftime('%s', 'now') AS REAL) FROM private_files f
        WHERE f.uploaded_by IS NOT NULL AND f.upload_time = (
            SELECT min(g.upload_time) FROM private_files g WHERE g.project = f.project);
    ALTER TABLE tokens ADD COLUMN scope_indexes TEXT;   -- comma-separated index names; NULL: every index
    ALTER TABLE tokens ADD COLUMN scope_project TEXT;   -- writes only to this project
    ALTER TABLE tokens ADD COLUMN scope_actions TEXT NOT NULL DEFAULT 'read,upload';
    ALTER TABLE tokens ADD COLUMN expires_at REAL;
    CREATE TABLE audit_log (
        id         INTEGER PRIMARY KEY,
        at         REAL NOT NULL,
        actor      TEXT NOT NULL,
        via        TEXT NOT NULL,           -- password | token:<id> | cli
        address    TEXT,
        action     TEXT NOT NULL,
        index_name TEXT,
        project    TEXT,
        target     TEXT,
        detail     TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_log_at ON audit_log (at);
    """,
)


async def migrate(conn: aiosqlite.Connection) -> int:
    """Apply the missing migrations in one write transaction; returns how many. The version is read again inside
    it, so processes migrating at once apply each migration once (the others wait, then find nothing to do). An
    up-to-date database is only read (a full disk must not stop shadowpi from opening it).

    Raises SchemaMismatch when the database is newer than this shadowpi.
    """
    if _check_version(await user_version(conn)) == len(MIGRATIONS):
        return 0
    await conn.execute("BEGIN IMMEDIATE")
    try:
        current = _check_version(await user_version(conn))
        for script in MIGRATIONS[current:]:
            for statement in statements(script):
                await conn.execute(statement)
        await conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        await conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
        raise
    return len(MIGRATIONS) - current


def _check_version(version: int) -> int:
    if version > len(MIGRATIONS):
        raise SchemaMismatch(
            f"the database has schema version {version}, newer than this shadowpi's ({len(MIGRATIONS)}): upgrade"
            " shadowpi"
        )
    return version


async def user_version(conn: aiosqlite.Connection) -> int:
    rows = list(await conn.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0]) if rows else 0


def statements(script: str) -> Iterator[str]:
    """The statements of a migration script, one by one (executescript would commit the transaction first)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):  # not a ";" inside a comment or a string
            if _code(pending):
                yield pending.strip()
            pending = ""
    if _code(pending.rstrip(";")):
        raise ValueError(f"an unterminated statement in a migration: {pending!r}")


def _code(text: str) -> bool:
    """Whether `text` holds more than comments, blank lines and semicolons."""
    return any(line.strip(" ;") and not line.strip().startswith("--") for line in text.splitlines())
