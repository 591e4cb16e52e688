"""The single-write methods of the SQLite MetadataStore: each is one transaction around one statement group, so
there is exactly one path to the writer connection (transaction.py)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager

from proxy.backends.records import DeletedFile, PrivateFile, StoredPage
from proxy.backends.sqlite.pages import page_row
from proxy.backends.sqlite.transaction import SqliteTransaction
from proxy.simple.names import NormalizedName


class SingleWrites:
    def transaction(self) -> AbstractAsyncContextManager[SqliteTransaction]:
        raise NotImplementedError

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

    async def add_private_project(self, name: NormalizedName) -> bool:
        async with self.transaction() as tx:
            return await tx.add_private_project(name)

    async def set_yanked(self, filenames: list[str], reason: str | None) -> int:
        async with self.transaction() as tx:
            return await tx.set_yanked(filenames, reason)

    async def delete_private_files(self, files: list[PrivateFile]) -> None:
        async with self.transaction() as tx:
            await tx.delete_private_files(files)

    async def remove_private_file(self, filename: str) -> None:
        async with self.transaction() as tx:
            await tx.remove_private_file(filename)

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

    async def add_token(self, user: str, token_hash: str, description: str | None = None) -> int:
        async with self.transaction() as tx:
            return await tx.add_token(user, token_hash, description)

    async def revoke_token(self, token_id: int) -> bool:
        async with self.transaction() as tx:
            return await tx.revoke_token(token_id)
