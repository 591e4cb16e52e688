"""What one write transaction of the metadata store can do: the reads and writes of each concern, as Protocols, and
the `Transaction` that combines them (see proxy/backends/metadata.py for the rules every implementation keeps:
one write path, the change feed after commit, committed reads outside a transaction).

The store's own Protocols (proxy/backends/metadata.py) are built from these: each concern's store offers its reads
and, as single-write shortcuts, its writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from proxy.access.model import ROOT, Member, Role, TokenScope
from proxy.backends.records import (
    AuditEntry,
    DeletedFile,
    PageFreshness,
    PrivateFile,
    StoredPage,
    TokenRecord,
)
from proxy.simple.names import NormalizedName

__all__ = [
    "AccessReads",
    "AccessWrites",
    "BlobWrites",
    "PageReads",
    "PageWrites",
    "PrivateReads",
    "PrivateWrites",
    "TokenWrites",
    "Transaction",
]


class PageReads(Protocol):
    async def get_page(self, name: NormalizedName) -> StoredPage | None:
        """The cached upstream answer for a project (a page, or a remembered 404), if any."""
        ...

    async def page_freshness(self, name: NormalizedName) -> PageFreshness | None:
        """When upstream last confirmed a project's cached answer, and its validators: a cheap look (the page is
        neither read nor parsed) that tells whether a copy held in memory is still the stored answer."""
        ...


class PageWrites(Protocol):
    async def put_page(self, name: NormalizedName, stored: StoredPage) -> None:
        """Insert or replace a project's cached upstream answer. Topic: PAGES."""
        ...

    async def touch_page(self, name: NormalizedName, fetched_at: float) -> None:
        """Record that upstream confirmed the cached page unchanged (a 304). No topic: nothing a reader holds
        changes."""
        ...

    async def drop_page(self, name: NormalizedName) -> StoredPage | None:
        """Forget a project's cached upstream answer; returns what was cached. Topic: PAGES."""
        ...

    async def forget_expired_negative_pages(self, *, fetched_before: float, limit: int) -> int:
        """Forget up to `limit` remembered 404s fetched before `fetched_before`; returns how many. No topic:
        forgetting a 404 only means upstream is asked again."""
        ...

    async def forget_oldest_negative_pages(self, *, keep: int, limit: int) -> int:
        """Forget up to `limit` of the oldest remembered 404s beyond the newest `keep`; returns how many."""
        ...


class PrivateReads(Protocol):
    """Every private row belongs to an index (issue 14); `index` defaults to the root index."""

    async def private_file(self, filename: str, index: str = ROOT) -> PrivateFile | None: ...

    async def private_files(self, project: NormalizedName, index: str = ROOT) -> list[PrivateFile]:
        """A private project's files in an index, by filename (empty when it has none, or is not private)."""
        ...

    async def deleted_sha256(self, filename: str, index: str = ROOT) -> str | None:
        """The sha256 a deleted private file had, if that filename was ever deleted (it may only come back with
        the same bytes)."""
        ...

    async def is_private_blob(self, sha256: str) -> bool:
        """Whether a private file (in any index), or a private file's PEP 658 metadata file, is this blob."""
        ...


class PrivateWrites(Protocol):
    async def add_private_file(self, record: PrivateFile, *, replace: bool = False) -> None:
        """Insert a private file (or replace the one of that filename) and make its project name private for
        good. Raises DuplicateFilename when the filename exists and `replace` is false. Topic: PRIVATE."""
        ...

    async def add_private_project(
        self, name: NormalizedName, index: str = ROOT, *, created_by: str | None = None
    ) -> bool:
        """Make a name private in an index for good, with or without files; True when it was not. Topic: PRIVATE."""
        ...

    async def set_yanked(self, filenames: list[str], reason: str | None, index: str = ROOT) -> int:
        """Yank (`reason` may be empty) or unyank (None) files; returns how many rows changed. Topic: PRIVATE."""
        ...

    async def delete_private_files(self, files: list[PrivateFile]) -> None:
        """Delete files and remember their names with their sha256 (see deleted_sha256). Topic: PRIVATE."""
        ...

    async def remove_private_file(self, filename: str, index: str = ROOT) -> None:
        """Delete a file's row without remembering it (an import applies the source's deletions and deleted
        names separately). Topic: PRIVATE."""
        ...

    async def add_deleted_file(self, deleted: DeletedFile) -> bool:
        """Remember a deleted filename unless already known; True when it was new. Topic: PRIVATE."""
        ...


class BlobWrites(Protocol):
    async def record_blob(self, sha256: str, size: int, *, now: float | None = None) -> None:
        """Remember a committed blob for accounting and eviction (`now`: its last access, default the current
        time; an existing row only has its last access moved). No topic."""
        ...

    async def record_pinned_blob(self, sha256: str, size: int) -> bool:
        """Remember an imported blob as pinned (offline, an evicted file could never come back); True when that
        changed anything. No topic."""
        ...

    async def remember_upstream_file(self, url: str, sha256: str) -> bool:
        """Map an upstream URL whose page declared no sha256 to the blob its bytes became; True when the mapping
        is new or changed. No topic."""
        ...

    async def touch_blobs(self, hits: Mapping[str, float]) -> None:
        """Record cache hits (sha256 -> when); never moves a last access back. No topic."""
        ...

    async def pin_blobs(self, sha256s: list[str], *, pinned: bool = True) -> int:
        """Pin (or unpin) blobs so eviction never removes them; returns how many rows changed. No topic."""
        ...

    async def forget_blob(self, sha256: str) -> None:
        """Forget a blob whose bytes were deleted. Topic: BLOBS (no process may go on believing it exists)."""
        ...


class TokenWrites(Protocol):
    async def add_token(
        self, user: str, token_hash: str, description: str | None = None, scope: TokenScope | None = None
    ) -> int:
        """Store a new token's hash (never the token) and its scope (None: everything its user may do); returns its
        id. No topic."""
        ...

    async def revoke_token(self, token_id: int) -> bool:
        """Revoke a token by id; False when no live token has that id. No topic."""
        ...

    async def restore_token(self, record: TokenRecord, token_hash: str) -> bool:
        """Copy a token from another store (`shadowpi migrate`): its user, description and times, under a new id,
        unless a token with this hash exists; then only a revocation is carried over (never undone). True when
        anything changed. No topic."""
        ...


class AccessReads(Protocol):
    async def project_members(self, index: str, project: str) -> list[Member]:
        """Owners and maintainers of a project in an index, by principal."""
        ...

    async def audit_entries(
        self, *, index: str | None = None, project: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        """Recorded changes, newest first, optionally of one index, one project, since a time."""
        ...


class AccessWrites(Protocol):
    async def add_member(self, index: str, project: str, principal: str, role: Role) -> bool:
        """Make a user or "group:NAME" an owner or maintainer (or change its role); True when anything changed.
        Topic: PRIVATE."""
        ...

    async def remove_member(self, index: str, project: str, principal: str) -> bool:
        """True when the principal was a member. Topic: PRIVATE."""
        ...

    async def add_audit(self, entry: AuditEntry) -> None:
        """Record a change, in the transaction of the change it records. No topic."""
        ...


class Transaction(
    PageReads, PageWrites, PrivateReads, PrivateWrites, BlobWrites, TokenWrites, AccessReads, AccessWrites, Protocol
):
    """The statements of one open write transaction: its reads see the latest commits and its own writes, and
    nothing changes under them until it ends; its writes are visible to nobody else until it commits."""
