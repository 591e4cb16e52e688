"""BlobStore contract: committed blobs are whole, immutable, content-addressed; absent ones are None; a partial spool
is never a blob; a deletion announced anywhere is never contradicted by a held reader."""

from __future__ import annotations

import hashlib

import pytest

from proxy.backends.blobs import BlobInfo, BlobReader
from proxy.reaper import BlobReaper
from tests.backends.conftest import Backends

DATA = bytes(range(256)) * 4000  # ~1 MiB: several chunks
SHA = hashlib.sha256(DATA).hexdigest()
ABSENT = "0" * 64


async def read_all(reader: BlobReader, offset: int = 0, length: int | None = None) -> bytes:
    length = reader.size - offset if length is None else length
    return b"".join([chunk async for chunk in reader.chunks(offset, length)])


async def commit(backends: Backends, data: bytes) -> BlobInfo:
    async with backends.spools.new() as spool:
        await spool.write(data)
        return await backends.blobs.commit(spool)


async def test_a_committed_spool_is_the_blob_of_its_sha256(backends: Backends):
    """commit() names the blob by the spool's sha256; stat, reader and read_bytes give exactly its bytes."""
    assert await commit(backends, DATA) == BlobInfo(SHA, len(DATA))
    assert await backends.blobs.stat(SHA) == BlobInfo(SHA, len(DATA))
    assert await backends.blobs.read_bytes(SHA) == DATA
    reader = await backends.blobs.reader(SHA)
    assert reader is not None
    try:
        assert (reader.sha256, reader.size) == (SHA, len(DATA))
        assert await read_all(reader) == DATA
        assert await read_all(reader, 1000, 5000) == DATA[1000:6000]
        assert await read_all(reader, len(DATA) - 10, 100) == DATA[-10:]  # ends early at the end
    finally:
        reader.close()


async def test_absent_blobs_are_none(backends: Backends):
    """An unknown sha256 is None for stat/reader/reader_nowait, and FileNotFoundError for read_bytes."""
    assert await backends.blobs.stat(ABSENT) is None
    assert await backends.blobs.reader(ABSENT) is None
    assert backends.blobs.reader_nowait(ABSENT) is None
    with pytest.raises(FileNotFoundError):
        await backends.blobs.read_bytes(ABSENT)


@pytest.mark.parametrize("key", ["", "ab", "../" + "0" * 61, "A" * 64, "0" * 63 + "/"])
async def test_malformed_keys_never_reach_storage(backends: Backends, key: str):
    """A key that is not a lower-case sha256 hex digest is a ValueError, whatever the call."""
    with pytest.raises(ValueError, match="sha256"):
        await backends.blobs.stat(key)
    with pytest.raises(ValueError, match="sha256"):
        await backends.blobs.reader(key)
    with pytest.raises(ValueError, match="sha256"):
        await backends.fills.claim(key)


async def test_a_partial_spool_is_never_a_blob(backends: Backends):
    """Bytes written to a spool that is never committed never become visible, in this process or another."""
    async with backends.spools.new() as spool:
        await spool.write(DATA)
        assert spool.digests()["sha256"] == SHA
        assert await backends.blobs.stat(SHA) is None
    assert await backends.blobs.stat(SHA) is None
    assert await backends.blobs.reader(SHA) is None


async def test_committing_the_same_bytes_again_is_harmless(backends: Backends, peer: Backends):
    """Two commits of equal bytes (two workers, an upload equal to a cached file) leave one intact blob."""
    assert await commit(backends, DATA) == await commit(peer, DATA)
    assert await backends.blobs.read_bytes(SHA) == DATA


async def test_delete_removes_the_blob_but_not_open_readers(backends: Backends):
    """delete() is True once, then False. An open reader of a local file keeps reading the same bytes (immutable);
    one of a remote object fails (OSError) once the object is gone, and never reads anything else."""
    await commit(backends, DATA)
    reader = await backends.blobs.reader(SHA)
    assert reader is not None
    try:
        assert await backends.blobs.delete(SHA) is True
        assert await backends.blobs.delete(SHA) is False
        assert await backends.blobs.stat(SHA) is None
        assert await backends.blobs.reader(SHA) is None
        if reader.sendfile_source() is not None:
            assert await read_all(reader) == DATA
        else:
            with pytest.raises(OSError, match="NoSuchKey"):
                await read_all(reader)
    finally:
        reader.close()


async def test_no_process_believes_in_a_blob_reaped_elsewhere(backends: Backends, peer: Backends):
    """A blob this process has read (and may hold open) is never handed out after another process deleted it and
    forgot its row: reader_nowait says "not held", reader and stat say "absent"."""
    await commit(backends, DATA)
    await backends.meta.record_blob(SHA, len(DATA))
    held = await backends.blobs.reader(SHA)
    assert held is not None
    held.close()
    assert await BlobReaper(peer.meta, peer.blobs).reclaim([SHA]) == [SHA]
    await backends.changes.caught_up()  # a networked feed announces within its bound, not at once
    assert backends.blobs.reader_nowait(SHA) is None
    assert await backends.blobs.reader(SHA) is None
    assert await backends.blobs.stat(SHA) is None


async def test_put_bytes_and_probe(backends: Backends):
    """put_bytes commits small content; probe() passes on writable storage."""
    assert await backends.blobs.put_bytes(b"METADATA") == BlobInfo(hashlib.sha256(b"METADATA").hexdigest(), 8)
    await backends.blobs.probe()
