"""`shadowpi migrate --from-data-dir DIR` into PostgreSQL + SeaweedFS (real engines, the real command): everything
is copied and verified, a second run changes nothing, a killed run finishes when run again, corrupt bytes are never
copied, and the refusals are one line each."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from proxy.backends import Backends, open_backends
from proxy.backends.postgres.schema import MIGRATIONS
from proxy.backends.records import AuditEntry, DeletedFile, PrivateFile, StoredPage
from proxy.config import Config
from proxy.config_load import build_config
from proxy.simple.model import DistFile, ProjectPage
from proxy.simple.names import NormalizedName
from tests.clients import RunResult, clean_env, run
from tests.engines.postgres import Database
from tests.engines.seaweed import S3Bucket
from tests.stores import data_dir_backends

pytestmark = pytest.mark.engines

CACHED = b"cached wheel bytes " * 1000
MAPPED = b"an upstream file whose page declared no hash"
PINNED = b"pinned by warm --pin"
PRIVATE = b"private sdist bytes " * 500
WHEEL = b"private wheel bytes"
METADATA = b"Metadata-Version: 2.1\nName: acme\nVersion: 1.0\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def private(filename: str, data: bytes, *, metadata: bytes | None = None, yanked: str | None = None) -> PrivateFile:
    return PrivateFile(filename=filename, project=NormalizedName("acme"), version="1.0", sha256=sha(data),
                       blake2_256=None, size=len(data), requires_python=None,
                       metadata_sha256=sha(metadata) if metadata else None, yanked=yanked,
                       upload_time="2025-01-01T00:00:00.000000Z", uploaded_by="ci")


def page() -> StoredPage:
    files = (DistFile("tinylib-1.0-py3-none-any.whl", "https://files.example/tinylib-1.0-py3-none-any.whl",
                      {"sha256": sha(CACHED)}),
             DistFile("tinylib-0.9.tar.gz", "https://files.example/tinylib-0.9.tar.gz", {}))
    return StoredPage(ProjectPage(NormalizedName("tinylib"), files, ("0.9", "1.0")), '"e1"', None, 1000.0)


async def populate(data_dir: Path) -> None:
    """A single-machine install with one of everything migrate copies (in root and in a named index)."""
    async with data_dir_backends(data_dir) as b:
        await populate_backends(b)
        await populate_named_index(b)


async def populate_backends(b: Backends) -> None:
    """One of everything: cached, mapped, pinned and private blobs, a page, private files (one yanked), a deleted
    name, a private name without files, a live and a revoked token."""
    for data in (CACHED, MAPPED, PINNED, PRIVATE, WHEEL, METADATA):
        await b.blobs.put_bytes(data)
    async with b.meta.transaction() as tx:
        await tx.record_blob(sha(CACHED), len(CACHED), now=1000.0)
        await tx.record_blob(sha(MAPPED), len(MAPPED), now=2000.0)
        await tx.record_pinned_blob(sha(PINNED), len(PINNED))
        for data in (PRIVATE, WHEEL, METADATA):
            await tx.record_blob(sha(data), len(data))
        await tx.put_page(NormalizedName("tinylib"), page())
        await tx.remember_upstream_file("https://files.example/tinylib-0.9.tar.gz", sha(MAPPED))
        await tx.add_private_file(private("acme-1.0.tar.gz", PRIVATE))
        await tx.add_private_file(private("acme-1.0-py3-none-any.whl", WHEEL, metadata=METADATA, yanked="bad"))
        await tx.add_deleted_file(DeletedFile("acme-0.9.tar.gz", "d" * 64, 500.0))
        await tx.add_private_project(NormalizedName("secret-only"))
    await b.meta.add_token("alice", "1" * 64, "CI")
    revoked = await b.meta.add_token("bob", "2" * 64)
    await b.meta.revoke_token(revoked)


async def populate_named_index(b: Backends) -> None:
    """Issue 14's data: root's sdist promoted to index ml, its owner there, and the audit log's record of it."""
    async with b.meta.transaction() as tx:
        await tx.add_private_file(replace(private("acme-1.0.tar.gz", PRIVATE), index="ml"))
        await tx.add_private_project(NormalizedName("acme"), "ml")
        await tx.add_member("ml", "acme", "bob", "owner")
        await tx.add_audit(AuditEntry(at=1500.0, actor="bob", via="password", address="10.0.0.7", action="push",
                                      index="ml", project="acme", target="1.0", detail='{"from": "root"}'))


