"""The PostgreSQL backend's own promises, beyond the contract: the change feed when its listening connection is
killed or cannot come back, refresh locks across processes (and when their holder dies), the schema and its
migrations, and one-line refusals for a database that cannot be reached or is newer than this shadowpi."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from proxy.access.model import Member
from proxy.backends import Backends, open_backends
from proxy.backends.changes import ChangeFeed, Topic
from proxy.backends.metadata import SchemaMismatch
from proxy.backends.postgres.schema import MIGRATIONS
from proxy.backends.urls import PostgresURL, parse_database_url
from proxy.config_load import build_config
from proxy.errors import BackendUnavailable
from proxy.simple.names import NormalizedName
from tests.backends.conftest import BackendsUnderTest
from tests.backends.samples import private_file
from tests.engines.postgres import PostgresServer

pytestmark = pytest.mark.engines
TINYLIB = NormalizedName("tinylib")
DEADLINE = 30.0  # seconds to wait for another process (the server, a reconnection); never a timing assertion


@pytest.fixture
def pg(postgresql_backends: BackendsUnderTest) -> BackendsUnderTest:
    return postgresql_backends


def database(backends: BackendsUnderTest) -> PostgresURL:
    url = parse_database_url("database.url", backends.config.database.url)
    assert isinstance(url, PostgresURL)
    return url


async def admin(server: PostgresServer, sql: str) -> str:
    """A statement run as the superuser on the unix socket (off the event loop: the listeners must keep running)."""
    return await asyncio.to_thread(server.psql, sql)


async def kill_listener(server: PostgresServer, feed: ChangeFeed) -> None:
    """pg_terminate_backend on the listening connection of the process that owns `feed`."""
    name = f"shadowpi listener {feed.instance}"  # type: ignore[attr-defined]  # hex: nothing to quote
    killed = await admin(server, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"  # noqa: S608
                                 f" WHERE application_name = '{name}'")
    assert killed == "1"


async def eventually(check: Callable[[], bool]) -> None:
    """Poll until `check()` holds: waiting on another process (a reconnection), with a deadline."""
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, "not within the deadline"
        await asyncio.sleep(0.01)


def fresh_on_every_call(feed: ChangeFeed) -> bool:
    return feed.stamp(Topic.PRIVATE) != feed.stamp(Topic.PRIVATE)


async def test_a_killed_listener_reads_through_then_comes_back(pg: BackendsUnderTest, postgres_server: PostgresServer):
    """Killing another process's listening connection (pg_terminate_backend) while it cannot reconnect: its stamps
    are fresh on every call (readers read through), so a commit meanwhile is never missed; once it can connect
    again it listens again, stamps are stable, and later commits show up as before."""
    name = database(pg).database
    async with pg.reopen() as other:
        seen = {other.changes.stamp(Topic.PRIVATE)}
        await admin(postgres_server, f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        try:
            await kill_listener(postgres_server, other.changes)
            await eventually(lambda: fresh_on_every_call(other.changes))
            await pg.meta.add_private_file(private_file())  # on a connection the pool still has
            await other.changes.caught_up()  # returns at once: nothing can be heard now
            assert other.changes.stamp(Topic.PRIVATE) not in seen
            assert await other.meta.private_file("acme-1.0.tar.gz") is not None
        finally:
            await admin(postgres_server, f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        await eventually(lambda: not fresh_on_every_call(other.changes))  # back, with a stamp never seen before
        back = other.changes.stamp(Topic.PRIVATE)
        assert back not in seen
        await pg.meta.set_yanked(["acme-1.0.tar.gz"], "broken")
        await other.changes.caught_up()
        assert other.changes.stamp(Topic.PRIVATE) not in {*seen, back}
        assert not fresh_on_every_call(other.changes)


async def test_a_killed_listener_that_reconnects_at_once_misses_nothing(
    pg: BackendsUnderTest, postgres_server: PostgresServer
):
    """Killed while commits keep coming: every commit after the kill is seen, whether the listener had noticed the
    loss yet or was already back (a reconnection makes every stamp fresh)."""
    async with pg.reopen() as other:
        for round_ in range(3):
            seen = {other.changes.stamp(topic) for topic in Topic}
            await kill_listener(postgres_server, other.changes)
            await pg.meta.add_private_project(NormalizedName(f"p{round_}"))
            await other.changes.caught_up()
            assert other.changes.stamp(Topic.PRIVATE) not in seen
            await eventually(lambda: not fresh_on_every_call(other.changes))


async def test_refresh_locks_exclude_across_processes_and_die_with_their_holder(
    pg: BackendsUnderTest, postgres_server: PostgresServer
):
    """A page's refresh lock held by one process is not had by another (asked without waiting); a waiter gets
    it when the holder releases it (woken by the release); and when the holder's connection dies, the server
    frees its lock and a waiter gets it too."""
    async with pg.reopen() as other:
        async with pg.meta.page_refresh_lock(TINYLIB, wait=5) as held:
            assert held
            async with other.meta.page_refresh_lock(TINYLIB, wait=0) as refused:
                assert not refused
            waiter = asyncio.create_task(hold(other, TINYLIB))
            await asyncio.wait({waiter}, timeout=0.3)  # it waits however long this is
            assert not waiter.done()
        assert await waiter
        async with other.meta.page_refresh_lock(TINYLIB, wait=5) as held:
            assert held
            waiter = asyncio.create_task(hold(pg, TINYLIB))
            await asyncio.wait({waiter}, timeout=0.3)
            assert not waiter.done()
            await kill_listener(postgres_server, other.changes)  # the session the lock was taken in
            assert await waiter
        async with pg.meta.page_refresh_lock(TINYLIB, wait=0) as free:  # nobody holds it now
            assert free


async def hold(backends: Backends, name: NormalizedName) -> bool:
    async with backends.meta.page_refresh_lock(name, wait=DEADLINE) as held:
        return held


async def test_the_schema_is_recorded_and_a_newer_one_is_refused(pg: BackendsUnderTest):
    """Each migration is recorded once in schema_migrations; a database with a later one (a newer shadowpi) is
    refused, migrating or not, with a message that says so and never shows the password."""
    url = database(pg)
    conn = await asyncpg.connect(url.dsn)
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r[0] for r in rows] == list(range(1, len(MIGRATIONS) + 1))
        await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", len(MIGRATIONS) + 1)
    finally:
        await conn.close()
    for migrate in (True, False):
        with pytest.raises(SchemaMismatch, match="newer than this shadowpi") as info:
            async with pg.reopen(migrate=migrate):
                pass
        assert url.dsn.split(":")[2].split("@")[0] not in str(info.value)


@pytest.mark.parametrize("break_it", ["password", "database", "port"])
async def test_a_database_that_cannot_be_reached_is_one_line(pg: BackendsUnderTest, break_it: str):
    """A wrong password, a missing database or nobody listening: BackendUnavailable naming the key and the URL
    with the password masked, and why."""
    url = database(pg).dsn
    password = url.split(":")[2].split("@")[0]
    broken = {
        "password": url.replace(f":{password}@", ":wrong-password@"),
        "database": url.rsplit("/", 1)[0] + "/no_such_database",
        "port": url.replace(url.split("@")[1].split("/")[0], "127.0.0.1:1"),
    }[break_it]
    config = build_config({"server": {"data_dir": str(pg.config.data_dir)}, "database": {"url": broken}})
    with pytest.raises(BackendUnavailable) as info:
        async with open_backends(config, migrate=True):
            pass
    message = str(info.value)
    assert message.startswith("database.url: cannot connect to postgresql://shadowpi:***@127.0.0.1:")
    assert password not in message and "wrong-password" not in message
    assert "\n" not in message


async def test_a_cancelled_commit_is_announced_and_the_pool_keeps_working(pg: BackendsUnderTest):
    """A task cancelled while committing (the client went away at the last moment): the transaction either
    committed, and then this process's stamp moved, or not; the connection goes back clean either way and the
    store keeps working."""
    for attempt in range(5):
        before = pg.changes.stamp(Topic.PRIVATE)
        task = asyncio.create_task(pg.meta.add_private_project(NormalizedName(f"c{attempt}")))
        for _ in range(attempt):  # cancel at a different point of the transaction each time
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if NormalizedName(f"c{attempt}") in await pg.meta.private_projects():
            assert pg.changes.stamp(Topic.PRIVATE) != before
    await pg.meta.add_private_project(NormalizedName("after"))
    assert NormalizedName("after") in await pg.meta.private_projects()


async def test_private_projects_belong_to_root_after_the_indexes_migration(postgres_server: PostgresServer,
                                                                           tmp_path: Path):
    """A schema-2 database (before indexes) migrates with every private file, name and deleted filename in root,
    its first uploader owning each project, and its tokens unscoped."""
    db = postgres_server.create_database()
    try:
        conn = await asyncpg.connect(db.url)
        try:
            await conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
                               " applied_at timestamptz NOT NULL DEFAULT now())")
            for version, script in enumerate(MIGRATIONS[:2], start=1):
                await conn.execute(script)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            columns = "filename, project, version, sha256, size, upload_time, uploaded_by"
            await conn.execute(
                f"INSERT INTO private_files ({columns}) VALUES ('acme-1.0.tar.gz', 'acme', '1.0', $1, 1,"  # noqa: S608
                " '2025-01-01T00:00:00Z', 'alice'), ('acme-2.0.tar.gz', 'acme', '2.0', $2, 1,"
                " '2025-02-01T00:00:00Z', 'bob')", "a" * 64, "b" * 64)
            await conn.execute("INSERT INTO private_projects (name, created_at) VALUES ('acme', 1.0), ('gone', 1.0)")
            await conn.execute("INSERT INTO deleted_files VALUES ('gone-1.0.tar.gz', $1, 2.0)", "c" * 64)
            await conn.execute("INSERT INTO tokens (user_name, token_hash, created_at) VALUES ('alice', $1, 1.0)",
                               "1" * 64)
        finally:
            await conn.close()
        config = build_config({"database": {"url": db.url}, "storage": {"url": f"file://{tmp_path / 'store'}"}})
        async with open_backends(config, migrate=True) as backends:
            meta = backends.meta
            assert await meta.private_project_indexes() == [("root", NormalizedName("acme")),
                                                            ("root", NormalizedName("gone"))]
            assert [f.index for f in await meta.private_files(NormalizedName("acme"))] == ["root", "root"]
            assert await meta.deleted_sha256("gone-1.0.tar.gz") == "c" * 64
            assert await meta.project_members("root", "acme") == [Member("alice", "owner")]
            token = await meta.live_token("1" * 64)
            assert token is not None and (token.indexes, token.actions, token.expires_at) == (
                (), ("read", "upload"), None)
    finally:
        postgres_server.drop_database(db.name)
