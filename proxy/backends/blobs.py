"""Blob storage interface: committed, immutable bytes keyed by their sha256 (content-addressed).

A blob is written through a local Spool (proxy/backends/spool.py) and committed under the spool's computed sha256:
a blob exists completely or not at all, and its bytes never change. Deleting a blob is the BlobReaper's job
(proxy/reaper.py), which forgets its metadata row afterwards and so tells every process (the BLOBS change topic).

Implementations: the local directory (proxy/backends/local/blobs.py); an S3-compatible bucket
(proxy/backends/s3/store.py), optionally behind a local read cache (proxy/backends/local/readcache.py). Services and
handlers see only this module.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from proxy.backends.spool import Spool

__all__ = ["BlobInfo", "BlobReader", "BlobStore", "ByteSource"]


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """A committed blob: its content address and length."""

    sha256: str
    size: int


class ByteSource(Protocol):
    """Bytes to send to a client: a committed blob, or a file still being filled (then `size` grows).

    Sending prefers `sendfile_source()` (the kernel copies the bytes); a source that is not a local file (an object
    store, a fill led by another host) returns None there, and is sent with `chunks()`.
    """

    @property
    def size(self) -> int:
        """Bytes available now (final for a committed blob)."""
        ...

    def sendfile_source(self) -> BinaryIO | None:
        """The open local file behind these bytes, for loop.sendfile with explicit offsets; None when not local.

        Owned by this source: valid until close(), never closed by the caller, shared by concurrent senders (so
        never read through its file position).
        """
        ...

    def chunks(self, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        """The bytes at [offset, offset + length), in pieces, without blocking the event loop. Ends early only
        when fewer bytes exist (a caller that expected more treats that as a cut-off). A caller that stops early
        closes the generator (contextlib.aclosing): a remote source releases its connection then."""
        ...

    def close(self) -> None:
        """Release what the source holds (descriptors, connections). Idempotent."""
        ...


class BlobReader(ByteSource, Protocol):
    """An open committed blob. Close it exactly once. When the blob is deleted meanwhile, a reader of a local file
    keeps reading the same bytes (immutable; a deletion frees the space once the last reader is closed); a reader
    of a remote object (`sendfile_source() is None`) may fail then (OSError), but never reads other bytes."""

    @property
    def sha256(self) -> str: ...

    @property
    def modified(self) -> float:
        """When the blob was committed (unix time): Last-Modified and If-Modified-Since."""
        ...

    def memory(self) -> bytes | None:
        """All of the blob's bytes when the reader holds them in memory (small blobs, such as PEP 658 metadata
        files: sent with the response headers in one write), else None."""
        ...


class BlobStore(Protocol):
    """Committed blobs. Every method may raise OSError for storage failures; StorageFull (proxy.errors) when the
    storage is out of space."""

    async def open(self) -> None:
        """Create what the store needs (directories, a bucket check). Never deletes anything."""
        ...

    async def stat(self, sha256: str) -> BlobInfo | None:
        """The committed blob, or None when absent. Raises ValueError for a malformed sha256."""
        ...

    async def reader(self, sha256: str) -> BlobReader | None:
        """An open reader of the committed blob, or None when absent. Cheap for a blob this process reads often
        (the local store keeps those open: no file-system call). Raises ValueError for a malformed sha256."""
        ...

    def reader_nowait(self, sha256: str) -> BlobReader | None:
        """A reader from what this process already holds, with no I/O and no await; None means "not held here"
        (ask reader(), or claim a fill), never "absent".

        Promise: never a blob whose deletion any process had announced (BLOBS change topic) before this call.
        """
        ...

    async def read_bytes(self, sha256: str) -> bytes:
        """A small committed blob's bytes (metadata files, tests). Raises FileNotFoundError when absent."""
        ...

    async def prepare(self, spool: Spool) -> None:
        """Do the slow part of committing `spool` now (fsync; an upload), before a transaction that will commit it:
        commit() inside the transaction is then cheap. The blob may become visible here already (an object store);
        it is only referred to once the transaction commits, and an unreferenced blob is harmless."""
        ...

    async def commit(self, spool: Spool) -> BlobInfo:
        """Make the spool's bytes the blob named by its computed sha256 (durably, atomically: readers see all of
        it or nothing). The caller has verified the bytes. Committing bytes that exist already is harmless.
        Afterwards the spool's file is either moved into the store or sealed (Spool.seal): either way, a process
        following the spool can tell its bytes were committed."""
        ...

    async def put_bytes(self, data: bytes) -> BlobInfo:
        """Commit small in-memory content (through a spool)."""
        ...

    async def delete(self, sha256: str) -> bool:
        """Remove a committed blob; False when it was not there. Only the BlobReaper calls this (it forgets the
        blob's metadata row afterwards, which tells every process)."""
        ...

    async def probe(self) -> None:
        """Readiness: raises (OSError, StorageFull) when a blob could not be written now."""
        ...

    async def redirect_url(self, sha256: str, filename: str, method: str = "GET") -> str | None:
        """A short-lived URL a client may fetch the committed blob from directly with `method` (GET or HEAD): a
        presigned object-store URL, naming `filename` when that is safe. None: send it from here (the local store,
        redirects not configured, a blob too small to be worth a round trip, or a blob that is absent)."""
        ...

    async def close(self) -> None:
        """Release held readers and connections (readers handed out stay valid until closed)."""
        ...