@dataclass(frozen=True)
class Target:
    """The target: a PostgreSQL database (migrated) and a bucket, as the commands' flags and a Config."""

    database: Database
    bucket: S3Bucket
    tmp: Path

    def flags(self) -> list[str]:
        return ["--data-dir", str(self.tmp / "replica"), "--database", self.database.url,
                "--storage", self.bucket.url]

    def config(self) -> Config:
        return build_config({"server": {"data_dir": str(self.tmp / "replica")},
                             "database": {"url": self.database.url}, "storage": {"url": self.bucket.url}})


async def shadowpi(*args: str) -> RunResult:
    return await run(sys.executable, "-m", "proxy", *args, env=clean_env(), timeout=120)


@pytest.fixture
async def target(tmp_path: Path, postgres_db: Database, s3_bucket: S3Bucket) -> Target:
    target = Target(postgres_db, s3_bucket, tmp_path)
    upgraded = await shadowpi("db", "upgrade", *target.flags())
    assert upgraded.returncode == 0, upgraded.stderr
    return target


@asynccontextmanager
async def opened(config: Config) -> AsyncIterator[Backends]:
    async with open_backends(config) as backends:
        yield backends


async def snapshot(b: Backends) -> dict[str, Any]:
    """Everything migrate copies, as comparable values (token ids and blob creation times aside)."""
    times = await b.meta.bundle_blob_times()
    return {
        "blobs": {s: await b.blobs.read_bytes(s) for s in sorted(times)},
        "evictable": sorted(await b.meta.eviction_candidates(accessed_before=float("inf")), key=lambda r: r.sha256),
        "usage": await b.meta.cache_usage(),
        "pages": await b.meta.bundle_pages(),
        "upstream_files": await b.meta.bundle_upstream_files(),
        "private_files": await b.meta.bundle_private_files(),
        "private_files_ml": await b.meta.bundle_private_files("ml"),
        "private_projects": await b.meta.private_project_indexes(),
        "deleted": await b.meta.bundle_deleted_files(),
        "members": [(i, n, await b.meta.project_members(i, n)) for i, n in await b.meta.private_project_indexes()],
        "audit": [replace(e, id=0) for e in await b.meta.audit_entries()],
        "tokens": [(replace(t, id=0), h) for t, h in await b.meta.bundle_tokens()],
    }


async def test_migrate_copies_everything_verified_and_a_second_run_changes_nothing(tmp_path: Path, target: Target):
    """Pages, the upstream-file mapping, cached/pinned/private blobs (bytes and LRU order), private files with
    their yanks (in every index), private names, deleted names, tokens (revocations too), owners and the audit log
    arrive in PostgreSQL + S3 exactly as in the source; run again, migrate copies nothing, writes nothing and says
    so."""
    source = tmp_path / "old"
    await populate(source)
    first = await shadowpi("migrate", "--from-data-dir", str(source), *target.flags())
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    total = sum(map(len, (CACHED, MAPPED, PINNED, PRIVATE, WHEEL, METADATA)))
    assert lines[0] == f"migrating {source}: 6 file(s), {total:,} bytes"
    assert lines[-1] == (
        f"migrated {source}: 6 file(s) copied ({total:,} bytes), 0 already there, 0 skipped; 1 pages,"
        " 3 private names, 3 private files, 1 deleted names, 2 tokens, 1 owners, 1 audit entries"
    )
    async with data_dir_backends(source) as old, opened(target.config()) as new:
        expected = await snapshot(old)
        assert await snapshot(new) == expected
    assert expected["usage"].pinned_bytes == len(PINNED)
    second = await shadowpi("migrate", "--from-data-dir", str(source), *target.flags())
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[-1] == (
        f"migrated {source}: 0 file(s) copied (0 bytes), 6 already there, 0 skipped; 0 pages, 0 private names,"
        " 0 private files, 0 deleted names, 0 tokens, 0 owners, 0 audit entries"
    )
    async with opened(target.config()) as new:
        assert await snapshot(new) == expected


