"""Where shadowpi keeps its state: the backends, built in ONE place from `[database] url` and `[storage] url`.

Services and handlers receive the interfaces (typing Protocols, one module per concern) and never learn which
implementation they got:
- `meta`: MetadataStore (proxy/backends/metadata.py): pages, private files, blob index, tokens, with explicit
  write transactions;
- `changes`: ChangeFeed (proxy/backends/changes.py): per-topic change stamps shared by every process;
- `blobs`, `fills`, `spools`: the blob store, the fill coordinator and the local spool directory (the second half
  of issue 12 gives each its Protocol in blobs.py, fills.py and spools.py; until then all three are today's local
  BlobStore, which does the three jobs).

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
    from proxy.backends.changes import ChangeFeed
    from proxy.backends.metadata import MetadataStore
    from proxy.config import Config
    from proxy.storage import BlobStore

__all__ = ["Backends", "open_backends"]


@dataclass(frozen=True, slots=True)
class Backends:
    """The opened backends of one process (see the module docstring)."""

    meta: MetadataStore
    changes: ChangeFeed
    blobs: BlobStore  # part 2 of issue 12: proxy.backends.blobs.BlobStore (Protocol)
    fills: BlobStore  # part 2: proxy.backends.fills.FillCoordinator (today: BlobStore.claim_fill)
    spools: BlobStore  # part 2: proxy.backends.spools.SpoolDir (today: BlobStore.new_spool / sweep)


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
    from proxy.backends.sqlite import DB_FILENAME, open_sqlite
    from proxy.storage import BlobStore

    path = Path(database.path) if database.path is not None else config.data_dir / DB_FILENAME
    blobs = BlobStore(Path(storage.root) if storage.root is not None else config.data_dir)
    async with open_sqlite(path, migrate=migrate) as (meta, changes):
        yield Backends(meta=meta, changes=changes, blobs=blobs, fills=blobs, spools=blobs)
