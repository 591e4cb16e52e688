"""The metadata store: everything shadowpi remembers besides the bytes of files, as Protocols split by concern.

To add a metadata backend, implement `MetadataStore` from this module (and the `Transaction` it hands out, from
proxy/backends/transaction.py), pass the contract suite (tests/backends/, one more parameter of its `backends`
fixture) and choose it by URL scheme in proxy/backends/__init__.py. proxy/backends/sqlite/ is the reference
implementation.

The rules every implementation keeps:
- **One write path.** Every write happens in `async with store.transaction() as tx:`. The transaction commits
  when the block ends and rolls back when it raises; writers never see each other's uncommitted rows, and no
  other coroutine or process can commit or roll back part of one. Write transactions are serialised (in SQLite:
  one at a time per process, and `BEGIN IMMEDIATE` between processes), so keep them short: no network, no
  hashing, no waiting on anything but the store.
- **After commit, the change feed.** A transaction records the topics its writes touched, and they are bumped on
  the change feed once it has committed (see proxy/backends/changes.py). Callers never bump by hand.
- **Reads outside a transaction see committed data only**, and never wait for a write transaction to end.
- **Single writes are shortcuts**: `store.put_page(...)` is `async with store.transaction() as tx:
  await tx.put_page(...)`, with nothing else in the transaction.
- Names are normalized (`NormalizedName`) and digests are lower-case hex, as the services pass them.
- Failures: `StorageFull` (proxy.errors) when the store's disk is full; `DuplicateFilename` (below) when a
  private filename is taken; anything else is the driver's own error (a 500: a bug or a broken backend).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from proxy.access.model import ROOT
from proxy.backends.records import (
    BlobRecord,
    CacheUsage,
    DeletedFile,
    PrivateFile,
    StoredPage,
    TokenRecord,
)
from proxy.backends.transaction import (
    AccessReads,
    AccessWrites,
    BlobWrites,
    PageReads,
    PageWrites,
    PrivateReads,
    PrivateWrites,
    TokenWrites,
    Transaction,
)
from proxy.simple.names import NormalizedName

__all__ = [
    "BlobIndex",
    "BundleReads",
    "DuplicateFilename",
    "MetadataStore",
    "PageStore",
    "PrivateStore",
    "SchemaMismatch",
    "TokenStore",
]


class DuplicateFilename(Exception):
    """Another upload committed the same filename first (a race between two uploads)."""


class SchemaMismatch(Exception):
    """The store's schema is not the one this shadowpi expects (older and not migrated, or newer)."""


# --- the store, by concern ------------------------------------------------------------------------------------


class PageStore(PageReads, PageWrites, Protocol):
    """Cached upstream project pages and remembered 404s (the writes are single-write shortcuts)."""

    async def cached_projects(self) -> list[NormalizedName]:
        """Names of projects with a cached upstream page (not remembered 404s), sorted."""
        ...

    def page_refresh_lock(self, name: NormalizedName, *, wait: float) -> AbstractAsyncContextManager[bool]:
        """Hold the right to refresh one project's page from upstream, so that one holder asks upstream and the
        others, once they hold it in turn, find its answer stored (the page cache reads the row again first).
        Yields True while held, until the block ends; False when it could not be had within `wait` seconds or
        the store cannot lock right now (the caller refreshes anyway: at worst one more upstream request).

        Its reach is the backend's: every replica sharing a PostgreSQL store; the coroutines of one process on
        SQLite (workers of one data dir each ask upstream once per TTL, as they always did)."""
        ...


class PrivateStore(PrivateReads, PrivateWrites, Protocol):
    """Private files, private names and deleted filenames."""

    async def private_projects(self, index: str = ROOT) -> list[NormalizedName]:
        """Every name that is or was private in an index (with or without files now), sorted."""
        ...

    async def private_project_indexes(self) -> list[tuple[str, NormalizedName]]:
        """Every (index, name) that is or was private, sorted."""
        ...