async def test_a_later_run_carries_the_sources_last_changes_over(tmp_path: Path, target: Target):
    """Run again after the old install changed (a token revoked, a file unyanked, a file uploaded): the target
    gets exactly those changes, and a token revoked in the cluster meanwhile stays revoked."""
    source = tmp_path / "old"
    await populate(source)
    async with data_dir_backends(source) as old:
        carol = await old.meta.add_token("carol", "3" * 64)
    assert (await shadowpi("migrate", "--from-data-dir", str(source), *target.flags())).returncode == 0
    async with data_dir_backends(source) as old:
        await old.meta.revoke_token(carol)
        await old.meta.set_yanked(["acme-1.0-py3-none-any.whl"], None)
        await old.blobs.put_bytes(b"acme 2.0")
        await old.meta.record_blob(sha(b"acme 2.0"), 8)  # as an upload records it
        await old.meta.add_private_file(replace(private("acme-2.0.tar.gz", b"acme 2.0"), version="2.0"))
    async with opened(target.config()) as new:
        [alice] = [t for t in await new.meta.list_tokens() if t.user == "alice"]
        assert await new.meta.revoke_token(alice.id)
    again = await shadowpi("migrate", "--from-data-dir", str(source), *target.flags())
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1].endswith(
        "0 pages, 0 private names, 2 private files, 0 deleted names, 1 tokens, 0 owners, 0 audit entries")
    async with data_dir_backends(source) as old, opened(target.config()) as new:
        expected, got = await snapshot(old), await snapshot(new)
        assert {k: v for k, v in got.items() if k != "tokens"} == {k: v for k, v in expected.items() if k != "tokens"}
        assert [(t.user, t.revoked_at is not None) for t, _ in got["tokens"]] == [
            ("alice", True), ("bob", True), ("carol", True)]


async def test_a_killed_migration_finishes_when_run_again(tmp_path: Path, target: Target):
    """SIGKILL while the files are being copied leaves no partial object and no rows; the next run copies the
    rest (what the first one committed is found and checked, not copied again) and the result is complete."""
    source = tmp_path / "old"
    await populate(source)
    blobs = [os.urandom(512 * 1024) for _ in range(60)]
    async with data_dir_backends(source) as b:
        for data in blobs:
            await b.blobs.put_bytes(data)
        async with b.meta.transaction() as tx:
            for data in blobs:
                await tx.record_blob(sha(data), len(data), now=3000.0)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "migrate", "--from-data-dir", str(source), *target.flags(),
        env=clean_env(), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    async with opened(target.config()) as new:
        deadline = time.monotonic() + 60
        while not any([await new.blobs.stat(sha(data)) for data in blobs]):  # polling another process
            assert time.monotonic() < deadline and process.returncode is None
            await asyncio.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        assert await process.wait() == -signal.SIGKILL
        assert await new.meta.bundle_private_files() == []  # rows come after the files: none yet
        copied_before = sum([await new.blobs.stat(sha(data)) is not None for data in blobs])
    assert 0 < copied_before < len(blobs)
    again = await shadowpi("migrate", "--from-data-dir", str(source), *target.flags())
    assert again.returncode == 0, again.stderr
    summary = re.search(r": (\d+) file\(s\) copied \([\d,]+ bytes\), (\d+) already there, 0 skipped;",
                        again.stdout.splitlines()[-1])
    assert summary is not None, again.stdout
    copied, present = int(summary[1]), int(summary[2])
    assert (copied + present, present >= copied_before, copied > 0) == (len(blobs) + 6, True, True)
    async with data_dir_backends(source) as old, opened(target.config()) as new:
        assert await snapshot(new) == await snapshot(old)


