"""Every command besides `serve` on the cluster's backends (PostgreSQL + SeaweedFS), as a real process with
`--database`/`--storage`: what it prints, its exit code, and what it changed in the database and the bucket."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from proxy.backends import Backends, open_backends
from proxy.config import Config
from proxy.config_load import build_config
from proxy.simple.names import NormalizedName
from tests.clients import clean_env, run
from tests.conftest import SampleDists, Upstream
from tests.engines.postgres import Database, PostgresServer
from tests.engines.seaweed import S3Bucket, SeaweedServer
from tests.test_migrate import CACHED, MAPPED, PRIVATE, populate_backends, sha

pytestmark = pytest.mark.engines

Check = Callable[[Backends, Path, SampleDists], Awaitable[None]]


def target(tmp: Path, database: str, bucket: str) -> tuple[list[str], Config]:
    flags = ["--data-dir", str(tmp / "commands"), "--database", database, "--storage", bucket]
    config = build_config({"server": {"data_dir": str(tmp / "check")}, "database": {"url": database},
                           "storage": {"url": bucket}})
    return flags, config


async def tokens_created(b: Backends, _tmp: Path, _dists: SampleDists) -> None:
    assert [t.user for t in await b.meta.list_tokens()] == ["alice", "bob", "carol"]


async def token_revoked(b: Backends, _tmp: Path, _dists: SampleDists) -> None:
    assert [t.revoked_at is not None for t in await b.meta.list_tokens()] == [True, True]


async def nothing(_b: Backends, _tmp: Path, _dists: SampleDists) -> None:
    return None


async def yanked(b: Backends, _tmp: Path, _dists: SampleDists) -> None:
    assert {f.filename: f.yanked for f in await b.meta.bundle_private_files()} == {
        "acme-1.0-py3-none-any.whl": "gone", "acme-1.0.tar.gz": "gone"}


async def unyanked(b: Backends, _tmp: Path, _dists: SampleDists) -> None:
    assert {f.filename: f.yanked for f in await b.meta.bundle_private_files()} == {
        "acme-1.0-py3-none-any.whl": None, "acme-1.0.tar.gz": None}


async def deleted(b: Backends, _tmp: Path, _dists: SampleDists) -> None:
    assert [f.filename for f in await b.meta.bundle_private_files()] == ["acme-1.0-py3-none-any.whl"]
    assert await b.blobs.stat(sha(PRIVATE)) is None  # the object is gone from the bucket


async def purged(b: Backends, _tmp: Path, _dists: SampleDists) -> None:
    assert await b.meta.get_page(NormalizedName("tinylib")) is None
    assert [await b.blobs.stat(sha(data)) for data in (CACHED, MAPPED)] == [None, None]


async def warmed(b: Backends, _tmp: Path, dists: SampleDists) -> None:
    assert await b.blobs.stat(dists.tinylib_2.sha256) is not None


async def exported(_b: Backends, tmp: Path, _dists: SampleDists) -> None:
    assert (tmp / "bundle" / "manifest.json").is_file()


# (argv, the expected last line of stdout, the check of the cluster's state afterwards)
CASES: dict[str, tuple[list[str], str, Check]] = {
    "token create": (["token", "create", "--user", "carol"], "", tokens_created),
    "token list": (["token", "list"], "revoked", nothing),
    "token revoke": (["token", "revoke", "1"], "Revoked token 1.", token_revoked),
    "yank": (["yank", "acme", "1.0", "--reason", "gone"], "yank: acme-1.0.tar.gz", yanked),
    "unyank": (["unyank", "acme", "1.0"], "unyank: acme-1.0.tar.gz", unyanked),
    "delete": (["delete", "acme", "acme-1.0.tar.gz"], "delete: acme-1.0.tar.gz", deleted),
    "audit": (["audit"], "0 of 2 private project(s) also exist upstream.", nothing),
    "cache usage": (["cache", "usage"], "private projects:      2 (never evicted)", nothing),
    "cache purge": (["cache", "purge", "tinylib"], "purged tinylib: page dropped, 2 cached file(s) deleted", purged),
    "warm": (["warm", "tinylib==2.0"], "", warmed),
    "export": (["export", "{tmp}/bundle"], "", exported),
}


@pytest.mark.parametrize("case", CASES)
async def test_a_command_works_on_the_cluster_backends(
    tmp_path: Path, postgres_db: Database, s3_bucket: S3Bucket, populated_upstream: Upstream, dists: SampleDists,
    case: str,
):
    """The command, given the cluster's --database and --storage, exits 0, prints what it did and changes the
    shared database and bucket (where every replica sees it), exactly as on one machine."""
    flags, config = target(tmp_path, postgres_db.url, s3_bucket.url)
    async with open_backends(config, migrate=True) as b:
        await populate_backends(b)
    argv, last_line, check = CASES[case]
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    result = await run(sys.executable, "-m", "proxy", *argv, *flags, "--upstream", populated_upstream.url,
                       env=clean_env(), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.splitlines()[-1]
    if last_line == "revoked":  # token list: bob's revoked token comes last
        assert (last.split()[1], last.rstrip().endswith(" revoked")) == ("bob", True)
    elif last_line:
        assert last == last_line
    async with open_backends(config) as b:
        await check(b, tmp_path, dists)


async def test_import_into_the_cluster_from_an_export_of_another(
    tmp_path: Path, postgres_db: Database, s3_bucket: S3Bucket, postgres_server: PostgresServer,
    seaweed_server: SeaweedServer,
):
    """A bundle exported from one cluster (PostgreSQL + bucket) imports into another with `shadowpi import
    --database --storage`: the private files, pages and the bytes arrive; importing it again changes nothing."""
    flags, config = target(tmp_path / "a", postgres_db.url, s3_bucket.url)
    async with open_backends(config, migrate=True) as b:
        await populate_backends(b)
    exported = await run(sys.executable, "-m", "proxy", "export", str(tmp_path / "bundle"), *flags, env=clean_env(),
                         timeout=120)
    assert exported.returncode == 0, exported.stderr
    other_db, other_bucket = postgres_server.create_database(), seaweed_server.create_bucket()
    try:
        other_flags, other_config = target(tmp_path / "b", other_db.url, other_bucket.url)
        for _ in range(2):
            imported = await run(sys.executable, "-m", "proxy", "import", str(tmp_path / "bundle"), *other_flags,
                                 env=clean_env(), timeout=120)
            assert imported.returncode == 0, imported.stdout + imported.stderr
        async with open_backends(config) as a, open_backends(other_config) as b:
            assert await b.meta.bundle_private_files() == [  # a bundle does not carry who uploaded
                replace(f, uploaded_by=None) for f in await a.meta.bundle_private_files()]
            assert await b.blobs.read_bytes(sha(PRIVATE)) == PRIVATE
            assert [name for name, _ in await b.meta.bundle_pages()] == ["tinylib"]
    finally:
        postgres_server.drop_database(other_db.name)
        seaweed_server.delete_bucket(other_bucket.name)
