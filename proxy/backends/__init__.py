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
`sqlite:` (proxy/backends/sqlite/) or `postgresql://` (proxy/backends/postgres/) for the metadata and its change
feed, `file:` for blobs (proxy/backends/urls.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from proxy.backends.urls import PostgresURL, SqliteURL, parse_database_url, parse_storage_url
from proxy.errors import ConfigError

if TYPE_CHECKING:  # importing this package (proxy.config does, for urls.py) must not load any implementation
    from proxy.backends.blobs import BlobStore
    from proxy.backends.changes import ChangeFeed
    from proxy.backends.fills import FillCoordinator
    from proxy.backends.metadata import MetadataStore
    from proxy.backends.spools import SpoolDir
    from proxy.config import Config

__all__ = ["Backends", "open_backends"]


@dataclass(frozen=True, slots=True)
class Backends:
    """The opened backends of one process (see the module docstring)."""

    meta: MetadataStore
    changes: ChangeFeed
    blobs: BlobStore
    fills: FillCoordinator
    spools: SpoolDir


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
    # Implementations are imported here, on first use: only this module chooses them.
    from proxy.backends.changes import Topic
    from proxy.backends.local.backend import open_local

    root = Path(storage.root) if storage.root is not None else config.data_dir
    async with _metadata(config, database, migrate=migrate, check_schema=check_schema) as (meta, changes):
        # The blob store empties its cache of open blobs whenever a deletion is announced (BLOBS).
        local = await open_local(root, changed=lambda: changes.stamp(Topic.BLOBS), open_files=config.cache.open_files)
        try:
            yield Backends(meta=meta, changes=changes, blobs=local.blobs, fills=local.fills, spools=local.spools)
        finally:
            await local.blobs.close()


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
