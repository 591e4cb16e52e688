"""reclaim_blobs: the one function that deletes a blob nobody refers to and forgets its row."""

from __future__ import annotations

from pathlib import Path

from proxy.backends.changes import Topic
from proxy.backends.metadata import MetadataStore
from proxy.backends.records import PrivateFile
from proxy.reclaim import reclaim_blobs
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
        db, store, changes = backends.meta, backends.blobs, backends.changes
        await store.open()
        kept, meta, orphan = [await store.put_bytes(data) for data in (b"wheel", b"METADATA", b"orphan")]
        ghost = "0" * 64  # a row without a file
        for blob in (kept, meta, orphan):
            await db.record_blob(blob.sha256, blob.size)
        await db.record_blob(ghost, 1)
        await db.add_private_file(private_file(kept.sha256, meta.sha256))
        stamp = changes.stamp(Topic.BLOBS)
        deleted = await reclaim_blobs(db, store, [kept.sha256, meta.sha256, orphan.sha256, ghost, None])
        assert deleted == [orphan.sha256]
        assert await store.stat(orphan.sha256) is None
        assert await store.stat(kept.sha256) is not None and await store.stat(meta.sha256) is not None
        assert await blob_rows(db) == {kept.sha256, meta.sha256}
        assert changes.stamp(Topic.BLOBS) != stamp
        assert await reclaim_blobs(db, store, []) == []
