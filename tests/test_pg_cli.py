"""The commands on PostgreSQL (`--database postgresql://...`): `db upgrade`, tokens, yank and delete, cache,
export and import, and the one-line refusals (a newer schema, a database that cannot be reached), as real
processes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg
import pytest

from proxy.backends import open_backends
from proxy.backends.postgres.schema import MIGRATIONS
from proxy.backends.records import PrivateFile
from proxy.config_load import build_config
from proxy.simple.names import NormalizedName
from tests.clients import RunResult, clean_env, run
from tests.engines.postgres import Database, PostgresServer
from tests.servers import reserve_port

pytestmark = pytest.mark.engines


def masked(database: Database) -> str:
    password = database.url.split(":")[2].split("@")[0]
    return database.url.replace(f":{password}@", ":***@")


async def shadowpi(tmp_path: Path, database: Database | str, *args: str) -> RunResult:
    url = database.url if isinstance(database, Database) else database
    return await run(sys.executable, "-m", "proxy", *args, "--data-dir", str(tmp_path / "data"), "--database", url,
                     env=clean_env(), timeout=60)


def never_shows_the_password(result: RunResult, database: Database) -> bool:
    password = database.url.split(":")[2].split("@")[0]
    return password not in result.stdout + result.stderr


async def test_db_upgrade_migrates_once_and_says_from_which_version(tmp_path: Path, postgres_db: Database):
    """`shadowpi db upgrade` on an empty database applies every migration and prints from -> to; run again it
    has nothing to do; both exit 0 and never show the password."""
    first = await shadowpi(tmp_path, postgres_db, "db", "upgrade")
    assert (first.returncode, first.stdout) == (0, f"database schema 0 -> {len(MIGRATIONS)} ({masked(postgres_db)})\n")
    again = await shadowpi(tmp_path, postgres_db, "db", "upgrade")
    assert again.stdout == f"database schema {len(MIGRATIONS)}, up to date ({masked(postgres_db)})\n"
    assert again.returncode == 0
    assert never_shows_the_password(first, postgres_db) and never_shows_the_password(again, postgres_db)


async def test_several_db_upgrades_at_once_migrate_once(tmp_path: Path, postgres_db: Database):
    """Four `db upgrade` processes started together on an empty database: one migrates (0 -> N), the others find
    it done; every migration is recorded once."""
    results = await asyncio.gather(*(shadowpi(tmp_path / str(i), postgres_db, "db", "upgrade") for i in range(4)))
    assert [r.returncode for r in results] == [0] * 4
    outputs = sorted(r.stdout.split(" (")[0] for r in results)
    up_to_date = f"database schema {len(MIGRATIONS)}, up to date"
    assert outputs == [f"database schema 0 -> {len(MIGRATIONS)}", up_to_date, up_to_date, up_to_date]
    conn = await asyncpg.connect(postgres_db.url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(MIGRATIONS)
    finally:
        await conn.close()


async def test_a_newer_schema_is_refused_with_one_line(tmp_path: Path, postgres_db: Database):
    """A database migrated by a newer shadowpi: `db upgrade`, the other commands and `serve` refuse with one line
    saying so (exit 1), and change nothing."""
    assert (await shadowpi(tmp_path, postgres_db, "db", "upgrade")).returncode == 0
    conn = await asyncpg.connect(postgres_db.url)
    try:
        await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", len(MIGRATIONS) + 1)
    finally:
        await conn.close()
    newer = f"newer than this shadowpi's ({len(MIGRATIONS)}): upgrade shadowpi"
    for command in (["db", "upgrade"], ["token", "list"]):
        refused = await shadowpi(tmp_path, postgres_db, *command)
        assert (refused.returncode, refused.stdout) == (1, "")
        assert refused.stderr.splitlines()[-1].endswith(newer) and refused.stderr.count("\n") == 2  # data dir, this
    port = reserve_port()
    serve = await run(sys.executable, "-m", "proxy", "serve", "--port", str(port), "--data-dir",
                      str(tmp_path / "data"), "--database", postgres_db.url, env=clean_env(), timeout=60)
    assert serve.returncode == 1
    assert serve.stderr.splitlines()[-1].startswith("shadowpi: cannot run: SchemaMismatch: the database has schema")
    assert newer in serve.stderr.splitlines()[-1]
    assert never_shows_the_password(serve, postgres_db)


async def test_a_database_that_cannot_be_reached_is_one_line(tmp_path: Path, postgres_db: Database):
    """A wrong password: the command says it cannot connect, with the URL masked and the server's reason; exit 1."""
    password = postgres_db.url.split(":")[2].split("@")[0]
    wrong = postgres_db.url.replace(f":{password}@", ":not-the-password@")
    result = await shadowpi(tmp_path, wrong, "token", "list")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines()[-1] == (
        f"shadowpi: database.url: cannot connect to {masked(postgres_db)}: password authentication failed for user"
        ' "shadowpi"'
    )
    assert "not-the-password" not in result.stderr


