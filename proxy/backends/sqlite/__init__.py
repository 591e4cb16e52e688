"""The SQLite metadata backend and its change feed (the embedded default, `[database] url = "sqlite:"`).

Only proxy/backends/__init__.py imports this package; everything else sees the Protocols of
proxy/backends/metadata.py and proxy/backends/changes.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from proxy.backends.sqlite.changes import MmapChangeFeed
from proxy.backends.sqlite.database import SqliteMetadata
from proxy.backends.sqlite.schema import DB_FILENAME

__all__ = ["DB_FILENAME", "MmapChangeFeed", "SqliteMetadata", "open_sqlite"]


@contextlib.asynccontextmanager
async def open_sqlite(
    path: Path, *, migrate: bool, check_schema: bool = True
) -> AsyncIterator[tuple[SqliteMetadata, MmapChangeFeed]]:
    """The store on the database file `path` and its change feed (`<path>.changes`, beside it)."""
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    feed = await asyncio.to_thread(MmapChangeFeed.open, path.with_name(path.name + ".changes"))
    try:
        store = await SqliteMetadata.open(path, feed, migrate=migrate, check_schema=check_schema)
        try:
            yield store, feed
        finally:
            await store.close()
    finally:
        feed.close()
