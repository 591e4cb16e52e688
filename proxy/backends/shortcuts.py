"""What every MetadataStore builds the same way on its transaction(): the single-write methods (each is one
transaction around one statement, so there is exactly one write path), eviction's claim, and recording a token's
use."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from proxy.access.model import ROOT, Role, TokenScope
from proxy.backends.changes import ChangeFeed, Topic
from proxy.backends.pagerows import PageRow, page_row
from proxy.backends.records import AuditEntry, DeletedFile, PrivateFile, StoredPage, TokenRecord
from proxy.backends.transaction import Transaction
from proxy.errors import StorageFull
from proxy.simple.names import NormalizedName

__all__ = ["BlobRow", "RowTransaction", "SingleWrites"]

log = logging.getLogger(__name__)

BlobRow = tuple[int, float, float]  # size, created_at, last_access: what eviction puts back if deleting fails
TOKEN_USE_EVERY = 60.0  # seconds: a 50-file install with a token must not mean 50 write transactions


class RowTransaction(Transaction, Protocol):
    """A backend's transaction, with the statements only the store itself uses."""

    async def put_page_row(self, name: NormalizedName, row: PageRow) -> None:
        """put_page with the body already serialized (serialized before the transaction: it may take seconds)."""
        ...

    async def take_evictable(self, sha256: str, *, accessed_before: float) -> BlobRow | None:
        """Delete the row of a blob that may still be evicted, and return it (None: it may not go now)."""
        ...

    async def restore_blob(self, sha256: str, row: BlobRow) -> None:
        """Put back the row of a blob whose bytes could not be deleted after all."""
        ...

    async def record_token_use(self, token_id: int, when: float, *, every: float) -> None:
        """Set last_used, unless it was set less than `every` seconds before `when`."""
        ...

    async def shared_secret(self, name: str, length: int) -> bytes:
        """The named secret, created with `length` random bytes when there is none (the first writer wins)."""
        ...


TX = TypeVar("TX", bound=RowTransaction)


