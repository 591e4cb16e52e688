"""What the administrative commands share: opening the configured data dir (server running or not)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from proxy.backends import Backends, open_backends
from proxy.config import Config
from proxy.private import PrivateIndex
from proxy.reaper import BlobReaper

Print = Callable[[str], None]


@asynccontextmanager
async def open_data(config: Config) -> AsyncIterator[tuple[Backends, PrivateIndex]]:
    """The backends and private index of the configured data dir (safe beside a running server: the metadata
    store serialises writers across processes)."""
    async with open_backends(config, migrate=True) as backends:
        yield backends, PrivateIndex(backends.meta, backends.changes, BlobReaper(backends.meta, backends.blobs))
