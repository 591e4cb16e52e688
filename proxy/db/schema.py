"""Database schema: migrations applied in order from PRAGMA user_version upward."""

from __future__ import annotations

import aiosqlite

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
)


async def migrate(conn: aiosqlite.Connection) -> None:
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    current = int(row[0]) if row else 0
    if current > len(MIGRATIONS):
        raise RuntimeError(f"database schema {current} is newer than this shadowpi ({len(MIGRATIONS)})")
    for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
        # executescript commits first; the schema change and the version bump land together.
        await conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
