"""Metadata records: what the metadata stores take and return (models, never rows), whatever the backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from proxy.access.model import ROOT, TokenScope
from proxy.simple.model import ProjectPage
from proxy.simple.names import NormalizedName


@dataclass(frozen=True, slots=True)
class StoredPage:
    """A cached upstream answer for one project: a page, or a remembered 404 (page is None)."""

    page: ProjectPage | None
    etag: str | None
    last_modified: str | None
    fetched_at: float

    def same_answer(self, other: PageFreshness) -> bool:
        """Whether `other` describes this very answer (the same validators: refreshed, not changed, since)."""
        if (self.page is None) != other.missing:
            return False
        if self.page is None:
            return True
        validators = (self.etag, self.last_modified)
        return validators != (None, None) and validators == (other.etag, other.last_modified)


@dataclass(frozen=True, slots=True)
class PageFreshness:
    """What a cheap look at a stored page says: when upstream last confirmed it, and its validators (enough to
    tell whether a copy in memory is the same answer, without reading and parsing the page)."""

    fetched_at: float
    etag: str | None
    last_modified: str | None
    missing: bool  # a remembered 404


@dataclass(frozen=True, slots=True)
class CacheUsage:
    """Cached upstream blobs (private uploads and their metadata files excluded)."""

    files: int
    bytes: int
    pinned_bytes: int


@dataclass(frozen=True, slots=True)
class BlobRecord:
    """A committed blob as the blob index knows it (for eviction)."""

    sha256: str
    size: int
    last_access: float


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An API token's bookkeeping (never the token itself)."""

    id: int
    user: str
    description: str | None
    created_at: float
    last_used: float | None
    revoked_at: float | None
    # Scopes (issue 14): indexes (empty: all the user may reach), one project (writes), actions, expiry (epoch).
    indexes: tuple[str, ...] = ()
    project: str | None = None
    actions: tuple[str, ...] = ("read", "upload")
    expires_at: float | None = None

    @property
    def scope(self) -> TokenScope:
        project = NormalizedName(self.project) if self.project else None
        return TokenScope(frozenset(self.indexes), project, frozenset(self.actions), self.expires_at, self.id)


def token_record(row: Any) -> TokenRecord:
    """A token row (id, user, description, created, used, revoked, indexes, project, actions, expires)."""
    indexes, actions = row[6], row[8]
    return TokenRecord(
        int(row[0]), str(row[1]), row[2], float(row[3]), row[4], row[5],
        tuple(indexes.split(",")) if indexes else (), row[7], tuple(actions.split(",")) if actions else (), row[9],
    )


def scope_columns(scope: TokenScope | None) -> tuple[str | None, str | None, str, float | None]:
    """A scope as the token columns hold it: indexes, project, actions (comma-separated), expires_at."""
    if scope is None:
        return None, None, "read,upload", None
    indexes = ",".join(sorted(scope.indexes)) or None
    return indexes, scope.project, ",".join(sorted(scope.actions)), scope.expires_at


def record_scope_columns(record: TokenRecord) -> tuple[str | None, str | None, str, float | None]:
    """A token record's scope as the token columns hold it (what token_record reads back): copies keep scopes."""
    return ",".join(record.indexes) or None, record.project, ",".join(record.actions), record.expires_at


@dataclass(frozen=True, slots=True)
class PrivateFile:
    """A privately uploaded distribution file."""

    filename: str
    project: NormalizedName
    version: str
    sha256: str
    blake2_256: str | None
    size: int
    requires_python: str | None
    metadata_sha256: str | None
    yanked: str | None  # None: not yanked; "": yanked without a reason; else the reason
    upload_time: str
    uploaded_by: str | None
    index: str = ROOT  # the index holding it; the same bytes may be listed in several (promotion)


@dataclass(frozen=True, slots=True)
class DeletedFile:
    """A deleted private filename and the sha256 it had (the reuse rule)."""

    filename: str
    sha256: str
    deleted_at: float
    index: str = ROOT


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded change: who (and via what: "password" or "token:<id>"), when, from which address, what."""

    at: float
    actor: str
    via: str
    address: str | None
    action: str  # upload, yank, unyank, delete, push, import, owner-add, owner-remove, token-create, token-revoke
    index: str | None
    project: str | None
    target: str | None  # a filename, a version, a principal, a token id
    detail: str = ""  # JSON text (free-form detail, e.g. {"to": "release"})
    id: int = 0  # assigned by the store
