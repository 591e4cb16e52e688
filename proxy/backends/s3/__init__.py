"""The S3 blob backend: content-addressed objects in a bucket of any S3-compatible store (AWS, MinIO, SeaweedFS,
Ceph, Garage), through aiobotocore: the client and its errors (client.py), create-only uploads of spools
(upload.py), readers that stream with read-ahead (reader.py) and the store itself (store.py), opened by open_s3().
Spools stay local (the data dir's tmp/): a blob is verified there first, and uploaded on commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from proxy.backends.s3.client import S3Options, open_client
from proxy.backends.s3.store import S3BlobStore
from proxy.backends.spools import SpoolDir
from proxy.backends.urls import S3URL

__all__ = ["S3BlobStore", "S3Options", "open_s3"]


@contextlib.asynccontextmanager
async def open_s3(
    url: S3URL, options: S3Options, spools: SpoolDir, *, changed: Callable[[], bytes], memory_blobs: int = 256
) -> AsyncIterator[S3BlobStore]:
    """The blob store in `url`'s bucket, opened (the bucket checked: ConfigError with one line when it does not
    exist or these credentials cannot reach it), closed on exit. `changed` returns the BLOBS change stamp."""
    async with open_client(options) as client:
        store = S3BlobStore(client, url.bucket, url.prefix, spools, changed=changed, options=options,
                            memory_blobs=memory_blobs)
        await store.open()
        try:
            yield store
        finally:
            await store.close()
