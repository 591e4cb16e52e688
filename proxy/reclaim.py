"""Reclaiming storage: delete a blob nobody refers to, then forget its row. The one place that does it.

Blobs are content-addressed and shared (sibling wheels often carry identical METADATA; an upload may equal a
cached upstream file), so a blob goes only when no private file refers to it. The check, the deletion and the
row's removal are one write transaction: an upload that starts referring to the blob meanwhile either committed
first (the blob stays) or commits after (its own copy is renamed into place inside its transaction).
"""

from __future__ import annotations

from collections.abc import Iterable

from proxy.backends.metadata import MetadataStore
from proxy.storage import BlobStore

__all__ = ["reclaim_blobs"]


async def reclaim_blobs(db: MetadataStore, store: BlobStore, sha256s: Iterable[str | None]) -> list[str]:
    """Delete each blob no private file refers to, and forget its `blobs` row (telling every process).

    Returns the blobs whose file was deleted (a row whose file was already gone is forgotten too). Keep batches
    small: the transaction holds back every writer on the data dir while files are unlinked.
    """
    wanted = sorted({sha256 for sha256 in sha256s if sha256})
    deleted: list[str] = []
    if not wanted:
        return deleted
    async with db.transaction() as tx:
        for sha256 in wanted:
            if await tx.is_private_blob(sha256):
                continue
            if await store.delete(sha256):  # the file first: a crash in between leaves a row, never a lost file
                deleted.append(sha256)
            await tx.forget_blob(sha256)
    return deleted
