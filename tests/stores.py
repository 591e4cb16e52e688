"""Opening a data dir's backends from a test, as another process (a worker, a command) would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from proxy.backends import Backends, open_backends
from proxy.backends.metadata import MetadataStore
from proxy.config_load import build_config


@asynccontextmanager
async def data_dir_backends(data_dir: Path, *, migrate: bool = True) -> AsyncIterator[Backends]:
    """The default backends (SQLite + the local directory) of `data_dir`, created if needed."""
    async with open_backends(build_config({"server": {"data_dir": str(data_dir)}}), migrate=migrate) as backends:
        yield backends


@asynccontextmanager
async def data_dir_meta(data_dir: Path) -> AsyncIterator[MetadataStore]:
    """The metadata store of `data_dir` (see data_dir_backends)."""
    async with data_dir_backends(data_dir) as backends:
        yield backends.meta
