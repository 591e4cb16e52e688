"""[database] url and [storage] url: parsed by a table, validated with one line naming the key, honoured by
open_backends, and settable from the file, SHADOWPI_* variables and every command's --database/--storage."""

from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath

import pytest

from proxy.backends import open_backends
from proxy.backends.urls import S3URL, FileURL, PostgresURL, SqliteURL, parse_database_url, parse_storage_url
from proxy.cli import build_parser
from proxy.cli_common import config_from_args
from proxy.config_load import build_config, load_config
from proxy.errors import ConfigError
from tests.clients import clean_env, run


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sqlite:", SqliteURL(None)),
        ("SQLite:", SqliteURL(None)),
        ("sqlite:///var/lib/shadowpi/meta.sqlite3", SqliteURL(PurePosixPath("/var/lib/shadowpi/meta.sqlite3"))),
        ("sqlite:///srv/with%20space.db", SqliteURL(PurePosixPath("/srv/with space.db"))),
        ("postgresql://shadowpi:pw@db:5432/shadowpi",
         PostgresURL("postgresql://shadowpi:pw@db:5432/shadowpi", "postgresql://shadowpi:***@db:5432/shadowpi",
                     "shadowpi")),
        ("postgres://db/meta", PostgresURL("postgres://db/meta", "postgres://db/meta", "meta")),
        ("postgresql:///meta?host=/run/postgresql&password=pw",
         PostgresURL("postgresql:///meta?host=/run/postgresql&password=pw",
                     "postgresql:///meta?host=/run/postgresql&password=***", "meta")),
        ("postgresql://shadowpi:pw@db:5432/",
         "database.url: 'postgresql://shadowpi:***@db:5432/' names no database (expected postgresql://"),
        ("postgresql://shadowpi:pw@db", "database.url: 'postgresql://shadowpi:***@db' names no database"),
        ("postgresql://shadowpi:pw@db/a/b", "database.url: 'postgresql://shadowpi:***@db/a/b' names no database"),
        ("postgresql://shadowpi:pw@db:port/x",
         "database.url: 'postgresql://shadowpi:***@db:port/x' is not a valid URL"),
        ("postgresql://shadowpi:pw@db:70000/x",
         "database.url: 'postgresql://shadowpi:***@db:70000/x' is not a valid URL"),
        ("postgresql:shadowpi", "database.url: 'postgresql:shadowpi' must be postgresql://host/dbname"),
        ("postgresql://u:pw@db/x#frag", "database.url: 'postgresql://u:***@db/x#frag' takes no fragment"),
        ("s3://bucket", "database.url: unsupported scheme 's3' (supported: sqlite, postgresql, postgres)"),
        ("shadowpi.sqlite3", "database.url: 'shadowpi.sqlite3' is not a URL"),
        ("sqlite:relative.db", "database.url: 'sqlite:relative.db' must be sqlite: or an absolute path"),
        ("sqlite://host/x.db", "database.url: 'sqlite://host/x.db' must be sqlite: or an absolute path"),
        ("sqlite:///srv/../etc/x.db", "database.url: 'sqlite:///srv/../etc/x.db' must name a path without '..'"),
        ("sqlite:///x.db?mode=ro", "database.url: 'sqlite:///x.db?mode=ro' takes no query or fragment"),
    ],
)
def test_database_urls(text: str, expected: SqliteURL | PostgresURL | str) -> None:
    """sqlite: (the data dir's file), sqlite:///absolute/path and postgresql:// (or postgres://) URLs naming a
    database are databases; anything else is refused with one line that names the key (and, for another scheme,
    the supported ones), and never shows a password."""
    if isinstance(expected, str):
        with pytest.raises(ConfigError) as info:
            parse_database_url("database.url", text)
        assert str(info.value).startswith(expected)
        assert ":pw@" not in str(info.value) and "password=pw" not in str(info.value)
    else:
        assert parse_database_url("database.url", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("file:", FileURL(None)),
        ("file:///srv/shadowpi-files", FileURL(PurePosixPath("/srv/shadowpi-files"))),
        ("file:files", "storage.url: 'file:files' must be file: or an absolute path"),
        ("file:///", "storage.url: 'file:///' must name a path without '..'"),
        ("gs://bucket/prefix", "storage.url: unsupported scheme 'gs' (supported: file, s3)"),
        ("s3://my-bucket", S3URL("my-bucket", "")),
        ("S3://my-bucket/", S3URL("my-bucket", "")),
        ("s3://my.bucket-2/shadowpi", S3URL("my.bucket-2", "shadowpi")),
        ("s3://b0b/team/pypi+cache/", S3URL("b0b", "team/pypi+cache")),
        ("s3://", "storage.url: '' is not a bucket name"),
        ("s3://My_Bucket/x", "storage.url: 'My_Bucket' is not a bucket name"),
        ("s3://ab/x", "storage.url: 'ab' is not a bucket name"),
        ("s3://a..b/x", "storage.url: 'a..b' is not a bucket name"),
        ("s3://bucket:9000/x", "storage.url: 's3://bucket:9000/x' names a port; the endpoint goes in"),
        ("s3://bucket/x?versionId=1", "storage.url: 's3://bucket/x?versionId=1' takes no query or fragment"),
        ("s3://bucket/a//b", "storage.url: the prefix 'a//b' must be path segments"),
        ("s3://bucket/a/../b", "storage.url: the prefix 'a/../b' must be path segments"),
        ("s3://bucket/a b", "storage.url: the prefix 'a b' must be path segments"),
        ("s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/x", "storage.url: credentials do not belong in the URL"),
    ],
)
def test_storage_urls(text: str, expected: FileURL | S3URL | str) -> None:
    """file: (the data dir), file:///absolute/dir and s3://bucket/prefix store blobs; a bad S3 URL is one line
    naming the key, and credentials in the URL are refused without being echoed."""
    if isinstance(expected, str):
        with pytest.raises(ConfigError) as info:
            parse_storage_url("storage.url", text)
        assert str(info.value).startswith(expected)
        assert "wJalr" not in str(info.value)
        assert "\n" not in str(info.value)
    else:
        assert parse_storage_url("storage.url", text) == expected