class BlobIndex(BlobWrites, Protocol):
    """What is known about committed blobs: sizes and access times for the cache limit, pins, and the blobs of
    upstream files whose page declared no hash. The bytes themselves live in the blob store."""

    async def upstream_file_sha256(self, url: str) -> str | None: ...

    async def cache_usage(self) -> CacheUsage:
        """Files and bytes of cached upstream blobs (private files and their metadata excluded), pinned bytes.
        A background read: it may take long, and never holds up a request's read."""
        ...

    async def usage_version(self) -> int:
        """A number that changes whenever a commit (in any process) may have changed cache_usage(); lets the
        janitor skip a recount when nothing happened."""
        ...

    async def eviction_candidates(self, *, accessed_before: float, limit: int = 500) -> list[BlobRecord]:
        """Least recently used first: cached upstream blobs that are not pinned, not private and not accessed
        since `accessed_before`. A background read."""
        ...

    def evicting(self, sha256: str, *, accessed_before: float) -> AbstractAsyncContextManager[bool]:
        """Claim a cached blob for eviction. Yields True when it may still go (checked in a write transaction:
        not private, not pinned, not accessed since `accessed_before`) and the caller then deletes its bytes
        inside the block. The row is forgotten when the block is entered and put back if the block raises, so a
        row never outlives its bytes; the claim's transaction has ended when the block starts (the BlobReaper
        deletes in a transaction of its own, which checks again that no private file took the bytes meanwhile).
        BLOBS is bumped once the block ends without error (after the bytes are gone)."""
        ...

    def eviction_lock(self) -> AbstractAsyncContextManager[bool]:
        """Hold the right to evict, without waiting: yields True while held, False when another janitor holds it
        (then this one evicts nothing this time). Its reach is the backend's: every replica sharing a PostgreSQL
        store (one evicting janitor per cluster); on SQLite always True (the workers of one data dir each evict,
        their claims serialized by the database, as they always did)."""
        ...


class TokenStore(TokenWrites, Protocol):
    async def token_user(self, token_hash: str) -> str | None:
        """The user owning a live (not revoked) token with this hash. Records its use, at most once a minute
        per token (a full disk leaves the use unrecorded; the token still works)."""
        ...

    async def live_token(self, token_hash: str) -> TokenRecord | None:
        """The live (not revoked) token with this hash, with its scope (expired ones too: the caller says so)."""
        ...

    async def token_record(self, token_hash: str) -> TokenRecord | None:
        """live_token(), recording its use like token_user()."""
        ...

    async def list_tokens(self, user: str | None = None) -> list[TokenRecord]:
        """Tokens (optionally of one user), oldest first."""
        ...


class BundleReads(Protocol):
    """Bulk reads for `shadowpi export` and `shadowpi migrate` (background reads, like cache_usage)."""

    async def bundle_pages(self) -> list[tuple[NormalizedName, StoredPage]]:
        """Every cached upstream page (remembered 404s excluded), by project name."""
        ...

    async def bundle_blob_times(self) -> dict[str, float]:
        """sha256 -> creation time of every recorded blob."""
        ...

    async def bundle_upstream_files(self) -> dict[str, str]:
        """URL -> sha256 of every upstream file whose page declared no sha256."""
        ...

    async def bundle_private_files(self, index: str | None = ROOT) -> list[PrivateFile]:
        """Every private file of an index (of every index with None), by project and filename."""
        ...

    async def bundle_deleted_files(self, index: str = ROOT) -> list[DeletedFile]:
        """Every deleted private filename of an index, by filename."""
        ...

    async def bundle_tokens(self) -> list[tuple[TokenRecord, str]]:
        """Every token (live or revoked) with its hash, by id: for `shadowpi migrate`, never for a bundle."""
        ...


class MetadataStore(
    PageStore, PrivateStore, BlobIndex, TokenStore, BundleReads, AccessReads, AccessWrites, Protocol
):
    """Everything above, plus the write path and the store's lifetime (opened and closed by open_backends)."""

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A write transaction (see the module docstring). Raises StorageFull when the disk is full; the block's
        own exceptions roll it back and propagate unchanged."""
        ...

    async def ping(self) -> None:
        """A trivial round trip: returns when the store answers (readiness), raises otherwise."""
        ...

    async def shared_secret(self, name: str, length: int = 32) -> bytes:
        """The secret called `name`, the same bytes in every process on this store: the first to ask creates it
        (`length` random bytes), everybody after gets those. No topic."""
        ...

    async def schema_version(self) -> int:
        """The schema version the store holds (0: empty)."""
        ...

    async def migrate(self) -> int:
        """Bring the schema up to this shadowpi's version (safe when several processes do it at once); returns
        the number of migrations applied. Raises SchemaMismatch when the store is newer than this shadowpi."""
        ...

    async def close(self) -> None: ...
