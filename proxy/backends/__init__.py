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

This module is the only one that looks at URL schemes and imports implementations (tests/test_layering.py).
Only `sqlite:` and `file:` exist so far (proxy/backends/urls.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from proxy.backends.urls import parse_database_url, parse_storage_url

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
async def open_backends(config: Config, *, migrate: bool = False) -> AsyncIterator[Backends]:
    """Open the configured backends, yield them, close them.

    `migrate`: bring the metadata schema up to date first (`serve`, and the commands, which may run on a new data
    dir); without it, a schema that is not this shadowpi's raises SchemaMismatch. Blob storage is not opened
    further here (its directories are created, nothing is swept: the server does that). Raises ConfigError for a
    URL no backend serves.
    """
    database = parse_database_url("database.url", config.database.url)
    storage = parse_storage_url("storage.url", config.storage.url)
    # Implementations are imported here, on first use: only this module chooses them.
    from proxy.backends.changes import Topic
    from proxy.backends.local.backend import open_local
    from proxy.backends.sqlite import DB_FILENAME, open_sqlite

    path = Path(database.path) if database.path is not None else config.data_dir / DB_FILENAME
    root = Path(storage.root) if storage.root is not None else config.data_dir
    async with open_sqlite(path, migrate=migrate) as (meta, changes):
        # The blob store empties its cache of open blobs whenever a deletion is announced (BLOBS).
        local = await open_local(root, changed=lambda: changes.stamp(Topic.BLOBS), open_files=config.cache.open_files)
        try:
            yield Backends(meta=meta, changes=changes, blobs=local.blobs, fills=local.fills, spools=local.spools)
        finally:
            await local.blobs.close()