async def test_corrupt_private_bytes_are_never_copied(tmp_path: Path, target: Target):
    """A private file whose bytes in the source no longer match its sha256 is not copied, no row is written, and
    migrate exits 1 naming it; a corrupt cached file is only skipped (refetched on demand)."""
    source = tmp_path / "old"
    await populate(source)
    [stored] = [p for p in source.rglob(sha(PRIVATE)) if p.is_file()]
    stored.chmod(0o644)
    stored.write_bytes(b"X" * len(PRIVATE))
    result = await shadowpi("migrate", "--from-data-dir", str(source), *target.flags())
    assert result.returncode == 1
    assert f"not copied: private file {sha(PRIVATE)}: its bytes in the source do not match its sha256 (corrupt)" in (
        result.stdout.splitlines())
    assert result.stderr.splitlines()[-1] == (
        "shadowpi: 1 private file(s) could not be copied (see above); no rows were written: repair or delete them in"
        " the source, then run migrate again")
    async with opened(target.config()) as new:
        assert await new.blobs.stat(sha(PRIVATE)) is None
        assert await new.meta.bundle_private_files() == []


async def set_schema_version(target: Target, version: int) -> None:
    """Make the target look migrated to `version` (only the bookkeeping: what the version check reads)."""
    conn = await asyncpg.connect(target.database.url)
    try:
        await conn.execute("DELETE FROM schema_migrations WHERE version > $1", version)
        for missing in range(len(MIGRATIONS) + 1, version + 1):
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", missing)
    finally:
        await conn.close()


@pytest.mark.parametrize(("case", "expected"), [
    ("same", "shadowpi: the target database (sqlite:) is the source's own ({db}): name the cluster's with --database"),
    ("same files", "shadowpi: the target file store ({files}) is the source's own: name the cluster's with --storage"),
    ("empty", "shadowpi: {empty} holds no shadowpi data (no database there): name the old data dir"),
    ("older", "shadowpi: the database {masked} has schema version {older}, older than this shadowpi's ({n}), and"
              " was opened without migrating (run `shadowpi db upgrade`)"),
    ("newer", "shadowpi: the database {masked} has schema version {newer}, newer than this shadowpi's ({n}), and"
              " was opened without migrating (run `shadowpi db upgrade`)"),
])
async def test_refusals_are_one_line_and_write_nothing(tmp_path: Path, target: Target, case: str, expected: str):
    """Migrating an install onto itself (its database, or its file store), from a directory without shadowpi
    data, or into a database whose schema is older or newer than this shadowpi's: exit 1, one line saying why
    and what to do, nothing written."""
    source = tmp_path / "old"
    await populate(source)
    flags = target.flags()
    if case == "same":
        flags = ["--data-dir", str(source)]
    elif case == "same files":  # the cluster's database, but the old data dir's files
        flags = [*flags[:4], "--storage", f"file://{source / 'blobs'}"]
    elif case == "empty":
        source = tmp_path / "empty"
        source.mkdir()
    elif case in {"older", "newer"}:
        await set_schema_version(target, len(MIGRATIONS) + (1 if case == "newer" else -1))
    result = await shadowpi("migrate", "--from-data-dir", str(source), *flags)
    password = target.database.url.split(":")[2].split("@")[0]
    masked = target.database.url.replace(f":{password}@", ":***@")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines()[-1] == expected.format(
        db=(source / "shadowpi.sqlite3").resolve(), files=(source / "blobs").resolve(), empty=source, masked=masked,
        older=len(MIGRATIONS) - 1,
        newer=len(MIGRATIONS) + 1, n=len(MIGRATIONS))
    if case == "empty":
        assert list(source.iterdir()) == []  # nothing created in the directory either
    if case in {"older", "newer"}:
        await set_schema_version(target, len(MIGRATIONS))  # back to this shadowpi's schema, to look inside
        if case == "older":
            conn = await asyncpg.connect(target.database.url)
            try:
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", len(MIGRATIONS))
            finally:
                await conn.close()
        async with opened(target.config()) as new:
            assert await new.meta.bundle_blob_times() == {}
            assert await new.blobs.stat(sha(PRIVATE)) is None