class SingleWrites(Generic[TX]):
    _feed: ChangeFeed
    # What a failed use record may raise besides StorageFull (the backend's driver errors): the token still works.
    _token_use_errors: tuple[type[Exception], ...] = ()

    def transaction(self) -> AbstractAsyncContextManager[TX]:
        raise NotImplementedError

    if TYPE_CHECKING:  # the store's own read (a stub here would shadow it)

        async def live_token(self, token_hash: str) -> TokenRecord | None: ...

    @asynccontextmanager
    async def evicting(self, sha256: str, *, accessed_before: float) -> AsyncIterator[bool]:
        async with self.transaction() as tx:
            row = await tx.take_evictable(sha256, accessed_before=accessed_before)
        if row is None:
            yield False
            return
        try:
            yield True
        except BaseException:  # the bytes are still there: so must the row be
            async with self.transaction() as tx:
                await tx.restore_blob(sha256, row)
            raise
        await self._feed.bump(Topic.BLOBS)  # after the bytes are gone, as forget_blob: processes stop assuming it

    async def shared_secret(self, name: str, length: int = 32) -> bytes:
        async with self.transaction() as tx:
            return await tx.shared_secret(name, length)

    async def token_user(self, token_hash: str) -> str | None:
        token = await self.token_record(token_hash)
        return token.user if token is not None else None

    async def token_record(self, token_hash: str) -> TokenRecord | None:
        token = await self.live_token(token_hash)
        if token is None:
            return None
        now = time.time()
        if token.last_used is None or token.last_used < now - TOKEN_USE_EVERY:
            unrecorded: tuple[type[Exception], ...] = (StorageFull, *self._token_use_errors)
            try:
                async with self.transaction() as tx:
                    await tx.record_token_use(token.id, now, every=TOKEN_USE_EVERY)
            except unrecorded as exc:  # the use goes unrecorded, the token still works
                log.debug("could not record the use of token %d: %s", token.id, exc)
        return token

    # --- pages ---

    async def put_page(self, name: NormalizedName, stored: StoredPage) -> None:
        row = await page_row(stored)  # before the transaction: a big page takes seconds to serialize
        async with self.transaction() as tx:
            await tx.put_page_row(name, row)

    async def touch_page(self, name: NormalizedName, fetched_at: float) -> None:
        async with self.transaction() as tx:
            await tx.touch_page(name, fetched_at)

    async def drop_page(self, name: NormalizedName) -> StoredPage | None:
        async with self.transaction() as tx:
            return await tx.drop_page(name)

    async def forget_expired_negative_pages(self, *, fetched_before: float, limit: int) -> int:
        async with self.transaction() as tx:
            return await tx.forget_expired_negative_pages(fetched_before=fetched_before, limit=limit)

    async def forget_oldest_negative_pages(self, *, keep: int, limit: int) -> int:
        async with self.transaction() as tx:
            return await tx.forget_oldest_negative_pages(keep=keep, limit=limit)

    # --- private files ---

    async def add_private_file(self, record: PrivateFile, *, replace: bool = False) -> None:
        async with self.transaction() as tx:
            await tx.add_private_file(record, replace=replace)

    async def add_private_project(
        self, name: NormalizedName, index: str = ROOT, *, created_by: str | None = None
    ) -> bool:
        async with self.transaction() as tx:
            return await tx.add_private_project(name, index, created_by=created_by)

    async def set_yanked(self, filenames: list[str], reason: str | None, index: str = ROOT) -> int:
        async with self.transaction() as tx:
            return await tx.set_yanked(filenames, reason, index)

    async def delete_private_files(self, files: list[PrivateFile]) -> None:
        async with self.transaction() as tx:
            await tx.delete_private_files(files)

    async def remove_private_file(self, filename: str, index: str = ROOT) -> None:
        async with self.transaction() as tx:
            await tx.remove_private_file(filename, index)

    async def add_deleted_file(self, deleted: DeletedFile) -> bool:
        async with self.transaction() as tx:
            return await tx.add_deleted_file(deleted)

    # --- blob index ---

    async def record_blob(self, sha256: str, size: int, *, now: float | None = None) -> None:
        async with self.transaction() as tx:
            await tx.record_blob(sha256, size, now=now)

    async def record_pinned_blob(self, sha256: str, size: int) -> bool:
        async with self.transaction() as tx:
            return await tx.record_pinned_blob(sha256, size)

    async def remember_upstream_file(self, url: str, sha256: str) -> bool:
        async with self.transaction() as tx:
            return await tx.remember_upstream_file(url, sha256)

    async def touch_blobs(self, hits: Mapping[str, float]) -> None:
        if not hits:  # no transaction at all: an idle janitor's sweep writes nothing (and so counts nothing again)
            return
        async with self.transaction() as tx:
            await tx.touch_blobs(hits)

    async def pin_blobs(self, sha256s: list[str], *, pinned: bool = True) -> int:
        async with self.transaction() as tx:
            return await tx.pin_blobs(sha256s, pinned=pinned)

    async def forget_blob(self, sha256: str) -> None:
        async with self.transaction() as tx:
            await tx.forget_blob(sha256)

    # --- tokens ---

    async def add_token(
        self, user: str, token_hash: str, description: str | None = None, scope: TokenScope | None = None
    ) -> int:
        async with self.transaction() as tx:
            return await tx.add_token(user, token_hash, description, scope)

    async def revoke_token(self, token_id: int) -> bool:
        async with self.transaction() as tx:
            return await tx.revoke_token(token_id)

    # --- owners and the audit log ---

    async def add_member(self, index: str, project: str, principal: str, role: Role) -> bool:
        async with self.transaction() as tx:
            return await tx.add_member(index, project, principal, role)

    async def remove_member(self, index: str, project: str, principal: str) -> bool:
        async with self.transaction() as tx:
            return await tx.remove_member(index, project, principal)

    async def add_audit(self, entry: AuditEntry) -> None:
        async with self.transaction() as tx:
            await tx.add_audit(entry)

    async def restore_token(self, record: TokenRecord, token_hash: str) -> bool:
        async with self.transaction() as tx:
            return await tx.restore_token(record, token_hash)
