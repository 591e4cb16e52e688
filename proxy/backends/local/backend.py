"""The local backend as a whole: blob store, fill coordinator and spool directory of one data dir."""


from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from proxy.backends.local.blobs import OPEN_FILES, LocalBlobStore
from proxy.backends.local.fills import LocalFills
from proxy.backends.spools import SpoolDir

__all__ = ["LocalStorage", "open_local"]


@dataclass(frozen=True, slots=True)
class LocalStorage:
    blobs: LocalBlobStore
    fills: LocalFills
    spools: SpoolDir


async def open_local(root: Path, *, changed: Callable[[], bytes], open_files: int = OPEN_FILES) -> LocalStorage:
    """The blob store, fill coordinator and spool directory of `root` (created when missing; nothing is swept:
    the server does that, SpoolDir.sweep). `changed` returns the BLOBS change stamp (see LocalBlobStore)."""
    spools = SpoolDir(root / "tmp")
    await spools.open()
    blobs = LocalBlobStore(root, spools, changed=changed, open_files=open_files)
    await blobs.open()
    return LocalStorage(blobs, LocalFills(blobs, spools), spools)