async def test_tokens_and_cache_usage_on_postgresql(tmp_path: Path, postgres_db: Database):
    """token create / list / revoke and cache usage work on the database given with --database."""
    created = await shadowpi(tmp_path, postgres_db, "token", "create", "--user", "ci", "--description", "pg")
    assert created.returncode == 0, created.stderr
    listed = await shadowpi(tmp_path, postgres_db, "token", "list")
    assert listed.returncode == 0
    assert [line.split()[:2] for line in listed.stdout.splitlines()[1:]] == [["1", "ci"]]
    assert "active" in listed.stdout and "pg" in listed.stdout
    revoked = await shadowpi(tmp_path, postgres_db, "token", "revoke", "1")
    assert (revoked.returncode, revoked.stdout) == (0, "Revoked token 1.\n")
    assert "revoked" in (await shadowpi(tmp_path, postgres_db, "token", "list")).stdout
    usage = await shadowpi(tmp_path, postgres_db, "cache", "usage")
    assert usage.returncode == 0, usage.stderr
    assert usage.stdout.splitlines()[0] == "cached upstream files: 0 (0 bytes, 0 pinned)"


async def test_yank_delete_and_export_import_between_databases(
    tmp_path: Path, postgres_db: Database, postgres_server: PostgresServer
):
    """yank and delete change a private file on PostgreSQL; export from it and import into another PostgreSQL
    database carries the private files and deleted names over."""
    config = build_config({"server": {"data_dir": str(tmp_path / "data")}, "database": {"url": postgres_db.url}})
    async with open_backends(config, migrate=True) as backends:
        await backends.spools.open()
        for version in ("1.0", "2.0"):
            blob = await backends.blobs.put_bytes(f"acme {version}".encode())
            await backends.meta.add_private_file(PrivateFile(
                f"acme-{version}.tar.gz", NormalizedName("acme"), version, blob.sha256, None, blob.size, None, None,
                None, "2025-01-01T00:00:00.000000Z", "ci",
            ))
    yanked = await shadowpi(tmp_path, postgres_db, "yank", "acme", "1.0", "--reason", "broken")
    assert yanked.returncode == 0, yanked.stderr
    deleted = await shadowpi(tmp_path, postgres_db, "delete", "acme", "2.0")
    assert deleted.returncode == 0, deleted.stderr
    exported = await shadowpi(tmp_path, postgres_db, "export", str(tmp_path / "bundle"))
    assert exported.returncode == 0, exported.stderr
    other = postgres_server.create_database()
    try:
        imported = await shadowpi(tmp_path / "other", other, "import", str(tmp_path / "bundle"))
        assert imported.returncode == 0, imported.stderr
        config = build_config({"server": {"data_dir": str(tmp_path / "other" / "data")},
                               "database": {"url": other.url}})
        async with open_backends(config) as copy:
            files = await copy.meta.private_files(NormalizedName("acme"))
            assert [(f.filename, f.yanked) for f in files] == [("acme-1.0.tar.gz", "broken")]
            assert await copy.meta.deleted_sha256("acme-2.0.tar.gz") is not None
    finally:
        postgres_server.drop_database(other.name)
