"""BlobReaper: the one owner of deleting a blob nobody needs and forgetting its row."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from proxy.backends.blobs import BlobStore
from proxy.backends.changes import Topic
from proxy.backends.metadata import MetadataStore
from proxy.backends.records import PrivateFile
from proxy.backends.sqlite import DB_FILENAME
from proxy.reaper import BlobReaper
from proxy.simple.names import NormalizedName
from tests.stores import data_dir_backends


def private_file(sha256: str, metadata_sha256: str | None) -> PrivateFile:
    return PrivateFile(
        filename="acme-1.0-py3-none-any.whl", project=NormalizedName("acme"), version="1.0", sha256=sha256,
        blake2_256=None, size=1, requires_python=None, metadata_sha256=metadata_sha256, yanked=None,
        upload_time="2024-01-01T00:00:00.000000Z", uploaded_by="ci",
    )


async def blob_rows(db: MetadataStore) -> set[str]:
    return set(await db.bundle_blob_times())


async def test_reclaims_only_what_no_private_file_refers_to(tmp_path: Path):
    """Unreferenced blobs lose file and row (and every process hears of it); a file's blob and its metadata blob
    stay; a row whose file is already gone is forgotten without being counted."""
    async with data_dir_backends(tmp_path) as backends:
        db, store, reaper = backends.meta, backends.blobs, BlobReaper(backends.meta, backends.blobs)
        kept, meta, orphan = [await store.put_bytes(data) for data in (b"wheel", b"METADATA", b"orphan")]
        ghost = "0" * 64  # a row without a file
        for blob in (kept, meta, orphan):
            await db.record_blob(blob.sha256, blob.size)
        await db.record_blob(ghost, 1)
        await db.add_private_file(private_file(kept.sha256, meta.sha256))
        stamp = backends.changes.stamp(Topic.BLOBS)
        deleted = await reaper.reclaim([kept.sha256, meta.sha256, orphan.sha256, ghost, None])
        assert deleted == [orphan.sha256]
        assert await store.stat(orphan.sha256) is None
        assert await store.stat(kept.sha256) is not None and await store.stat(meta.sha256) is not None
        assert await blob_rows(db) == {kept.sha256, meta.sha256}
        assert backends.changes.stamp(Topic.BLOBS) != stamp
        assert await reaper.reclaim([]) == []


class GatedDeletes:
    """The blob store's delete(), held at its start until `proceed` is set (`entered` says it got there)."""

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs
        self.entered = asyncio.Event()
        self.proceed = asyncio.Event()

    async def delete(self, sha256: str) -> bool:
        self.entered.set()
        await self.proceed.wait()
        return await self._blobs.delete(sha256)


async def test_no_upload_commits_between_an_evictions_check_and_its_delete(tmp_path: Path):
    """An eviction holds the write lock from its "nobody refers to it" check until the bytes are gone: an upload of
    the same bytes commits before (and keeps them: nothing is deleted) or after (and renames its own copy into
    place). Before, the row was claimed in one transaction and the file deleted after it, so an upload committing in
    between lost its bytes."""
    async with data_dir_backends(tmp_path) as backends:
        db = backends.meta
        blob = await backends.blobs.put_bytes(b"wheel")
        await db.record_blob(blob.sha256, blob.size, now=1.0)
        gated = GatedDeletes(backends.blobs)
        eviction = asyncio.create_task(BlobReaper(db, gated).evict(blob.sha256, accessed_before=2.0))  # type: ignore[arg-type]
        await gated.entered.wait()
        other_writer = sqlite3.connect(tmp_path / DB_FILENAME, timeout=0)  # another process, one that does not wait
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other_writer.execute("BEGIN IMMEDIATE")
        finally:
            other_writer.close()
        gated.proceed.set()
        assert await eviction is True
        assert await backends.blobs.stat(blob.sha256) is None
        assert await blob_rows(db) == set()
