"""The PostgreSQL schema: migrations recorded in `schema_migrations`, applied explicitly (MetadataStore.migrate)
under an advisory lock, so N replicas starting together migrate once.

Types: times are `double precision` seconds since the epoch everywhere (what the records carry, as in SQLite; PEP
700's upload_time stays the text it is on the wire), sizes `bigint`, flags `boolean`. Names and filenames sort
`COLLATE "C"` (byte order, as SQLite's BINARY does), whatever the database's locale, so both backends list in one
order. Indexes are SQLite's: the janitor's usage and eviction queries, negative-page pruning, private blob checks.
"""

from __future__ import annotations

import asyncpg

from proxy.backends.metadata import SchemaMismatch
from proxy.backends.postgres.base import Conn

__all__ = ["MIGRATIONS", "migrate", "schema_version"]

# The key of the advisory lock migrations run under (any constant unique to shadowpi: "shadowpi" in ASCII, 8 bytes).
MIGRATION_LOCK = 0x73686164_6F777069

# Applied in order; version N is MIGRATIONS[N - 1]. Never edit a released entry, append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE pages (
        project       text COLLATE "C" PRIMARY KEY,  -- normalized name
        status        smallint NOT NULL,             -- 200, or 404 for a remembered absence
        body          text,                          -- PEP 691 JSON with absolute upstream URLs (status 200)
        etag          text,
        last_modified text,
        fetched_at    double precision NOT NULL      -- when upstream last confirmed this content (200 or 304)
    );
    CREATE INDEX pages_negative ON pages (fetched_at) WHERE status = 404;
    CREATE TABLE blobs (
        sha256      text COLLATE "C" PRIMARY KEY,
        size        bigint NOT NULL,
        created_at  double precision NOT NULL,
        last_access double precision NOT NULL,
        pinned      boolean NOT NULL DEFAULT false   -- `shadowpi warm --pin`, imports: never evicted
    );
    CREATE INDEX blobs_lru ON blobs (last_access);
    -- Upstream files whose page declared no sha256: what their bytes turned out to be.
    CREATE TABLE upstream_files (
        url        text COLLATE "C" PRIMARY KEY,
        sha256     text NOT NULL,
        fetched_at double precision NOT NULL
    );
    CREATE TABLE private_files (
        filename        text COLLATE "C" PRIMARY KEY,  -- globally unique: it embeds the project and version
        project         text COLLATE "C" NOT NULL,     -- normalized name
        version         text NOT NULL,
        sha256          text NOT NULL,
        blake2_256      text,
        size            bigint NOT NULL,
        requires_python text,
        metadata_sha256 text,                 -- blob holding the PEP 658 METADATA file (wheels)
        yanked          text,                 -- NULL: not yanked; '': yanked without reason; else the reason
        upload_time     text NOT NULL,        -- PEP 700 format
        uploaded_by     text
    );
    CREATE INDEX private_files_project ON private_files (project);
    CREATE INDEX private_files_sha256 ON private_files (sha256);
    CREATE INDEX private_files_metadata_sha256 ON private_files (metadata_sha256);
    -- A name, once private, stays private: deleting its last file must not hand it back to upstream.
    CREATE TABLE private_projects (
        name       text COLLATE "C" PRIMARY KEY,
        created_at double precision NOT NULL
    );
    -- Filenames of deleted private files: they may never come back with other bytes (as on PyPI).
    CREATE TABLE deleted_files (
        filename   text COLLATE "C" PRIMARY KEY,
        sha256     text NOT NULL,
        deleted_at double precision NOT NULL
    );
    CREATE TABLE tokens (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_name   text NOT NULL,
        token_hash  text NOT NULL UNIQUE,     -- sha256 of the token; the token itself is never stored
        description text,
        created_at  double precision NOT NULL,
        last_used   double precision,
        revoked_at  double precision
    );
    CREATE INDEX tokens_user_name ON tokens (user_name);
    -- Moved (after the commit) by every transaction that may change the cache usage: the janitor recounts only
    -- when it moved (MetadataStore.usage_version).
    CREATE SEQUENCE usage_changes;
    """,
    """
    -- Secrets every replica shares (the web interface's session signing key).
    CREATE TABLE secrets (
        name       text COLLATE "C" PRIMARY KEY,
        value      bytea NOT NULL,
        created_at double precision NOT NULL
    );
    """,
    """
    -- Who leads each download cluster-wide (postgres/leases.py): the backend `pid` holding the file's session
    -- advisory lock, reachable by peers at `url`. A row outlives a leader that died; only one whose pid still
    -- holds the lock counts. Unlogged: a crash of the database ends every lead anyway.
    CREATE UNLOGGED TABLE fill_leaders (
        sha256     text COLLATE "C" PRIMARY KEY,
        url        text,                          -- the leader's [server] advertise_url; NULL: none
        pid        integer NOT NULL,
        started_at double precision NOT NULL
    );
    """,
)


async def schema_version(conn: Conn | asyncpg.Pool) -> int:
    """The highest migration applied (0: none, or no shadowpi schema at all)."""
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return 0
    return int(await conn.fetchval("SELECT COALESCE(max(version), 0) FROM schema_migrations"))


async def migrate(conn: Conn) -> tuple[int, int]:
    """Apply the missing migrations in one transaction, under an advisory lock; returns (version before, how many
    applied). Replicas migrating at once wait for the one that holds the lock, then find nothing to do. An
    up-to-date database is only read. Raises SchemaMismatch when the database is newer than this shadowpi."""
    current = _check(await schema_version(conn))
    if current == len(MIGRATIONS):
        return current, 0
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = _check(await schema_version(conn))  # again, under the lock: another replica may have done it
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            await conn.execute(script)  # several statements: the simple query protocol, in this transaction
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
    return current, len(MIGRATIONS) - current


def _check(version: int) -> int:
    if version > len(MIGRATIONS):
        raise SchemaMismatch(
            f"the database has schema version {version}, newer than this shadowpi's ({len(MIGRATIONS)}): upgrade"
            " shadowpi"
        )
    return version
