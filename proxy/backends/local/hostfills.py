"""Fill coordination between the processes of one host for a blob store that is not on this host (an object store).

The same flock + hard-link protocol as LocalFills (fills.py), on the host's spool directory: one process per host
leads the download of a blob, the others on this host follow its spool. What differs is where blobs live: a claim
looks for the blob through the store (one round trip, BlobStore.reader), and the store's commit copies the spool
and seals it (Spool.seal) instead of renaming it, so a follower judges the outcome from the spool file it holds.

Across hosts nothing is coordinated here: two replicas that miss the same blob at once both download it, and the
object store's conditional create keeps one copy. One download per file per cluster is the next step (a
coordinator on the shared database); open_backends chooses the coordinator separately from the blob store.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from pathlib import Path

from proxy.backends.blobs import BlobReader, BlobStore
from proxy.backends.local.fills import CLAIM_ATTEMPTS, FILL_PREFIX, ForeignSpool, LocalLead, lead_sync, open_fill
from proxy.backends.spool import Spool
from proxy.backends.spoolfiles import SPOOL_SUFFIX, open_existing, remove_if_abandoned, storage_full_errors
from proxy.backends.spools import SpoolDir

__all__ = ["HostFills"]

_SHA256 = re.compile(r"[0-9a-f]{64}")


class HostFills:
    """Claims fills of blobs in `blobs` (any BlobStore whose commit seals the spool) with spools in `spools`'s
    directory (a FillCoordinator, proxy/backends/fills.py)."""

    def __init__(self, blobs: BlobStore, spools: SpoolDir) -> None:
        self._blobs = blobs
        self._tmp = spools.directory

    async def claim(self, sha256: str, algorithms: Iterable[str] = ()) -> BlobReader | LocalLead | ForeignSpool:
        found = await self._blobs.reader(sha256)  # ValueError for a malformed digest, before anything is created
        if found is not None:
            return found
        with storage_full_errors():
            claimed = await asyncio.get_running_loop().run_in_executor(
                None, self._claim_sync, sha256, tuple(algorithms)
            )
        if isinstance(claimed, LocalLead):
            # Committed between our look and the claim (by a follower's leader here, or by another host).
            found = await self._blobs.reader(sha256)
            if found is not None:
                await claimed.finish()
                return found
        return claimed

    async def follow_local(self, sha256: str) -> ForeignSpool | None:
        if not _SHA256.fullmatch(sha256):  # never a file name made of an arbitrary string
            raise ValueError(f"not a sha256 digest: {sha256[:80]!r}")
        return await asyncio.get_running_loop().run_in_executor(None, open_fill, self._tmp, sha256, None)

    def _claim_sync(self, sha256: str, algorithms: tuple[str, ...]) -> LocalLead | ForeignSpool:
        path = self._tmp / f"{FILL_PREFIX}{sha256}{SPOOL_SUFFIX}"
        for _ in range(CLAIM_ATTEMPTS):
            fd = lead_sync(self._tmp, path)
            if fd is not None:
                return LocalLead(Spool(path, fd, algorithms))
            if not remove_if_abandoned(path):  # a live leader (a dead one's spool is removed: try again)
                fd = open_existing(path)
                if fd is not None:
                    return ForeignSpool(sha256, path, None, fd)
        raise OSError(f"the spool {Path(path).name} kept changing; giving up on this fill")