def test_the_urls_come_from_the_file_the_environment_and_the_flags(tmp_path: Path) -> None:
    """Defaults sqlite: and file:; the TOML keys, SHADOWPI_DATABASE_URL / SHADOWPI_STORAGE_URL and --database /
    --storage set them, in that order of precedence; a bad value names the variable or the key."""
    assert (load_config(None).database.url, load_config(None).storage.url) == ("sqlite:", "file:")
    path = tmp_path / "c.toml"
    path.write_text('[database]\nurl = "sqlite:///from/file.db"\n[storage]\nurl = "file:///from/file"\n')
    assert load_config(path).database.url == "sqlite:///from/file.db"
    environ = {"SHADOWPI_DATABASE_URL": "sqlite:///from/env.db"}
    assert load_config(path, environ=environ).database.url == "sqlite:///from/env.db"
    args = build_parser().parse_args(["token", "list", "--config", str(path), "--database", "sqlite:///flag.db",
                                      "--storage", "file:///flag"])
    config = config_from_args(args)
    assert (config.database.url, config.storage.url) == ("sqlite:///flag.db", "file:///flag")
    with pytest.raises(ConfigError, match=r"^SHADOWPI_STORAGE_URL: unsupported scheme 'gs' \(supported: file, s3\)$"):
        load_config(None, environ={"SHADOWPI_STORAGE_URL": "gs://bucket"})
    assert load_config(None, environ={"SHADOWPI_STORAGE_URL": "s3://bucket/p"}).storage.url == "s3://bucket/p"
    path.write_text('[database]\nurl = "mysql://x"\n')
    refused = r"^database.url: unsupported scheme 'mysql' \(supported: sqlite, postgresql,"
    with pytest.raises(ConfigError, match=refused):
        load_config(path)
    environ = {"SHADOWPI_DATABASE_URL": "postgresql://u:secret@db/meta", "SHADOWPI_DATABASE_POOL_SIZE": "4"}
    config = load_config(None, environ=environ)
    assert (config.database.url, config.database.pool_size) == ("postgresql://u:secret@db/meta", 4)
    assert "secret" not in repr(config)  # the database URL is masked wherever the config is shown


@pytest.mark.parametrize("command", [
    ["serve"], ["token", "list"], ["token", "create", "--user", "ci"], ["token", "revoke", "1"],
    ["yank", "p", "1.0"], ["unyank", "p", "1.0"], ["delete", "p", "1.0"], ["audit"], ["cache", "usage"],
    ["cache", "purge", "p"], ["warm", "p"], ["export", "out"], ["import", "in"], ["db", "upgrade"],
])
def test_every_command_takes_database_and_storage(command: list[str]) -> None:
    """--database and --storage are accepted by every command, as --data-dir and --config are."""
    args = build_parser().parse_args([*command, "--database", "sqlite:///x.db", "--storage", "file:///x"])
    assert (args.database, args.storage) == ("sqlite:///x.db", "file:///x")


async def test_open_backends_puts_the_database_and_the_blobs_where_the_urls_say(tmp_path: Path) -> None:
    """With both URLs set, the database file and the blobs are there, and the data dir gets neither."""
    data, db, files = tmp_path / "data", tmp_path / "meta" / "x.sqlite3", tmp_path / "files"
    config = build_config({"server": {"data_dir": str(data)}, "database": {"url": f"sqlite://{db}"},
                           "storage": {"url": f"file://{files}"}})
    async with open_backends(config, migrate=True) as backends:
        await backends.spools.open()
        blob = await backends.blobs.put_bytes(b"bytes")
        await backends.meta.add_token("ci", "1" * 64)
    assert db.is_file()
    assert (files / "blobs" / "sha256" / blob.sha256[:2] / blob.sha256[2:4] / blob.sha256).read_bytes() == b"bytes"
    assert not data.exists()


async def test_a_command_with_an_unsupported_url_is_one_line(tmp_path: Path) -> None:
    """`shadowpi token list --database mysql://…` exits 2 with one line naming the key and the supported schemes,
    and creates nothing."""
    result = await run(sys.executable, "-m", "proxy", "token", "list", "--data-dir", str(tmp_path / "d"),
                       "--database", "mysql://u:p@127.0.0.1/x", env=clean_env(), timeout=60)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "shadowpi: config error: database.url: unsupported scheme 'mysql' (supported: sqlite, postgresql, postgres)\n"
    )
    assert not (tmp_path / "d").exists()


async def test_commands_and_the_server_share_state_through_the_urls(tmp_path: Path) -> None:
    """A token created with --database is listed by another command given the same URL, and not by one that
    uses the data dir's default database."""
    db = tmp_path / "elsewhere" / "meta.sqlite3"
    common = ["--data-dir", str(tmp_path / "d"), "--database", f"sqlite://{db}"]
    created = await run(sys.executable, "-m", "proxy", "token", "create", "--user", "ci", *common,
                        env=clean_env(), timeout=60)
    assert created.returncode == 0, created.stderr
    listed = await run(sys.executable, "-m", "proxy", "token", "list", *common, env=clean_env(), timeout=60)
    assert " ci " in listed.stdout
    default = await run(sys.executable, "-m", "proxy", "token", "list", "--data-dir", str(tmp_path / "d"),
                        env=clean_env(), timeout=60)
    assert " ci " not in default.stdout
    assert db.is_file()
