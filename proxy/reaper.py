"""Reaping blobs: delete a blob nobody needs any more, then forget its row. The one place that deletes blobs, for
every reason: LRU eviction (the janitor), `shadowpi cache purge`, private deletes and replaced uploads.

Blobs are content-addressed and shared (sibling wheels often carry identical METADATA; an upload may equal a cached
upstream file), so a blob goes only when no private file refers to it. The check, the deletion and the row's removal
are one write transaction: an upload that starts referring to the blob meanwhile either committed first (the blob
stays) or commits after (its own copy is renamed into place inside its transaction). Forgetting the row tells every
process (the BLOBS change topic) to stop believing in the blob.
"""

from __future__ import annotations

from collections.abc import Iterable

from proxy.backends.blobs import BlobStore
from proxy.backends.metadata import MetadataStore
from proxy.backends.transaction import Transaction

__all__ = ["BlobReaper"]


class BlobReaper:
    """Deletes unneeded blobs from `blobs` and forgets them in `db`."""

    def __init__(self, db: MetadataStore, blobs: BlobStore) -> None:
        self._db = db
        self._blobs = blobs

    async def reclaim(self, sha256s: Iterable[str | None]) -> list[str]:
        """Delete each blob no private file refers to, and forget its `blobs` row (telling every process).

        Returns the blobs whose bytes were deleted (a row whose bytes were already gone is forgotten too). Keep
        batches small: the transaction holds back every writer on the data dir while blobs are deleted.
        """
        wanted = sorted({sha256 for sha256 in sha256s if sha256})
        deleted: list[str] = []
        if not wanted:
            return deleted
        async with self._db.transaction() as tx:
            for sha256 in wanted:
                if await self._reap(tx, sha256):
                    deleted.append(sha256)
        return deleted

    async def evict(self, sha256: str, *, accessed_before: float) -> bool:
        """Evict a cached upstream blob if it still may go: not private, not pinned, not used since
        `accessed_before`. Returns whether it went."""
        async with self._db.evicting(sha256, accessed_before=accessed_before) as claimed:
            if not claimed:
                return False
            # A private upload of the same bytes may have committed since the claim: checked again with the delete.
            async with self._db.transaction() as tx:
                return await self._reap(tx, sha256) is not None

    async def _reap(self, tx: Transaction, sha256: str) -> bool | None:
        """In `tx`: None when a private file needs the blob (kept); else deleted (True) or already gone (False)."""
        if await tx.is_private_blob(sha256):
            return None
        deleted = await self._blobs.delete(sha256)  # the bytes first: a crash in between leaves a row, not a lost file
        await tx.forget_blob(sha256)
        return deleted
