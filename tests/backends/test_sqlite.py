"""The SQLite backend's own promises, beyond the contract: its schema and migrations, its three connections, the
stamp file, and a writer connection that a cancelled task never leaves inside a transaction."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.access.model import Member
from proxy.backends.changes import Topic
from proxy.backends.metadata import SchemaMismatch
from proxy.backends.sqlite import MmapChangeFeed, SqliteMetadata, open_sqlite
from proxy.backends.sqlite.schema import MIGRATIONS, statements
from proxy.simple.names import NormalizedName


@contextlib.asynccontextmanager
async def opened(path: Path, *, migrate: bool = True) -> AsyncIterator[SqliteMetadata]:
    async with open_sqlite(path, migrate=migrate) as (meta, _feed):
        yield meta


def raw(path: Path) -> sqlite3.Connection:
    """A connection of another process (plain sqlite3, autocommit)."""
    return sqlite3.connect(path, isolation_level=None, timeout=0)


def at_schema(conn: sqlite3.Connection, version: int) -> None:
    """Build the schema as it was at `version` (the migrations up to it, as an old shadowpi left the file)."""
    for script in MIGRATIONS[:version]:
        for statement in statements(script):
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")


async def test_a_new_database_needs_migrate_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    """Opening without migrating is refused for an empty database (schema 0) and for one newer than this
    shadowpi, with a message saying which; migrating an empty one applies every migration."""
    path = tmp_path / "db.sqlite3"
    with pytest.raises(SchemaMismatch, match=r"has schema version 0, older than this shadowpi's \(8\)"):
        async with opened(path, migrate=False):
            pass
    async with opened(path) as meta:
        assert await meta.schema_version() == len(MIGRATIONS) == 8
    with contextlib.closing(raw(path)) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    for migrate in (True, False):
        with pytest.raises(SchemaMismatch, match="newer than this shadowpi"):
            async with opened(path, migrate=migrate):
                pass


async def test_processes_migrating_at_once_apply_each_migration_once(tmp_path: Path) -> None:
    """Two stores opening a new database together both succeed (one migrates, the other finds nothing to do)."""
    path = tmp_path / "db.sqlite3"
    async with contextlib.AsyncExitStack() as stack:
        both = await asyncio.gather(*(stack.enter_async_context(opened(path)) for _ in range(2)))
        assert [await meta.schema_version() for meta in both] == [8, 8]


async def test_the_tokens_user_column_is_renamed_keeping_every_token(tmp_path: Path) -> None:
    """A database at schema 5 (tokens.user, a reserved word in PostgreSQL) migrates to user_name with its tokens."""
    path = tmp_path / "db.sqlite3"
    with contextlib.closing(raw(path)) as conn:
        at_schema(conn, 5)
        conn.execute("INSERT INTO tokens (user, token_hash, created_at) VALUES ('alice', ?, 1.0)", ("1" * 64,))
    async with opened(path) as meta:
        assert await meta.token_user("1" * 64) == "alice"
        assert [t.user for t in await meta.list_tokens("alice")] == ["alice"]
    with contextlib.closing(raw(path)) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(tokens)")]
    assert "user_name" in columns and "user" not in columns


async def test_only_the_writer_connection_writes(tmp_path: Path) -> None:
    """The reader and background connections are read-only: every write goes through a transaction."""
    async with opened(tmp_path / "db.sqlite3") as meta:
        for role in ("reader", "background"):
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                await meta.connection(role).execute("DELETE FROM tokens")


async def test_a_cancel_while_waiting_for_the_write_lock_leaves_the_writer_usable(tmp_path: Path) -> None:
    """A transaction cancelled while BEGIN IMMEDIATE waits for another process's write lock: once that process
    lets go, the BEGIN that went through is rolled back, and the next transaction works."""
    path = tmp_path / "db.sqlite3"
    async with opened(path) as meta:
        begun = asyncio.Event()
        loop = asyncio.get_running_loop()

        def traced(statement: str) -> None:  # in the writer's thread, as each statement starts
            if statement == "BEGIN IMMEDIATE":
                loop.call_soon_threadsafe(begun.set)

        await meta.connection("writer").set_trace_callback(traced)
        other = raw(path)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock

        async def write() -> None:
            async with meta.transaction() as tx:
                await tx.add_token("lost", "1" * 64)

        task = asyncio.create_task(write())
        await begun.wait()  # the writer's thread now waits in SQLite's busy handler
        task.cancel()
        other.execute("ROLLBACK")  # let go while the cancelled task waits for its BEGIN to end
        other.close()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not meta.connection("writer").in_transaction
        await meta.add_token("alice", "2" * 64)
        assert [t.user for t in await meta.list_tokens()] == ["alice"]


async def test_a_full_disk_during_a_transaction_is_storage_full(tmp_path: Path) -> None:
    """SQLite's "database or disk is full" becomes StorageFull (a 507), and nothing is left half-written."""
    from proxy.errors import StorageFull

    async with opened(tmp_path / "db.sqlite3") as meta:
        await meta.connection("writer").execute("PRAGMA max_page_count = 1")  # now any growth is "disk full"
        with pytest.raises(StorageFull):
            async with meta.transaction() as tx:
                for i in range(200):
                    await tx.add_token("ci", f"{i:064d}", "x" * 1000)
        await meta.connection("writer").execute("PRAGMA max_page_count = 1073741823")
        assert await meta.list_tokens() == []
        await meta.add_token("alice", "2" * 64)


