"""Blob store promises of object stores (the s3 kinds of the contract suite): presigned URLs that work and expire,
and uploads that leave nothing behind when they fail."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from proxy.backends import open_backends
from proxy.backends.spool import Spool
from proxy.errors import StorageUnavailable
from proxy.reaper import BlobReaper
from tests.backends.buckets import Bucket, bucket_of
from tests.backends.committer import pattern
from tests.backends.conftest import BackendsUnderTest

DATA = pattern(64 * 2**20)  # eight 8 MiB parts: most are still unread when the first has arrived
SHA = hashlib.sha256(DATA).hexdigest()
SMALL = b"x" * 1000


@pytest.fixture
async def bucket(backends: BackendsUnderTest) -> AsyncIterator[Bucket]:
    async with bucket_of(backends.config.storage.url) as found:
        assert found is not None
        yield found


async def fetch(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.request(method, url) as response:
        return response.status, dict(response.headers), await response.read()


async def test_a_presigned_url_serves_the_blob_then_expires(backends: BackendsUnderTest):
    """With redirects on, redirect_url() is a URL of the object that anyone may GET (or HEAD, with its own URL)
    for redirect_ttl seconds, naming the file and typed octet-stream, and that is refused afterwards (polled: the
    object store's clock decides)."""
    async with backends.spools.new() as spool:
        await spool.write(DATA)
        await backends.blobs.commit(spool)
    storage = replace(backends.config.storage, redirect=True, redirect_ttl=2)
    async with open_backends(replace(backends.config, storage=storage)) as redirecting:
        url = await redirecting.blobs.redirect_url(SHA, "tinylib-2.0-py3-none-any.whl")
        head_url = await redirecting.blobs.redirect_url(SHA, "tinylib-2.0-py3-none-any.whl", "HEAD")
        odd = await redirecting.blobs.redirect_url(SHA, 'x"; filename="evil.sh')
    assert url is not None and head_url is not None and odd is not None
    assert "X-Amz-Expires=2&" in url + "&"
    status, headers, body = await fetch(url)
    assert (status, body) == (200, DATA)
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"] == 'attachment; filename="tinylib-2.0-py3-none-any.whl"'
    status, headers, body = await fetch(head_url, "HEAD")
    assert (status, headers["Content-Length"], body) == (200, str(len(DATA)), b"")
    status, headers, _ = await fetch(odd)
    assert status == 200
    assert "Content-Disposition" not in headers  # a filename that could break out of the quotes is left out
    async with asyncio.timeout(30):  # polling another process (the object store's clock), bounded
        while True:
            status, _, body = await fetch(url)
            if status != 200:
                break
            await asyncio.sleep(0.2)
    assert status == 403
    assert b"expired" in body.lower()


async def test_no_redirects_unless_configured_or_for_small_or_absent_blobs(backends: BackendsUnderTest):
    """redirect_url() is None without [storage] redirect, for a blob of 64 KiB or less (not worth a round trip)
    and for an absent one."""
    small = await backends.blobs.put_bytes(SMALL)
    async with backends.spools.new() as spool:
        await spool.write(DATA)
        await backends.blobs.commit(spool)
    assert await backends.blobs.redirect_url(SHA, "a.whl") is None
    storage = replace(backends.config.storage, redirect=True)
    async with open_backends(replace(backends.config, storage=storage)) as redirecting:
        assert await redirecting.blobs.redirect_url(small.sha256, "a.whl.metadata") is None
        assert await redirecting.blobs.redirect_url("0" * 64, "a.whl") is None
        assert await redirecting.blobs.redirect_url(SHA, "a.whl") is not None


async def commit_until_a_part_arrived(backends: BackendsUnderTest, bucket: Bucket, spool: Spool) -> asyncio.Task[Any]:
    """A commit of `spool` running in a task, returned once the object store holds one of its parts."""
    committing = asyncio.create_task(backends.blobs.commit(spool))
    async with asyncio.timeout(60):
        while not committing.done():
            uploads = await bucket.pending_uploads()
            if uploads and await bucket.parts(uploads[0]) >= 1:
                return committing
            await asyncio.sleep(0.02)
    await committing
    raise AssertionError("the commit ended before any part was seen")


@pytest.mark.parametrize("failure", ["cancelled", "a part fails", "completion refused"])
async def test_a_failed_upload_leaves_no_object_and_no_pending_upload(
    backends: BackendsUnderTest, bucket: Bucket, failure: str
):
    """Whatever stops a multipart upload half-way (the commit cancelled, a part that cannot be read, the store
    refusing the completion: here, parts too small once the spool shrank), the upload is aborted: no object, no
    pending upload with its parts, and the blob is absent."""
    async with backends.spools.new() as spool:
        await spool.write(DATA)
        committing = await commit_until_a_part_arrived(backends, bucket, spool)
        if failure == "cancelled":
            committing.cancel()
            expected: type[BaseException] = asyncio.CancelledError
        elif failure == "a part fails":
            spool.close()  # the next part cannot be read
            expected = OSError
        else:
            os.truncate(spool.path, 9 * 2**20)  # the parts still to come are (too) short
            expected = StorageUnavailable
        with pytest.raises(expected):
            await committing
    assert await bucket.keys() == []
    assert await bucket.pending_uploads() == []
    assert await backends.blobs.stat(SHA) is None


async def test_a_blob_reaped_by_another_host_is_not_served_from_this_hosts_copies(
    backends: BackendsUnderTest, tmp_path: Path
):
    """Another host (its own data dir and read cache, the same database and bucket) reaps a blob this host has
    read: this host then says it is absent (reader_nowait, reader, stat), and its local copy is deleted, never
    served (the BLOBS change stamp moved: every copy is checked again)."""
    small = (await backends.blobs.put_bytes(SMALL)).sha256
    async with backends.spools.new() as spool:
        await spool.write(DATA)
        await backends.blobs.commit(spool)
    for sha in (SHA, small):
        await backends.meta.record_blob(sha, 1)
        held = await backends.blobs.reader(sha)
        assert held is not None
        held.close()
    copies = backends.config.data_dir / "readcache"
    if backends.config.storage.local_cache:
        assert {path.name for path in copies.rglob("*") if len(path.name) == 64} >= {SHA}
    other = replace(backends.config, server=replace(backends.config.server, data_dir=tmp_path / "other-host"))
    async with open_backends(other) as elsewhere:
        assert await BlobReaper(elsewhere.meta, elsewhere.blobs).reclaim([SHA, small]) == sorted([SHA, small])
    for sha in (SHA, small):
        assert backends.blobs.reader_nowait(sha) is None
        assert await backends.blobs.reader(sha) is None
        assert await backends.blobs.stat(sha) is None
    assert {path.name for path in copies.rglob("*") if len(path.name) == 64} == set()
