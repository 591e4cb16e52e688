"""Where shadowpi keeps its state: the backends, built in ONE place from `[database] url` and `[storage] url`.

Services and handlers receive the interfaces (typing Protocols, one module per concern) and never learn which
implementation they got:
- `meta`: MetadataStore (proxy/backends/metadata.py): pages, private files, blob index, tokens, with explicit
  write transactions;
- `changes`: ChangeFeed (proxy/backends/changes.py): per-topic change stamps shared by every process;
- `blobs`: BlobStore (proxy/backends/blobs.py): committed, content-addressed blobs, read through BlobReaders;
- `fills`: FillCoordinator (proxy/backends/fills.py): which process downloads a blob that several want;
- `spools`: SpoolDir (proxy/backends/spools.py): the local temporary files every blob is written through (local to
  every backend: an object store is committed to from a spool too).

This module is the only one that looks at URL schemes and imports implementations (tests/test_layering.py):
- `sqlite:` (proxy/backends/sqlite/) or `postgresql://` (proxy/backends/postgres/) metadata and its change feed;
- `file:` blobs in a directory, with fills coordinated between the processes sharing it (proxy/backends/local/);
- `s3://` blobs in a bucket (proxy/backends/s3/), optionally behind a local read cache on this host
  (local/readcache.py, `[storage] local_cache`); spools stay in the data dir, and fills are coordinated between
  the processes of this host (local/hostfills.py) and, with `postgresql://` metadata, between the replicas
  sharing the database and the bucket (postgres/fills.py: one download per file per cluster).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from proxy.backends.urls import S3URL, FileURL, PostgresURL, SqliteURL, parse_database_url, parse_storage_url
from proxy.errors import ConfigError

if TYPE_CHECKING:  # importing this package (proxy.config does, for urls.py) must not load any implementation
    from proxy.backends.blobs import BlobStore
    from proxy.backends.changes import ChangeFeed
    from proxy.backends.fills import FillCoordinator
    from proxy.backends.metadata import MetadataStore
    from proxy.backends.spools import SpoolDir
    from proxy.config import Config

__all__ = ["Backends", "holds_local_install", "local_locations", "open_backends"]


@dataclass(frozen=True, slots=True)
class Backends:
    """The opened backends of one process (see the module docstring)."""

    meta: MetadataStore
    changes: ChangeFeed
    blobs: BlobStore
    fills: FillCoordinator
    spools: SpoolDir
    # Deleting a blob cuts sends in progress anywhere (an object store), unlike an unlinked local file, which open
    # readers keep: a send must then announce itself to every janitor at once (CacheJanitor's leases_now).
    deletes_reach_readers: bool = field(default=False, kw_only=True)


@contextlib.asynccontextmanager
async def open_backends(
    config: Config, *, migrate: bool = False, check_schema: bool = True
) -> AsyncIterator[Backends]:
    """Open the configured backends, yield them, close them.

    `migrate`: bring the metadata schema up to date first (`serve`, and the commands, which may run on a new data
    dir; on PostgreSQL under an advisory lock, so replicas starting together migrate once); without it, a schema
    that is not this shadowpi's raises SchemaMismatch, unless `check_schema` is false (`shadowpi db upgrade`
    looks first). Blob storage is not opened further here (its directories are created, nothing is swept: the
    server does that). Raises ConfigError for a URL no backend serves (or whose driver is not installed), and
    BackendUnavailable when the database cannot be connected to.
    """
    database = parse_database_url("database.url", config.database.url)
    storage = parse_storage_url("storage.url", config.storage.url)
    _check_storage_keys(config, storage)
    # Implementations are imported here, on first use: only this module chooses them.
    from proxy.backends.changes import Topic

    async with _metadata(config, database, migrate=migrate, check_schema=check_schema) as (meta, changes):
        # Blob stores forget what they believe about blobs whenever a deletion is announced (BLOBS).
        def blobs_changed() -> bytes:
            return changes.stamp(Topic.BLOBS)

        if isinstance(storage, FileURL):
            async with _local_storage(config, storage, blobs_changed) as (blobs, local_fills, spools):
                yield Backends(meta=meta, changes=changes, blobs=blobs, fills=local_fills, spools=spools)
        else:
            async with _s3_storage(config, storage, blobs_changed) as (blobs, spools):
                from proxy.backends.local.hostfills import HostFills

                host_fills = HostFills(blobs, spools)  # one download per file per host
                if not isinstance(database, PostgresURL):
                    yield Backends(meta=meta, changes=changes, blobs=blobs, fills=host_fills, spools=spools,
                                   deletes_reach_readers=True)
                    return
                # Replicas share the database and the bucket: one download per file per cluster.
                from proxy.backends.postgres.fills import open_cluster_fills

                peer_url, read_timeout = config.server.peer_url(), config.upstream.read_timeout
                async with open_cluster_fills(
                    meta, blobs, host_fills, advertise_url=peer_url, read_timeout=read_timeout
                ) as cluster_fills:
                    yield Backends(meta=meta, changes=changes, blobs=blobs, fills=cluster_fills, spools=spools,
                                   deletes_reach_readers=True)


@contextlib.asynccontextmanager
async def _local_storage(
    config: Config, storage: FileURL, changed: Callable[[], bytes]
) -> AsyncIterator[tuple[BlobStore, FillCoordinator, SpoolDir]]:
    from proxy.backends.local.backend import open_local

    root = Path(storage.root) if storage.root is not None else config.data_dir
    local = await open_local(root, changed=changed, open_files=config.cache.open_files)
    try:
        yield local.blobs, local.fills, local.spools
    finally:
        await local.blobs.close()


@contextlib.asynccontextmanager
async def _s3_storage(
    config: Config, storage: S3URL, changed: Callable[[], bytes]
) -> AsyncIterator[tuple[BlobStore, SpoolDir]]:
    from proxy.backends.local.blobs import LocalBlobStore
    from proxy.backends.local.readcache import ReadCache
    from proxy.backends.s3 import S3Options, open_s3
    from proxy.backends.spools import SpoolDir

    settings = config.storage
    options = S3Options(
        endpoint_url=settings.endpoint_url,
        region=settings.region,
        redirect_ttl=settings.redirect_ttl if settings.redirect else None,
        connections=config.server.max_connections + 16,  # a streamed download holds one; room for commits
    )
    spools = SpoolDir(config.data_dir / "tmp")
    await spools.open()
    async with open_s3(storage, options, spools, changed=changed, memory_blobs=config.cache.open_files) as remote:
        if not settings.local_cache:
            yield remote, spools
            return
        root = config.data_dir / "readcache"
        local = LocalBlobStore(root, spools, changed=changed, open_files=config.cache.open_files)
        cached = ReadCache(remote, local, spools, root, budget=settings.local_cache, changed=changed)
        await cached.open()
        try:
            yield cached, spools
        finally:
            await cached.close()


def _check_storage_keys(config: Config, storage: FileURL | S3URL) -> None:
    """The [storage] keys of object stores are refused with a directory: they would silently do nothing."""
    if isinstance(storage, S3URL):
        return
    settings = config.storage
    given = {"endpoint_url": settings.endpoint_url is not None, "region": settings.region is not None,
             "redirect": settings.redirect, "local_cache": settings.local_cache != 0}
    for key, set_ in given.items():
        if set_:
            raise ConfigError(f"storage.{key}: only applies to s3:// storage (storage.url is {config.storage.url})")


@contextlib.asynccontextmanager
async def _metadata(
    config: Config, database: SqliteURL | PostgresURL, *, migrate: bool, check_schema: bool
) -> AsyncIterator[tuple[MetadataStore, ChangeFeed]]:
    if isinstance(database, PostgresURL):
        try:
            from proxy.backends.postgres import open_postgres
        except ImportError as exc:  # asyncpg comes with the `scale` extra
            raise ConfigError(
                f"database.url: PostgreSQL needs the asyncpg driver ({exc}): pip install 'shadowpi[scale]'"
            ) from None
        pool_size = config.database.pool_size
        async with open_postgres(database, pool_size=pool_size, migrate=migrate, check_schema=check_schema) as opened:
            yield opened
        return
    from proxy.backends.sqlite import DB_FILENAME, open_sqlite

    path = Path(database.path) if database.path is not None else config.data_dir / DB_FILENAME
    async with open_sqlite(path, migrate=migrate, check_schema=check_schema) as opened:
        yield opened


def local_locations(config: Config) -> tuple[Path | None, Path | None]:
    """Where the configured database file and blob directory are on this host (resolved); None for what is not
    local (PostgreSQL, S3). For `shadowpi migrate`, which must never copy an install onto itself."""
    from proxy.backends.sqlite import DB_FILENAME

    database = parse_database_url("database.url", config.database.url)
    storage = parse_storage_url("storage.url", config.storage.url)
    db_path = None
    if isinstance(database, SqliteURL):
        db_path = Path(database.path) if database.path is not None else config.data_dir / DB_FILENAME
    root = None
    if isinstance(storage, FileURL):
        root = Path(storage.root) if storage.root is not None else config.data_dir
    return (db_path.resolve() if db_path else None), (root.resolve() if root else None)


def holds_local_install(data_dir: Path) -> bool:
    """Whether `data_dir` holds a single-machine install's database (checked without creating anything)."""
    from proxy.backends.sqlite import DB_FILENAME

    return (data_dir / DB_FILENAME).is_file()