def test_a_stamp_file_of_an_older_version_is_grown_keeping_its_stamps(tmp_path: Path) -> None:
    """The stamp file of a version with fewer topics is grown in place: its stamps keep their values."""
    path = tmp_path / "db.changes"
    path.write_bytes(b"\x01" * 8)  # written by a version with one topic
    feed = MmapChangeFeed.open(path)
    try:
        assert feed.stamp(Topic.PRIVATE) == b"\x01" * 8
        assert feed.stamp(Topic.PAGES) == b"\x00" * 8
        assert path.stat().st_size == 8 * len(Topic)
    finally:
        feed.close()


async def test_private_projects_belong_to_root_after_the_indexes_migration(tmp_path: Path) -> None:
    """A schema-7 database (before indexes) migrates with every private file, name and deleted filename in root,
    its first uploader owning each project, and its tokens unscoped."""
    path = tmp_path / "db.sqlite3"
    with contextlib.closing(raw(path)) as conn:
        at_schema(conn, 7)
        columns = "filename, project, version, sha256, size, upload_time, uploaded_by"
        conn.execute(f"INSERT INTO private_files ({columns}) VALUES ('acme-1.0.tar.gz', 'acme', '1.0', ?, 1,"  # noqa: S608
                     " '2025-01-01T00:00:00Z', 'alice')", ("a" * 64,))
        conn.execute(f"INSERT INTO private_files ({columns}) VALUES ('acme-2.0.tar.gz', 'acme', '2.0', ?, 1,"  # noqa: S608
                     " '2025-02-01T00:00:00Z', 'bob')", ("b" * 64,))
        conn.execute("INSERT INTO private_projects (name, created_at) VALUES ('acme', 1.0), ('gone', 1.0)")
        conn.execute("INSERT INTO deleted_files VALUES ('gone-1.0.tar.gz', ?, 2.0)", ("c" * 64,))
        conn.execute("INSERT INTO tokens (user_name, token_hash, created_at) VALUES ('alice', ?, 1.0)", ("1" * 64,))
    async with opened(path) as meta:
        assert await meta.private_project_indexes() == [
            ("root", NormalizedName("acme")), ("root", NormalizedName("gone"))]
        assert [f.index for f in await meta.private_files(NormalizedName("acme"))] == ["root", "root"]
        assert await meta.deleted_sha256("gone-1.0.tar.gz") == "c" * 64
        assert await meta.project_members("root", "acme") == [Member("alice", "owner")]
        token = await meta.live_token("1" * 64)
        assert token is not None and (token.indexes, token.actions, token.expires_at) == ((), ("read", "upload"), None)


async def test_a_single_write_of_a_cold_fill_is_one_statement_on_the_writer(tmp_path: Path) -> None:
    """Storing a fetched page, touching it, recording a blob and remembering an upstream file each run exactly
    one statement on the writer (no BEGIN and COMMIT: one trip to its thread, not three), and commit it: another
    process sees every row, and the pages' change stamp moved after the page was stored."""
    from proxy.backends.records import StoredPage
    from proxy.simple.names import NormalizedName

    path = tmp_path / "db.sqlite3"
    async with open_sqlite(path, migrate=True) as (meta, feed):
        statements: list[str] = []
        await meta.connection("writer").set_trace_callback(statements.append)
        before = feed.stamp(Topic.PAGES)
        await meta.put_page(NormalizedName("acme"), StoredPage(None, None, None, 5.0))
        assert feed.stamp(Topic.PAGES) != before
        await meta.touch_page(NormalizedName("acme"), 7.0)
        await meta.record_blob("a" * 64, 10, now=3.0)
        assert await meta.remember_upstream_file("https://x/acme-1.0.tar.gz", "a" * 64) is True
        await meta.connection("writer").set_trace_callback(None)
        assert [s.split()[0] for s in statements] == ["INSERT", "UPDATE", "INSERT", "INSERT"], statements
        with contextlib.closing(raw(path)) as conn:
            assert conn.execute("SELECT project, status, fetched_at FROM pages").fetchall() == [("acme", 404, 7.0)]
            assert conn.execute("SELECT sha256, size, last_access FROM blobs").fetchall() == [("a" * 64, 10, 3.0)]
            assert conn.execute("SELECT sha256 FROM upstream_files").fetchall() == [("a" * 64,)]


async def test_a_single_write_cancelled_while_another_process_writes_still_commits_and_bumps(tmp_path: Path) -> None:
    """A single write waits for another process's write lock like a transaction; cancelled meanwhile (the client
    went away), it still ends: once the other process lets go its row is committed, the change stamp is bumped
    (no process keeps assuming the old state), and the writer is free for the next write."""
    from proxy.backends.records import StoredPage
    from proxy.simple.names import NormalizedName

    path = tmp_path / "db.sqlite3"
    async with open_sqlite(path, migrate=True) as (meta, feed):
        started = asyncio.Event()
        loop = asyncio.get_running_loop()

        def traced(statement: str) -> None:  # in the writer's thread, as the statement starts
            if statement.startswith(("INSERT OR REPLACE INTO pages", "BEGIN")):
                loop.call_soon_threadsafe(started.set)

        await meta.connection("writer").set_trace_callback(traced)
        other = raw(path)
        other.execute("BEGIN IMMEDIATE")
        before = feed.stamp(Topic.PAGES)
        task = asyncio.create_task(meta.put_page(NormalizedName("acme"), StoredPage(None, None, None, 5.0)))
        await started.wait()  # the writer's thread now waits in SQLite's busy handler
        task.cancel()
        other.execute("ROLLBACK")
        other.close()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert feed.stamp(Topic.PAGES) != before
        assert not meta.connection("writer").in_transaction
        await meta.record_blob("b" * 64, 1, now=1.0)
        with contextlib.closing(raw(path)) as conn:
            assert conn.execute("SELECT project FROM pages").fetchall() == [("acme",)]
            assert conn.execute("SELECT sha256 FROM blobs").fetchall() == [("b" * 64,)]


async def test_a_full_disk_during_a_single_write_is_storage_full(tmp_path: Path) -> None:
    """A single write that outgrows the disk is StorageFull (a 507), leaves nothing behind, and the next works."""
    from proxy.backends.records import StoredPage
    from proxy.errors import StorageFull
    from proxy.simple.names import NormalizedName

    path = tmp_path / "db.sqlite3"
    async with opened(path) as meta:
        await meta.connection("writer").execute("PRAGMA max_page_count = 1")
        with pytest.raises(StorageFull):
            await meta.put_page(NormalizedName("acme"), StoredPage(None, "x" * 100_000, None, 5.0))
        await meta.connection("writer").execute("PRAGMA max_page_count = 1073741823")
        assert await meta.get_page(NormalizedName("acme")) is None
        await meta.record_blob("c" * 64, 1, now=1.0)
        assert not meta.connection("writer").in_transaction
